package ledger_test

import (
	"context"
	"testing"

	"github.com/google/uuid"

	"github.com/strata-events/strata"
	"github.com/strata-events/strata/inmem"
	"github.com/strata-events/strata/ledger"
)

// TestAuditTombstonesNeedARecordedRun: a tombstone whose retention run no RetentionStarted
// event of the log records (one written by someone who can write to the database, with the
// stored leaf hash) is a problem of the audit; one whose run is recorded after the sealed part
// is counted apart, and one whose run is sealed passes.
func TestAuditTombstonesNeedARecordedRun(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := inmem.New()
	defer st.Close()
	acme := strata.Metadata{Tenant: "acme"}
	var evs []strata.EventData
	for _, serial := range []string{"7F3A", "7F3B", "7F3C"} {
		evs = append(evs, strata.EventData{Type: "CertificateIssued", Data: []byte(`{"serial":"` + serial + `"}`), Meta: acme})
	}
	if _, err := st.Append(ctx, "certificate-7F3A", strata.NoStream, evs...); err != nil {
		t.Fatal(err)
	}
	sealed, unsealed, forged := uuid.New(), uuid.New(), uuid.New()
	if _, err := st.Append(ctx, "retention", strata.Any, strata.EventData{ID: sealed, Type: strata.RetentionStartedType, Data: []byte(`{}`)}); err != nil {
		t.Fatal(err)
	}
	s, err := ledger.NewSealer(st)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.SealOnce(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Append(ctx, "retention", strata.Any, strata.EventData{ID: unsealed, Type: strata.RetentionStartedType, Data: []byte(`{}`)}); err != nil {
		t.Fatal(err)
	}
	var stored []strata.Event
	for e, err := range st.ReadStream(ctx, "certificate-7F3A", strata.ReadStreamOptions{}) {
		if err != nil {
			t.Fatal(err)
		}
		stored = append(stored, e)
	}
	for i, run := range []uuid.UUID{sealed, unsealed, forged} {
		h := ledger.LeafHash(ledger.EncodeLeaf(nil, &stored[i]))
		if n, err := st.TombstoneEvents(ctx, []strata.Tombstone{{EventID: stored[i].ID, LeafHash: h[:], Run: run}}); err != nil || n != 1 {
			t.Fatalf("tombstone %d: %d, %v", i, n, err)
		}
	}
	rep, err := ledger.Audit(ctx, st, ledger.AuditOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Tombstoned != 3 || rep.TombstonedByUnsealedRuns != 1 {
		t.Errorf("tombstoned %d, by unsealed runs %d; want 3 and 1", rep.Tombstoned, rep.TombstonedByUnsealedRuns)
	}
	if len(rep.Problems) != 1 || rep.Problems[0].Kind != ledger.Unrecorded || rep.Problems[0].EventID != stored[2].ID {
		t.Fatalf("problems %+v, want the forged tombstone of %s as unrecorded", rep.Problems, stored[2].ID)
	}
}
