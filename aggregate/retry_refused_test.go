package aggregate_test

import (
	"context"
	"errors"
	"iter"
	"sync/atomic"
	"testing"

	"github.com/strata-events/strata"
	"github.com/strata-events/strata/aggregate"
	"github.com/strata-events/strata/inmem"
)

var errNothingToReset = errors.New("counter: nothing to reset")

// A command resent with its ID (the caller did not learn the outcome) is a duplicate even when
// the state it led to refuses it: the retry must not report a refusal of a command that was
// handled.
func TestRetryOfHandledCommandThatTheNewStateRefuses(t *testing.T) {
	t.Parallel()
	d := counterDecider
	d.Decide = func(s counter, c aggregate.Command) ([]any, error) {
		if _, ok := c.(reset); ok && s.Total == 0 {
			return nil, errNothingToReset
		}
		return counterDecider.Decide(s, c)
	}
	for name, opts := range map[string][]aggregate.Option{
		"no snapshots":   nil,
		"from snapshots": {aggregate.WithSnapshots(1, 1)},
	} {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			st := inmem.New()
			t.Cleanup(func() { st.Close() })
			repo, err := aggregate.New(st, counterRegistry(t), d, opts...)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := repo.Handle(ctx, cmd("counter-1", add{N: 5})); err != nil {
				t.Fatal(err)
			}
			env := cmd("counter-1", reset{})
			if _, err := repo.Handle(ctx, env); err != nil {
				t.Fatal(err)
			}
			res, err := repo.Handle(ctx, env)
			if err != nil || !res.Duplicate || res.Version != 2 || res.Events != 0 {
				t.Fatalf("the reset again, same ID: %+v %v; want a duplicate at version 2", res, err)
			}
			if _, err := repo.Handle(ctx, cmd("counter-1", reset{})); !errors.Is(err, errNothingToReset) {
				t.Fatalf("a new reset: %v; want it refused", err)
			}
		})
	}
}

// eventCounter counts the events a store's ReadStream yields.
type eventCounter struct {
	strata.Store
	events atomic.Int64
}

func (r *eventCounter) ReadStream(ctx context.Context, stream string, opts strata.ReadStreamOptions) iter.Seq2[strata.Event, error] {
	return func(yield func(strata.Event, error) bool) {
		for e, err := range r.Store.ReadStream(ctx, stream, opts) {
			r.events.Add(1)
			if !yield(e, err) {
				return
			}
		}
	}
}

// TestRefusalReadsABoundedWindow: telling a resent command from a new one that the state
// refuses reads at most the stream's last aggregate.DuplicateWindow events, whatever its length:
// a refusal is a common answer and must not cost a read of the whole stream.
func TestRefusalReadsABoundedWindow(t *testing.T) {
	t.Parallel()
	d := counterDecider
	d.Decide = func(s counter, c aggregate.Command) ([]any, error) {
		if _, ok := c.(reset); ok && s.Total == 0 {
			return nil, errNothingToReset
		}
		return counterDecider.Decide(s, c)
	}
	ctx := context.Background()
	mem := inmem.New()
	t.Cleanup(func() { mem.Close() })
	st := &eventCounter{Store: mem}
	repo, err := aggregate.New(st, counterRegistry(t), d)
	if err != nil {
		t.Fatal(err)
	}
	first := cmd("counter-1", reset{})
	if _, err := repo.Handle(ctx, cmd("counter-1", add{N: 1})); err != nil {
		t.Fatal(err)
	}
	if _, err := repo.Handle(ctx, first); err != nil {
		t.Fatal(err)
	}
	var evs []strata.EventData
	for range 3 * aggregate.DuplicateWindow {
		evs = append(evs, strata.EventData{Type: "Reset", Schema: 1, Data: []byte(`{}`)})
	}
	if _, err := mem.Append(ctx, "counter-1", strata.Any, evs...); err != nil {
		t.Fatal(err)
	}
	st.events.Store(0)
	if _, err := repo.Handle(ctx, first); !errors.Is(err, errNothingToReset) {
		t.Fatalf("the reset resent %d events later: %v; want it refused (beyond the window)", 3*aggregate.DuplicateWindow, err)
	}
	// Loading the state reads the whole stream (3 windows and 2); the check, one window.
	if n := st.events.Load(); n > 4*aggregate.DuplicateWindow+2 {
		t.Fatalf("a refusal read %d events, want at most the stream's %d and a window of %d", n, 3*aggregate.DuplicateWindow+2, aggregate.DuplicateWindow)
	}
}
