package follow_test

import (
	"context"
	"errors"
	"iter"
	"testing"
	"testing/synctest"

	"github.com/google/uuid"

	"github.com/strata-events/strata"
	"github.com/strata-events/strata/internal/follow"
)

// fakeLog is a Source whose log the test fills. A commit can be made to land while a read is
// in progress, after the read has passed the place where the new event goes.
type fakeLog struct {
	sig    follow.Signal
	events []strata.Event
	reads  int
	// during, if set, runs inside the next read after it has taken what it returns.
	during func()
}

func (l *fakeLog) commit() {
	n := uint64(len(l.events) + 1)
	l.events = append(l.events, strata.Event{ID: uuid.New(), Position: strata.Position{Commit: n, Event: n}})
	l.sig.Notify()
}

func (l *fakeLog) readAll(_ context.Context, opts strata.ReadAllOptions) iter.Seq2[strata.Event, error] {
	return func(yield func(strata.Event, error) bool) {
		l.reads++
		var page []strata.Event
		for _, e := range l.events {
			if opts.After.Less(e.Position) && (opts.Limit == 0 || len(page) < opts.Limit) {
				page = append(page, e)
			}
		}
		if fn := l.during; fn != nil {
			l.during = nil
			fn()
		}
		for _, e := range page {
			if !yield(e, nil) {
				return
			}
		}
	}
}

// TestCommitDuringReadIsNotMissed commits while the subscription reads, after the read has
// taken its page: the commit's wake-up must bring the subscription back for the new event at
// once. Catches a loop that takes the wake-up channel only after its read, which misses that
// wake-up and waits for the next commit (for ever, without polling). synctest tells when the
// subscription is blocked, so the test needs no timeout.
func TestCommitDuringReadIsNotMissed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		l := &fakeLog{}
		l.commit()
		closed := make(chan struct{})
		got := make(chan strata.Event, 8)
		l.during = l.commit // the second event commits while the first read is under way
		done := make(chan error, 1)
		go func() {
			src := follow.Source{ReadAll: l.readAll, Wake: l.sig.C, Closed: closed}
			for e, err := range follow.Subscribe(ctx, src, "subscribe", strata.Start, strata.Filter{}) {
				if err != nil {
					done <- err
					return
				}
				got <- e
			}
			done <- errors.New("subscription ended without an error")
		}()
		synctest.Wait() // the subscription has read what there is and waits
		if len(got) != 2 {
			t.Fatalf("the subscription delivered %d events and waits after %d reads, want both events: it missed the wake-up of a commit made during its read", len(got), l.reads)
		}
		for i := range 2 {
			if e := <-got; e.ID != l.events[i].ID {
				t.Fatalf("event %d is %s, want %s", i, e.Position, l.events[i].Position)
			}
		}
		// And it still follows: a later commit comes through.
		l.commit()
		synctest.Wait()
		if len(got) != 1 {
			t.Fatalf("a commit after the subscription started waiting delivered %d events, want 1", len(got))
		}
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Fatalf("cancelled subscription ended with %v, want context.Canceled", err)
		}
	})
}

// TestFullPageReadsOn catches up on more than a page of events without waiting for a commit:
// after a full page the loop reads on at once. Catches a loop that waits after every page,
// which stalls a subscription a page into its catch-up until the next commit.
func TestFullPageReadsOn(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		l := &fakeLog{}
		const n = 2*follow.PageSize + 1
		for range n {
			l.commit()
		}
		got := make(chan strata.Event, n)
		go func() {
			src := follow.Source{ReadAll: l.readAll, Wake: l.sig.C, Closed: make(chan struct{})}
			for e, err := range follow.Subscribe(ctx, src, "subscribe", strata.Start, strata.Filter{}) {
				if err != nil {
					return
				}
				got <- e
			}
		}()
		synctest.Wait()
		if len(got) != n {
			t.Fatalf("the subscription delivered %d of %d events and waits: it stopped after a full page", len(got), n)
		}
		for i := range n {
			if e := <-got; e.ID != l.events[i].ID {
				t.Fatalf("event %d is %s, want %s", i, e.Position, l.events[i].Position)
			}
		}
	})
}
