package saga_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/strata-events/strata"
	"github.com/strata-events/strata/codec"
	"github.com/strata-events/strata/inmem"
	"github.com/strata-events/strata/saga"
	"github.com/strata-events/strata/storetest"
)

// A reminder saga: an order opens it and schedules a reminder; every "Snooze" replaces the
// reminder; "Cancel" cancels it; a fired reminder issues a Remind command.
type (
	orderPlaced struct {
		Order string `json:"order"`
	}
	snoozed struct {
		Order string `json:"order"`
		Hours int    `json:"hours"`
	}
	cancelled struct {
		Order string `json:"order"`
	}
	opened   struct{}
	reminded struct{}
	remind   struct{ Order string }
)

func (remind) CommandName() string { return "orders.Remind" }

type reminderState struct {
	Open, Reminded bool
}

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func definition() saga.Definition[reminderState, any] {
	return saga.Definition[reminderState, any]{
		Name:   "reminder",
		Filter: strata.Filter{StreamPrefix: "order-"},
		Correlate: func(m codec.Message) (string, bool) {
			switch v := m.Value.(type) {
			case orderPlaced:
				return v.Order, true
			case snoozed:
				return v.Order, true
			case cancelled:
				return v.Order, true
			}
			return "", false
		},
		React: func(s reminderState, in saga.Input) (saga.Reaction[any], error) {
			var r saga.Reaction[any]
			if in.Timer != nil {
				r.Events = []any{reminded{}}
				r.Commands = []saga.Command{{Stream: "order-x", Command: remind{}}}
				return r, nil
			}
			switch v := in.Message.Value.(type) {
			case orderPlaced:
				r.Events = []any{opened{}}
				r.Timers = []saga.Timer{{Name: "remind", At: t0.Add(time.Hour), Data: []byte("first")}}
			case snoozed:
				r.Timers = []saga.Timer{{Name: "remind", At: t0.Add(time.Duration(v.Hours) * time.Hour)}}
			case cancelled:
				r.CancelTimers = []string{"remind"}
			}
			return r, nil
		},
		Evolve: func(s reminderState, e any) reminderState {
			switch e.(type) {
			case opened:
				s.Open = true
			case reminded:
				s.Reminded = true
			}
			return s
		},
	}
}

func registry(t *testing.T) *codec.Registry {
	t.Helper()
	r := codec.NewRegistry()
	for _, err := range []error{
		codec.Register[orderPlaced](r, "OrderPlaced", 1), codec.Register[snoozed](r, "Snoozed", 1),
		codec.Register[cancelled](r, "Cancelled", 1), codec.Register[opened](r, "ReminderOpened", 1),
		codec.Register[reminded](r, "Reminded", 1),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	return r
}

type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

type dispatched struct {
	mu  sync.Mutex
	ids []uuid.UUID
	err error
}

func (d *dispatched) dispatch(_ context.Context, x saga.Dispatch) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.ids = append(d.ids, x.ID)
	return d.err
}

func appendEvent(t *testing.T, st strata.Store, reg *codec.Registry, stream string, v any) {
	t.Helper()
	d, err := reg.Encode(context.Background(), v, strata.Metadata{Tenant: "shop"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Append(context.Background(), stream, strata.Any, d); err != nil {
		t.Fatal(err)
	}
}

func TestTimersReplaceCancelAndFire(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := inmem.New()
	defer st.Close()
	reg := registry(t)
	clk := &clock{now: t0}
	var d dispatched
	r, err := saga.NewRunner(st, reg, definition(), d.dispatch, saga.WithClock(clk.Now))
	if err != nil {
		t.Fatal(err)
	}
	appendEvent(t, st, reg, "order-1", orderPlaced{Order: "1"})
	appendEvent(t, st, reg, "order-1", snoozed{Order: "1", Hours: 5})
	appendEvent(t, st, reg, "order-2", orderPlaced{Order: "2"})
	appendEvent(t, st, reg, "order-2", cancelled{Order: "2"})
	if err := r.Catchup(ctx); err != nil {
		t.Fatal(err)
	}
	due, _ := st.DueTimers(ctx, "reminder", t0.AddDate(1, 0, 0), 0)
	if len(due) != 1 || !due[0].DueAt.Equal(t0.Add(5*time.Hour)) || due[0].Key != "reminder-1" {
		t.Fatalf("pending timers %+v: want order 1's, snoozed to +5h, and none for the cancelled order 2", due)
	}
	clk.Set(t0.Add(2 * time.Hour)) // the replaced reminder would have fired at +1h
	if n, err := r.FireDue(ctx); err != nil || n != 0 {
		t.Fatalf("fired %d at +2h: %v", n, err)
	}
	clk.Set(t0.Add(6 * time.Hour))
	if n, err := r.FireDue(ctx); err != nil || n != 1 {
		t.Fatalf("fired %d at +6h: %v", n, err)
	}
	s, _, err := r.Load(ctx, "1")
	if err != nil || !s.Reminded || len(d.ids) != 1 {
		t.Fatalf("state %+v, %d commands, %v", s, len(d.ids), err)
	}
	evs, _ := storetest.Collect(st.ReadStream(ctx, "reminder-1", strata.ReadStreamOptions{}))
	for _, e := range evs {
		if e.Meta.Tenant != "shop" || e.Meta.Principal != "saga:reminder" {
			t.Errorf("%s carries %+v; want the input's tenant and the saga as principal", e.Type, e.Meta)
		}
	}
}

func TestRefusedCommandIsRecorded(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := inmem.New()
	defer st.Close()
	reg := registry(t)
	clk := &clock{now: t0.Add(2 * time.Hour)}
	d := dispatched{err: errors.New("orders: no such order")}
	r, err := saga.NewRunner(st, reg, definition(), d.dispatch, saga.WithClock(clk.Now))
	if err != nil {
		t.Fatal(err)
	}
	appendEvent(t, st, reg, "order-1", orderPlaced{Order: "1"})
	if err := r.Catchup(ctx); err != nil {
		t.Fatal(err)
	}
	evs, _ := storetest.Collect(st.ReadStream(ctx, "reminder-1", strata.ReadStreamOptions{}))
	last := evs[len(evs)-1]
	if last.Type != saga.CommandRejectedType {
		t.Fatalf("last event %s; want the refusal recorded", last.Type)
	}
	m, err := reg.DecodeOne(ctx, last)
	if err != nil || m.Value.(saga.CommandRejected).Error != "orders: no such order" {
		t.Fatalf("%+v %v", m.Value, err)
	}
	// A retryable failure stops the runner instead, and the step is redone on the next run.
	st2 := inmem.New()
	defer st2.Close()
	d2 := dispatched{err: &strata.Error{Code: strata.Unavailable, Msg: "broker down"}}
	r2, _ := saga.NewRunner(st2, reg, definition(), d2.dispatch, saga.WithClock(clk.Now))
	appendEvent(t, st2, reg, "order-1", orderPlaced{Order: "1"})
	if err := r2.Catchup(ctx); !errors.Is(err, strata.ErrUnavailable) {
		t.Fatalf("a retryable dispatch error: %v", err)
	}
	d2.err = nil
	if err := r2.Catchup(ctx); err != nil {
		t.Fatal(err)
	}
	if len(d2.ids) != 2 || d2.ids[0] != d2.ids[1] {
		t.Fatalf("dispatches %v: want the same command ID twice", d2.ids)
	}
}

// TestRunFollowsLiveAndFiresTimers runs the saga continuously: events appended while it runs are
// handled, and a timer is fired when the clock passes it.
func TestRunFollowsLiveAndFiresTimers(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	st := inmem.New()
	defer st.Close()
	reg := registry(t)
	clk := &clock{now: t0}
	var fired atomic.Int64
	r, err := saga.NewRunner(st, reg, definition(), func(context.Context, saga.Dispatch) error { fired.Add(1); return nil },
		saga.WithClock(clk.Now), saga.WithTimerPoll(5*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- r.Run(runCtx) }()
	appendEvent(t, st, reg, "order-1", orderPlaced{Order: "1"})
	for {
		if due, _ := st.DueTimers(ctx, "reminder", t0.AddDate(1, 0, 0), 0); len(due) == 1 {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatal("the running saga never scheduled the reminder")
		case <-time.After(5 * time.Millisecond):
		}
	}
	clk.Set(t0.Add(2 * time.Hour))
	for fired.Load() == 0 {
		select {
		case <-ctx.Done():
			t.Fatal("the running saga never fired the reminder")
		case <-time.After(5 * time.Millisecond):
		}
	}
	stop()
	if err := <-done; err != nil {
		t.Fatalf("Run after cancel: %v", err)
	}
}

func TestNewRunnerRejects(t *testing.T) {
	t.Parallel()
	st := inmem.New()
	defer st.Close()
	reg := registry(t)
	noop := func(context.Context, saga.Dispatch) error { return nil }
	bad := definition()
	bad.React = nil
	unnamed := definition()
	unnamed.Name = ""
	for name, err := range map[string]error{
		"no dispatcher": func() error { _, err := saga.NewRunner(st, reg, definition(), nil); return err }(),
		"no React":      func() error { _, err := saga.NewRunner(st, reg, bad, noop); return err }(),
		"no name":       func() error { _, err := saga.NewRunner(st, reg, unnamed, noop); return err }(),
	} {
		if !errors.Is(err, strata.ErrInvalid) {
			t.Errorf("%s: %v, want Invalid", name, err)
		}
	}
}

// TestCallbackPanicsStopTheRunner: a panic in Correlate, Initial or Done stops the runner
// with an Internal error, as one in React does, rather than crashing the process; the
// checkpoint stays before the event.
func TestCallbackPanicsStopTheRunner(t *testing.T) {
	t.Parallel()
	for name, broken := range map[string]func(*saga.Definition[reminderState, any]){
		"Correlate": func(d *saga.Definition[reminderState, any]) {
			d.Correlate = func(codec.Message) (string, bool) { panic("bug") }
		},
		"Initial": func(d *saga.Definition[reminderState, any]) { d.Initial = func() reminderState { panic("bug") } },
		"Done":    func(d *saga.Definition[reminderState, any]) { d.Done = func(reminderState) bool { panic("bug") } },
	} {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			st := inmem.New()
			defer st.Close()
			reg := registry(t)
			def := definition()
			broken(&def)
			r, err := saga.NewRunner(st, reg, def, func(context.Context, saga.Dispatch) error { return nil })
			if err != nil {
				t.Fatal(err)
			}
			appendEvent(t, st, reg, "order-1", orderPlaced{Order: "1"})
			if err := r.Catchup(ctx); !errors.Is(err, strata.ErrInternal) {
				t.Fatalf("a panicking %s: %v; want an Internal *strata.Error", name, err)
			}
			if pos, _ := st.LoadCheckpoint(ctx, "saga:reminder"); !pos.IsZero() {
				t.Fatalf("the checkpoint moved past the failed step to %s", pos)
			}
		})
	}
}

// TestTimerTheStoreRefusesIsNotRecorded: a timer from React that the timer store would refuse
// (due in year 10000, or with no due time) stops the runner before the step is recorded: a
// recorded one would fail the step's effects on every attempt, for good.
func TestTimerTheStoreRefusesIsNotRecorded(t *testing.T) {
	t.Parallel()
	for name, at := range map[string]time.Time{"year 10000": time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC), "no due time": {}} {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			st := inmem.New()
			defer st.Close()
			reg := registry(t)
			def := definition()
			react := def.React
			def.React = func(s reminderState, in saga.Input) (saga.Reaction[any], error) {
				r, err := react(s, in)
				for i := range r.Timers {
					r.Timers[i].At = at
				}
				return r, err
			}
			r, err := saga.NewRunner(st, reg, def, func(context.Context, saga.Dispatch) error { return nil })
			if err != nil {
				t.Fatal(err)
			}
			appendEvent(t, st, reg, "order-1", orderPlaced{Order: "1"})
			if err := r.Catchup(ctx); !errors.Is(err, strata.ErrInvalid) {
				t.Fatalf("a timer due at %v: %v, want Invalid", at, err)
			}
			for e, err := range st.ReadStream(ctx, r.Stream("1"), strata.ReadStreamOptions{}) {
				if err != nil {
					t.Fatal(err)
				}
				t.Fatalf("the step was recorded: %s %s", e.Type, e.Data)
			}
		})
	}
}

func TestReactErrorsAndPanicsStopTheRunner(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := inmem.New()
	defer st.Close()
	reg := registry(t)
	def := definition()
	def.React = func(reminderState, saga.Input) (saga.Reaction[any], error) { panic("bug") }
	r, err := saga.NewRunner(st, reg, def, func(context.Context, saga.Dispatch) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	appendEvent(t, st, reg, "order-1", orderPlaced{Order: "1"})
	if err := r.Catchup(ctx); err == nil {
		t.Fatal("a panicking React did not stop the runner")
	} else if !errors.Is(err, strata.ErrInternal) {
		t.Fatalf("a panicking React: %v; want an Internal *strata.Error", err)
	}
	if pos, _ := st.LoadCheckpoint(ctx, "saga:reminder"); !pos.IsZero() {
		t.Fatalf("the checkpoint moved past the failed step to %s", pos)
	}
}
