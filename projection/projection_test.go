package projection_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/strata-events/strata"
	"github.com/strata-events/strata/internal/backends"
	"github.com/strata-events/strata/projection"
	"github.com/strata-events/strata/storetest"
)

func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// appendCerts appends, for each of n certificates, an issuance and (for every third) a
// revocation, and returns the number of events.
func appendCerts(t testing.TB, ctx context.Context, s strata.Store, prefix string, n int) int {
	t.Helper()
	count := 0
	for i := range n {
		evs := []strata.EventData{{Type: "CertificateIssued", Data: fmt.Appendf(nil, `{"serial":"%s%d"}`, prefix, i)}}
		if i%3 == 0 {
			evs = append(evs, strata.EventData{Type: "CertificateRevoked", Data: fmt.Appendf(nil, `{"serial":"%s%d","reason":"keyCompromise"}`, prefix, i)})
		}
		if _, err := s.Append(ctx, fmt.Sprintf("certificate-%s%d", prefix, i), strata.Any, evs...); err != nil {
			t.Fatalf("append: %v", err)
		}
		count += len(evs)
	}
	return count
}

// waitFor polls cond until it holds, failing the test after a minute (a safety net, not a
// statement about speed).
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// start runs w in the background; the returned function stops it and returns Run's error.
func start(t testing.TB, ctx context.Context, w *projection.Worker) func() error {
	ctx, cancel := context.WithCancel(ctx)
	errc := make(chan error, 1)
	go func() {
		err := w.Run(ctx)
		if ctx.Err() == nil {
			t.Logf("worker %s stopped early: %v", w.Owner(), err)
		}
		errc <- err
	}()
	var once sync.Once
	var err error
	stop := func() error {
		once.Do(func() {
			cancel()
			err = <-errc
		})
		return err
	}
	t.Cleanup(func() { stop() })
	return stop
}

func fastOpts(extra ...projection.Option) []projection.Option {
	return append([]projection.Option{projection.WithLease(600 * time.Millisecond), projection.WithRetry(3, 5*time.Millisecond, 20*time.Millisecond)}, extra...)
}

func TestCatchUpThenLive(t *testing.T) {
	for _, kind := range backends.All {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			ctx := testCtx(t)
			s, _ := backends.Open(t, kind)
			n := appendCerts(t, ctx, s, "a", 30)
			m := newModel(s, 1)
			w, err := projection.NewWorker(s, m.def("applied", 1, 1), fastOpts(projection.WithBatchSize(7))...)
			if err != nil {
				t.Fatal(err)
			}
			stop := start(t, ctx, w)
			waitFor(t, "catch-up", func() bool { return len(m.rows(t, ctx, s)) == n })
			n += appendCerts(t, ctx, s, "b", 10)
			waitFor(t, "live events", func() bool { return len(m.rows(t, ctx, s)) == n })
			waitFor(t, "activation", func() bool { v, _ := projection.Active(ctx, s, "applied"); return v == 1 })
			if err := stop(); err != nil {
				t.Fatalf("run: %v", err)
			}
			sts, err := projection.Statuses(ctx, s, "applied")
			if err != nil || len(sts) != 1 {
				t.Fatalf("status: %v, %v", sts, err)
			}
			st := sts[0]
			if st.Processed != int64(n) || st.LagEvents != 0 || st.State != projection.Stopped || !st.Active || st.Failure != nil {
				t.Fatalf("status after run: %+v", st)
			}
		})
	}
}

// TestLostRevocation: a revocation that takes its place in the log first but commits after an
// issuance must still reach the projection.
func TestLostRevocation(t *testing.T) {
	for _, kind := range backends.All {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			ctx := testCtx(t)
			s, _ := backends.Open(t, kind)
			if _, err := s.Append(ctx, "certificate-A", strata.NoStream, strata.EventData{Type: "CertificateIssued"}); err != nil {
				t.Fatal(err)
			}
			m := newModel(s, 1)
			w, err := projection.NewWorker(s, m.def("status", 1, 1), fastOpts()...)
			if err != nil {
				t.Fatal(err)
			}
			start(t, ctx, w)
			waitFor(t, "the first issuance", func() bool { return len(m.rows(t, ctx, s)) == 1 })

			revID := storetest.LostRevocation(t, ctx, s, 200*time.Millisecond, nil)
			waitFor(t, "all three events", func() bool { return len(m.rows(t, ctx, s)) == 3 })
			if r, ok := m.rows(t, ctx, s)[revID.String()]; !ok || r.Stream != "certificate-A" || r.Version != 2 {
				t.Fatalf("the revocation is missing from the read model: %+v", m.rows(t, ctx, s))
			}
		})
	}
}

func TestFailureRetryAndResume(t *testing.T) {
	for _, kind := range backends.All {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			ctx := testCtx(t)
			s, _ := backends.Open(t, kind)
			n := appendCerts(t, ctx, s, "f", 12)
			var bad atomic.Bool
			bad.Store(true)
			var tries atomic.Int32
			m := newModel(s, 1)
			def := m.def("failing", 1, 1)
			def.Handlers["CertificateRevoked"] = func(ctx context.Context, c *projection.Context, e strata.Event) error {
				if bad.Load() && e.Stream == "certificate-f6" {
					tries.Add(1)
					return errors.New("the CRL signer is down")
				}
				return m.apply(ctx, c, e)
			}
			w, err := projection.NewWorker(s, def, fastOpts(projection.WithBatchSize(5))...)
			if err != nil {
				t.Fatal(err)
			}
			err = w.Run(ctx)
			var fe *projection.FailedError
			if !errors.As(err, &fe) || !errors.Is(err, projection.ErrFailed) {
				t.Fatalf("run: %v, want a FailedError", err)
			}
			if tries.Load() != 3 || fe.Failure.Stream != "certificate-f6" || fe.Failure.EventType != "CertificateRevoked" || fe.Failure.Attempts != 3 {
				t.Fatalf("failure: %+v after %d tries", fe.Failure, tries.Load())
			}
			sts, err := projection.Statuses(ctx, s, "failing")
			if err != nil {
				t.Fatal(err)
			}
			if st := sts[0]; st.State != projection.Failed || st.Failure == nil || st.Failure.EventID != fe.Failure.EventID ||
				st.Failure.Position != fe.Failure.Position || st.Failure.Error != "the CRL signer is down" || !st.Checkpoint.Less(fe.Failure.Position) {
				t.Fatalf("status of the failed projection: %+v (%+v)", st, st.Failure)
			}
			before := len(m.rows(t, ctx, s))
			if before >= n {
				t.Fatalf("%d of %d events applied past the failure", before, n)
			}
			// Fix and restart: it resumes at the failed event.
			bad.Store(false)
			w2, err := projection.NewWorker(s, def, fastOpts()...)
			if err != nil {
				t.Fatal(err)
			}
			if err := w2.Catchup(ctx); err != nil {
				t.Fatalf("catch-up after the fix: %v", err)
			}
			if got := len(m.rows(t, ctx, s)); got != n {
				t.Fatalf("after resume: %d of %d events", got, n)
			}
			sts, _ = projection.Statuses(ctx, s, "failing")
			if sts[0].Failure != nil || sts[0].LagEvents != 0 {
				t.Fatalf("after resume: %+v", sts[0])
			}
		})
	}
}

// TestEmitOnceAndRebuildSilent: normal running emits exactly one event per handled event,
// and a rebuild emits nothing downstream.
func TestEmitOnceAndRebuildSilent(t *testing.T) {
	for _, kind := range backends.All {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			ctx := testCtx(t)
			s, _ := backends.Open(t, kind)
			m := newModel(s, 1)
			def := m.def("certificate_status", 1, 1, "CertificateRevoked")
			def.Handlers["CertificateRevoked"] = func(ctx context.Context, c *projection.Context, e strata.Event) error {
				if err := m.apply(ctx, c, e); err != nil {
					return err
				}
				c.Emit("status-"+e.Stream, strata.EventData{Type: "CertificateStatusChanged", Data: []byte(`{"status":"revoked"}`)})
				return nil
			}
			// A downstream subscriber counts the emitted events by ID.
			var mu sync.Mutex
			seen := map[uuid.UUID]int{}
			sctx, scancel := context.WithCancel(ctx)
			defer scancel()
			go func() {
				for e, err := range s.Subscribe(sctx, strata.Start, strata.Filter{Types: []string{"CertificateStatusChanged"}}) {
					if err != nil {
						return
					}
					mu.Lock()
					seen[e.ID]++
					mu.Unlock()
				}
			}()
			count := func() (n, dup int) {
				mu.Lock()
				defer mu.Unlock()
				for _, c := range seen {
					n++
					if c > 1 {
						dup++
					}
				}
				return n, dup
			}
			// History before the projection exists is a first build: nothing is emitted for it.
			appendCerts(t, ctx, s, "h", 9) // 3 revocations
			w, err := projection.NewWorker(s, def, fastOpts(projection.WithBatchSize(2))...)
			if err != nil {
				t.Fatal(err)
			}
			stop := start(t, ctx, w)
			waitFor(t, "history", func() bool { return len(m.rows(t, ctx, s)) == 3 })
			appendCerts(t, ctx, s, "l", 12) // 4 live revocations
			waitFor(t, "live", func() bool { return len(m.rows(t, ctx, s)) == 7 })
			waitFor(t, "4 emitted events", func() bool { n, _ := count(); return n == 4 })
			if err := stop(); err != nil {
				t.Fatal(err)
			}
			// Rebuild in place: the read model is rebuilt, nothing new is emitted.
			if err := projection.Reset(ctx, s, "certificate_status", 1); err != nil {
				t.Fatal(err)
			}
			w2, _ := projection.NewWorker(s, def, fastOpts()...)
			if err := w2.Catchup(ctx); err != nil {
				t.Fatal(err)
			}
			if got := len(m.rows(t, ctx, s)); got != 7 {
				t.Fatalf("rebuilt read model has %d rows, want 7", got)
			}
			// A live event after the rebuild is emitted once.
			appendCerts(t, ctx, s, "z", 1)
			stop = start(t, ctx, w2)
			waitFor(t, "emission after the rebuild", func() bool { n, _ := count(); return n == 5 })
			stop()
			time.Sleep(100 * time.Millisecond)
			if n, dup := count(); n != 5 || dup != 0 {
				t.Fatalf("emitted %d events (%d more than once), want 5 once each", n, dup)
			}
			var stored int
			for _, err := range s.ReadAll(ctx, strata.ReadAllOptions{Filter: strata.Filter{Types: []string{"CertificateStatusChanged"}}}) {
				if err != nil {
					t.Fatal(err)
				}
				stored++
			}
			if stored != 5 {
				t.Fatalf("%d emitted events stored, want 5", stored)
			}
		})
	}
}

// TestBlueGreen builds version 2 beside version 1, switches readers when it has caught up and
// drops version 1.
func TestBlueGreen(t *testing.T) {
	for _, kind := range backends.All {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			ctx := testCtx(t)
			s, _ := backends.Open(t, kind)
			n := appendCerts(t, ctx, s, "g", 20)
			m1, m2 := newModel(s, 1), newModel(s, 2)
			w1, _ := projection.NewWorker(s, m1.def("certificate_status", 1, 1), fastOpts()...)
			stop1 := start(t, ctx, w1)
			waitFor(t, "v1 active", func() bool { v, _ := projection.Active(ctx, s, "certificate_status"); return v == 1 })
			var v2Batches atomic.Int32
			gate := make(chan struct{})
			w2, _ := projection.NewWorker(s, m2.def("certificate_status", 2, 1), fastOpts(projection.WithBatchSize(3), projection.WithBatchHook(func(strata.ProjectionKey, int) {
				if v2Batches.Add(1) == 1 {
					<-gate // hold version 2 mid-build
				}
			}))...)
			stop2 := start(t, ctx, w2)
			waitFor(t, "v2 building", func() bool { return v2Batches.Load() == 1 })
			if v, _ := projection.Active(ctx, s, "certificate_status"); v != 1 {
				t.Fatalf("active while v2 builds: %d", v)
			}
			n += appendCerts(t, ctx, s, "k", 3)
			waitFor(t, "v1 serves live events", func() bool { return len(m1.rows(t, ctx, s)) == n })
			close(gate)
			waitFor(t, "v2 caught up and active", func() bool {
				v, _ := projection.Active(ctx, s, "certificate_status")
				return v == 2 && len(m2.rows(t, ctx, s)) == n
			})
			stop1()
			if err := projection.Drop(ctx, s, m1.def("certificate_status", 1, 1)); err != nil {
				t.Fatal(err)
			}
			wantCode(t, projection.Drop(ctx, s, m2.def("certificate_status", 2, 1)), strata.Conflict)
			sts, _ := projection.Statuses(ctx, s, "certificate_status")
			if len(sts) != 1 || sts[0].Key.Version != 2 || !sts[0].Active {
				t.Fatalf("after drop: %+v", sts)
			}
			stop2()
		})
	}
}

func wantCode(t testing.TB, err error, code strata.Code) {
	t.Helper()
	if strata.ErrorCode(err) != code {
		t.Fatalf("error %v, want code %s", err, code)
	}
}

// TestPartitionsShared runs two workers over four partitions in one process; one stops and the
// other takes its partitions over.
func TestPartitionsShared(t *testing.T) {
	for _, kind := range backends.All {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			ctx := testCtx(t)
			s, open := backends.Open(t, kind)
			n := appendCerts(t, ctx, s, "p", 150)
			s2 := open(t)
			ma, mb := newModel(s, 1), newModel(s2, 1)
			ma.owner, mb.owner = "a", "b"
			if kind == "inmem" {
				mb.mem = ma.mem
				mb.mu = sync.Mutex{}
				t.Skip("the in-memory models of two workers are separate maps")
			}
			var slow atomic.Bool
			slow.Store(true)
			delay := func(m *model) projection.Projection {
				d := m.def("partitioned", 1, 4)
				for typ, h := range d.Handlers {
					d.Handlers[typ] = func(ctx context.Context, c *projection.Context, e strata.Event) error {
						if slow.Load() {
							time.Sleep(3 * time.Millisecond)
						}
						return h(ctx, c, e)
					}
				}
				return d
			}
			wa, _ := projection.NewWorker(s, delay(ma), fastOpts(projection.WithOwner("a"), projection.WithBatchSize(5))...)
			wb, _ := projection.NewWorker(s2, delay(mb), fastOpts(projection.WithOwner("b"), projection.WithBatchSize(5))...)
			stopA := start(t, ctx, wa)
			start(t, ctx, wb)
			waitFor(t, "both workers holding partitions", func() bool {
				owners := map[string]int{}
				sts, _ := projection.Statuses(ctx, s, "partitioned")
				for _, st := range sts {
					owners[st.Owner]++
				}
				return owners["a"] == 2 && owners["b"] == 2
			})
			stopA()
			slow.Store(false)
			n += appendCerts(t, ctx, s, "q", 10)
			// Rows land before every partition's checkpoint has moved past the events of the
			// other partitions, so wait for both.
			caughtUp := func() bool {
				sts, _ := projection.Statuses(ctx, s, "partitioned")
				for _, st := range sts {
					if st.LagEvents != 0 {
						return false
					}
				}
				return len(sts) == 4
			}
			waitFor(t, "b finishes everything", func() bool { return len(ma.rows(t, ctx, s)) == n && caughtUp() })
			sts, _ := projection.Statuses(ctx, s, "partitioned")
			for _, st := range sts {
				if st.Owner != "b" && st.Owner != "" || st.LagEvents != 0 {
					t.Fatalf("partition %d: %+v", st.Key.Partition, st)
				}
			}
		})
	}
}

// TestResetEmitsForUnhandledEvents: events appended while a projection's workers were down
// were never handled, so nothing was emitted for them; a Reset (rebuild in place) must still
// emit for them, once, and not treat them as history that was emitted before.
func TestResetEmitsForUnhandledEvents(t *testing.T) {
	for _, kind := range backends.All {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			ctx := testCtx(t)
			s, _ := backends.Open(t, kind)
			m := newModel(s, 1)
			def := m.def("crl_feed", 1, 2, "CertificateRevoked")
			def.Handlers["CertificateRevoked"] = func(ctx context.Context, c *projection.Context, e strata.Event) error {
				if err := m.apply(ctx, c, e); err != nil {
					return err
				}
				c.Emit("crl-"+e.Stream, strata.EventData{Type: "CertificateListed", Data: []byte(`{}`)})
				return nil
			}
			emitted := func() int {
				n := 0
				for _, err := range s.ReadAll(ctx, strata.ReadAllOptions{Filter: strata.Filter{Types: []string{"CertificateListed"}}}) {
					if err != nil {
						t.Fatal(err)
					}
					n++
				}
				return n
			}
			catchup := func() {
				t.Helper()
				w, err := projection.NewWorker(s, def, fastOpts()...)
				if err != nil {
					t.Fatal(err)
				}
				if err := w.Catchup(ctx); err != nil {
					t.Fatal(err)
				}
			}
			catchup()                      // an empty log: nothing to rebuild
			appendCerts(t, ctx, s, "a", 9) // 3 revocations, handled live
			catchup()
			if n := emitted(); n != 3 {
				t.Fatalf("%d events emitted, want 3", n)
			}
			appendCerts(t, ctx, s, "b", 9) // 3 more while no worker runs
			if err := projection.Reset(ctx, s, "crl_feed", 1); err != nil {
				t.Fatal(err)
			}
			catchup()
			if got := len(m.rows(t, ctx, s)); got != 6 {
				t.Fatalf("rebuilt read model has %d rows, want 6", got)
			}
			if n := emitted(); n != 6 {
				t.Fatalf("%d events emitted after the reset, want 6: the revocations appended while the workers were down were never emitted", n)
			}
		})
	}
}

// TestBlueGreenEmitHistory: a new version built WithEmitHistory replays history without rebuild
// mode, and still must not be activated for readers before it has caught up.
func TestBlueGreenEmitHistory(t *testing.T) {
	for _, kind := range backends.All {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			ctx := testCtx(t)
			s, _ := backends.Open(t, kind)
			n := appendCerts(t, ctx, s, "e", 20)
			m1, m2 := newModel(s, 1), newModel(s, 2)
			w1, _ := projection.NewWorker(s, m1.def("certificate_status", 1, 1), fastOpts()...)
			if err := w1.Catchup(ctx); err != nil {
				t.Fatal(err)
			}
			if v, _ := projection.Active(ctx, s, "certificate_status"); v != 1 {
				t.Fatalf("active after v1's catch-up: %d", v)
			}
			var v2Batches atomic.Int32
			gate := make(chan struct{})
			w2, _ := projection.NewWorker(s, m2.def("certificate_status", 2, 1), fastOpts(projection.WithEmitHistory(), projection.WithBatchSize(3), projection.WithBatchHook(func(strata.ProjectionKey, int) {
				if v2Batches.Add(1) == 1 {
					<-gate // hold version 2 mid-build
				}
			}))...)
			stop2 := start(t, ctx, w2)
			waitFor(t, "v2 building", func() bool { return v2Batches.Load() == 1 })
			time.Sleep(time.Second) // several balance rounds (every 200ms)
			v, _ := projection.Active(ctx, s, "certificate_status")
			close(gate)
			if v != 1 {
				t.Fatalf("version %d active while version 2 has %d of %d events", v, len(m2.rows(t, ctx, s)), n)
			}
			waitFor(t, "v2 caught up and active", func() bool {
				v, _ := projection.Active(ctx, s, "certificate_status")
				return v == 2 && len(m2.rows(t, ctx, s)) == n
			})
			stop2()
		})
	}
}

// TestJoinHandsOverOnce: when a second worker joins, the first gives up the partitions that now
// belong to the newcomer and leaves them to it, instead of claiming them back at once (each claim
// restarts the partition, and the newcomer would get its share only by luck).
func TestJoinHandsOverOnce(t *testing.T) {
	for _, kind := range backends.SQL {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			ctx := testCtx(t)
			s, open := backends.Open(t, kind)
			appendCerts(t, ctx, s, "j", 150)
			s2 := open(t)
			ma, mb := newModel(s, 1), newModel(s2, 1)
			slow := func(m *model) projection.Projection {
				d := m.def("joined", 1, 4)
				for typ, h := range d.Handlers {
					d.Handlers[typ] = func(ctx context.Context, c *projection.Context, e strata.Event) error {
						time.Sleep(5 * time.Millisecond)
						return h(ctx, c, e)
					}
				}
				return d
			}
			// A lease that outlasts the renewals a loaded CI machine delays: the test is about the
			// hand-over, and a lease that ran out under load would hand a partition over again.
			lease := projection.WithLease(3 * time.Second)
			wa, _ := projection.NewWorker(s, slow(ma), fastOpts(projection.WithOwner("a"), projection.WithBatchSize(5), lease)...)
			wb, _ := projection.NewWorker(s2, slow(mb), fastOpts(projection.WithOwner("b"), projection.WithBatchSize(5), lease)...)
			start(t, ctx, wa)
			waitFor(t, "a holding every partition", func() bool {
				sts, _ := projection.Statuses(ctx, s, "joined")
				n := 0
				for _, st := range sts {
					if st.Owner == "a" {
						n++
					}
				}
				return n == 4
			})
			start(t, ctx, wb)
			deadline := time.Now().Add(30 * time.Second)
			for {
				sts, _ := s.(strata.ProjectionStore).ProjectionStates(ctx, "joined")
				owners := map[string]int{}
				var maxEpoch int64
				for _, st := range sts {
					owners[st.Owner]++
					maxEpoch = max(maxEpoch, st.Epoch)
				}
				// a's claim, then b's; one more round each if b's balance missed a's hand-over.
				if maxEpoch > 4 {
					t.Fatalf("a partition was claimed %d times while b joined (owners %v)", maxEpoch, owners)
				}
				if owners["a"] == 2 && owners["b"] == 2 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("b never got its share: %v", owners)
				}
				time.Sleep(20 * time.Millisecond)
			}
		})
	}
}
