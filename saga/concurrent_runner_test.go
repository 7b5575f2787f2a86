package saga_test

import (
	"context"
	"testing"
	"time"

	"github.com/strata-events/strata"
	"github.com/strata-events/strata/inmem"
	"github.com/strata-events/strata/saga"
)

type snoozeAck struct{}

func (snoozeAck) CommandName() string { return "orders.AckSnooze" }

// appendHookStore runs hook once, before the first Append to stream.
type appendHookStore struct {
	*inmem.Store
	stream string
	hook   func()
}

func (s *appendHookStore) Append(ctx context.Context, stream string, expected strata.ExpectedVersion, events ...strata.EventData) (strata.AppendResult, error) {
	if h := s.hook; h != nil && stream == s.stream {
		s.hook = nil
		h()
	}
	return s.Store.Append(ctx, stream, expected, events...)
}

// Two runners of one saga decide the same input on different states: the one that appends
// second finds the step's record IDs taken by a record of other content. It must not carry out
// its own, unrecorded decision: the recorded step is the one that counts.
func TestRunnerThatLostTheRaceDoesNotDispatchItsOwnDecision(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	mem := inmem.New()
	defer mem.Close()
	reg := registry(t)
	def := definition()
	react := def.React
	// A snooze before the reminder acknowledges it; after the reminder it does nothing.
	def.React = func(s reminderState, in saga.Input) (saga.Reaction[any], error) {
		if in.Message != nil {
			if v, ok := in.Message.Value.(snoozed); ok {
				var r saga.Reaction[any]
				if !s.Reminded {
					r.Timers = []saga.Timer{{Name: "remind", At: t0.Add(time.Duration(v.Hours) * time.Hour)}}
					r.Commands = []saga.Command{{Stream: "order-1", Command: snoozeAck{}}}
				}
				return r, nil
			}
		}
		return react(s, in)
	}
	st := &appendHookStore{Store: mem, stream: "reminder-1"}
	var d1, d2 dispatched
	r1, err := saga.NewRunner(st, reg, def, d1.dispatch, saga.WithClock((&clock{now: t0}).Now))
	if err != nil {
		t.Fatal(err)
	}
	r2, err := saga.NewRunner(mem, reg, def, d2.dispatch, saga.WithClock((&clock{now: t0.Add(2 * time.Hour)}).Now))
	if err != nil {
		t.Fatal(err)
	}
	appendEvent(t, mem, reg, "order-1", orderPlaced{Order: "1"})
	if err := r1.Catchup(ctx); err != nil {
		t.Fatal(err)
	}
	appendEvent(t, mem, reg, "order-1", snoozed{Order: "1", Hours: 5})
	st.hook = func() {
		// r1 has decided the snooze (not reminded yet: acknowledge it). Before it appends, the
		// other runner fires the reminder and handles the snooze: nothing to acknowledge.
		if n, err := r2.FireDue(ctx); err != nil || n != 1 {
			t.Errorf("the second runner fired %d timers: %v", n, err)
		}
		if err := r2.Catchup(ctx); err != nil {
			t.Error(err)
		}
	}
	if err := r1.Catchup(ctx); err != nil {
		t.Fatal(err)
	}
	if len(d2.ids) != 1 {
		t.Fatalf("the second runner dispatched %d commands; want the reminder", len(d2.ids))
	}
	if len(d1.ids) != 0 {
		t.Errorf("the first runner dispatched %d commands its saga's stream does not record", len(d1.ids))
	}
}
