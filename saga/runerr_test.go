package saga_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/strata-events/strata/inmem"
	"github.com/strata-events/strata/saga"
)

// A dispatcher whose own call timed out is a failure: the step is not done, and Run reports
// it rather than return nil, as it does when its caller's context ends.
func TestRunReportsDispatchTimeout(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st := inmem.New()
	defer st.Close()
	reg := registry(t)
	clk := &clock{now: t0.Add(2 * time.Hour)}
	dispatch := func(ctx context.Context, d saga.Dispatch) error {
		cctx, ccancel := context.WithTimeout(ctx, time.Millisecond)
		defer ccancel()
		<-cctx.Done() // the remote service did not answer in time
		return fmt.Errorf("orders service: %w", cctx.Err())
	}
	r, err := saga.NewRunner(st, reg, definition(), dispatch, saga.WithClock(clk.Now), saga.WithTimerPoll(5*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	appendEvent(t, st, reg, "order-1", orderPlaced{Order: "1"}) // schedules a reminder due at +1h: fires at once
	err = r.Run(ctx)
	if ctx.Err() != nil {
		t.Fatal("Run ran until the test's deadline")
	}
	if err == nil {
		t.Fatalf("Run returned nil while its context is live; the dispatch timed out and the saga stopped silently")
	}
}
