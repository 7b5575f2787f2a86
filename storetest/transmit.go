package storetest

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/strata-events/strata"
)

// RunTransmit runs the section of the suite for [strata.TransmitStore]: checkpoints and records
// committed together, replacing records, paging by position and status, requeueing dead
// letters, counts per status, pruning, restarts, bad input and use after close. [Run] calls it;
// a store that does not implement the interface skips it, or fails it when f.Capabilities is
// set.
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
	n, err := ts.PruneDeliveries(testContext(t), "crl", ds[3].SentAt)
	if err != nil || n != 2 {
		t.Fatalf("prune = %d, %v; want 2 (the sent records 1 and 3)", n, err)
	}
	left := mustDeliveries(t, ts, strata.DeliveryQuery{Transmitter: "crl"})
	if len(left) != 4 || left[0].Version != 2 || left[1].Version != 4 {
		t.Fatalf("left after prune: %v", left)
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
	mustCommitDeliveries(t, ts, strata.DeliveryCommit{Transmitter: "crl", Deliveries: []strata.Delivery{delivery(1, strata.DeliveryDead)}, Checkpoint: &cp})
	ts2 := reopen[strata.TransmitStore](t, s, st)
	wantTransmitCheckpoint(t, ts2, "crl", cp)
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
}
