package pki_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/strata-events/strata"
	"github.com/strata-events/strata/aggregate"
	"github.com/strata-events/strata/examples/pki"
	"github.com/strata-events/strata/inmem"
	"github.com/strata-events/strata/internal/testenv"
	"github.com/strata-events/strata/postgres"
	"github.com/strata-events/strata/saga"
	"github.com/strata-events/strata/sqlite"
	"github.com/strata-events/strata/storetest"
)

// backends opens a fresh store per backend the end-to-end tests run on.
var backends = []struct {
	name string
	open func(t *testing.T) strata.Store
}{
	{"inmem", func(t *testing.T) strata.Store { return inmem.New() }},
	{"sqlite", func(t *testing.T) strata.Store {
		st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "strata.db"))
		if err != nil {
			t.Fatal(err)
		}
		return st
	}},
	{"postgres", func(t *testing.T) strata.Store {
		dsn := testenv.Postgres(t)
		st, err := postgres.Open(context.Background(), dsn, postgres.WithSchema(testenv.PostgresSchema(t, dsn)))
		if err != nil {
			t.Fatal(err)
		}
		return st
	}},
}

func newService(t *testing.T, st strata.Store, opts ...saga.Option) *pki.Service {
	t.Helper()
	svc, err := pki.NewService(st, pki.Config{
		Aggregate: []aggregate.Option{aggregate.WithSnapshots(50, 1), aggregate.WithCommandLog(aggregate.CommandLog{Include: []string{"pki.**"}})},
		Saga:      opts,
	})
	if err != nil {
		t.Fatal(err)
	}
	return svc
}

func issue(t *testing.T, ctx context.Context, svc *pki.Service, serial string) {
	t.Helper()
	now := time.Now().UTC()
	_, err := svc.Certificates.Handle(ctx, aggregate.Envelope[pki.CertificateCommand]{
		ID: uuid.Must(uuid.NewV7()), Stream: pki.CertificateStream(serial),
		Command: pki.IssueCertificate{Serial: serial, SubjectID: "subject-" + serial, SubjectDN: "CN=" + serial, SubjectEmail: serial + "@example.org",
			ValidFrom: now.Add(-time.Hour), ValidTo: now.AddDate(1, 0, 0)},
		Meta: strata.Metadata{Principal: "ca-operator", Tenant: "acme"},
	})
	if err != nil {
		t.Fatal(err)
	}
}

func request(t *testing.T, ctx context.Context, svc *pki.Service, cmd pki.RequestCommand, principal string) error {
	t.Helper()
	_, err := svc.Requests.Handle(ctx, aggregate.Envelope[pki.RequestCommand]{
		ID: uuid.Must(uuid.NewV7()), Stream: pki.RequestStream(requestID(cmd)), Command: cmd,
		Meta: strata.Metadata{Principal: principal, Tenant: "acme", Correlation: "req-" + requestID(cmd)},
	})
	return err
}

func requestID(c pki.RequestCommand) string {
	switch c := c.(type) {
	case pki.RequestRevocation:
		return c.RequestID
	case pki.ApproveRevocation:
		return c.RequestID
	}
	return ""
}

// setup issues certificate 7F3A and asks for its revocation, with the approvals named.
func setup(t *testing.T, ctx context.Context, svc *pki.Service, approvers ...string) {
	t.Helper()
	issue(t, ctx, svc, "7F3A")
	if err := request(t, ctx, svc, pki.RequestRevocation{RequestID: "r1", Serial: "7F3A", Reason: "keyCompromise", RequestedBy: "dave"}, "dave"); err != nil {
		t.Fatal(err)
	}
	for _, a := range approvers {
		if err := request(t, ctx, svc, pki.ApproveRevocation{RequestID: "r1", Approver: a}, a); err != nil {
			t.Fatal(err)
		}
	}
}

func revocations(t *testing.T, ctx context.Context, st strata.Store, serial string) []strata.Event {
	t.Helper()
	evs, err := storetest.Collect(st.ReadStream(ctx, pki.CertificateStream(serial), strata.ReadStreamOptions{}))
	if err != nil {
		t.Fatal(err)
	}
	return slices.DeleteFunc(evs, func(e strata.Event) bool { return e.Type != "CertificateRevoked" })
}

func TestEndToEnd(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			st := b.open(t)
			defer st.Close()
			svc := newService(t, st)
			setup(t, ctx, svc, "alice")
			if err := svc.Approvals.Catchup(ctx); err != nil {
				t.Fatal(err)
			}
			if got := revocations(t, ctx, st, "7F3A"); len(got) != 0 {
				t.Fatalf("revoked after one approval: %v", got)
			}
			if err := request(t, ctx, svc, pki.ApproveRevocation{RequestID: "r1", Approver: "mallory"}, "mallory"); !errors.Is(err, pki.ErrNotCommitteeMember) {
				t.Fatalf("approval by a non-member: %v", err)
			}
			if err := request(t, ctx, svc, pki.ApproveRevocation{RequestID: "r1", Approver: "bob"}, "bob"); err != nil {
				t.Fatal(err)
			}
			for range 2 { // a second run finds nothing to do
				if err := svc.Approvals.Catchup(ctx); err != nil {
					t.Fatal(err)
				}
			}
			cert, version, err := svc.Certificates.Load(ctx, pki.CertificateStream("7F3A"))
			if err != nil {
				t.Fatal(err)
			}
			if cert.Status != pki.StatusRevoked || cert.RevokedReason != "keyCompromise" || !slices.Equal(cert.ApprovedBy, []string{"alice", "bob"}) || version != 2 {
				t.Fatalf("certificate after two approvals: %+v version %d", cert, version)
			}
			rev := revocations(t, ctx, st, "7F3A")
			if len(rev) != 1 || rev[0].Meta.Principal != "saga:"+pki.ApprovalSagaName || rev[0].Meta.Correlation != "req-r1" || rev[0].Meta.Tenant != "acme" {
				t.Fatalf("revocation events %+v", rev)
			}
			state, _, err := svc.Approvals.Load(ctx, "r1")
			if err != nil || state.Outcome != "granted" {
				t.Fatalf("saga state %+v %v", state, err)
			}
			// A third approval after the grant changes nothing downstream.
			if err := request(t, ctx, svc, pki.ApproveRevocation{RequestID: "r1", Approver: "carol"}, "carol"); err != nil {
				t.Fatal(err)
			}
			if err := svc.Approvals.Catchup(ctx); err != nil {
				t.Fatal(err)
			}
			if rev := revocations(t, ctx, st, "7F3A"); len(rev) != 1 {
				t.Fatalf("%d revocations after a third approval", len(rev))
			}
			// The command log tells who asked for what.
			log, err := storetest.Collect(st.ReadStream(ctx, "commands-"+pki.CertificateStream("7F3A"), strata.ReadStreamOptions{}))
			if err != nil || len(log) != 2 || log[0].Meta.Principal != "ca-operator" || log[1].Meta.Principal != "saga:"+pki.ApprovalSagaName {
				t.Fatalf("command log %+v %v", log, err)
			}
		})
	}
}

// TestStoredV1RevocationIsUpcast reads a revocation stored years ago at schema 1.
func TestStoredV1RevocationIsUpcast(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			st := b.open(t)
			defer st.Close()
			svc := newService(t, st)
			issue(t, ctx, svc, "0B1C")
			if _, err := st.Append(ctx, pki.CertificateStream("0B1C"), strata.Exact(1), strata.EventData{
				Type: "CertificateRevoked", Schema: 1,
				Data: []byte(`{"serial":"0B1C","reasonCode":1,"invalidSince":"2023-03-14T09:00:00Z","approvedBy":"committee-7"}`),
			}); err != nil {
				t.Fatal(err)
			}
			cert, _, err := svc.Certificates.Load(ctx, pki.CertificateStream("0B1C"))
			if err != nil {
				t.Fatal(err)
			}
			if cert.Status != pki.StatusRevoked || cert.RevokedReason != "keyCompromise" || !slices.Equal(cert.ApprovedBy, []string{"committee-7"}) ||
				!cert.InvalidSince.Equal(time.Date(2023, 3, 14, 9, 0, 0, 0, time.UTC)) {
				t.Fatalf("upcast state %+v", cert)
			}
		})
	}
}

// TestApprovalTimerFiresAfterRestart: one runner schedules the deadline and stops; a new one,
// 73 hours later, fires it.
func TestApprovalTimerFiresAfterRestart(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			st := b.open(t)
			defer st.Close()
			setup(t, ctx, newService(t, st), "alice")
			if err := newService(t, st).Approvals.Catchup(ctx); err != nil {
				t.Fatal(err)
			}
			later := newService(t, st, saga.WithClock(func() time.Time { return time.Now().Add(pki.ApprovalWindow + time.Hour) }))
			n, err := later.Approvals.FireDue(ctx)
			if err != nil || n != 1 {
				t.Fatalf("fired %d timers: %v", n, err)
			}
			// A late approval reaches quorum but the request has expired.
			if err := request(t, ctx, later, pki.ApproveRevocation{RequestID: "r1", Approver: "bob"}, "bob"); err != nil {
				t.Fatal(err)
			}
			if err := later.Approvals.Catchup(ctx); err != nil {
				t.Fatal(err)
			}
			if rev := revocations(t, ctx, st, "7F3A"); len(rev) != 0 {
				t.Fatalf("revoked after the deadline: %v", rev)
			}
			state, _, err := later.Approvals.Load(ctx, "r1")
			if err != nil || state.Outcome != "expired" || len(state.Approvers) != 1 {
				t.Fatalf("saga state %+v %v", state, err)
			}
			if n, err := later.Approvals.FireDue(ctx); err != nil || n != 0 {
				t.Fatalf("the timer fired again: %d %v", n, err)
			}
		})
	}
}

// crashStore fails the at-th write, before or after it takes effect, as a process killed at
// that point would leave things.
type crashStore struct {
	*inmem.Store
	mu     sync.Mutex
	writes int
	at     int
	after  bool
}

var errCrash = &strata.Error{Code: strata.Unavailable, Op: "test", Msg: "simulated crash"}

func (c *crashStore) write(fn func() error) error {
	c.mu.Lock()
	c.writes++
	crash := c.writes == c.at
	c.mu.Unlock()
	if crash && !c.after {
		return errCrash
	}
	err := fn()
	if crash {
		return errCrash
	}
	return err
}

func (c *crashStore) crashed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.at > 0 && c.writes >= c.at
}

func (c *crashStore) Append(ctx context.Context, stream string, exp strata.ExpectedVersion, evs ...strata.EventData) (res strata.AppendResult, err error) {
	err = c.write(func() error { res, err = c.Store.Append(ctx, stream, exp, evs...); return err })
	return res, err
}

func (c *crashStore) AppendMulti(ctx context.Context, apps ...strata.StreamAppend) (res []strata.AppendResult, err error) {
	err = c.write(func() error { res, err = c.Store.AppendMulti(ctx, apps...); return err })
	return res, err
}

func (c *crashStore) ScheduleTimer(ctx context.Context, t strata.Timer) error {
	return c.write(func() error { return c.Store.ScheduleTimer(ctx, t) })
}

func (c *crashStore) DeleteTimer(ctx context.Context, id uuid.UUID) error {
	return c.write(func() error { return c.Store.DeleteTimer(ctx, id) })
}

func (c *crashStore) SaveCheckpoint(ctx context.Context, name string, pos strata.Position) error {
	return c.write(func() error { return c.Store.SaveCheckpoint(ctx, name, pos) })
}

func (c *crashStore) SaveSnapshot(ctx context.Context, s strata.Snapshot) error {
	return c.write(func() error { return c.Store.SaveSnapshot(ctx, s) })
}

// TestSagaCrashAtEveryStep stops the approval saga at every write it makes, before and after the
// write takes effect, restarts it, and checks that it ends exactly where an uninterrupted run
// ends: one revocation, one step per input, no timer left.
func TestSagaCrashAtEveryStep(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for at := 1; ; at++ {
		done := false
		for _, after := range []bool{false, true} {
			t.Run(fmt.Sprintf("write %d, after %v", at, after), func(t *testing.T) {
				base := inmem.New()
				defer base.Close()
				setup(t, ctx, newService(t, base), "alice", "bob")
				cs := &crashStore{Store: base, at: at, after: after}
				err := newService(t, cs).Approvals.Catchup(ctx)
				if !cs.crashed() {
					if err != nil {
						t.Fatal(err)
					}
					done = true
				} else {
					if !errors.Is(err, errCrash) {
						t.Fatalf("crash at write %d: runner returned %v", at, err)
					}
					cs.mu.Lock()
					cs.at = 0
					cs.mu.Unlock()
					if err := newService(t, cs).Approvals.Catchup(ctx); err != nil {
						t.Fatalf("after restart: %v", err)
					}
				}
				checkApproved(t, ctx, base)
			})
		}
		if done {
			if at < 5 {
				t.Fatalf("the saga made only %d writes; the test does not exercise it", at-1)
			}
			return
		}
	}
}

func checkApproved(t *testing.T, ctx context.Context, st *inmem.Store) {
	t.Helper()
	rev := revocations(t, ctx, st, "7F3A")
	if len(rev) != 1 {
		t.Fatalf("%d revocations, want 1", len(rev))
	}
	evs, err := storetest.Collect(st.ReadStream(ctx, pki.ApprovalSagaName+"-r1", strata.ReadStreamOptions{}))
	if err != nil {
		t.Fatal(err)
	}
	count := map[string]int{}
	for _, e := range evs {
		count[e.Type]++
	}
	want := map[string]int{"ApprovalOpened": 1, "ApprovalCounted": 2, "ApprovalGranted": 1, saga.StepType: 3}
	if fmt.Sprint(count) != fmt.Sprint(want) {
		t.Fatalf("saga stream holds %v, want %v", count, want)
	}
	if due, err := st.DueTimers(ctx, pki.ApprovalSagaName, time.Now().AddDate(1, 0, 0), 0); err != nil || len(due) != 0 {
		t.Fatalf("timers left: %v %v", due, err)
	}
}

// TestConcurrentRevocationRetries sends one revocation command from many callers at once on
// PostgreSQL and SQLite: one event in all.
func TestConcurrentRevocationRetries(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			st := b.open(t)
			defer st.Close()
			svc := newService(t, st)
			issue(t, ctx, svc, "7F3A")
			env := aggregate.Envelope[pki.CertificateCommand]{ID: uuid.Must(uuid.NewV7()), Stream: pki.CertificateStream("7F3A"),
				Command: pki.RevokeCertificate{Serial: "7F3A", Reason: "keyCompromise", At: time.Now()}}
			var wg sync.WaitGroup
			var mu sync.Mutex
			appended := 0
			for range 8 {
				wg.Go(func() {
					res, err := svc.Certificates.Handle(ctx, env)
					if err != nil {
						t.Error(err)
						return
					}
					mu.Lock()
					appended += res.Events
					mu.Unlock()
				})
			}
			wg.Wait()
			if appended != 1 || len(revocations(t, ctx, st, "7F3A")) != 1 {
				t.Fatalf("appended %d revocations", appended)
			}
		})
	}
}
