package storetest

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/strata-events/strata"
)

// RunTransmit runs the section of the suite for [strata.TransmitStore]: checkpoints and records
// committed together, replacing records, paging by position and status, requeueing dead
// letters, counts per status, states read in one snapshot while batches commit, pruning (sent
// and dead records, dry runs), leases (claim, renewal, expiry and takeover, release, commits
// fenced by the epoch), restarts, bad input and use after close. [Run] calls it; a store that
// does not implement the interface skips it, or fails it when f.Capabilities is set.
func RunTransmit(t *testing.T, newStore NewStore, f Features) {
	suite{newStore: newStore, f: f}.runTransmit(t)
}

func (s suite) runTransmit(t *testing.T) {
	runParallel(t, []subtest{
		{"DefaultStart", s.testTransmitDefault},
		{"CommitAndReadBack", s.testTransmitCommit},
		{"RecordsReplaced", s.testTransmitReplace},
		{"PagingAndStatus", s.testTransmitPaging},
		{"RequeueDeadLetters", s.testTransmitRequeue},
		{"Prune", s.testTransmitPrune},
		{"PruneRecords", s.testTransmitPruneRecords},
		{"LeaseClaimRenewRelease", s.testTransmitLease},
		{"LeaseFencesCommits", s.testTransmitFencing},
		{"LeaseConcurrentClaims", s.testTransmitConcurrentClaims},
		{"StatesAreOneSnapshot", s.testTransmitStatesSnapshot},
		{"LargeCommit", s.testTransmitLarge},
		{"SurviveReopen", s.testTransmitReopen},
		{"BadInputRejected", s.testTransmitBadInput},
		{"UseAfterClose", s.testTransmitAfterClose},
	})
}

// delivery returns a record of the i-th (1-based) event of a made-up log.
func delivery(i int, status strata.DeliveryStatus) strata.Delivery {
	at := time.Date(2023, 3, 14, 9, 0, 0, 123456000, time.UTC).Add(time.Duration(i) * time.Second)
	d := strata.Delivery{
		EventID:  uuid.NewSHA1(uuid.NameSpaceOID, []byte(fmt.Sprint("event-", i))),
		Position: strata.Position{Commit: uint64(1000 + i), Event: uint64(i)},
		Stream:   certStream(i % 7), Version: int64(i), Type: "CertificateRevoked",
		Status: status, Attempts: 1, FirstAttemptAt: at, LastAttemptAt: at.Add(time.Millisecond),
	}
	switch status {
	case strata.DeliverySent:
		d.SentAt = at.Add(2 * time.Millisecond)
	case strata.DeliveryFailed, strata.DeliveryDead:
		d.Attempts, d.LastError = 4, "broker said no: ü"
	}
	return d
}

func mustCommitDeliveries(t testing.TB, ts strata.TransmitStore, c strata.DeliveryCommit) {
	t.Helper()
	if err := ts.CommitDeliveries(testContext(t), c); err != nil {
		t.Fatalf("commit deliveries: %v", err)
	}
}

func mustDeliveries(t testing.TB, ts strata.TransmitStore, q strata.DeliveryQuery) []strata.Delivery {
	t.Helper()
	ds, err := ts.Deliveries(testContext(t), q)
	if err != nil {
		t.Fatalf("deliveries %+v: %v", q, err)
	}
	return ds
}

func wantTransmitCheckpoint(t testing.TB, ts strata.TransmitStore, name string, want strata.Position) {
	t.Helper()
	got, err := ts.TransmitCheckpoint(testContext(t), name)
	if err != nil {
		t.Fatalf("transmit checkpoint %q: %v", name, err)
	}
	if got != want {
		t.Fatalf("transmit checkpoint %q = %s, want %s", name, got, want)
	}
}

func sameDelivery(t testing.TB, got, want strata.Delivery) {
	t.Helper()
	if !got.FirstAttemptAt.Equal(want.FirstAttemptAt) || !got.LastAttemptAt.Equal(want.LastAttemptAt) || !got.SentAt.Equal(want.SentAt) {
		t.Fatalf("record %s times = %v %v %v, want %v %v %v", want.EventID, got.FirstAttemptAt, got.LastAttemptAt, got.SentAt, want.FirstAttemptAt, want.LastAttemptAt, want.SentAt)
	}
	got.FirstAttemptAt, got.LastAttemptAt, got.SentAt = want.FirstAttemptAt, want.LastAttemptAt, want.SentAt
	if got != want {
		t.Fatalf("record = %+v, want %+v", got, want)
	}
}

func transmitterState(t testing.TB, ts strata.TransmitStore, name string) (strata.TransmitterState, bool) {
	t.Helper()
	sts, err := ts.TransmitterStates(testContext(t))
	if err != nil {
		t.Fatalf("transmitter states: %v", err)
	}
	for _, st := range sts {
		if st.Name == name {
			return st, true
		}
	}
	return strata.TransmitterState{}, false
}

func (s suite) testTransmitDefault(t *testing.T) {
	_, ts := capability[strata.TransmitStore](t, s)
	wantTransmitCheckpoint(t, ts, "revocations-to-nats", strata.Start)
	if _, ok := transmitterState(t, ts, "revocations-to-nats"); ok {
		t.Fatal("a transmitter that never committed has a state")
	}
	if ds := mustDeliveries(t, ts, strata.DeliveryQuery{Transmitter: "revocations-to-nats"}); len(ds) != 0 {
		t.Fatalf("records of a new transmitter: %v", ds)
	}
}

func (s suite) testTransmitCommit(t *testing.T) {
	ctx := testContext(t)
	st, ts := capability[strata.TransmitStore](t, s)
	mustAppend(t, ctx, st, "certificate-1", strata.NoStream, ev("CertificateIssued", nil), ev("CertificateRevoked", nil))
	evs := allEvents(t, ctx, st)
	// A commit without a checkpoint creates the state at Start.
	mustCommitDeliveries(t, ts, strata.DeliveryCommit{Transmitter: "crl", Deliveries: []strata.Delivery{delivery(1, strata.DeliveryFailed)}})
	wantTransmitCheckpoint(t, ts, "crl", strata.Start)
	ds := []strata.Delivery{delivery(2, strata.DeliverySent), delivery(3, strata.DeliveryDead), delivery(4, strata.DeliveryPending)}
	// A real position of this backend round-trips as the checkpoint.
	cp := evs[1].Position
	mustCommitDeliveries(t, ts, strata.DeliveryCommit{Transmitter: "crl", Deliveries: ds, Checkpoint: &cp})
	wantTransmitCheckpoint(t, ts, "crl", cp)
	wantTransmitCheckpoint(t, ts, "ocsp", strata.Start)
	got := mustDeliveries(t, ts, strata.DeliveryQuery{Transmitter: "crl"})
	if len(got) != 4 {
		t.Fatalf("%d records, want 4", len(got))
	}
	sameDelivery(t, got[0], delivery(1, strata.DeliveryFailed))
	for i, d := range ds {
		sameDelivery(t, got[i+1], d)
	}
	state, ok := transmitterState(t, ts, "crl")
	if !ok {
		t.Fatal("no state for transmitter crl")
	}
	if state.Checkpoint != cp || state.Pending != 1 || state.Sent != 1 || state.Failed != 1 || state.Dead != 1 || state.UpdatedAt.IsZero() {
		t.Fatalf("state = %+v", state)
	}
	// Transmitters are separate.
	if ds := mustDeliveries(t, ts, strata.DeliveryQuery{Transmitter: "ocsp"}); len(ds) != 0 {
		t.Fatalf("another transmitter's records: %v", ds)
	}
	// The checkpoint moves back when told to (a reset), and an empty commit only touches it.
	mustCommitDeliveries(t, ts, strata.DeliveryCommit{Transmitter: "crl", Checkpoint: &strata.Start})
	wantTransmitCheckpoint(t, ts, "crl", strata.Start)
}

func (s suite) testTransmitReplace(t *testing.T) {
	_, ts := capability[strata.TransmitStore](t, s)
	mustCommitDeliveries(t, ts, strata.DeliveryCommit{Transmitter: "crl", Deliveries: []strata.Delivery{delivery(1, strata.DeliveryFailed)}})
	sent := delivery(1, strata.DeliverySent)
	sent.Attempts, sent.LastError = 5, "timeout"
	mustCommitDeliveries(t, ts, strata.DeliveryCommit{Transmitter: "crl", Deliveries: []strata.Delivery{sent}})
	got := mustDeliveries(t, ts, strata.DeliveryQuery{Transmitter: "crl"})
	if len(got) != 1 {
		t.Fatalf("%d records after a replace, want 1", len(got))
	}
	sameDelivery(t, got[0], sent)
	// SentAt is kept only for a sent record; a long error is cut.
	failed := delivery(1, strata.DeliveryFailed)
	failed.SentAt = time.Now()
	failed.LastError = strings.Repeat("é", strata.MaxDeliveryErrorLen)
	mustCommitDeliveries(t, ts, strata.DeliveryCommit{Transmitter: "crl", Deliveries: []strata.Delivery{failed}})
	got = mustDeliveries(t, ts, strata.DeliveryQuery{Transmitter: "crl"})
	if !got[0].SentAt.IsZero() || len(got[0].LastError) > strata.MaxDeliveryErrorLen || !strings.HasPrefix(got[0].LastError, "éé") {
		t.Fatalf("failed record: sent at %v, error of %d bytes", got[0].SentAt, len(got[0].LastError))
	}
}

func (s suite) testTransmitPaging(t *testing.T) {
	_, ts := capability[strata.TransmitStore](t, s)
	var ds []strata.Delivery
	// Committed out of log order: reads come back in it.
	for i := 30; i >= 1; i-- {
		status := strata.DeliverySent
		if i%3 == 0 {
			status = strata.DeliveryDead
		}
		ds = append(ds, delivery(i, status))
	}
	mustCommitDeliveries(t, ts, strata.DeliveryCommit{Transmitter: "crl", Deliveries: ds})
	var all []strata.Delivery
	after := strata.Start
	for {
		page := mustDeliveries(t, ts, strata.DeliveryQuery{Transmitter: "crl", After: after, Limit: 7})
		if len(page) == 0 {
			break
		}
		all = append(all, page...)
		after = page[len(page)-1].Position
	}
	if len(all) != 30 {
		t.Fatalf("paged %d records, want 30", len(all))
	}
	for i, d := range all {
		if d.Version != int64(i+1) {
			t.Fatalf("record %d has version %d: not in log order", i, d.Version)
		}
	}
	dead := mustDeliveries(t, ts, strata.DeliveryQuery{Transmitter: "crl", Status: strata.DeliveryDead})
	if len(dead) != 10 {
		t.Fatalf("%d dead records, want 10", len(dead))
	}
	for _, d := range dead {
		if d.Status != strata.DeliveryDead || d.Version%3 != 0 {
			t.Fatalf("dead page holds %+v", d)
		}
	}
	page := mustDeliveries(t, ts, strata.DeliveryQuery{Transmitter: "crl", Status: strata.DeliveryDead, After: dead[4].Position, Limit: 2})
	if len(page) != 2 || page[0].Version != dead[5].Version {
		t.Fatalf("dead page after %s: %v", dead[4].Position, page)
	}
}

func (s suite) testTransmitRequeue(t *testing.T) {
	_, ts := capability[strata.TransmitStore](t, s)
	d1, d2, d3 := delivery(1, strata.DeliveryDead), delivery(2, strata.DeliveryDead), delivery(3, strata.DeliverySent)
	mustCommitDeliveries(t, ts, strata.DeliveryCommit{Transmitter: "crl", Deliveries: []strata.Delivery{d1, d2, d3}})
	mustCommitDeliveries(t, ts, strata.DeliveryCommit{Transmitter: "ocsp", Deliveries: []strata.Delivery{d1}})
	n, err := ts.RequeueDeliveries(testContext(t), "crl", []uuid.UUID{d1.EventID, d3.EventID, uuid.New()})
	if err != nil || n != 1 {
		t.Fatalf("requeue = %d, %v; want 1 (only the dead one)", n, err)
	}
	pending := mustDeliveries(t, ts, strata.DeliveryQuery{Transmitter: "crl", Status: strata.DeliveryPending})
	if len(pending) != 1 || pending[0].EventID != d1.EventID || pending[0].Attempts != d1.Attempts || pending[0].LastError != d1.LastError {
		t.Fatalf("pending after requeue: %+v", pending)
	}
	if ds := mustDeliveries(t, ts, strata.DeliveryQuery{Transmitter: "ocsp", Status: strata.DeliveryDead}); len(ds) != 1 {
		t.Fatalf("requeue changed another transmitter: %v", ds)
	}
	if n, err := ts.RequeueDeliveries(testContext(t), "crl", nil); err != nil || n != 0 {
		t.Fatalf("requeue of nothing = %d, %v", n, err)
	}
}

func (s suite) testTransmitPrune(t *testing.T) {
	_, ts := capability[strata.TransmitStore](t, s)
	var ds []strata.Delivery
	for i := 1; i <= 6; i++ {
		status := strata.DeliverySent
		if i == 2 {
			status = strata.DeliveryDead
		}
		ds = append(ds, delivery(i, status))
	}
	mustCommitDeliveries(t, ts, strata.DeliveryCommit{Transmitter: "crl", Deliveries: ds})
	n, err := ts.PruneDeliveryRecords(testContext(t), strata.DeliveryPrune{Transmitter: "crl", SentBefore: ds[3].SentAt})
	if err != nil || n != (strata.PrunedDeliveries{Sent: 2}) {
		t.Fatalf("prune = %+v, %v; want 2 sent (the records 1 and 3)", n, err)
	}
	left := mustDeliveries(t, ts, strata.DeliveryQuery{Transmitter: "crl"})
	if len(left) != 4 || left[0].Version != 2 || left[1].Version != 4 {
		t.Fatalf("left after prune: %v", left)
	}
}

func (s suite) testTransmitPruneRecords(t *testing.T) {
	ctx := testContext(t)
	_, ts := capability[strata.TransmitStore](t, s)
	// Records 1-4 sent, 5-8 dead, 9 failed, 10 pending; for ocsp the same sent and dead ones.
	var ds []strata.Delivery
	for i := 1; i <= 10; i++ {
		status := strata.DeliverySent
		switch {
		case i > 4 && i <= 8:
			status = strata.DeliveryDead
		case i == 9:
			status = strata.DeliveryFailed
		case i == 10:
			status = strata.DeliveryPending
		}
		ds = append(ds, delivery(i, status))
	}
	mustCommitDeliveries(t, ts, strata.DeliveryCommit{Transmitter: "crl", Deliveries: ds})
	mustCommitDeliveries(t, ts, strata.DeliveryCommit{Transmitter: "ocsp", Deliveries: ds[:8]})
	// Sent before record 3's SentAt: records 1 and 2; dead before record 7's last attempt: 5 and 6.
	p := strata.DeliveryPrune{Transmitter: "crl", SentBefore: ds[2].SentAt, DeadBefore: ds[6].LastAttemptAt, DryRun: true}
	got, err := ts.PruneDeliveryRecords(ctx, p)
	if err != nil || got != (strata.PrunedDeliveries{Sent: 2, Dead: 2}) {
		t.Fatalf("dry run = %+v, %v; want 2 sent and 2 dead", got, err)
	}
	if left := mustDeliveries(t, ts, strata.DeliveryQuery{Transmitter: "crl"}); len(left) != 10 {
		t.Fatalf("a dry run deleted records: %d left", len(left))
	}
	p.DryRun = false
	got, err = ts.PruneDeliveryRecords(ctx, p)
	if err != nil || got != (strata.PrunedDeliveries{Sent: 2, Dead: 2}) {
		t.Fatalf("prune = %+v, %v; want 2 sent and 2 dead", got, err)
	}
	var versions []int64
	for _, d := range mustDeliveries(t, ts, strata.DeliveryQuery{Transmitter: "crl"}) {
		versions = append(versions, d.Version)
	}
	if fmt.Sprint(versions) != "[3 4 7 8 9 10]" {
		t.Fatalf("versions left after prune: %v, want [3 4 7 8 9 10]", versions)
	}
	if left := mustDeliveries(t, ts, strata.DeliveryQuery{Transmitter: "ocsp"}); len(left) != 8 {
		t.Fatalf("prune of crl deleted %d records of ocsp", 8-len(left))
	}
	// Only dead letters: sent records stay, failed and pending ones are never pruned.
	far := time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC)
	got, err = ts.PruneDeliveryRecords(ctx, strata.DeliveryPrune{Transmitter: "crl", DeadBefore: far})
	if err != nil || got != (strata.PrunedDeliveries{Dead: 2}) {
		t.Fatalf("dead-only prune = %+v, %v; want 2 dead", got, err)
	}
	got, err = ts.PruneDeliveryRecords(ctx, strata.DeliveryPrune{Transmitter: "crl", SentBefore: far, DeadBefore: far})
	if err != nil || got != (strata.PrunedDeliveries{Sent: 2}) {
		t.Fatalf("second prune = %+v, %v; want 2 sent", got, err)
	}
	state, _ := transmitterState(t, ts, "crl")
	if state.Sent != 0 || state.Dead != 0 || state.Failed != 1 || state.Pending != 1 {
		t.Fatalf("state after pruning everything old: %+v (failed and pending records must stay)", state)
	}
	_, err = ts.PruneDeliveryRecords(ctx, strata.DeliveryPrune{Transmitter: "crl"})
	wantCode(t, err, strata.Invalid, "prune without a cutoff")
	_, err = ts.PruneDeliveryRecords(ctx, strata.DeliveryPrune{SentBefore: far})
	wantCode(t, err, strata.Invalid, "prune without a transmitter")
	if got, err := ts.PruneDeliveryRecords(ctx, strata.DeliveryPrune{Transmitter: "unknown", SentBefore: far}); err != nil || got != (strata.PrunedDeliveries{}) {
		t.Fatalf("prune of a transmitter without records = %+v, %v", got, err)
	}
}

func mustClaimTransmitter(t testing.TB, ts strata.TransmitStore, name, owner string, ttl time.Duration) strata.TransmitLease {
	t.Helper()
	l, err := ts.ClaimTransmitter(testContext(t), name, owner, ttl)
	if err != nil {
		t.Fatalf("claim %q for %q: %v", name, owner, err)
	}
	if l.Transmitter != name || l.Owner != owner || l.Epoch <= 0 || l.Until.IsZero() {
		t.Fatalf("claim %q for %q returned %+v", name, owner, l)
	}
	return l
}

func (s suite) testTransmitLease(t *testing.T) {
	ctx := testContext(t)
	_, ts := capability[strata.TransmitStore](t, s)
	before := time.Now()
	a := mustClaimTransmitter(t, ts, "crl", "host-a/41", time.Minute)
	if a.Epoch != 1 || a.Until.Before(before.Add(time.Minute-time.Second)) {
		t.Fatalf("first claim: %+v, want epoch 1 and a lease about a minute long", a)
	}
	// The claim alone makes the transmitter visible, with its holder.
	state, ok := transmitterState(t, ts, "crl")
	if !ok || state.Owner != "host-a/41" || state.Epoch != 1 || !state.LeaseUntil.Equal(a.Until) || state.Checkpoint != strata.Start || state.Sent != 0 {
		t.Fatalf("state after a claim: %+v, %v", state, ok)
	}
	// Another owner is refused while the lease is live, and learns who holds it until when.
	held, err := ts.ClaimTransmitter(ctx, "crl", "host-b/7", time.Minute)
	wantCode(t, err, strata.Conflict, "claim of a live lease")
	if !errors.Is(err, strata.ErrTransmitterHeld) || !strings.Contains(err.Error(), "host-a/41") {
		t.Fatalf("claim of a live lease: %v, want ErrTransmitterHeld naming the holder", err)
	}
	if held.Owner != a.Owner || held.Epoch != a.Epoch || !held.Until.Equal(a.Until) {
		t.Fatalf("a refused claim returned %+v, want the holder's lease %+v", held, a)
	}
	// Names are separate.
	mustClaimTransmitter(t, ts, "ocsp", "host-b/7", time.Minute)
	// The holder claims again (a restart): the epoch grows and the old lease is fenced.
	a2 := mustClaimTransmitter(t, ts, "crl", "host-a/41", time.Minute)
	if a2.Epoch != 2 {
		t.Fatalf("epoch after a second claim: %d, want 2", a2.Epoch)
	}
	_, err = ts.RenewTransmitLease(ctx, a, time.Minute)
	wantCode(t, err, strata.Conflict, "renew with a stale epoch")
	if !errors.Is(err, strata.ErrTransmitLeaseLost) {
		t.Fatalf("renew with a stale epoch: %v, want ErrTransmitLeaseLost", err)
	}
	r, err := ts.RenewTransmitLease(ctx, a2, 2*time.Minute)
	if err != nil || r.Epoch != a2.Epoch || r.Owner != a2.Owner || !r.Until.After(a2.Until) {
		t.Fatalf("renew = %+v, %v; want the same lease, longer", r, err)
	}
	// A release frees the name at once and keeps the epoch; a stale release changes nothing.
	if err := ts.ReleaseTransmitLease(ctx, a); err != nil {
		t.Fatalf("release of a stale lease: %v", err)
	}
	if state, _ := transmitterState(t, ts, "crl"); state.Owner != "host-a/41" {
		t.Fatalf("a stale release changed the owner to %q", state.Owner)
	}
	if err := ts.ReleaseTransmitLease(ctx, r); err != nil {
		t.Fatalf("release: %v", err)
	}
	if state, _ := transmitterState(t, ts, "crl"); state.Owner != "" || state.Epoch != 2 || !state.LeaseUntil.IsZero() {
		t.Fatalf("state after release: %+v", state)
	}
	_, err = ts.RenewTransmitLease(ctx, r, time.Minute)
	wantCode(t, err, strata.Conflict, "renew after release")
	b := mustClaimTransmitter(t, ts, "crl", "host-b/7", time.Minute)
	if b.Epoch != 3 {
		t.Fatalf("epoch of the claim after a release: %d, want 3", b.Epoch)
	}
	// Bad input.
	for _, c := range []struct {
		what, name, owner string
		ttl               time.Duration
	}{
		{"no name", "", "a", time.Minute},
		{"no owner", "crl", "", time.Minute},
		{"an owner with a control character", "crl", "a\n", time.Minute},
		{"an oversized owner", "crl", strings.Repeat("o", strata.MaxTransmitOwnerLen+1), time.Minute},
		{"no ttl", "crl", "a", 0},
		{"a ttl over a day", "crl", "a", 25 * time.Hour},
	} {
		_, err := ts.ClaimTransmitter(ctx, c.name, c.owner, c.ttl)
		wantCode(t, err, strata.Invalid, "claim with "+c.what)
	}
	_, err = ts.RenewTransmitLease(ctx, strata.TransmitLease{Transmitter: "crl", Owner: "host-b/7"}, time.Minute)
	wantCode(t, err, strata.Invalid, "renew of a lease without an epoch")
	_, err = ts.RenewTransmitLease(ctx, b, 0)
	wantCode(t, err, strata.Invalid, "renew without a ttl")
	wantCode(t, ts.ReleaseTransmitLease(ctx, strata.TransmitLease{}), strata.Invalid, "release of an empty lease")
}

// waitClaim claims the name for owner once the holder's lease has expired.
func waitClaim(t testing.TB, ts strata.TransmitStore, name, owner string, ttl time.Duration) strata.TransmitLease {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		l, err := ts.ClaimTransmitter(testContext(t), name, owner, ttl)
		if err == nil {
			return l
		}
		wantCode(t, err, strata.Conflict, "claim before the lease expired")
		if time.Now().After(deadline) {
			t.Fatal("the lease never expired")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (s suite) testTransmitFencing(t *testing.T) {
	ctx := testContext(t)
	_, ts := capability[strata.TransmitStore](t, s)
	a := mustClaimTransmitter(t, ts, "crl", "a", 200*time.Millisecond)
	cp1 := strata.Position{Commit: 1001, Event: 1}
	mustCommitDeliveries(t, ts, strata.DeliveryCommit{Transmitter: "crl", Lease: &a,
		Deliveries: []strata.Delivery{delivery(1, strata.DeliverySent)}, Checkpoint: &cp1})
	// a stalls past its lease; b takes over and commits.
	b := waitClaim(t, ts, "crl", "b", time.Minute)
	if b.Epoch <= a.Epoch {
		t.Fatalf("takeover epoch %d is not above %d", b.Epoch, a.Epoch)
	}
	cp2 := strata.Position{Commit: 1002, Event: 2}
	mustCommitDeliveries(t, ts, strata.DeliveryCommit{Transmitter: "crl", Lease: &b,
		Deliveries: []strata.Delivery{delivery(2, strata.DeliverySent)}, Checkpoint: &cp2})
	// a wakes up: its commit is refused and writes nothing (no record, no checkpoint regression).
	stale := strata.Position{Commit: 1001, Event: 1}
	err := ts.CommitDeliveries(ctx, strata.DeliveryCommit{Transmitter: "crl", Lease: &a,
		Deliveries: []strata.Delivery{delivery(3, strata.DeliverySent)}, Checkpoint: &stale})
	wantCode(t, err, strata.Conflict, "commit with a lease taken over")
	if !errors.Is(err, strata.ErrTransmitLeaseLost) {
		t.Fatalf("fenced commit: %v, want ErrTransmitLeaseLost", err)
	}
	err = ts.CommitDeliveries(ctx, strata.DeliveryCommit{Transmitter: "crl", Lease: &a, Deliveries: []strata.Delivery{delivery(4, strata.DeliveryFailed)}})
	wantCode(t, err, strata.Conflict, "records-only commit with a lease taken over")
	wantTransmitCheckpoint(t, ts, "crl", cp2)
	if got := mustDeliveries(t, ts, strata.DeliveryQuery{Transmitter: "crl"}); len(got) != 2 || got[0].Version != 1 || got[1].Version != 2 {
		t.Fatalf("records after fenced commits: %v, want records 1 and 2", got)
	}
	_, err = ts.RenewTransmitLease(ctx, a, time.Minute)
	wantCode(t, err, strata.Conflict, "renew of a lease taken over")
	// After b releases, the released lease fences too, until somebody claims again.
	if err := ts.ReleaseTransmitLease(ctx, b); err != nil {
		t.Fatal(err)
	}
	err = ts.CommitDeliveries(ctx, strata.DeliveryCommit{Transmitter: "crl", Lease: &b, Checkpoint: &cp1})
	wantCode(t, err, strata.Conflict, "commit with a released lease")
	wantTransmitCheckpoint(t, ts, "crl", cp2)
	// A lease of a name that was never claimed fences everything; a lease of another name is
	// bad input.
	ghost := strata.TransmitLease{Transmitter: "ocsp", Owner: "a", Epoch: 1}
	wantCode(t, ts.CommitDeliveries(ctx, strata.DeliveryCommit{Transmitter: "ocsp", Lease: &ghost, Checkpoint: &cp1}), strata.Conflict, "commit with a lease never claimed")
	if _, ok := transmitterState(t, ts, "ocsp"); ok {
		t.Fatal("a fenced commit created a transmitter state")
	}
	wantCode(t, ts.CommitDeliveries(ctx, strata.DeliveryCommit{Transmitter: "crl", Lease: &ghost}), strata.Invalid, "commit with another transmitter's lease")
	// Commits without a lease are not fenced (tools, tests).
	mustCommitDeliveries(t, ts, strata.DeliveryCommit{Transmitter: "crl", Deliveries: []strata.Delivery{delivery(5, strata.DeliveryDead)}})
	// An expired lease nobody claimed still commits and renews: nobody else delivered.
	c := mustClaimTransmitter(t, ts, "crl", "c", time.Millisecond)
	for time.Now().Before(c.Until.Add(5 * time.Millisecond)) {
		time.Sleep(5 * time.Millisecond)
	}
	mustCommitDeliveries(t, ts, strata.DeliveryCommit{Transmitter: "crl", Lease: &c, Checkpoint: &cp2})
	if _, err := ts.RenewTransmitLease(ctx, c, time.Minute); err != nil {
		t.Fatalf("renew of an expired lease nobody claimed: %v", err)
	}
}

func (s suite) testTransmitConcurrentClaims(t *testing.T) {
	_, ts := capability[strata.TransmitStore](t, s)
	// Eight owners claim a new name at once: exactly one gets it, the others learn its holder.
	const n = 8
	var wg sync.WaitGroup
	leases := make([]strata.TransmitLease, n)
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			leases[i], errs[i] = ts.ClaimTransmitter(testContext(t), "crl", fmt.Sprint("owner-", i), time.Minute)
		})
	}
	wg.Wait()
	winner := -1
	for i, err := range errs {
		switch {
		case err == nil && winner >= 0:
			t.Fatalf("owners %d and %d both hold the lease", winner, i)
		case err == nil:
			winner = i
		default:
			wantCode(t, err, strata.Conflict, "a losing claim")
		}
	}
	if winner < 0 {
		t.Fatal("no owner got the lease")
	}
	for i, l := range leases {
		if i != winner && (l.Owner != leases[winner].Owner || l.Epoch != leases[winner].Epoch) {
			t.Fatalf("loser %d was told the holder is %+v, want %+v", i, l, leases[winner])
		}
	}
}

// testTransmitStatesSnapshot reads the states while batches commit: a state's checkpoint and
// counts are read in one snapshot, so that they always belong to the same commits (a checkpoint
// from before a commit with the counts from after it would show records beyond the checkpoint).
func (s suite) testTransmitStatesSnapshot(t *testing.T) {
	ctx := testContext(t)
	_, ts := capability[strata.TransmitStore](t, s)
	const batches, per = 200, 5
	l := mustClaimTransmitter(t, ts, "crl", "writer", time.Hour)
	done := make(chan error, 1)
	go func() {
		for b := range batches {
			ds := make([]strata.Delivery, 0, per)
			for i := b*per + 1; i <= (b+1)*per; i++ {
				ds = append(ds, delivery(i, strata.DeliverySent))
			}
			cp := ds[len(ds)-1].Position
			if err := ts.CommitDeliveries(ctx, strata.DeliveryCommit{Transmitter: "crl", Deliveries: ds, Checkpoint: &cp, Lease: &l}); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	// Record i is at event i: a snapshot has as many sent records as its checkpoint's event.
	for writing := true; writing; {
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("commit deliveries: %v", err)
			}
			writing = false
		default:
		}
		st, ok := transmitterState(t, ts, "crl")
		if !ok {
			t.Fatal("a transmitter holding its lease has no state")
		}
		if st.Sent != int64(st.Checkpoint.Event) || st.Owner != l.Owner || st.Epoch != l.Epoch {
			t.Fatalf("state %+v: %d sent records with the checkpoint at event %d, want one snapshot of the commits and the lease %+v",
				st, st.Sent, st.Checkpoint.Event, l)
		}
		if !writing && st.Sent != batches*per {
			t.Fatalf("state after the last commit: %+v, want %d sent", st, batches*per)
		}
	}
}

func (s suite) testTransmitLarge(t *testing.T) {
	_, ts := capability[strata.TransmitStore](t, s)
	var ds []strata.Delivery
	for i := 1; i <= 1203; i++ {
		ds = append(ds, delivery(i, strata.DeliverySent))
	}
	cp := ds[len(ds)-1].Position
	mustCommitDeliveries(t, ts, strata.DeliveryCommit{Transmitter: "crl", Deliveries: ds, Checkpoint: &cp})
	state, _ := transmitterState(t, ts, "crl")
	if state.Sent != 1203 || state.Checkpoint != cp {
		t.Fatalf("state after a large commit: %+v", state)
	}
}

func (s suite) testTransmitReopen(t *testing.T) {
	skipWithoutReopen(t, s)
	st, ts := capability[strata.TransmitStore](t, s)
	cp := strata.Position{Commit: 1 << 40, Event: 77}
	l := mustClaimTransmitter(t, ts, "crl", "a", time.Hour)
	mustCommitDeliveries(t, ts, strata.DeliveryCommit{Transmitter: "crl", Deliveries: []strata.Delivery{delivery(1, strata.DeliveryDead)}, Checkpoint: &cp, Lease: &l})
	ts2 := reopen[strata.TransmitStore](t, s, st)
	wantTransmitCheckpoint(t, ts2, "crl", cp)
	// The lease survives a restart of the store: another owner still waits, the holder commits.
	_, err := ts2.ClaimTransmitter(testContext(t), "crl", "b", time.Minute)
	wantCode(t, err, strata.Conflict, "claim after reopen")
	mustCommitDeliveries(t, ts2, strata.DeliveryCommit{Transmitter: "crl", Lease: &l, Checkpoint: &cp})
	got := mustDeliveries(t, ts2, strata.DeliveryQuery{Transmitter: "crl"})
	if len(got) != 1 {
		t.Fatalf("%d records after reopen", len(got))
	}
	sameDelivery(t, got[0], delivery(1, strata.DeliveryDead))
}

func (s suite) testTransmitBadInput(t *testing.T) {
	ctx := testContext(t)
	_, ts := capability[strata.TransmitStore](t, s)
	bad := func(mut func(*strata.Delivery)) []strata.Delivery {
		d := delivery(1, strata.DeliverySent)
		mut(&d)
		return []strata.Delivery{d}
	}
	for _, c := range []struct {
		what string
		c    strata.DeliveryCommit
	}{
		{"empty name", strata.DeliveryCommit{}},
		{"oversized name", strata.DeliveryCommit{Transmitter: strings.Repeat("t", strata.MaxTransmitterNameLen+1)}},
		{"name with a control character", strata.DeliveryCommit{Transmitter: "crl\n"}},
		{"no event ID", strata.DeliveryCommit{Transmitter: "crl", Deliveries: bad(func(d *strata.Delivery) { d.EventID = uuid.Nil })}},
		{"bad status", strata.DeliveryCommit{Transmitter: "crl", Deliveries: bad(func(d *strata.Delivery) { d.Status = "lost" })}},
		{"no version", strata.DeliveryCommit{Transmitter: "crl", Deliveries: bad(func(d *strata.Delivery) { d.Version = 0 })}},
		{"no position", strata.DeliveryCommit{Transmitter: "crl", Deliveries: bad(func(d *strata.Delivery) { d.Position = strata.Start })}},
		{"no stream", strata.DeliveryCommit{Transmitter: "crl", Deliveries: bad(func(d *strata.Delivery) { d.Stream = "" })}},
		{"negative attempts", strata.DeliveryCommit{Transmitter: "crl", Deliveries: bad(func(d *strata.Delivery) { d.Attempts = -1 })}},
		{"a record twice", strata.DeliveryCommit{Transmitter: "crl", Deliveries: []strata.Delivery{delivery(1, strata.DeliverySent), delivery(2, strata.DeliverySent), delivery(1, strata.DeliveryDead)}}},
	} {
		wantCode(t, ts.CommitDeliveries(ctx, c.c), strata.Invalid, "commit with "+c.what)
	}
	wantTransmitCheckpoint(t, ts, "crl", strata.Start)
	if _, ok := transmitterState(t, ts, "crl"); ok {
		t.Fatal("a rejected commit left a transmitter state")
	}
	_, err := ts.Deliveries(ctx, strata.DeliveryQuery{Transmitter: "crl", Status: "lost"})
	wantCode(t, err, strata.Invalid, "deliveries with a bad status")
	_, err = ts.Deliveries(ctx, strata.DeliveryQuery{})
	wantCode(t, err, strata.Invalid, "deliveries without a transmitter")
	_, err = ts.TransmitCheckpoint(ctx, "")
	wantCode(t, err, strata.Invalid, "checkpoint without a name")
	_, err = ts.RequeueDeliveries(ctx, "", nil)
	wantCode(t, err, strata.Invalid, "requeue without a name")
}

func (s suite) testTransmitAfterClose(t *testing.T) {
	ctx := testContext(t)
	st, ts := capability[strata.TransmitStore](t, s)
	mustCommitDeliveries(t, ts, strata.DeliveryCommit{Transmitter: "crl", Deliveries: []strata.Delivery{delivery(1, strata.DeliverySent)}})
	if err := st.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	wantClosed(t, ts.CommitDeliveries(ctx, strata.DeliveryCommit{Transmitter: "crl", Deliveries: []strata.Delivery{delivery(2, strata.DeliverySent)}}), "commit deliveries")
	_, err := ts.TransmitCheckpoint(ctx, "crl")
	wantClosed(t, err, "transmit checkpoint")
	_, err = ts.Deliveries(ctx, strata.DeliveryQuery{Transmitter: "crl"})
	wantClosed(t, err, "deliveries")
	_, err = ts.TransmitterStates(ctx)
	wantClosed(t, err, "transmitter states")
	_, err = ts.PruneDeliveryRecords(ctx, strata.DeliveryPrune{Transmitter: "crl", SentBefore: time.Now()})
	wantClosed(t, err, "prune delivery records")
	_, err = ts.ClaimTransmitter(ctx, "crl", "a", time.Minute)
	wantClosed(t, err, "claim transmitter")
	_, err = ts.RenewTransmitLease(ctx, strata.TransmitLease{Transmitter: "crl", Owner: "a", Epoch: 1}, time.Minute)
	wantClosed(t, err, "renew transmit lease")
	wantClosed(t, ts.ReleaseTransmitLease(ctx, strata.TransmitLease{Transmitter: "crl", Owner: "a", Epoch: 1}), "release transmit lease")
}
