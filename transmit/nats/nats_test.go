package nats_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/strata-events/strata"
	"github.com/strata-events/strata/inmem"
	"github.com/strata-events/strata/internal/testenv"
	"github.com/strata-events/strata/transmit"
	tnats "github.com/strata-events/strata/transmit/nats"
	"github.com/strata-events/strata/transmit/transmittest"
)

// env is a fresh JetStream stream for one test, deleted when it ends.
type env struct {
	url, addr string
	name      string // stream name; subjects are name.>
	js        jetstream.JetStream
}

func newEnv(t testing.TB, cfg jetstream.StreamConfig) *env {
	t.Helper()
	url := testenv.NATS(t)
	nc, err := natsgo.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	e := &env{url: url, addr: strings.TrimPrefix(url, "nats://"), name: "strata_test_" + strings.ReplaceAll(uuid.NewString()[:13], "-", ""), js: js}
	cfg.Name, cfg.Subjects = e.name, []string{e.name + ".>"}
	if cfg.Storage == 0 {
		cfg.Storage = jetstream.MemoryStorage
	}
	ctx := context.Background()
	if _, err := js.CreateStream(ctx, cfg); err != nil {
		t.Fatalf("create stream: %v", err)
	}
	t.Cleanup(func() { js.DeleteStream(context.Background(), e.name) })
	return e
}

func (e *env) sink(t testing.TB, addr string) transmit.Sink {
	s, err := tnats.Open(context.Background(), tnats.Options{URL: "nats://" + addr, Subject: e.name + ".{type}",
		Timeout: transmit.Duration(time.Second), ReconnectWait: transmit.Duration(20 * time.Millisecond)})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// consumer reads the stream from its start with an ordered consumer.
type consumer struct {
	c jetstream.Consumer
}

func (e *env) consumer(t testing.TB) transmittest.Consumer {
	c, err := e.js.OrderedConsumer(context.Background(), e.name, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	return &consumer{c}
}

func (c *consumer) Next(ctx context.Context) ([]transmittest.Received, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	b, err := c.c.Fetch(2000, jetstream.FetchMaxWait(200*time.Millisecond))
	if err != nil {
		return nil, err
	}
	var out []transmittest.Received
	for m := range b.Messages() {
		r, err := transmittest.FromStructured(m.Data())
		if err != nil {
			return nil, err
		}
		if m.Headers().Get(natsgo.MsgIdHdr) != r.ID.String() {
			return nil, strata.Errorf(strata.Internal, "consume", "Nats-Msg-Id %q is not the event ID %s", m.Headers().Get(natsgo.MsgIdHdr), r.ID)
		}
		out = append(out, r)
	}
	return out, b.Error()
}

func (e *env) target() transmittest.Target {
	return transmittest.Target{Addr: e.addr, Sink: e.sink, Consumer: e.consumer}
}

func TestDeliver(t *testing.T) {
	t.Parallel()
	e := newEnv(t, jetstream.StreamConfig{})
	transmittest.Deliver(t, e.target(), transmittest.Count(t), 20)
}

func TestOutage(t *testing.T) {
	t.Parallel()
	e := newEnv(t, jetstream.StreamConfig{})
	transmittest.Outage(t, e.target(), 2000)
}

func TestPoison(t *testing.T) {
	t.Parallel()
	e := newEnv(t, jetstream.StreamConfig{})
	transmittest.Poison(t, e.target())
}

// TestDuplicatesDropped: re-sending an event (as after a crash) stores it once, by
// Nats-Msg-Id.
func TestDuplicatesDropped(t *testing.T) {
	t.Parallel()
	e := newEnv(t, jetstream.StreamConfig{})
	sink := e.sink(t, e.addr)
	defer sink.Close()
	ev := strata.Event{ID: uuid.New(), Stream: "certificate-7F3A", Version: 1, Position: strata.Position{Commit: 1, Event: 1},
		Type: "CertificateRevoked", Data: []byte(`{"reason":"keyCompromise"}`), RecordedAt: time.Now()}
	ctx := context.Background()
	for range 3 {
		if err := sink.Send(ctx, []*transmit.Message{transmit.NewMessage("test", ev)}); err != nil {
			t.Fatal(err)
		}
	}
	info, err := e.js.Stream(ctx, e.name)
	if err != nil {
		t.Fatal(err)
	}
	if n := info.CachedInfo().State.Msgs; n != 1 {
		t.Fatalf("%d messages stored after three sends of one event, want 1", n)
	}
}

// TestTooLargeDeadLettered: a message larger than the stream takes is refused by JetStream,
// dead-lettered, and delivered by a requeue once the stream takes it.
func TestTooLargeDeadLettered(t *testing.T) {
	t.Parallel()
	e := newEnv(t, jetstream.StreamConfig{MaxMsgSize: 4096})
	st := inmem.New()
	defer st.Close()
	ctx := context.Background()
	if _, err := st.Append(ctx, "certificate-1", strata.NoStream,
		strata.EventData{Type: "CertificateIssued", Data: []byte(`{"serial":"1"}`)},
		strata.EventData{Type: "CertificateIssued", Data: []byte(`{"pem":"` + strings.Repeat("A", 8000) + `"}`)},
		strata.EventData{Type: "CertificateRevoked", Data: []byte(`{"serial":"1"}`)}); err != nil {
		t.Fatal(err)
	}
	sink := e.sink(t, e.addr)
	defer sink.Close()
	tr, err := transmit.New(st, "big", sink, transmit.WithRetry(1, time.Millisecond, time.Millisecond, false),
		transmit.WithPendingPoll(10*time.Millisecond), transmittest.Quiet())
	if err != nil {
		t.Fatal(err)
	}
	transmittest.Start(t, tr)
	transmittest.WaitState(t, st, "big", "2 sent, 1 dead", func(s strata.TransmitterState) bool { return s.Sent == 2 && s.Dead == 1 })
	dead, _ := st.Deliveries(ctx, strata.DeliveryQuery{Transmitter: "big", Status: strata.DeliveryDead})
	if len(dead) != 1 || dead[0].Version != 2 || dead[0].Attempts != 2 {
		t.Fatalf("dead letters: %+v", dead)
	}
	cfg := jetstream.StreamConfig{Name: e.name, Subjects: []string{e.name + ".>"}, Storage: jetstream.MemoryStorage, MaxMsgSize: 1 << 20}
	if _, err := e.js.UpdateStream(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	if _, err := st.RequeueDeliveries(ctx, "big", []uuid.UUID{dead[0].EventID}); err != nil {
		t.Fatal(err)
	}
	transmittest.WaitState(t, st, "big", "3 sent", func(s strata.TransmitterState) bool { return s.Sent == 3 && s.Dead == 0 && s.Pending == 0 })
}

// TestBinaryMode: in binary mode the body is the payload and the attributes are ce- headers.
func TestBinaryMode(t *testing.T) {
	t.Parallel()
	e := newEnv(t, jetstream.StreamConfig{})
	s, err := tnats.Factory(context.Background(), transmit.SinkConfig{Name: "bin", Mode: transmit.Binary,
		Options: []byte(`{"url": "` + e.url + `", "subject": "` + e.name + `.{stream}"}`)})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ev := strata.Event{ID: uuid.New(), Stream: "certificate-7F3A", Version: 3, Position: strata.Position{Commit: 9, Event: 9},
		Type: "CertificateRevoked", Data: []byte(`{"reason":"keyCompromise"}`), RecordedAt: time.Now(),
		Meta: strata.Metadata{Tenant: "acme", Extra: map[string]string{"ticket": "T-9"}}}
	if err := s.Send(context.Background(), []*transmit.Message{transmit.NewMessage("urn:test", ev)}); err != nil {
		t.Fatal(err)
	}
	c, _ := e.js.OrderedConsumer(context.Background(), e.name, jetstream.OrderedConsumerConfig{})
	m, err := c.Next(jetstream.FetchMaxWait(5 * time.Second))
	if err != nil {
		t.Fatal(err)
	}
	h := m.Headers()
	if string(m.Data()) != `{"reason":"keyCompromise"}` || h.Get("ce-id") != ev.ID.String() || h.Get("ce-type") != "CertificateRevoked" ||
		h.Get("ce-specversion") != "1.0" || h.Get("ce-subject") != "certificate-7F3A" || h.Get("ce-strataversion") != "3" ||
		h.Get("ce-stratatenant") != "acme" || h.Get("ce-stratameta") != `{"ticket":"T-9"}` || h.Get("Content-Type") != "application/json" ||
		h.Get(natsgo.MsgIdHdr) != ev.ID.String() || m.Subject() != e.name+".certificate-7F3A" {
		t.Fatalf("binary message: subject %s, headers %v, body %s", m.Subject(), h, m.Data())
	}
}

func BenchmarkDeliverFromPostgres(b *testing.B) {
	transmittest.BenchFromPostgres(b, newEnv(b, jetstream.StreamConfig{}).target())
}
