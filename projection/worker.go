package projection

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/strata-events/strata"
)

// Defaults of a Worker.
const (
	DefaultBatchSize   = 5000
	DefaultMaxAttempts = 5
	DefaultBackoff     = 100 * time.Millisecond
	DefaultMaxBackoff  = 10 * time.Second
	DefaultLeaseTTL    = 15 * time.Second
)

// ErrFailed is wrapped by the error a Worker returns when a partition stopped on an event.
var ErrFailed = errors.New("projection failed")

// FailedError says which partition stopped on which event.
type FailedError struct {
	Key     strata.ProjectionKey
	Failure strata.ProjectionFailure
	Err     error
}

func (e *FailedError) Error() string {
	return fmt.Sprintf("projection %q version %d partition %d failed on event %s (%s at %s) after %d attempts: %v",
		e.Key.Name, e.Key.Version, e.Key.Partition, e.Failure.EventID, e.Failure.EventType, e.Failure.Position, e.Failure.Attempts, e.Err)
}

// Unwrap returns ErrFailed and the handler's error.
func (e *FailedError) Unwrap() []error { return []error{ErrFailed, e.Err} }

// Option configures a Worker.
type Option func(*options)

type options struct {
	batch       int
	attempts    int
	backoff     time.Duration
	maxBackoff  time.Duration
	ttl         time.Duration
	owner       string
	log         *slog.Logger
	emitHistory bool
	promote     bool
	maxParts    int
	onBatch     func(strata.ProjectionKey, int)
}

// WithBatchSize sets the most events one transaction handles (default DefaultBatchSize).
func WithBatchSize(n int) Option { return func(o *options) { o.batch = n } }

// WithRetry sets how often a failing event is tried before the partition stops in the failed
// state, and the backoff between tries (doubling from base up to max).
func WithRetry(attempts int, base, max time.Duration) Option {
	return func(o *options) { o.attempts, o.backoff, o.maxBackoff = attempts, base, max }
}

// WithLease sets the lease duration (default DefaultLeaseTTL); leases and heartbeats are renewed
// every third of it, and a dead worker's partitions are taken over once it has passed.
func WithLease(ttl time.Duration) Option { return func(o *options) { o.ttl = ttl } }

// WithOwner names the worker in leases (default host-pid-random).
func WithOwner(name string) Option { return func(o *options) { o.owner = name } }

// WithLogger sets the logger for retries and takeovers (default: discard).
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.log = l } }

// WithEmitHistory makes the first build of a new projection version emit events for the
// history it replays. By default it is a rebuild: emission is suppressed until it reaches the
// end of the log as it was when the version was created.
func WithEmitHistory() Option { return func(o *options) { o.emitHistory = true } }

// WithoutPromotion stops the worker from activating its version for readers once every
// partition has caught up (by default it does, unless a newer version is active).
func WithoutPromotion() Option { return func(o *options) { o.promote = false } }

// WithMaxPartitions caps how many partitions this worker runs at once (default: its fair share).
func WithMaxPartitions(n int) Option { return func(o *options) { o.maxParts = n } }

// WithBatchHook calls fn after each committed batch with the partition and the number of events
// it read (tests and metrics).
func WithBatchHook(fn func(key strata.ProjectionKey, events int)) Option {
	return func(o *options) { o.onBatch = fn }
}

// Worker runs one projection version: it claims partitions and runs each from its checkpoint.
// Run workers of the same projection in any number of processes; they share the partitions.
type Worker struct {
	store strata.Store
	ps    strata.ProjectionStore
	p     Projection
	f     strata.Filter
	o     options
}

// NewWorker returns a worker for p on store, which must implement strata.ProjectionStore.
func NewWorker(store strata.Store, p Projection, opts ...Option) (*Worker, error) {
	const op = "projection worker"
	ps, err := projectionStore(op, store)
	if err != nil {
		return nil, err
	}
	if p, err = p.normalize(op); err != nil {
		return nil, err
	}
	o := options{batch: DefaultBatchSize, attempts: DefaultMaxAttempts, backoff: DefaultBackoff, maxBackoff: DefaultMaxBackoff,
		ttl: DefaultLeaseTTL, log: slog.New(slog.DiscardHandler), promote: true}
	for _, fn := range opts {
		fn(&o)
	}
	if o.owner == "" {
		host, _ := os.Hostname()
		b := make([]byte, 4)
		rand.Read(b)
		o.owner = fmt.Sprintf("%s-%d-%s", host, os.Getpid(), hex.EncodeToString(b))
	}
	switch {
	case o.batch < 1:
		return nil, strata.Errorf(strata.Invalid, op, "batch size %d", o.batch)
	case o.attempts < 1:
		return nil, strata.Errorf(strata.Invalid, op, "%d attempts", o.attempts)
	case o.backoff <= 0 || o.maxBackoff < o.backoff:
		return nil, strata.Errorf(strata.Invalid, op, "backoff %s to %s", o.backoff, o.maxBackoff)
	}
	if err := strata.ValidateLeaseTTL(op, o.ttl); err != nil {
		return nil, err
	}
	if err := strata.ValidateProjectionOwner(op, o.owner); err != nil {
		return nil, err
	}
	if o.log == nil {
		o.log = slog.New(slog.DiscardHandler)
	}
	return &Worker{store: store, ps: ps, p: p, f: p.filter(), o: o}, nil
}

// Owner returns the worker's name in leases.
func (w *Worker) Owner() string { return w.o.owner }

// init creates the version's partitions if needed. A new version starts as a rebuild up to the
// current end of the log unless WithEmitHistory; either way that end is its RebuildTarget, which
// promote waits for.
func (w *Worker) init(ctx context.Context) error {
	in := strata.ProjectionInit{Name: w.p.Name, Version: w.p.Version, Partitions: w.p.Partitions, Filter: w.f}
	lag, err := w.ps.ProjectionLag(ctx, strata.Start, w.f)
	if err != nil {
		return err
	}
	in.Rebuilding, in.RebuildTarget = !w.o.emitHistory && !lag.Last.IsZero(), lag.Last
	return w.ps.InitProjection(ctx, in)
}

// Run runs the worker until ctx is done (it then returns nil) or a partition it runs fails (it
// returns a *FailedError, after stopping its other partitions and releasing their leases; an
// Invalid *strata.Error wrapping the hook's error when Setup fails as many times as a failing
// event is tried, other than with a retryable store error). A
// failed partition resumes from the failed event when a worker claims it again: restart after
// fixing the handler.
func (w *Worker) Run(ctx context.Context) error { return w.run(ctx, false) }

// Catchup claims every partition it can, runs them until each has reached the end of the log as
// it was when Catchup started, and returns: a projection run as a one-shot job (a rebuild, a
// backfill, a test). Partitions held by other live workers are left to them; those whose
// holder is gone are taken over once its lease expires.
func (w *Worker) Catchup(ctx context.Context) error { return w.run(ctx, true) }

type held struct {
	lease  strata.ProjectionLease
	cancel context.CancelFunc
	done   chan struct{}
	err    error
	paused bool
}

func (w *Worker) run(ctx context.Context, catchup bool) error {
	if err := w.init(ctx); err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		mu       sync.Mutex
		running  = map[int]*held{}
		finished = map[int]bool{}      // caught up (Catchup) or failed: not claimed again
		handed   = map[int]time.Time{} // given up for another live worker to claim, and when
		wake     = make(chan struct{}, 1)
		failure  error
		mark     promoteMark // promote's
	)
	var stopAt strata.Position
	if catchup {
		lag, err := w.ps.ProjectionLag(ctx, strata.Start, w.f)
		if err != nil {
			return err
		}
		stopAt = lag.Last
	}
	stop := func(p int, h *held) {
		h.cancel()
		<-h.done
		rctx, rcancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		_ = w.ps.ReleaseProjectionLease(rctx, h.lease)
		rcancel()
		mu.Lock()
		delete(running, p)
		mu.Unlock()
	}
	defer func() {
		mu.Lock()
		hs := make(map[int]*held, len(running))
		for p, h := range running {
			hs[p] = h
		}
		mu.Unlock()
		for p, h := range hs {
			stop(p, h)
		}
		_ = w.leaveHeartbeat()
	}()
	tick := time.NewTicker(w.o.ttl / 3)
	defer tick.Stop()
	for {
		// Reap partitions that ended.
		mu.Lock()
		for p, h := range running {
			select {
			case <-h.done:
			default:
				continue
			}
			delete(running, p)
			var fe *FailedError
			var se *setupError
			switch {
			case h.err == nil && catchup:
				finished[p] = true
			case errors.As(h.err, &fe):
				finished[p] = true
				failure = h.err
			case errors.As(h.err, &se):
				finished[p] = true
				failure = se.err
			case h.err != nil && !errors.Is(h.err, errLeaseLost) && !errors.Is(h.err, context.Canceled):
				w.o.log.Warn("projection partition stopped", "projection", w.p.Name, "version", w.p.Version, "partition", p, "err", h.err)
			}
			rctx, rcancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			_ = w.ps.ReleaseProjectionLease(rctx, h.lease)
			rcancel()
		}
		mu.Unlock()
		if failure != nil {
			return failure
		}
		if ctx.Err() != nil {
			return nil
		}
		if catchup && len(finished) == w.p.Partitions {
			if w.o.promote {
				// Every partition reached the end of the log as it was when Catchup started.
				return w.promote(ctx, &promoteMark{end: stopAt})
			}
			return nil
		}
		live, err := w.balance(ctx, catchup, stopAt, &mu, running, finished, handed, wake, stop)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			var se *strata.Error
			if !errors.As(err, &se) || !se.Retryable() {
				return err
			}
			w.o.log.Warn("projection worker", "projection", w.p.Name, "err", err)
		}
		if w.o.promote {
			if err := w.promote(ctx, &mark); err != nil && ctx.Err() == nil {
				w.o.log.Warn("projection promotion", "projection", w.p.Name, "err", err)
			}
		}
		if catchup {
			mu.Lock()
			idle := len(running) == 0
			mu.Unlock()
			if idle && !w.othersHold(ctx, finished, live) {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		case <-wake:
		}
	}
}

// othersHold reports whether workers that are gone still hold leases on partitions this one
// has not finished: Catchup waits for those leases to expire and takes the partitions over.
// Partitions that live workers hold are left to them.
func (w *Worker) othersHold(ctx context.Context, finished map[int]bool, live []string) bool {
	sts, err := w.states(ctx)
	if err != nil {
		return true
	}
	now := time.Now()
	for _, st := range sts {
		if !finished[st.Key.Partition] && st.Owner != "" && st.Owner != w.o.owner && st.LeaseUntil.After(now) && !contains(live, st.Owner) {
			return true
		}
	}
	return false
}

func (w *Worker) states(ctx context.Context) ([]strata.ProjectionState, error) {
	all, err := w.ps.ProjectionStates(ctx, w.p.Name)
	if err != nil {
		return nil, err
	}
	var out []strata.ProjectionState
	for _, st := range all {
		if st.Key.Version == w.p.Version {
			out = append(out, st)
		}
	}
	return out, nil
}

func (w *Worker) leaveHeartbeat() error {
	// A heartbeat of the shortest duration lets others see this worker gone at once.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := w.ps.ProjectionHeartbeat(ctx, w.p.Name, w.p.Version, w.o.owner, time.Millisecond)
	return err
}

// balance renews the worker's heartbeat and leases, stops partitions it should no longer run
// (paused, lost, or given to another worker) and claims the ones it should.
func (w *Worker) balance(ctx context.Context, catchup bool, stopAt strata.Position, mu *sync.Mutex, running map[int]*held, finished map[int]bool, handed map[int]time.Time, wake chan struct{}, stop func(int, *held)) (live []string, _ error) {
	live, err := w.ps.ProjectionHeartbeat(ctx, w.p.Name, w.p.Version, w.o.owner, w.o.ttl)
	if err != nil {
		return nil, err
	}
	idx := 0
	for i, o := range live {
		if o == w.o.owner {
			idx = i
		}
	}
	n := max(len(live), 1)
	desired := func(p int) bool { return p%n == idx }
	limit := w.p.Partitions
	if w.o.maxParts > 0 {
		limit = w.o.maxParts
	}
	mu.Lock()
	hs := make(map[int]*held, len(running))
	for p, h := range running {
		hs[p] = h
	}
	mu.Unlock()
	for p, h := range hs {
		st, err := w.ps.RenewProjectionLease(ctx, h.lease, w.o.ttl)
		switch {
		case errors.Is(err, strata.ErrConflict), errors.Is(err, strata.ErrNotFound):
			w.o.log.Info("projection lease lost", "projection", w.p.Name, "partition", p)
			h.cancel()
			<-h.done
			mu.Lock()
			delete(running, p)
			mu.Unlock()
			continue
		case err != nil:
			return nil, err
		}
		if st.Paused || (!desired(p) && !catchup) {
			stop(p, h)
			if !st.Paused {
				handed[p] = time.Now()
			}
		}
	}
	sts, err := w.states(ctx)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	for _, st := range sts {
		p := st.Key.Partition
		mu.Lock()
		_, have := running[p]
		count := len(running)
		mu.Unlock()
		if have || finished[p] || st.Paused || count >= limit {
			continue
		}
		if !desired(p) {
			// Another live worker should run it; take it only when its lease is free and its
			// owner is gone (in Catchup, take every free partition).
			free := st.Owner == "" || !st.LeaseUntil.After(now)
			if !catchup && !(free && !contains(live, st.Owner)) {
				continue
			}
			// Just given up for the worker it belongs to: leave that worker a lease's time to
			// claim it before taking it back (it may be at its limit, or have finished it).
			if t, ok := handed[p]; ok && !catchup && now.Sub(t) < w.o.ttl {
				continue
			}
			if !free {
				continue
			}
		}
		if st.Owner != "" && st.Owner != w.o.owner && st.LeaseUntil.After(now) {
			continue
		}
		cst, err := w.ps.ClaimProjection(ctx, st.Key, w.o.owner, w.o.ttl)
		if errors.Is(err, strata.ErrConflict) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if st.Owner != "" && st.Owner != w.o.owner {
			w.o.log.Info("projection partition taken over", "projection", w.p.Name, "partition", p, "from", st.Owner, "at", cst.Position.String())
		}
		rctx, rcancel := context.WithCancel(ctx)
		h := &held{lease: strata.ProjectionLease{Key: cst.Key, Owner: w.o.owner, Epoch: cst.Epoch}, cancel: rcancel, done: make(chan struct{})}
		r := &runner{w: w, st: cst, lease: h.lease, stopAt: stopAt, catchup: catchup, wake: wake}
		mu.Lock()
		running[p] = h
		mu.Unlock()
		go func() {
			defer close(h.done)
			h.err = r.run(rctx)
			select {
			case wake <- struct{}{}:
			default:
			}
		}()
	}
	return live, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
