// Package transmittest holds the scenarios every transmitter adapter is tested with: delivery
// of many events with none missing and per-stream order kept, a destination that becomes
// unreachable mid-run and comes back, and a poison event that is dead-lettered and replayed.
// An adapter's test supplies a Target: how to open its sink at an address and how to read what
// the destination received.
package transmittest

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/strata-events/strata"
	"github.com/strata-events/strata/inmem"
	"github.com/strata-events/strata/internal/testenv"
	"github.com/strata-events/strata/transmit"
)

// Received is one message as a destination got it.
type Received struct {
	ID      uuid.UUID
	Stream  string
	Version int64
	// Redelivery is true when the test can tell the message was re-sent (optional).
	Redelivery bool
}

// FromStructured decodes a structured-mode CloudEvent body.
func FromStructured(b []byte) (Received, error) {
	ce, err := transmit.ParseStructured(b)
	if err != nil {
		return Received{}, err
	}
	id, err := ce.EventID()
	if err != nil {
		return Received{}, err
	}
	v, err := ce.Version()
	if err != nil {
		return Received{}, err
	}
	return Received{ID: id, Stream: ce.Subject, Version: v}, nil
}

// Consumer reads what a destination received.
type Consumer interface {
	// Next returns the messages received since the last call (waiting a little for some).
	Next(ctx context.Context) ([]Received, error)
}

// Target is one destination under test.
type Target struct {
	// Addr is the host:port of the service (a proxy in front of it cuts it off in Outage).
	Addr string
	// Sink opens a sink that sends to the service at addr (host:port).
	Sink func(t testing.TB, addr string) transmit.Sink
	// Consumer starts reading what the destination receives from now on.
	Consumer func(t testing.TB) Consumer
	// Cut and Restore, when set, make the destination unreachable and reachable again for
	// Outage; otherwise a TCP proxy in front of Addr is cut.
	Cut, Restore func()
}

// Sent is an appended event, as the checks need it.
type Sent struct {
	ID      uuid.UUID
	Stream  string
	Version int64
}

// AppendEvents appends n events to st, in appends of up to 100 events that take turns over
// streams streams named prefix-0, prefix-1, ..., and returns them in the order appended.
func AppendEvents(t testing.TB, st strata.Store, prefix string, n, streams int) []Sent {
	t.Helper()
	ctx := context.Background()
	versions := make([]int64, streams)
	out := make([]Sent, 0, n)
	for k := 0; len(out) < n; k++ {
		si := k % streams
		stream := fmt.Sprintf("%s-%d", prefix, si)
		size := min(100, n-len(out))
		evs := make([]strata.EventData, size)
		for j := range evs {
			id, _ := uuid.NewV7()
			typ := "CertificateIssued"
			if j%2 == 1 {
				typ = "CertificateRevoked"
			}
			data, _ := json.Marshal(map[string]any{"serial": fmt.Sprintf("%X", len(out)+j), "n": len(out) + j})
			evs[j] = strata.EventData{ID: id, Type: typ, Data: data, Meta: strata.Metadata{Tenant: "acme", Correlation: "load"}}
		}
		if _, err := st.Append(ctx, stream, strata.Exact(versions[si]), evs...); err != nil {
			t.Fatalf("append: %v", err)
		}
		for _, e := range evs {
			versions[si]++
			out = append(out, Sent{ID: e.ID, Stream: stream, Version: versions[si]})
		}
	}
	return out
}

// Check fails t unless every sent event was received, and unless each stream's events arrived
// (first arrivals) in version order. It reports duplicates (at-least-once allows them).
func Check(t testing.TB, sent []Sent, got []Received) {
	t.Helper()
	want := make(map[uuid.UUID]Sent, len(sent))
	for _, s := range sent {
		want[s.ID] = s
	}
	seen := make(map[uuid.UUID]bool, len(got))
	last := map[string]int64{}
	dups, unknown, disorder := 0, 0, 0
	for _, r := range got {
		s, ok := want[r.ID]
		if !ok {
			unknown++
			continue
		}
		if seen[r.ID] {
			dups++
			continue
		}
		seen[r.ID] = true
		if r.Stream != s.Stream || r.Version != s.Version {
			t.Errorf("event %s arrived as %s@%d, sent as %s@%d", r.ID, r.Stream, r.Version, s.Stream, s.Version)
		}
		if s.Version < last[s.Stream] {
			disorder++
			if disorder <= 3 {
				t.Errorf("stream %s: version %d arrived after version %d", s.Stream, s.Version, last[s.Stream])
			}
		}
		last[s.Stream] = max(last[s.Stream], s.Version)
	}
	missing := len(want) - len(seen)
	if missing > 0 || disorder > 0 {
		t.Fatalf("%d of %d events missing, %d out of stream order (%d duplicates, %d unknown)", missing, len(want), disorder, dups, unknown)
	}
	t.Logf("%d events received, none missing, stream order kept (%d duplicates)", len(seen), dups)
}

// Collect reads from c until every sent event has arrived or a generous deadline passes
// (a safety net against hangs, not an assertion about speed).
func Collect(t testing.TB, c Consumer, sent []Sent) []Received {
	t.Helper()
	want := make(map[uuid.UUID]bool, len(sent))
	for _, s := range sent {
		want[s.ID] = true
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var got []Received
	left := len(want)
	for left > 0 {
		rs, err := c.Next(ctx)
		if err != nil {
			t.Logf("consumer: %v (%d events still missing)", err, left)
			return got
		}
		for _, r := range rs {
			if want[r.ID] {
				want[r.ID] = false
				left--
			}
		}
		got = append(got, rs...)
	}
	return got
}

// Start runs tr in the background and returns a function that stops it and returns Run's
// error (nil when it ended because it was stopped).
func Start(t testing.TB, tr *transmit.Transmitter) (stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- tr.Run(ctx) }()
	var once sync.Once
	var err error
	stop = func() error {
		once.Do(func() {
			cancel()
			err = <-done
			if ctx.Err() != nil {
				err = nil
			}
		})
		return err
	}
	t.Cleanup(func() { stop() })
	return stop
}

// WaitState polls the transmitter's stored state until ok says yes, failing the test after a
// generous deadline.
func WaitState(t testing.TB, ts strata.TransmitStore, name string, what string, ok func(strata.TransmitterState) bool) strata.TransmitterState {
	t.Helper()
	deadline := time.Now().Add(3 * time.Minute)
	for {
		sts, err := ts.TransmitterStates(context.Background())
		if err != nil {
			t.Fatalf("transmitter states: %v", err)
		}
		for _, st := range sts {
			if st.Name == name && ok(st) {
				return st
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("transmitter %s: gave up waiting for %s (states %+v)", name, what, sts)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Quiet keeps a transmitter's retry and dead-letter logs out of test output.
func Quiet() transmit.Option { return transmit.WithLogger(slog.New(slog.DiscardHandler)) }

// fast is the retry policy of the scenarios: short waits, so that they run quickly.
func fast(maxRetries int) transmit.Option {
	return transmit.WithRetry(maxRetries, time.Millisecond, 50*time.Millisecond, true)
}

// Deliver sends n events over streams streams from an in-memory store and checks that all
// arrived in stream order.
func Deliver(t *testing.T, tg Target, n, streams int) {
	st := inmem.New()
	t.Cleanup(func() { st.Close() })
	DeliverFrom(t, st, tg, n, streams)
}

// DeliverFrom is Deliver from a given store.
func DeliverFrom(t testing.TB, st strata.Store, tg Target, n, streams int) {
	sent := AppendEvents(t, st, "certificate-"+uuid.NewString()[:8], n, streams)
	c := tg.Consumer(t)
	sink := tg.Sink(t, tg.Addr)
	t.Cleanup(func() { sink.Close() })
	tr, err := transmit.New(st, "deliver", sink, transmit.WithBatchSize(1000), fast(5), Quiet())
	if err != nil {
		t.Fatal(err)
	}
	stop := Start(t, tr)
	WaitState(t, st.(strata.TransmitStore), "deliver", fmt.Sprintf("%d sent", n), func(s strata.TransmitterState) bool { return s.Sent == int64(n) })
	got := Collect(t, c, sent)
	if err := stop(); err != nil {
		t.Fatalf("run: %v", err)
	}
	Check(t, sent, got)
}

// Outage sends n events while the destination is cut off half way (a proxy drops every
// connection and refuses new ones), then restores it: the transmitter retries until it gets
// through, and nothing is lost or reordered.
func Outage(t *testing.T, tg Target, n int) {
	st := inmem.New()
	t.Cleanup(func() { st.Close() })
	addr, cut, restore := tg.Addr, tg.Cut, tg.Restore
	if cut == nil {
		proxy := testenv.NewProxy(t, tg.Addr)
		addr, cut, restore = proxy.Addr(), proxy.Cut, proxy.Restore
	}
	prefix := "certificate-" + uuid.NewString()[:8]
	c := tg.Consumer(t)
	sink := tg.Sink(t, addr)
	t.Cleanup(func() { sink.Close() })
	tr, err := transmit.New(st, "outage", sink, transmit.WithBatchSize(200), fast(3), Quiet())
	if err != nil {
		t.Fatal(err)
	}
	sent := AppendEvents(t, st, prefix, n/2, 5)
	stop := Start(t, tr)
	ts := st
	WaitState(t, ts, "outage", "the first half sent", func(s strata.TransmitterState) bool { return s.Sent == int64(n/2) })
	cut()
	more := AppendEvents(t, st, prefix+"-b", n-n/2, 5)
	sent = append(sent, more...)
	WaitState(t, ts, "outage", "failed deliveries while cut off", func(s strata.TransmitterState) bool { return s.Failed > 0 })
	_, failedBefore, _ := tr.Counts()
	restore()
	WaitState(t, ts, "outage", "everything sent after the restore", func(s strata.TransmitterState) bool { return s.Sent == int64(n) && s.Failed == 0 })
	if _, _, dead := tr.Counts(); dead != 0 {
		t.Fatalf("%d events dead-lettered during an outage: an unreachable destination must not dead-letter", dead)
	}
	got := Collect(t, c, sent)
	if err := stop(); err != nil {
		t.Fatalf("run: %v", err)
	}
	t.Logf("%d failed attempts while cut off", failedBefore)
	Check(t, sent, got)
}

// Poison sends 20 events of which one is refused (by a payload transform that fails for it,
// as a destination's rejection would) until it is fixed: it is dead-lettered after the retry
// limit with its attempts and error recorded, the others are delivered, and after the fix a
// requeue delivers it.
func Poison(t *testing.T, tg Target) {
	st := inmem.New()
	t.Cleanup(func() { st.Close() })
	sent := AppendEvents(t, st, "certificate-"+uuid.NewString()[:8], 20, 2)
	poison := sent[7].ID
	var broken atomic.Bool
	broken.Store(true)
	xform := func(_ context.Context, e *strata.Event) error {
		if e.ID == poison && broken.Load() {
			return fmt.Errorf("schema mismatch for %s", e.ID)
		}
		return nil
	}
	c := tg.Consumer(t)
	sink := tg.Sink(t, tg.Addr)
	t.Cleanup(func() { sink.Close() })
	tr, err := transmit.New(st, "poison", sink, transmit.WithTransform(xform), fast(2), transmit.WithPendingPoll(10*time.Millisecond), Quiet())
	if err != nil {
		t.Fatal(err)
	}
	Start(t, tr)
	ts := st
	WaitState(t, ts, "poison", "19 sent and 1 dead", func(s strata.TransmitterState) bool { return s.Sent == 19 && s.Dead == 1 })
	dead, err := ts.Deliveries(context.Background(), strata.DeliveryQuery{Transmitter: "poison", Status: strata.DeliveryDead})
	if err != nil {
		t.Fatal(err)
	}
	if len(dead) != 1 || dead[0].EventID != poison || dead[0].Attempts != 3 || dead[0].LastError == "" {
		t.Fatalf("dead letters = %+v, want event %s after 3 attempts with its error", dead, poison)
	}
	got := Collect(t, c, append(sent[:7:7], sent[8:]...))
	broken.Store(false)
	if n, err := ts.RequeueDeliveries(context.Background(), "poison", []uuid.UUID{poison}); err != nil || n != 1 {
		t.Fatalf("requeue = %d, %v", n, err)
	}
	WaitState(t, ts, "poison", "all 20 sent after the requeue", func(s strata.TransmitterState) bool { return s.Sent == 20 && s.Dead == 0 && s.Pending == 0 })
	got = append(got, Collect(t, c, sent[7:8])...)
	recs, _ := ts.Deliveries(context.Background(), strata.DeliveryQuery{Transmitter: "poison", After: strata.Start})
	for _, r := range recs {
		if r.EventID == poison && r.Attempts != 4 {
			t.Fatalf("the replayed dead letter has %d attempts recorded, want 4", r.Attempts)
		}
	}
	// The poison arrives after later events of its stream: that is the price of a dead letter.
	var others []Received
	for _, r := range got {
		if r.ID != poison {
			others = append(others, r)
		}
	}
	Check(t, append(sent[:7:7], sent[8:]...), others)
	for _, r := range got {
		if r.ID == poison {
			return
		}
	}
	t.Fatal("the requeued dead letter never arrived")
}
