package query_test

import (
	"testing"
	"time"

	"github.com/strata-events/strata"
	"github.com/strata-events/strata/internal/backends"
	"github.com/strata-events/strata/query"
)

// TestRetentionKeepAllPurgesNothing: with a catch-all policy that keeps for ever, the purgers
// (which run with the catch-all's cutoff) remove nothing; with two catch-alls, the purgers
// use the one that governs the events (the first).
func TestRetentionKeepAllPurgesNothing(t *testing.T) {
	ctx := testCtx(t)
	st, _ := backends.Open(t, "sqlite")
	ts := st.(strata.TransmitStore)
	old := time.Now().Add(-200 * 24 * time.Hour)
	var ds []strata.Delivery
	for i := range 3 {
		ds = append(ds, strata.Delivery{EventID: uuidFor(i), Position: strata.Position{Commit: uint64(i + 1), Event: uint64(i + 1)}, Stream: "certificate-1",
			Version: int64(i + 1), Type: "CertificateIssued", Status: strata.DeliverySent, Attempts: 1, FirstAttemptAt: old, LastAttemptAt: old, SentAt: old})
	}
	if err := ts.CommitDeliveries(ctx, strata.DeliveryCommit{Transmitter: "crl-publisher", Deliveries: ds}); err != nil {
		t.Fatal(err)
	}
	for _, ps := range [][]query.Policy{
		{{Name: "all", Keep: true}},
		{{Name: "default", Keep: true}, {Name: "other", MaxAge: 24 * time.Hour}},
	} {
		r := &query.Retention{Policies: ps, Purgers: []query.Purger{query.DeliveryPurger(ts)}}
		plan, err := r.Plan(ctx, st)
		if err != nil || plan.Purged["deliveries"] != 0 {
			t.Fatalf("plan with %+v: %+v, %v", ps, plan, err)
		}
		rep, err := r.Run(ctx, st)
		if err != nil || rep.Purged["deliveries"] != 0 {
			t.Fatalf("run with %+v: %+v, %v", ps, rep, err)
		}
	}
}
