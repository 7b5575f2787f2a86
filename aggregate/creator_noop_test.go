package aggregate_test

import (
	"context"
	"testing"

	"github.com/strata-events/strata/aggregate"
	"github.com/strata-events/strata/inmem"
)

// ensureOpen is a stream-creating command that changes nothing on any state: the decider
// answers it with no events.
type ensureOpen struct{}

func (ensureOpen) CommandName() string { return "counter.EnsureOpen" }
func (ensureOpen) CreatesStream() bool { return true }

// A creating command that the decider answers with no events on the guessed (initial) state
// returns the real state and version of an existing stream, not the guess.
func TestCreatorNoEventsReportsTheRealState(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	d := counterDecider
	d.Decide = func(s counter, c aggregate.Command) ([]any, error) {
		if _, ok := c.(ensureOpen); ok {
			return nil, nil
		}
		return counterDecider.Decide(s, c)
	}
	st := inmem.New()
	t.Cleanup(func() { st.Close() })
	repo, err := aggregate.New(st, counterRegistry(t), d)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := repo.Handle(ctx, cmd("counter-1", add{N: 3})); err != nil {
		t.Fatal(err)
	}
	res, err := repo.Handle(ctx, cmd("counter-1", ensureOpen{}))
	if err != nil || res.Version != 1 || res.State.Total != 3 || res.Events != 0 {
		t.Fatalf("ensure open on an existing stream: %+v %v, want version 1, total 3", res, err)
	}
}
