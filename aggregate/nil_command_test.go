package aggregate_test

import (
	"context"
	"errors"
	"testing"

	"github.com/strata-events/strata"
	"github.com/strata-events/strata/aggregate"
)

// An envelope without a command is bad input: an Invalid error, not a panic.
func TestHandleWithoutACommandIsInvalid(t *testing.T) {
	t.Parallel()
	repo, _ := newCounters(t)
	var err error
	func() {
		defer func() {
			if p := recover(); p != nil {
				t.Fatalf("Handle panicked: %v", p)
			}
		}()
		_, err = repo.Handle(context.Background(), aggregate.Envelope[aggregate.Command]{Stream: "counter-1"})
	}()
	if !errors.Is(err, strata.ErrInvalid) {
		t.Fatalf("Handle without a command: %v; want Invalid", err)
	}
}
