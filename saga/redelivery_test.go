package saga_test

import (
	"context"
	"testing"
	"time"

	"github.com/strata-events/strata"
	"github.com/strata-events/strata/inmem"
	"github.com/strata-events/strata/saga"
)

// An event delivered again after its step is done (a crash between the step and the checkpoint,
// with the timer goroutine firing the step's timer in between; or a second runner that lags) must
// not schedule again a timer that has fired since: the timer would fire a second time.
func TestRedeliveredEventDoesNotRescheduleAFiredTimer(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := inmem.New()
	defer st.Close()
	reg := registry(t)
	clk := &clock{now: t0.Add(2 * time.Hour)} // the reminder (+1h) is due at once
	var d dispatched
	r, err := saga.NewRunner(st, reg, definition(), d.dispatch, saga.WithClock(clk.Now))
	if err != nil {
		t.Fatal(err)
	}
	appendEvent(t, st, reg, "order-1", orderPlaced{Order: "1"})
	if err := r.Catchup(ctx); err != nil {
		t.Fatal(err)
	}
	if len(d.ids) != 1 {
		t.Fatalf("%d Remind commands; want 1", len(d.ids))
	}
	// The checkpoint is behind the event: it is delivered again.
	if err := st.SaveCheckpoint(ctx, "saga:reminder", strata.Start); err != nil {
		t.Fatal(err)
	}
	if err := r.Catchup(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := r.FireDue(ctx); err != nil {
		t.Fatal(err)
	}
	if len(d.ids) != 1 {
		t.Errorf("%d Remind commands; the reminder fired again after the order event was delivered again", len(d.ids))
	}
}
