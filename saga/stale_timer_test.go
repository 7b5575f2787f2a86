package saga_test

import (
	"context"
	"testing"
	"time"

	"github.com/strata-events/strata"
	"github.com/strata-events/strata/inmem"
	"github.com/strata-events/strata/saga"
)

// hookStore runs hook once, after DueTimers has read the due timers and before it returns them:
// the moment at which Run's log goroutine may step an event while its timer goroutine holds a
// stale list of due timers.
type hookStore struct {
	*inmem.Store
	hook func()
}

func (s *hookStore) DueTimers(ctx context.Context, owner string, now time.Time, limit int) ([]strata.Timer, error) {
	due, err := s.Store.DueTimers(ctx, owner, now, limit)
	if h := s.hook; h != nil {
		s.hook = nil
		h()
	}
	return due, err
}

// A timer that a step replaces (or cancels) after FireDue listed it as due must not fire: the
// step checks that the timer is still the instance's pending timer of its name.
func TestReplacedTimerDoesNotFire(t *testing.T) {
	ctx := context.Background()
	mem := inmem.New()
	defer mem.Close()
	st := &hookStore{Store: mem}
	reg := registry(t)
	clk := &clock{now: t0}
	var d dispatched
	r, err := saga.NewRunner(st, reg, definition(), d.dispatch, saga.WithClock(clk.Now))
	if err != nil {
		t.Fatal(err)
	}
	appendEvent(t, st, reg, "order-1", orderPlaced{Order: "1"}) // reminder at +1h
	if err := r.Catchup(ctx); err != nil {
		t.Fatal(err)
	}
	clk.Set(t0.Add(2 * time.Hour))
	appendEvent(t, st, reg, "order-1", snoozed{Order: "1", Hours: 5}) // replaces it with +5h
	st.hook = func() {
		// The log side handles the snooze now (as Run's runLog would, concurrently).
		if err := r.Catchup(ctx); err != nil {
			t.Error(err)
		}
	}
	if _, err := r.FireDue(ctx); err != nil {
		t.Fatal(err)
	}
	d.mu.Lock()
	n := len(d.ids)
	d.mu.Unlock()
	if n != 0 {
		t.Errorf("%d Remind commands at +2h: the reminder replaced by the snooze (now due at +5h) fired anyway", n)
	}
	clk.Set(t0.Add(6 * time.Hour))
	if _, err := r.FireDue(ctx); err != nil {
		t.Fatal(err)
	}
	if len(d.ids) != 1 {
		t.Errorf("%d Remind commands in all; want 1", len(d.ids))
	}
}
