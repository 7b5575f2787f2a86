package amqp_test

import (
	"context"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/strata-events/strata"
	"github.com/strata-events/strata/internal/testenv"
	"github.com/strata-events/strata/transmit"
	tamqp "github.com/strata-events/strata/transmit/amqp"
	"github.com/strata-events/strata/transmit/transmittest"
)

// env is a fresh exchange and queue (bound to every routing key) for one test, deleted when it
// ends.
type env struct {
	url, addr       string
	exchange, queue string
	conn            *amqp091.Connection
	ch              *amqp091.Channel
}

func newEnv(t testing.TB) *env {
	t.Helper()
	u := testenv.RabbitMQ(t)
	pu, _ := url.Parse(u)
	conn, err := amqp091.Dial(u)
	if err != nil {
		t.Fatal(err)
	}
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	id := uuid.NewString()[:8]
	e := &env{url: u, addr: pu.Host, exchange: "strata-test-" + id, queue: "strata-test-" + id, conn: conn, ch: ch}
	if err := ch.ExchangeDeclare(e.exchange, "topic", false, true, false, false, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := ch.QueueDeclare(e.queue, false, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"CertificateIssued", "CertificateRevoked"} {
		if err := ch.QueueBind(e.queue, key, e.exchange, false, nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := ch.QueueBind(e.queue, "#", e.exchange, false, nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ch.QueueDelete(e.queue, false, false, false)
		ch.ExchangeDelete(e.exchange, false, false)
		conn.Close()
	})
	return e
}

func (e *env) sink(t testing.TB, addr string) transmit.Sink {
	u, _ := url.Parse(e.url)
	u.Host = addr
	s, err := tamqp.Open(context.Background(), tamqp.Options{URL: u.String(), Exchange: e.exchange, Timeout: transmit.Duration(2 * time.Second)})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

type consumer struct {
	d <-chan amqp091.Delivery
}

func (e *env) consumer(t testing.TB) transmittest.Consumer {
	if err := e.ch.Qos(5000, 0, false); err != nil {
		t.Fatal(err)
	}
	d, err := e.ch.Consume(e.queue, "", true, true, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	return &consumer{d}
}

func (c *consumer) Next(ctx context.Context) ([]transmittest.Received, error) {
	var out []transmittest.Received
	timer := time.NewTimer(200 * time.Millisecond)
	defer timer.Stop()
	for len(out) < 5000 {
		select {
		case m, ok := <-c.d:
			if !ok {
				return out, strata.Errorf(strata.Unavailable, "consume", "the consumer channel closed")
			}
			r, err := transmittest.FromStructured(m.Body)
			if err != nil {
				return nil, err
			}
			if m.MessageId != r.ID.String() || m.DeliveryMode != amqp091.Persistent {
				return nil, strata.Errorf(strata.Internal, "consume", "message-id %q, delivery mode %d", m.MessageId, m.DeliveryMode)
			}
			out = append(out, r)
		case <-timer.C:
			return out, nil
		case <-ctx.Done():
			return out, ctx.Err()
		}
	}
	return out, nil
}

func (e *env) target() transmittest.Target {
	return transmittest.Target{Addr: e.addr, Sink: e.sink, Consumer: e.consumer}
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

// TestUnroutableRejected: a message no queue takes comes back (mandatory) and is rejected, never
// dropped silently.
func TestUnroutableRejected(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	if err := e.ch.QueueUnbind(e.queue, "#", e.exchange, nil); err != nil {
		t.Fatal(err)
	}
	s := e.sink(t, e.addr)
	defer s.Close()
	mk := func(typ string) *transmit.Message {
		return transmit.NewMessage("", strata.Event{ID: uuid.New(), Stream: "s-1", Version: 1, Position: strata.Position{Commit: 1, Event: 1}, Type: typ})
	}
	err := s.Send(context.Background(), []*transmit.Message{mk("CertificateIssued"), mk("Unrouted"), mk("CertificateRevoked")})
	be, ok := err.(*transmit.BatchError)
	if !ok || len(be.Errors) != 1 || !transmit.IsRejection(be.Errors[1]) {
		t.Fatalf("send with one unroutable message = %v, want a rejection of message 1 only", err)
	}
}

// TestTooLargeRejected: a message larger than maxMessageBytes is rejected before it is
// published, where the broker's max_message_size would close the channel and fail the whole
// batch on every retry; the messages beside it are delivered.
func TestTooLargeRejected(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	s, err := tamqp.Open(context.Background(), tamqp.Options{URL: e.url, Exchange: e.exchange, Timeout: transmit.Duration(2 * time.Second), MaxMessageBytes: 4096})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	mk := func(v int64, size int) *transmit.Message {
		return transmit.NewMessage("", strata.Event{ID: uuid.New(), Stream: "s-1", Version: v, Position: strata.Position{Commit: uint64(v), Event: uint64(v)},
			Type: "CertificateIssued", Data: []byte(`{"pad":"` + strings.Repeat("x", size) + `"}`)})
	}
	err = s.Send(context.Background(), []*transmit.Message{mk(1, 10), mk(2, 8192), mk(3, 10)})
	be, ok := err.(*transmit.BatchError)
	if !ok || len(be.Errors) != 1 || !transmit.IsRejection(be.Errors[1]) {
		t.Fatalf("send with one message over the limit = %v, want a rejection of message 1 only", err)
	}
	n := 0
	for {
		_, ok, err := e.ch.Get(e.queue, true)
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			break
		}
		n++
	}
	if n != 2 {
		t.Fatalf("the queue got %d messages, want the 2 small ones", n)
	}
}

func BenchmarkDeliverFromPostgres(b *testing.B) {
	transmittest.BenchFromPostgres(b, newEnv(b).target())
}

// BenchmarkRawPublishConfirm is the baseline for BenchmarkDeliverFromPostgres: amqp091 alone
// publishing persistent, mandatory 400-byte messages on one confirm-mode channel, 1000 in
// flight, with no store and no transmitter. On the shared 2-core machine the broker's confirms,
// not strata, bound the rate; compare the two in one run.
func BenchmarkRawPublishConfirm(b *testing.B) {
	e := newEnv(b)
	conn, err := amqp091.Dial(e.url)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	ch, _ := conn.Channel()
	if err := ch.Confirm(false); err != nil {
		b.Fatal(err)
	}
	body := make([]byte, 400)
	const n = 10_000
	start := time.Now()
	for b.Loop() {
		var dcs []*amqp091.DeferredConfirmation
		for i := range n {
			dc, err := ch.PublishWithDeferredConfirmWithContext(context.Background(), e.exchange, "CertificateIssued", true, false,
				amqp091.Publishing{DeliveryMode: amqp091.Persistent, Body: body, MessageId: uuid.NewString()})
			if err != nil {
				b.Fatal(err)
			}
			dcs = append(dcs, dc)
			if len(dcs) == 1000 || i == n-1 {
				for _, d := range dcs {
					d.Wait()
				}
				dcs = dcs[:0]
			}
		}
	}
	b.ReportMetric(float64(n*b.N)/time.Since(start).Seconds(), "events/s")
}

// TestURLEnvUnset: a urlEnv naming an empty variable is a configuration error, not a reason to
// publish to the default broker (guest on 127.0.0.1) instead of the one meant.
func TestURLEnvUnset(t *testing.T) {
	testenv.RabbitMQ(t) // the default broker is up: it must not be used
	t.Setenv("STRATA_TEST_AMQP_URL_UNSET", "")
	s, err := tamqp.Open(context.Background(), tamqp.Options{URLEnv: "STRATA_TEST_AMQP_URL_UNSET", Exchange: "strata-test-unused"})
	if err == nil {
		s.Close()
		t.Fatal("Open connected to the default broker although urlEnv names an empty variable")
	}
	if strata.ErrorCode(err) != strata.Invalid {
		t.Fatalf("Open = %v, want Invalid", err)
	}
}
