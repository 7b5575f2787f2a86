package projection_test

import (
	"context"
	"testing"
	"time"

	"github.com/strata-events/strata/internal/backends"
	"github.com/strata-events/strata/projection"
)

// TestCatchupLeavesOthersPartitions: Catchup next to a running worker that holds the
// partitions leaves them to it and returns, as its doc says, rather than wait until its
// context ends (and then return nil as if it had caught up).
func TestCatchupLeavesOthersPartitions(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	s, open := backends.Open(t, "sqlite")
	n := appendCerts(t, ctx, s, "c", 20)
	s2 := open(t)
	ma, mb := newModel(s, 1), newModel(s2, 1)
	wa, err := projection.NewWorker(s, ma.def("shared", 1, 2), fastOpts(projection.WithOwner("a"))...)
	if err != nil {
		t.Fatal(err)
	}
	start(t, ctx, wa)
	waitFor(t, "worker a holding both partitions, caught up", func() bool {
		sts, _ := projection.Statuses(ctx, s, "shared")
		held := 0
		for _, st := range sts {
			if st.Owner == "a" && st.LagEvents == 0 {
				held++
			}
		}
		return held == 2 && len(ma.rows(t, ctx, s)) == n
	})
	wb, err := projection.NewWorker(s2, mb.def("shared", 1, 2), fastOpts(projection.WithOwner("b"))...)
	if err != nil {
		t.Fatal(err)
	}
	cctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if err := wb.Catchup(cctx); err != nil || cctx.Err() != nil {
		t.Fatalf("catchup beside a live worker: %v (its context: %v), want it to return", err, cctx.Err())
	}
}
