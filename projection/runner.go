package projection

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/google/uuid"

	"github.com/strata-events/strata"
)

// errLeaseLost ends a partition whose lease was taken over or reset.
var errLeaseLost = errors.New("projection lease lost")

// runner runs one claimed partition.
type runner struct {
	w       *Worker
	st      strata.ProjectionState // as last committed
	lease   strata.ProjectionLease
	stopAt  strata.Position
	catchup bool
	wake    chan struct{} // tells the worker that the partition finished rebuilding

	failing  uuid.UUID // the event whose handler failed last
	attempts int       // its failed tries
	lastErr  error     // the last handler error
	failedAt time.Time // when the first of them failed
}

// handlerError is a handler's error for the event at index in the batch. out is what the
// handlers of the events before it emitted.
type handlerError struct {
	index int
	err   error
	out   []emitted
}

func (e *handlerError) Error() string { return e.err.Error() }
func (e *handlerError) Unwrap() error { return e.err }

// setupError is the Setup hook's error. Unless the store may succeed on a retry, it ends the
// worker: claiming the partition again would only run Setup again.
type setupError struct{ err error }

func (e *setupError) Error() string { return e.err.Error() }
func (e *setupError) Unwrap() error { return e.err }

type item struct {
	e   strata.Event
	err error
}

func (r *runner) key() strata.ProjectionKey { return r.lease.Key }

func (r *runner) run(ctx context.Context) error {
	if err := r.flush(ctx); err != nil {
		return err
	}
	// Setup is tried as often as a failing event (partitions that set up at once may race
	// on creating the same tables) before it ends the worker.
	for n := 1; r.w.p.Setup != nil; n++ {
		err := r.infra(ctx, func() error {
			return r.w.ps.CommitProjection(ctx, r.commitOf(r.st.Position, r.st.Processed, r.st.Rebuilding, r.st.Failure, r.st.Pending), func(tx any) error {
				if err := recovered("setup", func() error { return r.w.p.Setup(ctx, tx) }); err != nil {
					return &setupError{err: err}
				}
				return nil
			})
		})
		if err == nil {
			break
		}
		var se *setupError
		if !errors.As(err, &se) || ctx.Err() != nil {
			return err
		}
		k := r.key()
		if n >= r.w.o.attempts {
			return &setupError{err: strata.Errorf(strata.Invalid, "projection setup", "projection %q version %d partition %d: setup: %w", k.Name, k.Version, k.Partition, se.err)}
		}
		r.w.o.log.Warn("projection setup failed", "projection", k.Name, "version", k.Version, "partition", k.Partition, "attempt", n, "err", se.err)
		if err := sleep(ctx, backoff(r.w.o.backoff, r.w.o.maxBackoff, n)); err != nil {
			return err
		}
	}
	sctx, cancel := context.WithCancel(ctx)
	ch := make(chan item, 2*r.w.o.batch)
	done := make(chan struct{})
	go func() {
		defer close(done)
		// Catch up with one ReadAll (the backend pages it as it reads fastest), then follow
		// live from where it ended. Both are gap-free.
		from := r.st.Position
		for e, err := range r.w.store.ReadAll(sctx, strata.ReadAllOptions{After: from, Filter: r.w.f}) {
			select {
			case ch <- item{e, err}:
			case <-sctx.Done():
				return
			}
			if err != nil {
				return
			}
			from = e.Position
		}
		for e, err := range r.w.store.Subscribe(sctx, from, r.w.f) {
			select {
			case ch <- item{e, err}:
			case <-sctx.Done():
				return
			}
			if err != nil {
				return
			}
		}
	}()
	defer func() {
		cancel()
		<-done
	}()
	batch := make([]strata.Event, 0, r.w.o.batch)
	for {
		if len(ch) == 0 && (r.catchup || r.st.Rebuilding) && !r.st.Position.Less(r.stopAt) && !r.st.Position.Less(r.st.RebuildTarget) {
			// Nothing read ahead: find out whether the log holds more now.
			more, err := r.more(ctx)
			if err != nil {
				return err
			}
			if !more {
				if err := r.finishRebuild(ctx); err != nil || r.catchup {
					return err
				}
			}
		}
		if r.catchup && !r.st.Position.Less(r.stopAt) && !r.stopAt.IsZero() {
			return r.finishRebuild(ctx)
		}
		batch = batch[:0]
		var it item
		select {
		case it = <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
		for {
			if it.err != nil {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				return it.err
			}
			batch = append(batch, it.e)
			if len(batch) == cap(batch) {
				break
			}
			var ok bool
			select {
			case it, ok = <-ch:
			default:
			}
			if !ok {
				break
			}
		}
		if err := r.handle(ctx, batch, nil); err != nil {
			return err
		}
		if r.w.o.onBatch != nil {
			r.w.o.onBatch(r.key(), len(batch))
		}
	}
}

// more reports whether the log holds an event after the checkpoint that the projection reads.
func (r *runner) more(ctx context.Context) (bool, error) {
	for _, err := range r.w.store.ReadAll(ctx, strata.ReadAllOptions{After: r.st.Position, Filter: r.w.f, Limit: 1}) {
		if err != nil {
			return false, err
		}
		return true, nil
	}
	return false, nil
}

// finishRebuild ends rebuild mode: the partition has read the log to its end.
func (r *runner) finishRebuild(ctx context.Context) error {
	if !r.st.Rebuilding {
		return nil
	}
	return r.infra(ctx, func() error {
		err := r.w.ps.CommitProjection(ctx, r.commitOf(r.st.Position, r.st.Processed, false, r.st.Failure, r.st.Pending), nil)
		if err == nil {
			r.st.Rebuilding = false
			select {
			case r.wake <- struct{}{}:
			default:
			}
		}
		return err
	})
}

func (r *runner) commitOf(to strata.Position, processed int64, rebuilding bool, f *strata.ProjectionFailure, pending []byte) strata.ProjectionCommit {
	return strata.ProjectionCommit{Lease: r.lease, From: r.st.Position, To: to, Processed: processed, Rebuilding: rebuilding, Failure: f, Pending: pending}
}

// infraErr classifies an error of the store: a lost lease ends the partition.
func (r *runner) infraErr(err error) error {
	if errors.Is(err, strata.ErrConflict) {
		return fmt.Errorf("%w: %w", errLeaseLost, err)
	}
	return err
}

// infra runs a store call, retrying with backoff while the store is unavailable.
func (r *runner) infra(ctx context.Context, fn func() error) error {
	for n := 1; ; n++ {
		err := fn()
		if err == nil {
			return nil
		}
		var se *strata.Error
		if !errors.As(err, &se) || !se.Retryable() || ctx.Err() != nil {
			return r.infraErr(err)
		}
		r.w.o.log.Warn("projection store call failed; retrying", "projection", r.w.p.Name, "partition", r.key().Partition, "err", err)
		if err := sleep(ctx, backoff(r.w.o.backoff, r.w.o.maxBackoff, n)); err != nil {
			return err
		}
	}
}

// handle commits batch, splitting it at a failing event and retrying that event with backoff.
// applied, if not nil, says that the handlers of an External projection already ran for batch
// and what they emitted: the batch is committed without running them again.
func (r *runner) handle(ctx context.Context, batch []strata.Event, applied *[]emitted) error {
	for len(batch) > 0 {
		err := r.commit(ctx, batch, applied)
		var he *handlerError
		if !errors.As(err, &he) {
			if err == nil {
				return nil
			}
			var se *strata.Error
			if !errors.As(err, &se) || !se.Retryable() || ctx.Err() != nil {
				return r.infraErr(err)
			}
			if err := sleep(ctx, backoff(r.w.o.backoff, r.w.o.maxBackoff, 1)); err != nil {
				return err
			}
			continue
		}
		e := batch[he.index]
		if e.ID != r.failing {
			r.failing, r.attempts, r.failedAt = e.ID, 0, time.Now()
		}
		r.attempts++
		r.lastErr = he.err
		r.w.o.log.Warn("projection handler failed", "projection", r.w.p.Name, "version", r.w.p.Version, "partition", r.key().Partition,
			"event", e.ID, "type", e.Type, "position", e.Position.String(), "attempt", r.attempts, "err", he.err)
		if he.index > 0 {
			// Commit the events before the failing one, then try it alone. An External
			// projection's handlers have applied them already: they are not delivered again.
			var applied *[]emitted
			if r.w.p.External {
				applied = &he.out
			}
			if err := r.handle(ctx, batch[:he.index], applied); err != nil {
				return err
			}
			batch = batch[he.index:]
			if r.attempts < r.w.o.attempts {
				if err := sleep(ctx, backoff(r.w.o.backoff, r.w.o.maxBackoff, r.attempts)); err != nil {
					return err
				}
				continue
			}
		}
		if r.attempts >= r.w.o.attempts {
			f := strata.ProjectionFailure{EventID: e.ID, Position: e.Position, EventType: e.Type, Stream: e.Stream,
				Error: he.err.Error(), Attempts: r.attempts, At: strata.Timestamp(time.Now())}
			if err := r.infra(ctx, func() error {
				return r.w.ps.CommitProjection(ctx, r.commitOf(r.st.Position, r.st.Processed, r.st.Rebuilding, &f, r.st.Pending), nil)
			}); err != nil {
				return err
			}
			r.st.Failure = &f
			return &FailedError{Key: r.key(), Failure: f, Err: he.err}
		}
		if err := sleep(ctx, backoff(r.w.o.backoff, r.w.o.maxBackoff, r.attempts)); err != nil {
			return err
		}
	}
	return nil
}

// commit runs the handlers of batch and moves the checkpoint past it, in one transaction unless
// the projection is External; then it appends what the handlers emitted. For an External
// projection, applied (if not nil) is what the handlers emitted when they already ran for batch:
// they are not run again.
func (r *runner) commit(ctx context.Context, batch []strata.Event, applied *[]emitted) error {
	p := &r.w.p
	from := r.st.Position
	to := batch[len(batch)-1].Position
	rebuilding := r.st.Rebuilding
	var out []emitted
	var ends []int     // ends[i]: len(out) once the event at i was handled
	var encoded []byte // out, encoded for the outbox
	run := func(tx any) error {
		out, ends = out[:0], ends[:0]
		if p.Clear != nil && from.IsZero() && r.st.Processed == 0 {
			if err := recovered("clear", func() error { return p.Clear(ctx, tx, r.key()) }); err != nil {
				return &handlerError{index: 0, err: fmt.Errorf("clear: %w", err)}
			}
		}
		for i := range batch {
			e := &batch[i]
			ends = append(ends, len(out))
			var part int
			if err := recovered("partition key", func() error { part = p.partitionOf(e); return nil }); err != nil {
				return &handlerError{index: i, err: err, out: slices.Clone(out)}
			}
			if part != r.key().Partition {
				continue
			}
			h := p.Handlers[e.Type]
			if h == nil {
				continue
			}
			c := Context{Tx: tx, Key: r.key(), Rebuilding: rebuilding && !r.st.RebuildTarget.Less(e.Position), source: e, name: p.Name}
			if err := callHandler(ctx, h, &c, *e); err != nil {
				return &handlerError{index: i, err: err, out: slices.Clone(out)}
			}
			out = append(out, c.out...)
			ends[i] = len(out)
		}
		var err error
		encoded, err = outboxFits(out, ends)
		return err
	}
	stillRebuilding := rebuilding && to.Less(r.st.RebuildTarget)
	processed := r.st.Processed + int64(len(batch))
	switch {
	case p.External && applied != nil:
		out = *applied
	case p.External:
		if err := run(nil); err != nil {
			return err
		}
	}
	pending, err := encoded, error(nil)
	if !p.External || applied != nil {
		pending, err = encodeOutbox(out)
	}
	if err == nil && len(r.st.Pending) > 0 {
		err = strata.Errorf(strata.Internal, "projection commit", "outbox not flushed")
	}
	if err != nil {
		return err
	}
	commit := r.commitOf(to, processed, stillRebuilding, nil, pending)
	var apply func(tx any) error
	if !p.External {
		// The handlers run, and emit, in the commit's transaction: the outbox it stores is
		// what they emitted there.
		apply = func(tx any) error {
			if err := run(tx); err != nil {
				return err
			}
			pending = encoded
			return nil
		}
		commit.Emitted = func() ([]byte, error) { return pending, nil }
	}
	if err := r.w.ps.CommitProjection(ctx, commit, apply); err != nil {
		return err
	}
	r.st.Position, r.st.Processed, r.st.Rebuilding, r.st.Failure, r.st.Pending = to, processed, stillRebuilding, nil, pending
	return r.flush(ctx)
}

// outboxFits checks that what a batch emitted can be stored in the partition's outbox: it
// encodes (an event's Data must be JSON) and fits in strata.MaxDataLen (the store refuses a
// larger one as Invalid). Otherwise the batch would be refused for ever. It fails the first event
// whose emissions do not encode or take the outbox past the limit, like a handler's error: the
// events before it are committed, it is tried alone and, if it fails alone, the partition fails
// on it.
func outboxFits(out []emitted, ends []int) ([]byte, error) {
	if b, err := encodeOutbox(out); err == nil && len(b) <= strata.MaxDataLen {
		return b, nil
	}
	size := 1 // the array's brackets and commas
	for i, end := range ends {
		start := 0
		if i > 0 {
			start = ends[i-1]
		}
		for _, em := range out[start:end] {
			b, err := json.Marshal(em)
			if err != nil {
				return nil, &handlerError{index: i, out: slices.Clone(out[:start]),
					err: strata.Errorf(strata.Invalid, "projection emit", "an event emitted to %q (%s) cannot be stored in the outbox: %w", em.Stream, em.Event.Type, err)}
			}
			size += len(b) + 1
		}
		if size > strata.MaxDataLen {
			return nil, &handlerError{index: i, out: slices.Clone(out[:start]),
				err: strata.Errorf(strata.Invalid, "projection emit", "the events emitted in one batch up to this one take %d bytes in the outbox, more than %d", size, strata.MaxDataLen)}
		}
	}
	return encodeOutbox(out)
}

// flush appends the outbox's events and clears it. Their IDs are deterministic, so appending
// again after a crash appends nothing twice.
func (r *runner) flush(ctx context.Context) error {
	if len(r.st.Pending) == 0 {
		return nil
	}
	out, err := decodeOutbox(r.st.Pending)
	if err != nil {
		return strata.Errorf(strata.Internal, "projection emit", "projection %q: undecodable outbox: %w", r.w.p.Name, err)
	}
	for _, em := range out {
		err := r.infra(ctx, func() error {
			_, err := r.w.store.Append(ctx, em.Stream, strata.Any, em.Event)
			if errors.Is(err, strata.ErrEventIDReused) {
				return nil // emitted before (by this version or another)
			}
			return err
		})
		if err != nil {
			var se *strata.Error
			if errors.As(err, &se) && se.Code == strata.Invalid {
				r.w.o.log.Error("projection emitted an invalid event; dropped", "projection", r.w.p.Name, "stream", em.Stream, "type", em.Event.Type, "err", err)
				continue
			}
			return err
		}
	}
	return r.infra(ctx, func() error {
		err := r.w.ps.CommitProjection(ctx, r.commitOf(r.st.Position, r.st.Processed, r.st.Rebuilding, r.st.Failure, nil), nil)
		if err == nil {
			r.st.Pending = nil
		}
		return err
	})
}

// callHandler runs h, turning a panic into an error.
func callHandler(ctx context.Context, h Handler, c *Context, e strata.Event) error {
	return recovered("handler", func() error { return h(ctx, c, e) })
}

// recovered runs fn, a hook of the user's (what names it), turning a panic into an error so
// that it fails the batch instead of the process.
func recovered(what string, fn func() error) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("%s panicked: %v", what, p)
		}
	}()
	return fn()
}
