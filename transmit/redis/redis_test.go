package redis_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	goredis "github.com/redis/go-redis/v9"

	"github.com/strata-events/strata"
	"github.com/strata-events/strata/internal/testenv"
	"github.com/strata-events/strata/transmit"
	tredis "github.com/strata-events/strata/transmit/redis"
	"github.com/strata-events/strata/transmit/transmittest"
)

// env is a fresh stream key for one test, deleted when it ends.
type env struct {
	addr, key string
	c         *goredis.Client
}

func newEnv(t testing.TB) *env {
	t.Helper()
	addr := testenv.Redis(t)
	e := &env{addr: addr, key: "strata-test:" + uuid.NewString(), c: goredis.NewClient(&goredis.Options{Addr: addr})}
	t.Cleanup(func() {
		e.c.Del(context.Background(), e.key)
		e.c.Close()
	})
	return e
}

func (e *env) sink(t testing.TB, addr string) transmit.Sink {
	s, err := tredis.Open(context.Background(), tredis.Options{Addr: addr, Stream: e.key, Timeout: transmit.Duration(2 * time.Second)})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

type consumer struct {
	e    *env
	last string
}

func (c *consumer) Next(ctx context.Context) ([]transmittest.Received, error) {
	res, err := c.e.c.XRead(ctx, &goredis.XReadArgs{Streams: []string{c.e.key, c.last}, Count: 5000, Block: 200 * time.Millisecond}).Result()
	if err == goredis.Nil {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []transmittest.Received
	for _, s := range res {
		for _, m := range s.Messages {
			c.last = m.ID
			ce, _ := m.Values["cloudevent"].(string)
			r, err := transmittest.FromStructured([]byte(ce))
			if err != nil {
				return nil, err
			}
			if m.Values["id"] != r.ID.String() || m.Values["subject"] != r.Stream {
				return nil, strata.Errorf(strata.Internal, "consume", "entry fields %v do not match the event", m.Values)
			}
			out = append(out, r)
		}
	}
	return out, nil
}

func (e *env) target() transmittest.Target {
	return transmittest.Target{Addr: e.addr, Sink: e.sink, Consumer: func(testing.TB) transmittest.Consumer { return &consumer{e: e, last: "0"} }}
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

// TestWrongTypeRejected: a key that holds something other than a stream refuses XADD: the
// events are rejected (dead-lettered after the retry limit), not retried for ever.
func TestWrongTypeRejected(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	e.c.Set(ctx, e.key, "not a stream", 0)
	s := e.sink(t, e.addr)
	defer s.Close()
	ev := strata.Event{ID: uuid.New(), Stream: "certificate-1", Version: 1, Position: strata.Position{Commit: 1, Event: 1}, Type: "CertificateIssued"}
	err := s.Send(ctx, []*transmit.Message{transmit.NewMessage("", ev)})
	be, ok := err.(*transmit.BatchError)
	if !ok || !transmit.IsRejection(be.Errors[0]) {
		t.Fatalf("send to a string key = %v, want a rejection", err)
	}
}

func BenchmarkDeliverFromPostgres(b *testing.B) {
	transmittest.BenchFromPostgres(b, newEnv(b).target())
}

// TestURLKeepsDBAndPassword: with a url, the db option (and password) still applies (as
// passwordEnv does), rather than being accepted and ignored.
func TestURLKeepsDBAndPassword(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	s, err := tredis.Open(ctx, tredis.Options{URL: "redis://" + e.addr, DB: 7, Stream: e.key})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	db7 := goredis.NewClient(&goredis.Options{Addr: e.addr, DB: 7})
	defer db7.Close()
	defer db7.Del(ctx, e.key)
	ev := strata.Event{ID: uuid.New(), Stream: "certificate-1", Version: 1, Position: strata.Position{Commit: 1, Event: 1}, Type: "CertificateIssued"}
	if err := s.Send(ctx, []*transmit.Message{transmit.NewMessage("", ev)}); err != nil {
		t.Fatal(err)
	}
	if n, _ := db7.XLen(ctx, e.key).Result(); n != 1 {
		n0, _ := e.c.XLen(ctx, e.key).Result()
		t.Fatalf("db 7 holds %d entries (db 0: %d), want the entry in db 7", n, n0)
	}
}
