package transmit_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/strata-events/strata"
	"github.com/strata-events/strata/inmem"
	"github.com/strata-events/strata/internal/testenv"
	"github.com/strata-events/strata/postgres"
	"github.com/strata-events/strata/sqlite"
	"github.com/strata-events/strata/transmit"
	"github.com/strata-events/strata/transmit/transmittest"
)

// The lease tests run two instances of one transmitter against one store: only the holder of
// the lease delivers, a standby takes over when the holder stops or dies and resumes from the
// checkpoint, and a holder whose lease was taken over cannot commit.

// leaseStore is a store with transmitter storage, as the backends are.
type leaseStore interface {
	strata.Store
	strata.TransmitStore
}

// backend opens a fresh store of one kind; dsn names it for a child process.
type backend struct {
	name string
	open func(t *testing.T) (st leaseStore, child []string)
}

var leaseBackends = []backend{
	{"SQLite", func(t *testing.T) (leaseStore, []string) {
		path := filepath.Join(t.TempDir(), "strata.db")
		st, err := sqlite.Open(context.Background(), path)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		return st, []string{childSQLite + "=" + path}
	}},
	{"PostgreSQL", func(t *testing.T) (leaseStore, []string) {
		dsn := testenv.Postgres(t)
		schema := testenv.PostgresSchema(t, dsn)
		st, err := postgres.Open(context.Background(), dsn, postgres.WithSchema(schema))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		return st, []string{childPostgres + "=" + dsn, childSchema + "=" + schema}
	}},
}

// checkpointWatch polls a transmitter's checkpoint and remembers whether it ever went back.
type checkpointWatch struct {
	stop func()
	mu   sync.Mutex
	back []string
}

func watchCheckpoint(t *testing.T, ts strata.TransmitStore, name string) *checkpointWatch {
	ctx, cancel := context.WithCancel(context.Background())
	w := &checkpointWatch{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		last := strata.Start
		for ctx.Err() == nil {
			cp, err := ts.TransmitCheckpoint(ctx, name)
			if err == nil {
				if cp.Less(last) {
					w.mu.Lock()
					w.back = append(w.back, fmt.Sprintf("%s after %s", cp, last))
					w.mu.Unlock()
				}
				last = cp
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
	w.stop = func() { cancel(); <-done }
	t.Cleanup(w.stop)
	return w
}

func (w *checkpointWatch) check(t *testing.T) {
	t.Helper()
	w.stop()
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.back) > 0 {
		t.Fatalf("the checkpoint went back: %v", w.back)
	}
}

func waitFor(t testing.TB, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func ids(ms []*transmit.Message) map[uuid.UUID]int {
	out := map[uuid.UUID]int{}
	for _, m := range ms {
		out[m.Event.ID]++
	}
	return out
}

func appendN(t testing.TB, st strata.Store, prefix string, n int) []strata.Event {
	t.Helper()
	ctx := context.Background()
	var out []strata.Event
	for i := range n {
		stream := fmt.Sprintf("%s-%d", prefix, i%5)
		if _, err := st.Append(ctx, stream, strata.Any, strata.EventData{Type: "CertificateIssued", Data: []byte(`{}`)}); err != nil {
			t.Fatal(err)
		}
	}
	for e, err := range st.ReadAll(ctx, strata.ReadAllOptions{}) {
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, e)
	}
	return out
}

// TestOneInstanceDelivers: of two instances of one transmitter on one store, only the holder
// of the lease delivers; when it stops, the standby takes over from the checkpoint, sending
// nothing twice and losing nothing, and the checkpoint never goes back.
func TestOneInstanceDelivers(t *testing.T) {
	for _, b := range leaseBackends {
		t.Run(b.name, func(t *testing.T) {
			st, _ := b.open(t)
			ctx := context.Background()
			sinkA, sinkB := &memSink{}, &memSink{}
			// A long lease: the holder never loses it to a slow renewal on a loaded machine.
			a, err := transmit.New(st, "one", sinkA, transmit.WithLease("instance-a", 10*time.Second), transmit.WithBatchSize(50), transmittest.Quiet())
			if err != nil {
				t.Fatal(err)
			}
			bb, err := transmit.New(st, "one", sinkB, transmit.WithLease("instance-b", 10*time.Second), transmit.WithBatchSize(50), transmittest.Quiet())
			if err != nil {
				t.Fatal(err)
			}
			watch := watchCheckpoint(t, st, "one")
			stopA := transmittest.Start(t, a)
			waitFor(t, "a to hold the lease", a.Active)
			stopB := transmittest.Start(t, bb)
			first := appendN(t, st, "certificate", 300)
			transmittest.WaitState(t, st, "one", "300 sent", func(s strata.TransmitterState) bool { return s.Sent == 300 })
			if bb.Active() || len(sinkB.received()) != 0 {
				t.Fatalf("the standby delivered %d events while the holder ran", len(sinkB.received()))
			}
			if got := ids(sinkA.received()); len(got) != 300 {
				t.Fatalf("the holder delivered %d distinct events, want 300", len(got))
			}
			state := transmittest.WaitState(t, st, "one", "a as the holder", func(s strata.TransmitterState) bool { return s.Owner == "instance-a" })
			if !state.LeaseUntil.After(time.Now()) {
				t.Fatalf("the holder's lease is not live: %+v", state)
			}
			// The holder stops; the standby takes over from the checkpoint.
			if err := stopA(); err != nil {
				t.Fatalf("a: %v", err)
			}
			waitFor(t, "b to take over", bb.Active)
			all := appendN(t, st, "certificate", 200)
			transmittest.WaitState(t, st, "one", "500 sent", func(s strata.TransmitterState) bool { return s.Sent == 500 })
			gotA, gotB := ids(sinkA.received()), ids(sinkB.received())
			for _, e := range first {
				if gotB[e.ID] > 0 {
					t.Fatalf("the standby re-sent event %s that the holder had recorded", e.ID)
				}
			}
			for _, e := range all {
				if gotA[e.ID]+gotB[e.ID] == 0 {
					t.Fatalf("event %s was never delivered", e.ID)
				}
			}
			if len(gotB) != 200 {
				t.Fatalf("the new holder delivered %d events, want the 200 appended after the takeover", len(gotB))
			}
			state = transmittest.WaitState(t, st, "one", "b as the holder", func(s strata.TransmitterState) bool { return s.Owner == "instance-b" })
			if state.Checkpoint != all[len(all)-1].Position {
				t.Fatalf("checkpoint %s, want %s", state.Checkpoint, all[len(all)-1].Position)
			}
			if err := stopB(); err != nil {
				t.Fatalf("b: %v", err)
			}
			watch.check(t)
			if s, _ := st.TransmitterStates(ctx); len(s) != 1 || s[0].Owner != "" {
				t.Fatalf("after both stopped: %+v, want the lease released", s)
			}
		})
	}
}

// The takeover test runs the holder in a child process (this test binary again) and kills it
// with SIGKILL in the middle of the log, while a standby waits in this process.
const (
	childSQLite   = "STRATA_TRANSMIT_LEASE_SQLITE"
	childPostgres = "STRATA_TRANSMIT_LEASE_POSTGRES"
	childSchema   = "STRATA_TRANSMIT_LEASE_SCHEMA"
)

func TestMain(m *testing.M) {
	if os.Getenv(childSQLite) != "" || os.Getenv(childPostgres) != "" {
		os.Exit(runLeaseChild())
	}
	os.Exit(m.Run())
}

// slowSink accepts everything, slowly, so that the child is still in the middle of the log when
// it is killed.
type slowSink struct{}

func (slowSink) Send(ctx context.Context, batch []*transmit.Message) error {
	select {
	case <-time.After(50 * time.Millisecond):
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (slowSink) Close() error { return nil }

func runLeaseChild() int {
	ctx := context.Background()
	var st strata.Store
	var err error
	if path := os.Getenv(childSQLite); path != "" {
		st, err = sqlite.Open(ctx, path)
	} else {
		st, err = postgres.Open(ctx, os.Getenv(childPostgres), postgres.WithSchema(os.Getenv(childSchema)))
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	tr, err := transmit.New(st, "failover", slowSink{}, transmit.WithLease("child", 5*time.Second), transmit.WithBatchSize(10), transmittest.Quiet())
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Fprintln(os.Stderr, tr.Run(ctx)) // runs until killed
	return 1
}

// TestTakeoverAfterHolderDies: the holder is killed (its lease is neither renewed nor released);
// the standby takes over once the lease expires, resumes from the checkpoint the holder left,
// and every event ends up delivered and recorded.
func TestTakeoverAfterHolderDies(t *testing.T) {
	for _, b := range leaseBackends {
		t.Run(b.name, func(t *testing.T) {
			st, env := b.open(t)
			ctx := context.Background()
			evs := appendN(t, st, "certificate", 400)
			watch := watchCheckpoint(t, st, "failover")
			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), env...)
			cmd.Stderr = os.Stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			killed := false
			t.Cleanup(func() {
				if !killed {
					cmd.Process.Kill()
					cmd.Wait()
				}
			})
			child := transmittest.WaitState(t, st, "failover", "the child holding the lease, part way", func(s strata.TransmitterState) bool {
				return s.Owner == "child" && s.Sent >= 50
			})
			sink := &memSink{}
			standby, err := transmit.New(st, "failover", sink, transmit.WithLease("standby", 3*time.Second), transmit.WithBatchSize(10), transmittest.Quiet())
			if err != nil {
				t.Fatal(err)
			}
			transmittest.Start(t, standby)
			if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			_ = cmd.Wait()
			killed = true
			if n := len(sink.received()); n != 0 {
				t.Fatalf("the standby delivered %d events while the child held the lease", n)
			}
			cp, err := st.TransmitCheckpoint(ctx, "failover")
			if err != nil {
				t.Fatal(err)
			}
			if cp.IsZero() || !cp.Less(evs[len(evs)-1].Position) {
				t.Fatalf("the child was killed at checkpoint %s: not in the middle of the log", cp)
			}
			final := transmittest.WaitState(t, st, "failover", "all 400 sent", func(s strata.TransmitterState) bool { return s.Sent == 400 })
			if final.Owner != "standby" || final.Epoch <= child.Epoch || final.Checkpoint != evs[len(evs)-1].Position {
				t.Fatalf("after the takeover: %+v (the child had epoch %d)", final, child.Epoch)
			}
			got := ids(sink.received())
			for _, e := range evs {
				switch {
				case !cp.Less(e.Position) && got[e.ID] > 0:
					t.Fatalf("the standby re-sent event %s at %s, before the checkpoint %s the child left", e.ID, e.Position, cp)
				case cp.Less(e.Position) && got[e.ID] == 0:
					t.Fatalf("event %s at %s, after the checkpoint, was not delivered by the standby", e.ID, e.Position)
				}
			}
			watch.check(t)
		})
	}
}

// stalledRenewals pretends to renew leases without telling the store, as a holder that
// stalled (a long pause, a partition) believes it still holds its lease.
type stalledRenewals struct{ leaseStore }

func (s stalledRenewals) RenewTransmitLease(_ context.Context, l strata.TransmitLease, ttl time.Duration) (strata.TransmitLease, error) {
	l.Until = time.Now().Add(ttl)
	return l, nil
}

// TestFencedOutHolder: a holder whose lease expired and was claimed by another instance cannot
// record what it sends any more: its commit is refused with a Conflict, it stops with that
// error, and the new holder delivers the event.
func TestFencedOutHolder(t *testing.T) {
	for _, b := range append([]backend{{"Memory", func(t *testing.T) (leaseStore, []string) {
		st := inmem.New()
		t.Cleanup(func() { st.Close() })
		return st, nil
	}}}, leaseBackends...) {
		t.Run(b.name, func(t *testing.T) {
			st, _ := b.open(t)
			ctx := context.Background()
			appendN(t, st, "certificate", 5)
			sinkA := &memSink{}
			a, err := transmit.New(stalledRenewals{st}, "fenced", sinkA, transmit.WithLease("stalled", time.Second), transmittest.Quiet())
			if err != nil {
				t.Fatal(err)
			}
			runA, cancelA := context.WithCancel(ctx)
			defer cancelA()
			doneA := make(chan error, 1)
			go func() { doneA <- a.Run(runA) }()
			transmittest.WaitState(t, st, "fenced", "the first 5 sent", func(s strata.TransmitterState) bool { return s.Sent == 5 })
			cp, _ := st.TransmitCheckpoint(ctx, "fenced")
			// The lease expires (a's renewals never reach the store) and another instance claims it.
			var usurper strata.TransmitLease
			waitFor(t, "the stalled lease to expire", func() bool {
				usurper, err = st.ClaimTransmitter(ctx, "fenced", "usurper", time.Minute)
				return err == nil
			})
			evs := appendN(t, st, "certificate", 1)
			late := evs[len(evs)-1]
			var runErr error
			select {
			case runErr = <-doneA:
			case <-time.After(2 * time.Minute):
				t.Fatal("the fenced-out holder kept running")
			}
			if strata.ErrorCode(runErr) != strata.Conflict || !errors.Is(runErr, strata.ErrTransmitLeaseLost) {
				t.Fatalf("the fenced-out holder stopped with %v, want a Conflict wrapping ErrTransmitLeaseLost", runErr)
			}
			if got := ids(sinkA.received()); got[late.ID] == 0 {
				t.Fatal("the fenced-out holder never tried the new event")
			}
			recs, _ := st.Deliveries(ctx, strata.DeliveryQuery{Transmitter: "fenced"})
			if len(recs) != 5 {
				t.Fatalf("%d records, want the first 5 only: the fenced-out commit must write nothing", len(recs))
			}
			if now, _ := st.TransmitCheckpoint(ctx, "fenced"); now != cp {
				t.Fatalf("checkpoint %s after the fenced-out commit, want %s", now, cp)
			}
			// The new holder (the same owner claims again) delivers the event: nothing is lost.
			sinkB := &memSink{}
			bb, err := transmit.New(st, "fenced", sinkB, transmit.WithLease(usurper.Owner, time.Minute), transmittest.Quiet())
			if err != nil {
				t.Fatal(err)
			}
			transmittest.Start(t, bb)
			transmittest.WaitState(t, st, "fenced", "the new event sent", func(s strata.TransmitterState) bool {
				return s.Sent == 6 && s.Checkpoint == late.Position
			})
			if got := ids(sinkB.received()); len(got) != 1 || got[late.ID] != 1 {
				t.Fatalf("the new holder sent %v, want only the event the fenced-out one could not record", got)
			}
		})
	}
}

// TestLeaseOptionsRejected: New refuses a bad owner or lease duration.
func TestLeaseOptionsRejected(t *testing.T) {
	st := inmem.New()
	defer st.Close()
	for _, o := range []transmit.Option{
		transmit.WithLease("bad\nowner", 0),
		transmit.WithLease("", time.Millisecond),
		transmit.WithLease("", 25*time.Hour),
	} {
		if _, err := transmit.New(st, "t", &memSink{}, o); strata.ErrorCode(err) != strata.Invalid {
			t.Errorf("New = %v, want Invalid", err)
		}
	}
	tr, err := transmit.New(st, "t", &memSink{})
	if err != nil || tr.Owner() == "" || tr.Active() {
		t.Fatalf("defaults: owner %q, active %v, %v", tr.Owner(), tr.Active(), err)
	}
	if other, _ := transmit.New(st, "t", &memSink{}); other.Owner() == tr.Owner() {
		t.Fatalf("two transmitters share the default owner %q", tr.Owner())
	}
}
