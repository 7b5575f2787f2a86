package kafka_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-events/strata"
	"github.com/strata-events/strata/transmit"
	tkafka "github.com/strata-events/strata/transmit/kafka"
	"github.com/strata-events/strata/transmit/transmittest"
)

// env is an in-process Kafka (franz-go's kfake) with one topic of 4 partitions, whose produce
// requests can be made to fail.
type env struct {
	c     *kfake.Cluster
	topic string
	down  atomic.Bool
}

func newEnv(t testing.TB) *env {
	t.Helper()
	e := &env{topic: "strata-events"}
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(4, e.topic))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	e.c = c
	c.ControlKey(int16(kmsg.Produce), func(kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		if e.down.Load() {
			return nil, errors.New("broker down"), true // kfake closes the connection
		}
		return nil, nil, false
	})
	return e
}

func (e *env) sink(t testing.TB, _ string) transmit.Sink {
	s, err := tkafka.Open(context.Background(), tkafka.Options{Brokers: e.c.ListenAddrs(), Topic: e.topic, Timeout: transmit.Duration(time.Second)},
		kgo.RetryBackoffFn(func(int) time.Duration { return 20 * time.Millisecond }))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

type consumer struct{ cl *kgo.Client }

func (e *env) consumer(t testing.TB) transmittest.Consumer {
	cl, err := kgo.NewClient(kgo.SeedBrokers(e.c.ListenAddrs()...), kgo.ConsumeTopics(e.topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return &consumer{cl}
}

func (c *consumer) Next(ctx context.Context) ([]transmittest.Received, error) {
	pctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	fs := c.cl.PollFetches(pctx)
	var out []transmittest.Received
	var bad error
	fs.EachRecord(func(r *kgo.Record) {
		rec, err := transmittest.FromStructured(r.Value)
		if err != nil {
			bad = err
			return
		}
		var id string
		for _, h := range r.Headers {
			if h.Key == "ce_id" {
				id = string(h.Value)
			}
		}
		if id != rec.ID.String() || string(r.Key) != rec.Stream {
			bad = strata.Errorf(strata.Internal, "consume", "record key %q, ce_id %q for %s", r.Key, id, rec.ID)
		}
		out = append(out, rec)
	})
	return out, bad
}

func (e *env) target() transmittest.Target {
	return transmittest.Target{Addr: "kfake", Sink: e.sink, Consumer: e.consumer,
		Cut: func() { e.down.Store(true) }, Restore: func() { e.down.Store(false) }}
}

func TestDeliver(t *testing.T) {
	t.Parallel()
	transmittest.Deliver(t, newEnv(t).target(), transmittest.Count(t), 20)
}

func TestOutage(t *testing.T) {
	t.Parallel()
	transmittest.Outage(t, newEnv(t).target(), 2000)
}

func TestPoison(t *testing.T) {
	t.Parallel()
	transmittest.Poison(t, newEnv(t).target())
}

// TestBinaryMode: the value is the payload, the attributes are ce_ headers.
func TestBinaryMode(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	s, err := tkafka.Factory(context.Background(), transmit.SinkConfig{Name: "bin", Mode: transmit.Binary,
		Options: []byte(`{"brokers": ["` + e.c.ListenAddrs()[0] + `"], "topic": "` + e.topic + `"}`)})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ev := strata.Event{ID: uuid.New(), Stream: "certificate-7F3A", Version: 2, Position: strata.Position{Commit: 4, Event: 4},
		Type: "CertificateRevoked", Data: []byte(`{"reason":"keyCompromise"}`), RecordedAt: time.Now()}
	if err := s.Send(context.Background(), []*transmit.Message{transmit.NewMessage("urn:test", ev)}); err != nil {
		t.Fatal(err)
	}
	c := e.consumer(t).(*consumer)
	for {
		fs := c.cl.PollFetches(context.Background())
		var done bool
		fs.EachRecord(func(r *kgo.Record) {
			h := map[string]string{}
			for _, kv := range r.Headers {
				h[kv.Key] = string(kv.Value)
			}
			if string(r.Value) != string(ev.Data) || h["ce_id"] != ev.ID.String() || h["ce_type"] != ev.Type ||
				h["ce_specversion"] != "1.0" || h["content-type"] != "application/json" || string(r.Key) != ev.Stream {
				t.Fatalf("binary record: key %s, headers %v, value %s", r.Key, h, r.Value)
			}
			done = true
		})
		if done {
			return
		}
	}
}

func BenchmarkDeliverFromPostgres(b *testing.B) {
	transmittest.BenchFromPostgres(b, newEnv(b).target())
}

// TestSmallEventsInLargeBatch: a batch of small events of one stream (one partition) must not
// be packed into produce batches larger than the broker's max.message.bytes (1 MiB by default),
// which the broker refuses as too large: every event fits, so none may be rejected. The broker
// answers produce requests after 50ms, like one across a network, so that records pile up
// behind the request in flight; the payloads are random (like ciphertext), so they do not
// compress.
func TestSmallEventsInLargeBatch(t *testing.T) {
	t.Parallel()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "strata-events"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.ControlKey(int16(kmsg.Produce), func(kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		time.Sleep(50 * time.Millisecond)
		return nil, nil, false
	})
	s, err := tkafka.Open(context.Background(), tkafka.Options{Brokers: c.ListenAddrs(), Topic: "strata-events"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	batch := make([]*transmit.Message, 5000)
	for i := range batch {
		b := make([]byte, 750)
		rand.Read(b)
		ev := strata.Event{ID: uuid.New(), Stream: "certificate-7F3A", Version: int64(i + 1), Type: "CertificateIssued",
			Data: []byte(`{"subjectDN":"` + base64.StdEncoding.EncodeToString(b) + `"}`), RecordedAt: time.Now()}
		batch[i] = transmit.NewMessage("urn:test", ev)
	}
	if err := s.Send(context.Background(), batch); err != nil {
		t.Fatalf("5000 events of 1 KB: %v", err)
	}
}

// TestInvalidTopicIsRejected: an event whose expanded topic Kafka cannot take is rejected at
// once (it counts toward the retry limit, then goes to the dead-letter queue), and the events
// beside it in the batch are produced.
func TestInvalidTopicIsRejected(t *testing.T) {
	t.Parallel()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "strata-CertificateIssued"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	s, err := tkafka.Open(context.Background(), tkafka.Options{Brokers: c.ListenAddrs(), Topic: "strata-{type}", Timeout: transmit.Duration(time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var batch []*transmit.Message
	for i, typ := range []string{"CertificateIssued", "Certificate Revoked", "CertificateIssued", strings.Repeat("T", 250)} {
		ev := strata.Event{ID: uuid.New(), Stream: "certificate-7F3A", Version: int64(i + 1), Type: typ, Data: []byte(`{}`), RecordedAt: time.Now()}
		batch = append(batch, transmit.NewMessage("urn:test", ev))
	}
	err = s.Send(context.Background(), batch)
	var be *transmit.BatchError
	if !errors.As(err, &be) || len(be.Errors) != 2 {
		t.Fatalf("send: %v, want the two events with invalid topics refused", err)
	}
	for _, i := range []int{1, 3} {
		if !transmit.IsRejection(be.Errors[i]) {
			t.Errorf("event %d (type %.20q): %v, want a rejection", i, batch[i].Event.Type, be.Errors[i])
		}
	}
}
