// Package hub publishes the committed events of a store to any number of in-process
// subscribers, each with its own composable filter (And, Or, Not; types and streams with globs,
// metadata, time ranges, predicates). One gap-free subscription to the store feeds them all.
//
// Buffers are bounded and the overflow policy is explicit: a subscriber that falls behind by
// more than its buffer is cut off, reads what it was already given, and then gets an error that
// says it lagged and carries its cursor ([Lagged]). Resubscribing with [From] that cursor
// catches up from the store and joins the live feed again without a gap or a duplicate, so
// nothing is ever dropped silently, and one slow subscriber never slows the others.
//
//	h := hub.New(store)
//	go h.Run(ctx)
//	for ev, err := range h.Subscribe(ctx, hub.And(hub.Type("Certificate*"), hub.Tenant("acme"))) {
//		if cursor, lagged := hub.Lagged(err); lagged {
//			// resubscribe with hub.From(cursor)
//		}
//	}
package hub

import (
	"context"
	"errors"
	"iter"
	"sync"

	"github.com/strata-events/strata"
)

// DefaultBuffer is how many events a subscriber's buffer holds unless WithBuffer says otherwise.
const DefaultBuffer = 1024

// ErrStopped is wrapped by the error subscriptions end with when the hub stops.
var ErrStopped = errors.New("hub stopped")

// LaggedError says a subscriber fell behind by more than its buffer. Cursor is the position of
// the last event it was given: resubscribe with From(Cursor) to continue without loss.
type LaggedError struct {
	Cursor strata.Position
}

// Error describes the lag.
func (e *LaggedError) Error() string {
	return "subscriber lagged behind the live feed; resume from " + e.Cursor.String()
}

// Lagged reports whether err says a subscriber lagged, and the cursor to resume from.
func Lagged(err error) (strata.Position, bool) {
	var le *LaggedError
	if errors.As(err, &le) {
		return le.Cursor, true
	}
	return strata.Start, false
}

// Hub fans out one store subscription to many filtered subscribers. Create it with New, start
// it with Run. It is safe for concurrent use.
type Hub struct {
	store  strata.Store
	start  strata.Position
	buffer int

	mu      sync.Mutex
	subs    map[*sub]struct{}
	head    strata.Position // the last event dispatched
	stopped chan struct{}   // closed when Run returns
	err     error           // why Run returned
	running bool
}

// Option configures a Hub.
type Option func(*Hub)

// StartAfter makes the hub follow the log after pos instead of from its start, e.g. from the
// end of what the application has already handled. Subscribers without From get the events
// dispatched after they subscribe.
func StartAfter(pos strata.Position) Option { return func(h *Hub) { h.start = pos } }

// WithBuffer sets the default buffer of each subscriber, in events (at least 1).
func WithBuffer(n int) Option {
	return func(h *Hub) {
		if n > 0 {
			h.buffer = n
		}
	}
}

// New returns a hub over store; it does nothing until Run.
func New(store strata.Store, opts ...Option) *Hub {
	h := &Hub{store: store, buffer: DefaultBuffer, subs: map[*sub]struct{}{}, stopped: make(chan struct{})}
	for _, o := range opts {
		o(h)
	}
	h.head = h.start
	return h
}

// Run follows the store and dispatches events until ctx is done or the store's subscription
// fails, and returns why; subscriptions then end with an Unavailable error wrapping ErrStopped.
// Call it once.
func (h *Hub) Run(ctx context.Context) error {
	h.mu.Lock()
	if h.running {
		h.mu.Unlock()
		return strata.Errorf(strata.Invalid, "hub run", "the hub is already running")
	}
	h.running = true
	from := h.head
	h.mu.Unlock()
	var err error
	for e, serr := range h.store.Subscribe(ctx, from, strata.Filter{}) {
		if serr != nil {
			err = serr
			break
		}
		h.dispatch(e)
	}
	h.mu.Lock()
	h.err = err
	close(h.stopped)
	h.mu.Unlock()
	return err
}

// Head returns the position of the last event the hub dispatched.
func (h *Hub) Head() strata.Position {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.head
}

// Subscribers returns how many subscriptions are live.
func (h *Hub) Subscribers() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.subs)
}

func (h *Hub) dispatch(e strata.Event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.head = e.Position
	for s := range h.subs {
		if !s.skip.Less(e.Position) {
			continue
		}
		ok, err := match(s.f, &e)
		if err != nil {
			// The subscriber's filter panicked: cut it off, not the hub and everyone else.
			delete(h.subs, s)
			s.failed = err
			close(s.lagged)
			continue
		}
		if !ok {
			continue
		}
		select {
		case s.ch <- &e:
			s.last = e.Position
		default:
			// Overflow: cut the subscriber off. It drains what it holds, then reads the lag.
			delete(h.subs, s)
			s.lagCursor = s.last
			close(s.lagged)
		}
	}
}

// match runs f on e for the dispatcher, turning a panic of a user's filter (a Predicate, a
// FilterFunc) into an Internal error.
func match(f Filter, e *strata.Event) (ok bool, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = strata.Errorf(strata.Internal, "hub subscribe", "the subscription's filter panicked on the event at %s: %v", e.Position, p)
		}
	}()
	return f.Match(e), nil
}

// sub is one subscription. f, skip and the channels are set before it is registered; last,
// lagCursor and failed are written under the hub's mutex, and lagCursor and failed read after
// lagged is closed (the subscriber was cut off: it lagged, or its filter failed when failed is
// set).
type sub struct {
	f         Filter
	ch        chan *strata.Event // shared by every subscriber the event is given to: never modified
	skip      strata.Position    // events at or before it were delivered by the catch-up
	last      strata.Position    // the last event given to ch
	lagged    chan struct{}
	lagCursor strata.Position
	failed    error
}

type subOptions struct {
	from   *strata.Position
	buffer int
}

// SubOption configures a subscription.
type SubOption func(*subOptions)

// From makes a subscription deliver every matching event after pos first, read from the store,
// and then join the live feed: the way to resume after [Lagged], or to replay history.
func From(pos strata.Position) SubOption { return func(o *subOptions) { o.from = &pos } }

// Buffer sets this subscription's buffer, in events (at least 1).
func Buffer(n int) SubOption {
	return func(o *subOptions) {
		if n > 0 {
			o.buffer = n
		}
	}
}

// Subscribe yields the events f selects (nil selects all), in log order, as the hub dispatches
// them, until ctx is done (yielding an Unavailable error wrapping ctx's error), the hub stops,
// or the subscriber lags (yielding an Unavailable error wrapping a *LaggedError; see [Lagged]),
// or f panics on a live event (yielding an Internal error; the hub and the others go on).
// Nothing happens until the sequence is ranged over. The events' Data is shared between
// subscribers: do not modify it.
func (h *Hub) Subscribe(ctx context.Context, f Filter, opts ...SubOption) iter.Seq2[strata.Event, error] {
	const op = "hub subscribe"
	if f == nil {
		f = All()
	}
	o := subOptions{buffer: h.buffer}
	for _, opt := range opts {
		opt(&o)
	}
	return func(yield func(strata.Event, error) bool) {
		s := &sub{f: f, ch: make(chan *strata.Event, o.buffer), lagged: make(chan struct{})}
		// Before the catch-up: it may register s and then end while it yields what it read.
		defer func() {
			h.mu.Lock()
			delete(h.subs, s)
			h.mu.Unlock()
		}()
		if o.from == nil {
			h.mu.Lock()
			s.skip, s.last = h.head, h.head
			h.subs[s] = struct{}{}
			h.mu.Unlock()
		} else if !h.catchUp(ctx, op, s, *o.from, yield) {
			return
		}
		for {
			select {
			case e := <-s.ch:
				if !yield(*e, nil) {
					return
				}
				continue
			default:
			}
			select {
			case e := <-s.ch:
				if !yield(*e, nil) {
					return
				}
			case <-s.lagged:
				// Everything queued before the cut comes first.
				for {
					select {
					case e := <-s.ch:
						if !yield(*e, nil) {
							return
						}
						continue
					default:
					}
					break
				}
				if s.failed != nil {
					yield(strata.Event{}, s.failed)
					return
				}
				yield(strata.Event{}, &strata.Error{Code: strata.Unavailable, Op: op, Err: &LaggedError{Cursor: s.lagCursor}})
				return
			case <-ctx.Done():
				yield(strata.Event{}, &strata.Error{Code: strata.Unavailable, Op: op, Msg: "subscription ended at " + s.lastSeen(h).String(), Err: ctx.Err()})
				return
			case <-h.stopped:
				for {
					select {
					case e := <-s.ch:
						if !yield(*e, nil) {
							return
						}
						continue
					default:
					}
					break
				}
				yield(strata.Event{}, h.stopErr(op))
				return
			}
		}
	}
}

func (s *sub) lastSeen(h *Hub) strata.Position {
	h.mu.Lock()
	defer h.mu.Unlock()
	return s.last
}

func (h *Hub) stopErr(op string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	msg := "the hub stopped"
	if h.err != nil {
		msg += ": " + h.err.Error()
	}
	return &strata.Error{Code: strata.Unavailable, Op: op, Msg: msg, Err: ErrStopped}
}

// handoverPages is how many optimistic catch-up passes a subscription makes before its last
// pass holds the dispatcher (see catchUp); handoverLimit bounds what that last pass may read.
const (
	handoverPages = 2
	handoverLimit = 1000
)

// catchUp yields the matching events after from, read from the store, until it can register s
// with the live feed exactly where its reads ended. It reports false when the subscription
// ended (yield returned false or an error was yielded).
//
// Why it is exact: the hub's head H is an event the store's gap-free subscription returned, so
// every event up to H is committed, and a pass of ReadAll that starts after H was observed
// returns every matching event up to at least H. After such a pass, every matching event up to
// covered = max(the last event read, H) has been yielded. If the head has not passed covered,
// s is registered under the hub's lock with skip = covered: every later dispatch (> head) that
// is beyond covered reaches it, and none it read is given twice. Otherwise another pass reads
// on from covered.
//
// Optimistic passes need the dispatcher to pause for the length of one read; under a steady
// flood of events (of any tenant, for a filtered subscription) it may never pause. So after
// handoverPages passes the last one is made holding the hub's lock: the dispatcher waits, the
// head stays at H, and the pass reads every matching event up to at least H into memory, at
// most handoverLimit of them (a pass that reads as many releases the lock, yields them and
// starts over). s is registered with skip = max(the last event read, H) before the lock is
// released, and then yields what the pass read, ahead of anything the dispatcher gives it.
func (h *Hub) catchUp(ctx context.Context, op string, s *sub, from strata.Position, yield func(strata.Event, error) bool) bool {
	cursor := from
	narrow := Narrow(s.f)
	for pass := 1; ; pass++ {
		if err := ctx.Err(); err != nil {
			yield(strata.Event{}, &strata.Error{Code: strata.Unavailable, Op: op, Msg: "subscription ended at " + cursor.String(), Err: err})
			return false
		}
		h.mu.Lock()
		if h.isStopped() {
			h.mu.Unlock()
			yield(strata.Event{}, h.stopErr(op))
			return false
		}
		observed := h.head
		if pass > handoverPages {
			// The head cannot move while the lock is held.
			tail, err := h.readTail(ctx, cursor, narrow)
			if err != nil {
				h.mu.Unlock()
				yield(strata.Event{}, err)
				return false
			}
			if len(tail) == handoverLimit {
				h.mu.Unlock()
				for _, e := range tail {
					if s.f.Match(&e) && !yield(e, nil) {
						return false
					}
				}
				cursor, pass = tail[len(tail)-1].Position, 0
				continue
			}
			covered := observed
			if n := len(tail); n > 0 && covered.Less(tail[n-1].Position) {
				covered = tail[n-1].Position
			}
			h.register(s, covered)
			h.mu.Unlock()
			for _, e := range tail {
				if s.f.Match(&e) && !yield(e, nil) {
					return false
				}
			}
			return true
		}
		h.mu.Unlock()
		read := cursor
		for e, err := range h.store.ReadAll(ctx, strata.ReadAllOptions{After: cursor, Filter: narrow}) {
			if err != nil {
				yield(strata.Event{}, err)
				return false
			}
			read = e.Position
			if s.f.Match(&e) && !yield(e, nil) {
				return false
			}
		}
		cursor = read
		if cursor.Less(observed) {
			cursor = observed
		}
		h.mu.Lock()
		if !cursor.Less(h.head) && !h.isStopped() {
			h.register(s, cursor)
			h.mu.Unlock()
			return true
		}
		h.mu.Unlock()
	}
}

// readTail reads at most handoverLimit events of narrow after cursor into memory.
func (h *Hub) readTail(ctx context.Context, cursor strata.Position, narrow strata.Filter) ([]strata.Event, error) {
	var tail []strata.Event
	for e, err := range h.store.ReadAll(ctx, strata.ReadAllOptions{After: cursor, Filter: narrow, Limit: handoverLimit}) {
		if err != nil {
			return nil, err
		}
		tail = append(tail, e)
	}
	return tail, nil
}

// register adds s to the live feed: it gets the dispatched events after skip. The caller holds
// the hub's lock.
func (h *Hub) register(s *sub, skip strata.Position) {
	s.skip, s.last = skip, skip
	h.subs[s] = struct{}{}
}

// isStopped reports whether Run has returned. The caller holds the hub's lock (Run closes
// stopped under it).
func (h *Hub) isStopped() bool {
	select {
	case <-h.stopped:
		return true
	default:
		return false
	}
}
