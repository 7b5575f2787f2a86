package httpapi

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"time"

	"github.com/strata-events/strata"
	"github.com/strata-events/strata/hub"
)

// SSEBuffer is how many events a subscription reads ahead of a slow client, besides the page
// of a catch-up read from the store or the SSELiveBuffer of the live feed. The read side
// blocks when it is full, so memory per subscriber is bounded whatever the client does.
const SSEBuffer = 16

// handleSubscribe streams the key's tenant's events of the global log as Server-Sent Events:
// catch-up from the cursor (after=, or the Last-Event-ID header a reconnecting EventSource
// sends) read from the store, then live from the server's one shared follower (see fanout),
// gap-free as Store.Subscribe. Each event's SSE id is its position. A comment line is sent
// every heartbeat. A client that does not take a write within SSEWriteWait is disconnected; it
// resumes with the last id it received and loses nothing. When the server shuts down, a final
// "end" event carries the cursor to resume from.
func (s *Server) handleSubscribe(w http.ResponseWriter, r *http.Request, p Principal) error {
	const op = "subscribe"
	cursor := r.URL.Query().Get("after")
	if id := r.Header.Get("Last-Event-ID"); id != "" {
		cursor = id
	}
	after, err := parseCursor(op, cursor)
	if err != nil {
		return err
	}
	filter, err := filterOf(r, op, p)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()

	type item struct {
		e   strata.Event
		err error
	}
	ch := make(chan item, SSEBuffer)
	go func() {
		defer close(ch)
		s.follow(ctx, op, after, filter, func(e strata.Event, err error) bool {
			if err == nil {
				err = s.reveal(ctx, &e)
			}
			select {
			case ch <- item{e, err}:
			case <-ctx.Done():
				return false
			}
			return err == nil
		})
	}()

	rc := http.NewResponseController(w)
	// The server's ReadTimeout covers reading the request; left on the connection it would
	// cancel a subscription that outlives it.
	_ = rc.SetReadDeadline(time.Time{})
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	s.metrics.subscribers.Inc()
	defer s.metrics.subscribers.Dec()

	bw := bufio.NewWriterSize(w, 16<<10)
	write := func(f func() error) bool {
		_ = rc.SetWriteDeadline(time.Now().Add(s.cfg.SSEWriteWait))
		if err := f(); err != nil {
			return false
		}
		return true
	}
	flush := func() bool {
		return write(func() error {
			if err := bw.Flush(); err != nil {
				return err
			}
			return rc.Flush()
		})
	}
	if !write(func() error { _, err := bw.WriteString("retry: 2000\n: subscribed\n\n"); return err }) || !flush() {
		return nil
	}
	enc := json.NewEncoder(bw)
	enc.SetEscapeHTML(false)
	last := after
	hb := time.NewTicker(s.cfg.Heartbeat)
	defer hb.Stop()
	// The key is checked again every KeyCacheTTL, so that a revocation ends an open
	// subscription within the time it takes for every other request.
	recheck := time.NewTicker(s.cfg.KeyCacheTTL)
	defer recheck.Stop()
	end := func(d ErrorDetail) {
		d.Cursor = last.String()
		write(func() error {
			bw.WriteString("event: end\ndata: ")
			enc.Encode(ErrorBody{Error: d})
			_, err := bw.WriteString("\n")
			return err
		})
		flush()
	}
	for {
		select {
		case it, ok := <-ch:
			if !ok {
				return nil
			}
			if it.err != nil {
				select {
				case <-s.closing:
					end(shuttingDown)
				default:
					if ctx.Err() == nil {
						// As a JSON error body says it: an internal error's message is not shown.
						d := errorDetail(it.err)
						d.Message = "the subscription failed: " + d.Message
						end(d)
					}
				}
				return nil
			}
			ok = write(func() error {
				bw.WriteString("id: ")
				bw.WriteString(it.e.Position.String())
				bw.WriteString("\nevent: event\ndata: ")
				if err := enc.Encode(eventJSON(it.e)); err != nil { // Encode ends with a newline
					return err
				}
				_, err := bw.WriteString("\n")
				return err
			})
			if !ok {
				s.metrics.sseDropped.Inc()
				return nil
			}
			last = it.e.Position
			s.metrics.read.Inc()
			if len(ch) == 0 && !flush() {
				s.metrics.sseDropped.Inc()
				return nil
			}
		case <-hb.C:
			if !write(func() error { _, err := bw.WriteString(": heartbeat\n\n"); return err }) || !flush() {
				s.metrics.sseDropped.Inc()
				return nil
			}
		case <-recheck.C:
			if _, err := s.auth.authenticate(r); strata.ErrorCode(err) == strata.Unauthorized {
				end(errorDetail(err))
				return nil
			}
		case <-s.closing:
			end(shuttingDown)
			return nil
		case <-ctx.Done():
			return nil
		}
	}
}

// follow yields the events of filter after cursor until yield returns false or an error was
// yielded: first what the store holds (one catch-up read), then the live feed of the shared
// follower, which it joins through hub.From, so that the hand-over loses and repeats nothing
// (see hub.Hub.Subscribe). Cut from the live feed for falling behind (hub.Lagged), it joins
// again from its last event, reading the gap from the store.
//
// The follower starts after a committed position only (see fanout): the last event of this
// catch-up, or, when it read none, the first event after the cursor that a store subscription
// of its own finds (of any tenant, unfiltered), unless another subscription starts the
// follower first. A cursor beyond the log thus only ever delays this subscription.
func (s *Server) follow(ctx context.Context, op string, cursor strata.Position, filter strata.Filter, yield func(strata.Event, error) bool) {
	known := false // whether cursor is the position of a committed event
	for e, err := range s.store.ReadAll(ctx, strata.ReadAllOptions{After: cursor, Filter: filter}) {
		if err != nil {
			yield(strata.Event{}, err)
			return
		}
		if !yield(e, nil) {
			return
		}
		cursor, known = e.Position, true
	}
	live := liveFilter(filter)
	for {
		h, started, err := s.fan.current(op)
		if err == nil && h == nil && known {
			h, err = s.fan.start(op, cursor)
		}
		if err != nil {
			yield(strata.Event{}, err)
			return
		}
		if h == nil {
			e, ok, err := s.firstAfter(ctx, cursor, started)
			switch {
			case err != nil:
				yield(strata.Event{}, err)
				return
			case ok:
				if filter.Match(&e) && !yield(e, nil) {
					return
				}
				cursor, known = e.Position, true
			}
			continue
		}
		lagged := false
		for e, err := range h.Subscribe(ctx, live, hub.From(cursor), hub.Buffer(SSELiveBuffer)) {
			if err != nil {
				if _, lagged = hub.Lagged(err); !lagged {
					yield(strata.Event{}, err)
					return
				}
				s.metrics.sseRejoined.Inc()
				break
			}
			if !yield(e, nil) {
				return
			}
			cursor = e.Position
		}
		if !lagged {
			return
		}
	}
}

// firstAfter waits for the first committed event after cursor, of any tenant, with a store
// subscription of its own: a position to start the shared follower after. It reports false
// when started is closed first (another subscription started the follower).
func (s *Server) firstAfter(ctx context.Context, cursor strata.Position, started <-chan struct{}) (strata.Event, bool, error) {
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-started:
			cancel()
		case <-sctx.Done():
		}
	}()
	for e, err := range s.store.Subscribe(sctx, cursor, strata.Filter{}) {
		if err != nil {
			if ctx.Err() == nil && sctx.Err() != nil {
				return strata.Event{}, false, nil // the follower started
			}
			return strata.Event{}, false, err
		}
		return e, true, nil
	}
	return strata.Event{}, false, nil
}

// shuttingDown ends the subscriptions of a server that shuts down.
var shuttingDown = ErrorDetail{Code: strata.Unavailable, Message: "the server is shutting down; resume from the cursor", Retryable: true}
