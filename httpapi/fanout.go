package httpapi

import (
	"context"
	"strings"
	"sync"

	"github.com/strata-events/strata"
	"github.com/strata-events/strata/hub"
)

// SSELiveBuffer is how many live events the shared follower queues for one subscription: a
// page of the follower's reads (the events are shared between subscriptions, so a slot costs a
// pointer, 8 KiB per subscription in all). A subscription that falls further behind (a longer
// burst, or a slow client) is cut from the live feed and reads on from the store where it was,
// then joins again: nothing is lost, and memory stays bounded.
const SSELiveBuffer = 1024

// fanout is the server's one live follower of the log (a hub.Hub), shared by every SSE
// subscription: one store read per wake-up, whatever the number of subscribers. Each
// subscription catches up from its own cursor from the store and then joins the live feed; the
// hub hands it over without a gap or a duplicate (see hub.Hub.Subscribe with hub.From).
//
// The follower starts with the first subscription that knows a committed position to start
// from (an event it read from the store), after that position: never after a cursor a client
// sent, which might lie beyond the log and would make the follower skip what commits before
// it. It stops when the server closes, or when its store subscription fails; the next
// subscription then starts a new one.
type fanout struct {
	store strata.Store
	ctx   context.Context
	stop  context.CancelFunc
	m     *metrics

	mu      sync.Mutex
	h       *hub.Hub
	done    chan struct{} // closed when h's Run returned
	started chan struct{} // closed when a follower starts; replaced after
	closed  bool
	wg      sync.WaitGroup
}

func newFanout(st strata.Store, m *metrics) *fanout {
	ctx, stop := context.WithCancel(context.Background())
	return &fanout{store: st, ctx: ctx, stop: stop, m: m, started: make(chan struct{})}
}

// current returns the running follower, or nil and a channel that is closed when one starts.
func (f *fanout) current(op string) (*hub.Hub, <-chan struct{}, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return nil, nil, strata.Errorf(strata.Unavailable, op, "the server is shutting down")
	}
	if f.h != nil {
		select {
		case <-f.done:
			f.h = nil // it stopped (a store error): the next start makes a new one
		default:
			return f.h, nil, nil
		}
	}
	return nil, f.started, nil
}

// start returns the running follower, or starts one that follows the log after pos, which must
// be the position of a committed event (or lie between committed events).
func (f *fanout) start(op string, pos strata.Position) (*hub.Hub, error) {
	if h, _, err := f.current(op); h != nil || err != nil {
		return h, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return nil, strata.Errorf(strata.Unavailable, op, "the server is shutting down")
	}
	if f.h != nil {
		return f.h, nil // another subscription started one meanwhile
	}
	h := hub.New(f.store, hub.StartAfter(pos), hub.WithBuffer(SSELiveBuffer))
	done := make(chan struct{})
	f.h, f.done = h, done
	close(f.started)
	f.started = make(chan struct{})
	f.wg.Add(1)
	f.m.sseFollowers.Inc()
	go func() {
		defer f.wg.Done()
		defer f.m.sseFollowers.Dec()
		defer close(done)
		_ = h.Run(f.ctx) // its subscriptions end with the error
	}()
	return h, nil
}

// close stops the follower and waits for it.
func (f *fanout) close() {
	f.mu.Lock()
	f.closed = true
	f.mu.Unlock()
	f.stop()
	f.wg.Wait()
}

// liveFilter is f as a hub filter with the same meaning: strata.Filter.Match decides, and the
// parts hub.Narrow understands (the tenant, exact types, a prefix without wildcards) are added
// so that a catch-up lets the store filter.
func liveFilter(f strata.Filter) hub.Filter {
	parts := []hub.Filter{hub.FilterFunc(f.Match)}
	if f.Tenant != "" {
		parts = append(parts, hub.Tenant(f.Tenant))
	}
	if len(f.Types) > 0 && !anyWildcard(f.Types...) {
		parts = append(parts, hub.Type(f.Types...))
	}
	if f.StreamPrefix != "" && !anyWildcard(f.StreamPrefix) {
		parts = append(parts, hub.Stream(f.StreamPrefix+"*"))
	}
	return hub.And(parts...)
}

func anyWildcard(ss ...string) bool {
	for _, s := range ss {
		if strings.ContainsAny(s, "*?") {
			return true
		}
	}
	return false
}
