package storetest

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/strata-events/strata"
)

// RunProjections runs the section of the suite for [strata.ProjectionStore]: creating
// partitions, claiming and renewing leases with expiry and takeover, fenced commits that run
// apply with the checkpoint or not at all, pause and reset, blue-green activation and drop,
// worker heartbeats, lag, restarts, bad input and use after close. [Run] calls it; a store that
// does not implement the interface skips it, or fails it when f.Capabilities is set.
func RunProjections(t *testing.T, newStore NewStore, f Features) {
	suite{newStore: newStore, f: f}.runProjections(t)
}

func (s suite) runProjections(t *testing.T) {
	runParallel(t, []subtest{
		{"InitClaimCommit", s.testProjInitClaimCommit},
		{"LeaseFencingAndTakeover", s.testProjFencing},
		{"CommitIsAtomicWithApply", s.testProjApply},
		{"PauseAndReset", s.testProjControl},
		{"BlueGreenActivateDrop", s.testProjBlueGreen},
		{"Heartbeats", s.testProjHeartbeat},
		{"Lag", s.testProjLag},
		{"SurviveReopen", s.testProjReopen},
		{"BadInputRejected", s.testProjBadInput},
		{"UseAfterClose", s.testProjAfterClose},
	})
}

func projKey(name string, version, part int) strata.ProjectionKey {
	return strata.ProjectionKey{Name: name, Version: version, Partition: part}
}

func mustInitProj(t *testing.T, ctx context.Context, ps strata.ProjectionStore, name string, version, parts int) {
	t.Helper()
	if err := ps.InitProjection(ctx, strata.ProjectionInit{Name: name, Version: version, Partitions: parts}); err != nil {
		t.Fatalf("init projection %s@%d: %v", name, version, err)
	}
}

func mustClaim(t *testing.T, ctx context.Context, ps strata.ProjectionStore, k strata.ProjectionKey, owner string, ttl time.Duration) strata.ProjectionLease {
	t.Helper()
	st, err := ps.ClaimProjection(ctx, k, owner, ttl)
	if err != nil {
		t.Fatalf("claim %v by %s: %v", k, owner, err)
	}
	if st.Owner != owner || st.Key != k {
		t.Fatalf("claim %v by %s: got owner %q key %v", k, owner, st.Owner, st.Key)
	}
	return strata.ProjectionLease{Key: k, Owner: owner, Epoch: st.Epoch}
}

func projState(t *testing.T, ctx context.Context, ps strata.ProjectionStore, k strata.ProjectionKey) strata.ProjectionState {
	t.Helper()
	sts, err := ps.ProjectionStates(ctx, k.Name)
	if err != nil {
		t.Fatalf("projection states %s: %v", k.Name, err)
	}
	for _, st := range sts {
		if st.Key == k {
			return st
		}
	}
	t.Fatalf("no state for %v among %d", k, len(sts))
	return strata.ProjectionState{}
}

func (s suite) testProjInitClaimCommit(t *testing.T) {
	ctx := testContext(t)
	_, ps := capability[strata.ProjectionStore](t, s)
	filter := strata.Filter{Types: []string{"CertificateIssued", "CertificateRevoked"}, StreamPrefix: "certificate-", Tenant: "acme"}
	if err := ps.InitProjection(ctx, strata.ProjectionInit{Name: "certificate_status", Version: 1, Partitions: 3, Filter: filter, Rebuilding: true, RebuildTarget: strata.Position{Commit: 9, Event: 9}}); err != nil {
		t.Fatal(err)
	}
	mustInitProj(t, ctx, ps, "certificate_status", 1, 3) // idempotent
	wantCode(t, ps.InitProjection(ctx, strata.ProjectionInit{Name: "certificate_status", Version: 1, Partitions: 4}), strata.Conflict, "init with other partition count")
	sts, err := ps.ProjectionStates(ctx, "certificate_status")
	if err != nil {
		t.Fatal(err)
	}
	if len(sts) != 3 {
		t.Fatalf("got %d partitions, want 3", len(sts))
	}
	for i, st := range sts {
		if st.Key != projKey("certificate_status", 1, i) || st.Partitions != 3 || !st.Position.IsZero() || !st.Rebuilding ||
			st.RebuildTarget != (strata.Position{Commit: 9, Event: 9}) || st.Owner != "" || st.Failure != nil || st.Paused {
			t.Fatalf("partition %d: unexpected initial state %+v", i, st)
		}
		if !slices.Equal(st.Filter.Types, filter.Types) || st.Filter.StreamPrefix != filter.StreamPrefix || st.Filter.Tenant != filter.Tenant {
			t.Fatalf("partition %d: filter %+v, want %+v", i, st.Filter, filter)
		}
	}
	ran := false
	if err := ps.QueryProjection(ctx, func(any) error { ran = true; return nil }); err != nil || !ran {
		t.Fatalf("query projection: ran %v, %v", ran, err)
	}
	boom := errors.New("reader failed")
	if err := ps.QueryProjection(ctx, func(any) error { return boom }); !errors.Is(err, boom) {
		t.Fatalf("query projection with a failing reader: %v", err)
	}
	k := projKey("certificate_status", 1, 1)
	l := mustClaim(t, ctx, ps, k, "worker-a", time.Minute)
	to := strata.Position{Commit: 5, Event: 5}
	f := &strata.ProjectionFailure{EventID: uuid.New(), Position: strata.Position{Commit: 6, Event: 6}, EventType: "CertificateRevoked", Stream: "certificate-1", Error: "boom", Attempts: 3, At: strata.Timestamp(time.Now())}
	applied := false
	err = ps.CommitProjection(ctx, strata.ProjectionCommit{Lease: l, From: strata.Start, To: to, Processed: 5, Rebuilding: true, Failure: f, Pending: []byte(`[1]`)}, func(any) error {
		applied = true
		return nil
	})
	if err != nil || !applied {
		t.Fatalf("commit: applied %v, err %v", applied, err)
	}
	st := projState(t, ctx, ps, k)
	if st.Position != to || st.Processed != 5 || !st.Rebuilding || string(st.Pending) != "[1]" || st.Failure == nil ||
		st.Failure.EventID != f.EventID || st.Failure.Error != "boom" || st.Failure.Attempts != 3 || st.Failure.Position != f.Position || st.Owner != "worker-a" {
		t.Fatalf("after commit: %+v (failure %+v)", st, st.Failure)
	}
	// A commit without failure and pending clears them.
	if err := ps.CommitProjection(ctx, strata.ProjectionCommit{Lease: l, From: to, To: to, Processed: 5}, nil); err != nil {
		t.Fatal(err)
	}
	if st := projState(t, ctx, ps, k); st.Failure != nil || st.Pending != nil || st.Rebuilding {
		t.Fatalf("after clearing commit: %+v", st)
	}
	if other := projState(t, ctx, ps, projKey("certificate_status", 1, 0)); !other.Position.IsZero() {
		t.Fatalf("partition 0 moved: %+v", other)
	}
	if all, err := ps.ProjectionStates(ctx, ""); err != nil || len(all) != 3 {
		t.Fatalf("all states: %d, %v", len(all), err)
	}
}

func (s suite) testProjFencing(t *testing.T) {
	ctx := testContext(t)
	_, ps := capability[strata.ProjectionStore](t, s)
	mustInitProj(t, ctx, ps, "crl", 1, 1)
	k := projKey("crl", 1, 0)
	a := mustClaim(t, ctx, ps, k, "a", 300*time.Millisecond)
	_, err := ps.ClaimProjection(ctx, k, "b", time.Minute)
	wantCode(t, err, strata.Conflict, "claim of a live lease")
	// The holder may claim again (a restart): the epoch grows, the old lease is fenced.
	a2 := mustClaim(t, ctx, ps, k, "a", 300*time.Millisecond)
	if a2.Epoch <= a.Epoch {
		t.Fatalf("epoch did not grow: %d then %d", a.Epoch, a2.Epoch)
	}
	wantCode(t, ps.CommitProjection(ctx, strata.ProjectionCommit{Lease: a, To: strata.Position{Commit: 1, Event: 1}}, nil), strata.Conflict, "commit with a stale epoch")
	if _, err := ps.RenewProjectionLease(ctx, a2, 300*time.Millisecond); err != nil {
		t.Fatalf("renew: %v", err)
	}
	// Wait for the lease to expire; then b takes over.
	deadline := time.Now().Add(time.Minute)
	var b strata.ProjectionLease
	for {
		st, err := ps.ClaimProjection(ctx, k, "b", time.Minute)
		if err == nil {
			b = strata.ProjectionLease{Key: k, Owner: "b", Epoch: st.Epoch}
			break
		}
		wantCode(t, err, strata.Conflict, "claim before expiry")
		if time.Now().After(deadline) {
			t.Fatal("the lease never expired")
		}
		time.Sleep(50 * time.Millisecond)
	}
	wantCode(t, ps.CommitProjection(ctx, strata.ProjectionCommit{Lease: a2, To: strata.Position{Commit: 1, Event: 1}}, func(any) error {
		t.Error("apply ran for a fenced commit")
		return nil
	}), strata.Conflict, "commit after takeover")
	_, err = ps.RenewProjectionLease(ctx, a2, time.Minute)
	wantCode(t, err, strata.Conflict, "renew after takeover")
	if err := ps.ReleaseProjectionLease(ctx, a2); err != nil {
		t.Fatalf("release of a lost lease: %v", err)
	}
	if st := projState(t, ctx, ps, k); st.Owner != "b" {
		t.Fatalf("a stale release changed the owner to %q", st.Owner)
	}
	if err := ps.ReleaseProjectionLease(ctx, b); err != nil {
		t.Fatal(err)
	}
	if st := projState(t, ctx, ps, k); st.Owner != "" {
		t.Fatalf("owner after release: %q", st.Owner)
	}
	mustClaim(t, ctx, ps, k, "c", time.Minute)
	_, err = ps.ClaimProjection(ctx, projKey("crl", 1, 1), "c", time.Minute)
	wantCode(t, err, strata.NotFound, "claim of a partition that does not exist")
}

func (s suite) testProjApply(t *testing.T) {
	ctx := testContext(t)
	_, ps := capability[strata.ProjectionStore](t, s)
	mustInitProj(t, ctx, ps, "ocsp", 1, 1)
	k := projKey("ocsp", 1, 0)
	l := mustClaim(t, ctx, ps, k, "w", time.Minute)
	boom := errors.New("handler failed")
	err := ps.CommitProjection(ctx, strata.ProjectionCommit{Lease: l, To: strata.Position{Commit: 3, Event: 3}, Processed: 3}, func(any) error { return boom })
	if !errors.Is(err, boom) {
		t.Fatalf("commit with a failing apply: %v, want the apply error", err)
	}
	if st := projState(t, ctx, ps, k); !st.Position.IsZero() || st.Processed != 0 {
		t.Fatalf("a failed apply moved the checkpoint: %+v", st)
	}
	wantCode(t, ps.CommitProjection(ctx, strata.ProjectionCommit{Lease: l, From: strata.Position{Commit: 1, Event: 1}, To: strata.Position{Commit: 3, Event: 3}}, nil), strata.Conflict, "commit from the wrong checkpoint")
	wantCode(t, ps.CommitProjection(ctx, strata.ProjectionCommit{Lease: l, From: strata.Position{Commit: 3, Event: 3}, To: strata.Position{Commit: 1, Event: 1}}, nil), strata.Invalid, "commit moving back")
	if err := ps.CommitProjection(ctx, strata.ProjectionCommit{Lease: l, To: strata.Position{Commit: 3, Event: 3}, Processed: 3}, nil); err != nil {
		t.Fatal(err)
	}
}

func (s suite) testProjControl(t *testing.T) {
	ctx := testContext(t)
	_, ps := capability[strata.ProjectionStore](t, s)
	mustInitProj(t, ctx, ps, "status", 2, 2)
	k := projKey("status", 2, 0)
	l := mustClaim(t, ctx, ps, k, "w", time.Minute)
	to := strata.Position{Commit: 7, Event: 7}
	if err := ps.CommitProjection(ctx, strata.ProjectionCommit{Lease: l, To: to, Processed: 7, Failure: &strata.ProjectionFailure{Error: "x"}, Pending: []byte("p")}, nil); err != nil {
		t.Fatal(err)
	}
	yes, no := true, false
	if err := ps.ControlProjection(ctx, "status", 2, strata.ProjectionControl{Pause: &yes}); err != nil {
		t.Fatal(err)
	}
	st, err := ps.RenewProjectionLease(ctx, l, time.Minute)
	if err != nil || !st.Paused {
		t.Fatalf("renew after pause: paused %v, %v", st.Paused, err)
	}
	if err := ps.ControlProjection(ctx, "status", 2, strata.ProjectionControl{Pause: &no}); err != nil {
		t.Fatal(err)
	}
	target := strata.Position{Commit: 11, Event: 11}
	if err := ps.ControlProjection(ctx, "status", 2, strata.ProjectionControl{Reset: true, RebuildTarget: target}); err != nil {
		t.Fatal(err)
	}
	for p := range 2 {
		st := projState(t, ctx, ps, projKey("status", 2, p))
		if !st.Position.IsZero() || st.Processed != 0 || st.Failure != nil || !st.Rebuilding || st.RebuildTarget != target || st.Owner != "" || st.Paused {
			t.Fatalf("partition %d after reset: %+v", p, st)
		}
		if p == 0 && string(st.Pending) != "p" {
			t.Fatalf("reset dropped the outbox: %q", st.Pending)
		}
	}
	_, err = ps.RenewProjectionLease(ctx, l, time.Minute)
	wantCode(t, err, strata.Conflict, "renew after reset")
	wantCode(t, ps.CommitProjection(ctx, strata.ProjectionCommit{Lease: l, From: strata.Start, To: to}, nil), strata.Conflict, "commit after reset")
	wantCode(t, ps.ControlProjection(ctx, "status", 3, strata.ProjectionControl{Pause: &yes}), strata.NotFound, "control of a missing version")
}

func (s suite) testProjBlueGreen(t *testing.T) {
	ctx := testContext(t)
	_, ps := capability[strata.ProjectionStore](t, s)
	if v, err := ps.ActiveProjection(ctx, "certificate_status"); err != nil || v != 0 {
		t.Fatalf("active before any: %d, %v", v, err)
	}
	_, err := ps.ActivateProjection(ctx, "certificate_status", 1, false)
	wantCode(t, err, strata.NotFound, "activate a version that does not exist")
	mustInitProj(t, ctx, ps, "certificate_status", 1, 1)
	mustInitProj(t, ctx, ps, "certificate_status", 2, 4)
	for _, c := range []struct {
		version   int
		onlyNewer bool
		changed   bool
		active    int
	}{
		{1, true, true, 1}, {1, true, false, 1}, {2, true, true, 2}, {1, true, false, 2}, {1, false, true, 1}, {2, false, true, 2},
	} {
		changed, err := ps.ActivateProjection(ctx, "certificate_status", c.version, c.onlyNewer)
		if err != nil || changed != c.changed {
			t.Fatalf("activate %d onlyNewer=%v: changed %v, %v; want %v", c.version, c.onlyNewer, changed, err, c.changed)
		}
		if v, err := ps.ActiveProjection(ctx, "certificate_status"); err != nil || v != c.active {
			t.Fatalf("active: %d, %v; want %d", v, err, c.active)
		}
	}
	wantCode(t, ps.DropProjection(ctx, "certificate_status", 2, nil), strata.Conflict, "drop the active version")
	dropped := false
	if err := ps.DropProjection(ctx, "certificate_status", 1, func(any) error { dropped = true; return nil }); err != nil || !dropped {
		t.Fatalf("drop v1: ran %v, %v", dropped, err)
	}
	sts, err := ps.ProjectionStates(ctx, "certificate_status")
	if err != nil || len(sts) != 4 || slices.ContainsFunc(sts, func(st strata.ProjectionState) bool { return st.Key.Version != 2 }) {
		t.Fatalf("after drop: %d states, %v", len(sts), err)
	}
	boom := errors.New("cannot drop table")
	mustInitProj(t, ctx, ps, "certificate_status", 3, 1)
	if err := ps.DropProjection(ctx, "certificate_status", 3, func(any) error { return boom }); !errors.Is(err, boom) {
		t.Fatalf("drop with failing apply: %v", err)
	}
	if sts, _ := ps.ProjectionStates(ctx, "certificate_status"); len(sts) != 5 {
		t.Fatalf("a failed drop deleted state: %d left", len(sts))
	}
}

func (s suite) testProjHeartbeat(t *testing.T) {
	ctx := testContext(t)
	_, ps := capability[strata.ProjectionStore](t, s)
	live, err := ps.ProjectionHeartbeat(ctx, "crl", 1, "worker-b", 200*time.Millisecond)
	if err != nil || !slices.Equal(live, []string{"worker-b"}) {
		t.Fatalf("first heartbeat: %v, %v", live, err)
	}
	live, err = ps.ProjectionHeartbeat(ctx, "crl", 1, "worker-a", time.Minute)
	if err != nil || !slices.Equal(live, []string{"worker-a", "worker-b"}) {
		t.Fatalf("second heartbeat: %v, %v", live, err)
	}
	if live, _ := ps.ProjectionHeartbeat(ctx, "crl", 2, "worker-c", time.Minute); !slices.Equal(live, []string{"worker-c"}) {
		t.Fatalf("versions are separate: %v", live)
	}
	deadline := time.Now().Add(time.Minute)
	for {
		live, err = ps.ProjectionHeartbeat(ctx, "crl", 1, "worker-a", time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		if slices.Equal(live, []string{"worker-a"}) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("worker-b never expired: %v", live)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (s suite) testProjLag(t *testing.T) {
	ctx := testContext(t)
	st, ps := capability[strata.ProjectionStore](t, s)
	lag, err := ps.ProjectionLag(ctx, strata.Start, strata.Filter{})
	if err != nil || lag.Events != 0 || !lag.Last.IsZero() {
		t.Fatalf("lag of an empty log: %+v, %v", lag, err)
	}
	mustAppend(t, ctx, st, "certificate-1", strata.NoStream, ev("CertificateIssued", nil), ev("CertificateRevoked", nil))
	mustAppend(t, ctx, st, "request-1", strata.NoStream, ev("RevocationRequested", nil))
	acme := ev("CertificateIssued", nil)
	acme.Meta.Tenant = "acme"
	mustAppend(t, ctx, st, "certificate-2", strata.NoStream, acme)
	evs := allEvents(t, ctx, st)
	for _, c := range []struct {
		after int // index of the checkpoint event, -1 for Start
		f     strata.Filter
		n     int64
		last  int
	}{
		{-1, strata.Filter{}, 4, 3},
		{0, strata.Filter{}, 3, 3},
		{3, strata.Filter{}, 0, 3},
		{-1, strata.Filter{Types: []string{"CertificateRevoked", "RevocationRequested"}}, 2, 2},
		{-1, strata.Filter{StreamPrefix: "certificate-"}, 3, 3},
		{0, strata.Filter{Types: []string{"CertificateIssued"}, StreamPrefix: "certificate-"}, 1, 3},
		{1, strata.Filter{Types: []string{"CertificateRevoked"}}, 0, 1},
		{-1, strata.Filter{Tenant: "acme"}, 1, 3},
		{-1, strata.Filter{Tenant: "acme", Types: []string{"CertificateRevoked"}}, 0, -1},
		{-1, strata.Filter{Tenant: "globex"}, 0, -1},
	} {
		after := strata.Start
		if c.after >= 0 {
			after = evs[c.after].Position
		}
		last := after // no events: the checkpoint itself
		if c.last >= 0 {
			last = evs[c.last].Position
		}
		lag, err := ps.ProjectionLag(ctx, after, c.f)
		if err != nil || lag.Events != c.n || lag.Last != last {
			t.Fatalf("lag after %d with %+v: %+v, %v; want %d events, last %s", c.after, c.f, lag, err, c.n, last)
		}
	}
}

func (s suite) testProjReopen(t *testing.T) {
	skipWithoutReopen(t, s)
	ctx := testContext(t)
	st, ps := capability[strata.ProjectionStore](t, s)
	mustInitProj(t, ctx, ps, "certificate_status", 1, 2)
	k := projKey("certificate_status", 1, 1)
	l := mustClaim(t, ctx, ps, k, "w", time.Minute)
	to := strata.Position{Commit: 42, Event: 42}
	if err := ps.CommitProjection(ctx, strata.ProjectionCommit{Lease: l, To: to, Processed: 2}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := ps.ActivateProjection(ctx, "certificate_status", 1, false); err != nil {
		t.Fatal(err)
	}
	ps2 := reopen[strata.ProjectionStore](t, s, st)
	got := projState(t, ctx, ps2, k)
	if got.Position != to || got.Processed != 2 || got.Owner != "w" || got.Epoch != l.Epoch {
		t.Fatalf("after reopen: %+v", got)
	}
	if v, err := ps2.ActiveProjection(ctx, "certificate_status"); err != nil || v != 1 {
		t.Fatalf("active after reopen: %d, %v", v, err)
	}
	if err := ps2.CommitProjection(ctx, strata.ProjectionCommit{Lease: l, From: to, To: to, Processed: 2}, nil); err != nil {
		t.Fatalf("the lease survives a restart: %v", err)
	}
}

func (s suite) testProjBadInput(t *testing.T) {
	ctx := testContext(t)
	_, ps := capability[strata.ProjectionStore](t, s)
	for _, c := range []struct {
		what string
		in   strata.ProjectionInit
	}{
		{"empty name", strata.ProjectionInit{Version: 1, Partitions: 1}},
		{"long name", strata.ProjectionInit{Name: strings.Repeat("p", strata.MaxProjectionNameLen+1), Version: 1, Partitions: 1}},
		{"name not UTF-8", strata.ProjectionInit{Name: "p\xff", Version: 1, Partitions: 1}},
		{"control character", strata.ProjectionInit{Name: "p\x00", Version: 1, Partitions: 1}},
		{"version 0", strata.ProjectionInit{Name: "p", Partitions: 1}},
		{"no partitions", strata.ProjectionInit{Name: "p", Version: 1}},
		{"too many partitions", strata.ProjectionInit{Name: "p", Version: 1, Partitions: strata.MaxProjectionPartitions + 1}},
	} {
		wantCode(t, ps.InitProjection(ctx, c.in), strata.Invalid, "init with "+c.what)
	}
	mustInitProj(t, ctx, ps, "p", 1, 1)
	k := projKey("p", 1, 0)
	_, err := ps.ClaimProjection(ctx, k, "", time.Minute)
	wantCode(t, err, strata.Invalid, "claim without owner")
	_, err = ps.ClaimProjection(ctx, k, "w", 0)
	wantCode(t, err, strata.Invalid, "claim without ttl")
	_, err = ps.ClaimProjection(ctx, projKey("p", 1, -1), "w", time.Minute)
	wantCode(t, err, strata.Invalid, "claim of a negative partition")
	_, err = ps.ProjectionHeartbeat(ctx, "p", 1, "w\n", time.Minute)
	wantCode(t, err, strata.Invalid, "heartbeat with a control character")
	_, err = ps.ActiveProjection(ctx, "")
	wantCode(t, err, strata.Invalid, "active of an empty name")
	l := mustClaim(t, ctx, ps, k, "w", time.Minute)
	wantCode(t, ps.CommitProjection(ctx, strata.ProjectionCommit{Lease: l, To: strata.Position{Commit: 1, Event: 1}, Pending: make([]byte, strata.MaxDataLen+1)}, nil), strata.Invalid, "commit with a huge outbox")
	// A long, odd failure message is stored cut, not refused.
	long := strings.Repeat("é", strata.MaxProjectionErrorLen)
	if err := ps.CommitProjection(ctx, strata.ProjectionCommit{Lease: l, To: strata.Position{Commit: 1, Event: 1}, Failure: &strata.ProjectionFailure{Error: long}}, nil); err != nil {
		t.Fatalf("commit with a long failure message: %v", err)
	}
	if st := projState(t, ctx, ps, k); st.Failure == nil || len(st.Failure.Error) > strata.MaxProjectionErrorLen || !strings.HasPrefix(long, st.Failure.Error) {
		t.Fatalf("failure message not cut on a rune boundary: %d bytes", len(st.Failure.Error))
	}
}

func (s suite) testProjAfterClose(t *testing.T) {
	ctx := testContext(t)
	st, ps := capability[strata.ProjectionStore](t, s)
	mustInitProj(t, ctx, ps, "p", 1, 1)
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	wantClosed := func(err error, what string) {
		t.Helper()
		if !errors.Is(err, strata.ErrClosed) {
			t.Fatalf("%s after close: %v, want ErrClosed", what, err)
		}
	}
	_, err := ps.ClaimProjection(ctx, projKey("p", 1, 0), "w", time.Minute)
	wantClosed(err, "claim")
	_, err = ps.ProjectionStates(ctx, "")
	wantClosed(err, "states")
	_, err = ps.ProjectionLag(ctx, strata.Start, strata.Filter{})
	wantClosed(err, "lag")
	wantClosed(ps.InitProjection(ctx, strata.ProjectionInit{Name: "q", Version: 1, Partitions: 1}), "init")
}
