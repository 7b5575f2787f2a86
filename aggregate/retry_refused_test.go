package aggregate_test

import (
	"context"
	"errors"
	"testing"

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
