// Package follow implements the catch-up-then-live loop behind every backend's Subscribe, and the
// in-process wake-up signal that tells followers something was committed.
//
// The loop is only as gap-free as the ReadAll it calls: it re-reads from its cursor after every
// wake-up and never moves the cursor past an event it has not yielded.
package follow

import (
	"context"
	"iter"
	"sync"
	"time"

	"github.com/strata-events/strata"
)

// PageSize is how many events one read of the loop asks for.
const PageSize = 1000

// Signal broadcasts "new events may be committed" to any number of waiters. The zero value is
// ready to use.
type Signal struct {
	mu sync.Mutex
	ch chan struct{}
}

// C returns a channel that is closed by the next Notify. Take it before reading, so that a
// commit that lands between the read and the wait is not missed.
func (s *Signal) C() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ch == nil {
		s.ch = make(chan struct{})
	}
	return s.ch
}

// Notify wakes every waiter.
func (s *Signal) Notify() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ch != nil {
		close(s.ch)
		s.ch = nil
	}
}

// Source is what a backend gives the loop.
type Source struct {
	// ReadAll is the backend's gap-free ReadAll.
	ReadAll func(ctx context.Context, opts strata.ReadAllOptions) iter.Seq2[strata.Event, error]
	// Wake returns a channel closed when new events may have been committed. It is taken before
	// each read.
	Wake func() <-chan struct{}
	// Poll, if positive, also re-reads this often: for commits the backend cannot be told about
	// (other processes writing to SQLite or MySQL).
	Poll time.Duration
	// Closed is closed when the store closes.
	Closed <-chan struct{}
}

// Subscribe yields every event after from that matches filter, then waits for more, until ctx
// is done (yielding ctx's error wrapped in an Unavailable *strata.Error), the store closes
// (yielding the closed error) or a read fails (yielding that error).
func Subscribe(ctx context.Context, src Source, op string, from strata.Position, filter strata.Filter) iter.Seq2[strata.Event, error] {
	return func(yield func(strata.Event, error) bool) {
		cursor := from
		var tick <-chan time.Time
		if src.Poll > 0 {
			t := time.NewTicker(src.Poll)
			defer t.Stop()
			tick = t.C
		}
		for {
			wake := src.Wake()
			n := 0
			for ev, err := range src.ReadAll(ctx, strata.ReadAllOptions{After: cursor, Filter: filter, Limit: PageSize}) {
				if err != nil {
					yield(strata.Event{}, err)
					return
				}
				if !yield(ev, nil) {
					return
				}
				cursor = ev.Position
				n++
			}
			if n == PageSize {
				continue // a full page: there may be more right away
			}
			select {
			case <-wake:
			case <-tick:
			case <-ctx.Done():
				yield(strata.Event{}, &strata.Error{Code: strata.Unavailable, Op: op, Msg: "subscription ended at " + cursor.String(), Err: ctx.Err()})
				return
			case <-src.Closed:
				yield(strata.Event{}, strata.ClosedError(op))
				return
			}
		}
	}
}
