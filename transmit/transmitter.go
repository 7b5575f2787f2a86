// Package transmit delivers committed events to brokers and webhooks, with the store as the
// outbox: each transmitter follows the gap-free global log from its own checkpoint, sends the
// events its filter selects as CloudEvents 1.0, in batches, retries failures with exponential
// backoff and jitter, dead-letters events the destination keeps rejecting, and records every
// delivery (pending, sent, failed, dead; attempts; last error; times) in the store
// (strata.TransmitStore), so that nothing is lost silently.
//
// Delivery is at least once: a batch's records and the checkpoint commit after the destination
// confirmed the batch, so a transmitter killed in between sends the batch again when it
// restarts. One instance per name delivers at a time: a transmitter holds a lease on its name
// in the store (renewed, with expiry and takeover, fenced by an epoch), and an instance started
// while another holds it waits as a standby and takes over, from the checkpoint, when the
// holder stops or dies. Every message carries the event ID as the transport's idempotency key (Nats-Msg-Id,
// AMQP message-id, the Kafka header ce_id, the Redis field id, webhook-id). Events of one stream
// go out in log order; an event that is retried after a rejection, or replayed from the
// dead-letter queue, may arrive after later events of its stream (the CloudEvents extension
// strataversion lets a consumer tell).
//
// The adapters are subpackages: nats (JetStream), amqp (RabbitMQ), kafka (franz-go), redis
// (Streams) and webhook (Standard Webhooks). A Manager runs the transmitters of a configuration
// file (LoadConfig). See docs/DELIVERY.md.
package transmit

import (
	"context"
	crand "crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/strata-events/strata"
	"github.com/strata-events/strata/hub"
)

// DefaultPendingPoll is how often a running transmitter looks for dead letters put back by
// `strata transmit dlq retry`.
const DefaultPendingPoll = 5 * time.Second

// DefaultLeaseTTL is how long a transmitter's lease on its name lasts unless renewed. The
// holder renews it every third of that; a standby tries to claim it every third of that too,
// so it takes over within a third of it after a clean stop (which releases the lease) and at
// most about 4/3 of it after the holder died.
const DefaultLeaseTTL = 15 * time.Second

// DefaultPruneEvery is how often a transmitter configured to prune its records does so.
const DefaultPruneEvery = time.Hour

// Transmitter delivers the events of one filter to one Sink. Create it with New and run it with
// Run. Any number of instances of one name may run, in one process or many, against one store:
// the one holding the name's lease delivers, the others wait (see Run).
type Transmitter struct {
	name   string
	store  strata.Store
	ts     strata.TransmitStore
	sink   Sink
	filter hub.Filter
	narrow strata.Filter
	source string
	xform  Transform
	log    *slog.Logger
	now    func() time.Time

	batch       int
	maxRetries  int
	retryDelay  time.Duration
	maxDelay    time.Duration
	exponential bool
	pendingPoll time.Duration
	flushEvery  time.Duration

	owner    string
	leaseTTL time.Duration

	pruneSent, pruneDead, pruneEvery time.Duration

	sent, failed, dead     atomic.Int64
	prunedSent, prunedDead atomic.Int64
	active                 atomic.Bool
}

// Option configures a Transmitter.
type Option func(*Transmitter)

// WithFilter selects the events sent; the default sends every event.
func WithFilter(f hub.Filter) Option { return func(t *Transmitter) { t.filter = f } }

// WithBatchSize sets the most events sent and recorded at once (1 to MaxBatchSize).
func WithBatchSize(n int) Option {
	return func(t *Transmitter) {
		if n > 0 && n <= MaxBatchSize {
			t.batch = n
		}
	}
}

// WithRetry sets the retry policy: how often a rejected event is retried before it is
// dead-lettered, the first wait, the longest wait, and whether waits double.
func WithRetry(maxRetries int, delay, maxDelay time.Duration, exponential bool) Option {
	return func(t *Transmitter) {
		t.maxRetries = max(maxRetries, 0)
		t.retryDelay = max(delay, 0)
		t.maxDelay = max(maxDelay, t.retryDelay)
		t.exponential = exponential
	}
}

// WithSource sets the CloudEvents source (default "strata").
func WithSource(source string) Option { return func(t *Transmitter) { t.source = source } }

// WithTransform sets the payload transform (see Transform and Payload).
func WithTransform(fn Transform) Option { return func(t *Transmitter) { t.xform = fn } }

// WithLogger sets the logger for retries and dead letters (default slog.Default()). It logs
// event IDs, types and errors, never payloads.
func WithLogger(l *slog.Logger) Option {
	return func(t *Transmitter) {
		if l != nil {
			t.log = l
		}
	}
}

// WithPendingPoll sets how often the transmitter looks for requeued dead letters.
func WithPendingPoll(d time.Duration) Option {
	return func(t *Transmitter) {
		if d > 0 {
			t.pendingPoll = d
		}
	}
}

// WithLease sets the name this instance holds the transmitter's lease under, and the lease's
// duration. owner must be unique among the instances that run the transmitter ("" keeps the
// default, DefaultOwner()); ttl between a second and a day (0 keeps DefaultLeaseTTL). The lease
// is renewed every third of ttl; a standby takes over within ttl/3 of a clean stop and about
// 4/3 ttl after the holder died.
func WithLease(owner string, ttl time.Duration) Option {
	return func(t *Transmitter) {
		if owner != "" {
			t.owner = owner
		}
		if ttl != 0 {
			t.leaseTTL = ttl
		}
	}
}

// WithPrune makes the transmitter, while it holds its lease, delete its sent records older than
// sentAfter and its dead letters older than deadAfter (0 keeps them), once when it takes the
// lease and then every every (0: DefaultPruneEvery). Failed and pending records are never
// pruned.
func WithPrune(sentAfter, deadAfter, every time.Duration) Option {
	return func(t *Transmitter) {
		t.pruneSent, t.pruneDead = max(sentAfter, 0), max(deadAfter, 0)
		t.pruneEvery = every
		if every <= 0 {
			t.pruneEvery = DefaultPruneEvery
		}
	}
}

// DefaultOwner returns a lease owner name for this process: its host name, process ID and a
// random suffix, so that two instances never share one.
func DefaultOwner() string {
	host, _ := os.Hostname()
	if host == "" {
		host = "localhost"
	}
	if len(host) > 150 {
		host = host[:150]
	}
	var b [4]byte
	_, _ = crand.Read(b[:])
	return fmt.Sprintf("%s/%d/%x", host, os.Getpid(), b)
}

// New returns a transmitter named name that sends store's events to sink. The store must
// implement strata.TransmitStore (every backend of this module does).
func New(store strata.Store, name string, sink Sink, opts ...Option) (*Transmitter, error) {
	const op = "new transmitter"
	if err := strata.ValidateTransmitterName(op, name); err != nil {
		return nil, err
	}
	ts, ok := store.(strata.TransmitStore)
	if !ok {
		return nil, strata.Errorf(strata.Invalid, op, "the store (%T) does not keep delivery records (strata.TransmitStore)", store)
	}
	if sink == nil {
		return nil, strata.Errorf(strata.Invalid, op, "transmitter %q has no sink", name)
	}
	t := &Transmitter{
		name: name, store: store, ts: ts, sink: sink, filter: hub.All(), log: slog.Default(), now: time.Now,
		batch: DefaultBatchSize, maxRetries: DefaultMaxRetries, retryDelay: DefaultRetryDelay, maxDelay: DefaultMaxDelay,
		exponential: true, pendingPoll: DefaultPendingPoll, flushEvery: time.Second,
		leaseTTL: DefaultLeaseTTL,
	}
	for _, o := range opts {
		o(t)
	}
	if t.owner == "" {
		t.owner = DefaultOwner()
	}
	if err := strata.ValidateTransmitOwner(op, t.owner); err != nil {
		return nil, err
	}
	if t.leaseTTL < time.Second || t.leaseTTL > 24*time.Hour {
		return nil, strata.Errorf(strata.Invalid, op, "transmitter %q: lease duration %s is not between 1s and 24h", name, t.leaseTTL)
	}
	if t.filter == nil {
		t.filter = hub.All()
	}
	t.narrow = hub.Narrow(t.filter)
	t.log = t.log.With("transmitter", name)
	return t, nil
}

// Name returns the transmitter's name.
func (t *Transmitter) Name() string { return t.name }

// Counts returns how many events this Transmitter value sent, saw fail and dead-lettered since
// it was made (the store's records hold the totals).
func (t *Transmitter) Counts() (sent, failed, dead int64) {
	return t.sent.Load(), t.failed.Load(), t.dead.Load()
}

// Pruned returns how many sent and dead records this Transmitter value pruned since it was made.
func (t *Transmitter) Pruned() (sent, dead int64) { return t.prunedSent.Load(), t.prunedDead.Load() }

// Owner returns the name this instance holds the lease under.
func (t *Transmitter) Owner() string { return t.owner }

// Active reports whether this instance holds the lease and delivers now (false while it waits
// as a standby, and when it does not run).
func (t *Transmitter) Active() bool { return t.active.Load() }

type item struct {
	e   strata.Event
	err error
}

// Run delivers events until ctx is done or the store fails, and returns why: ctx's error
// wrapped in an Unavailable *strata.Error, or the store's error. It does not close the sink.
//
// First it claims the transmitter's lease. While another instance holds a live lease, Run
// waits as a standby, trying again when that lease would expire (at least every third of the
// lease's duration). Holding the lease, it resumes from the transmitter's checkpoint, re-sends
// requeued dead letters as it goes, renews the lease every third of its duration and fences
// every commit with it. When the lease is lost (another instance took it over after this one
// stalled past its expiry) Run stops sending and returns a Conflict error wrapping
// strata.ErrTransmitLeaseLost: nothing it sent after that is recorded, so the new holder sends
// it again. When Run returns it releases the lease, so that a standby need not wait for it to
// expire.
func (t *Transmitter) Run(ctx context.Context) error {
	lease, err := t.acquire(ctx)
	if err != nil {
		return err
	}
	lctx, lose := context.WithCancelCause(ctx)
	var bg sync.WaitGroup
	bg.Go(func() { t.keepLease(lctx, lease, lose) })
	if t.pruneSent > 0 || t.pruneDead > 0 {
		bg.Go(func() { t.pruneLoop(lctx) })
	}
	t.active.Store(true)
	defer func() {
		t.active.Store(false)
		lose(nil)
		bg.Wait()
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if err := t.ts.ReleaseTransmitLease(rctx, lease); err != nil {
			t.log.Warn("could not release the lease; a standby takes over when it expires", "error", err, "until", lease.Until)
		}
	}()
	err = t.run(lctx, lease)
	if ctx.Err() == nil && lctx.Err() != nil {
		if cause := context.Cause(lctx); cause != nil && !errors.Is(cause, context.Canceled) {
			return cause
		}
	}
	return err
}

// acquire claims the lease, waiting while another instance holds it.
func (t *Transmitter) acquire(ctx context.Context) (strata.TransmitLease, error) {
	var waitingFor string
	for {
		l, err := t.ts.ClaimTransmitter(ctx, t.name, t.owner, t.leaseTTL)
		if err == nil {
			if waitingFor != "" {
				t.log.Info("took over the transmitter", "from", waitingFor, "owner", t.owner, "epoch", l.Epoch)
			} else {
				t.log.Debug("holding the transmitter's lease", "owner", t.owner, "epoch", l.Epoch)
			}
			return l, nil
		}
		if !errors.Is(err, strata.ErrTransmitterHeld) {
			return strata.TransmitLease{}, err
		}
		if l.Owner != waitingFor {
			t.log.Info("standing by: another instance holds the transmitter", "holder", l.Owner, "until", l.Until, "owner", t.owner)
			waitingFor = l.Owner
		}
		wait := t.leaseTTL / 3
		if d := l.Until.Sub(t.now()); d >= 0 && d < wait {
			wait = d + time.Millisecond
		}
		wait += rand.N(wait/10 + 1) // standbys of one name do not claim in lockstep
		timer := time.NewTimer(wait)
		select {
		case <-timer.C:
		case <-ctx.Done():
			timer.Stop()
			return strata.TransmitLease{}, &strata.Error{Code: strata.Unavailable, Op: "transmit", Msg: "transmitter " + t.name + " stopped while standing by", Err: ctx.Err()}
		}
	}
}

// keepLease renews the lease every third of its duration until ctx ends. When the lease is lost,
// or expires while it cannot be renewed, it calls lose with the reason, which stops the run.
func (t *Transmitter) keepLease(ctx context.Context, l strata.TransmitLease, lose context.CancelCauseFunc) {
	every := t.leaseTTL / 3
	timer := time.NewTimer(every)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		// A renewal may not outlast the lease: past its expiry a standby may hold it.
		now := t.now()
		if !now.Before(l.Until) {
			t.log.Warn("lease expired before it could be renewed; stopping")
			lose(strata.Errorf(strata.Unavailable, "transmit", "transmitter %q: the lease expired before it could be renewed", t.name))
			return
		}
		deadline := now.Add(every)
		if l.Until.Before(deadline) {
			deadline = l.Until
		}
		rctx, cancel := context.WithDeadline(ctx, deadline)
		renewed, err := t.ts.RenewTransmitLease(rctx, l, t.leaseTTL)
		cancel()
		switch {
		case err == nil:
			l = renewed
			timer.Reset(every)
		case ctx.Err() != nil:
			return
		case strata.ErrorCode(err) == strata.Conflict:
			t.log.Warn("lease lost: another instance took the transmitter over; stopping", "error", err)
			lose(err)
			return
		case !t.now().Before(l.Until):
			t.log.Warn("lease expired while it could not be renewed; stopping", "error", err)
			lose(strata.Errorf(strata.Unavailable, "transmit", "transmitter %q: the lease expired while it could not be renewed: %w", t.name, err))
			return
		default:
			t.log.Warn("lease renewal failed; retrying", "error", err, "until", l.Until)
			timer.Reset(min(every, max(l.Until.Sub(t.now())/2, time.Millisecond)))
		}
	}
}

// pruneLoop prunes the transmitter's old records now and then every pruneEvery, until ctx ends.
func (t *Transmitter) pruneLoop(ctx context.Context) {
	for {
		p := strata.DeliveryPrune{Transmitter: t.name}
		now := t.now()
		if t.pruneSent > 0 {
			p.SentBefore = now.Add(-t.pruneSent)
		}
		if t.pruneDead > 0 {
			p.DeadBefore = now.Add(-t.pruneDead)
		}
		n, err := t.ts.PruneDeliveryRecords(ctx, p)
		switch {
		case err != nil && ctx.Err() == nil:
			t.log.Warn("pruning delivery records failed; trying again at the next round", "error", err)
		case err == nil:
			t.prunedSent.Add(n.Sent)
			t.prunedDead.Add(n.Dead)
			if n.Sent+n.Dead > 0 {
				t.log.Info("pruned delivery records", "sent", n.Sent, "dead", n.Dead)
			}
		}
		timer := time.NewTimer(t.pruneEvery)
		select {
		case <-timer.C:
		case <-ctx.Done():
			timer.Stop()
			return
		}
	}
}

// run delivers while the lease is held; every commit is fenced by lease.
func (t *Transmitter) run(ctx context.Context, lease strata.TransmitLease) error {
	const op = "transmit"
	cp, err := t.ts.TransmitCheckpoint(ctx, t.name)
	if err != nil {
		return err
	}
	sctx, cancel := context.WithCancel(ctx)
	ch := make(chan item, 2*t.batch)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for e, err := range t.store.Subscribe(sctx, cp, t.narrow) {
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
	// Batches are recorded by a committer goroutine, in order, while the next batch is sent:
	// the store's write and the destination's confirmations overlap. The checkpoint still
	// moves only after a batch's records are stored, in log order.
	cm := newCommitter(ctx, t.ts, &lease)
	defer cm.close()
	if err := t.redeliver(ctx, &lease); err != nil {
		return err
	}
	pending := time.NewTicker(t.pendingPoll)
	defer pending.Stop()
	flush := time.NewTicker(t.flushEvery)
	defer flush.Stop()
	var (
		skipped   int             // events read but not selected since the last commit
		skippedTo strata.Position // the last of them
	)
	commitSkipped := func() error {
		if skipped == 0 {
			return nil
		}
		pos := skippedTo
		if err := cm.submit(strata.DeliveryCommit{Transmitter: t.name, Checkpoint: &pos}); err != nil {
			return err
		}
		skipped = 0
		return nil
	}
	batch := make([]strata.Event, 0, t.batch)
	for {
		var first item
		select {
		case first = <-ch:
		case err := <-cm.errc:
			return err
		case <-pending.C:
			if err := cm.flush(); err != nil {
				return err
			}
			if err := t.redeliver(ctx, &lease); err != nil {
				return err
			}
			continue
		case <-flush.C:
			if err := commitSkipped(); err != nil {
				return err
			}
			continue
		case <-ctx.Done():
			return &strata.Error{Code: strata.Unavailable, Op: op, Msg: "transmitter " + t.name + " stopped", Err: ctx.Err()}
		}
		if err := ctx.Err(); err != nil { // select picks any ready case: send nothing more once stopped
			return &strata.Error{Code: strata.Unavailable, Op: op, Msg: "transmitter " + t.name + " stopped", Err: err}
		}
		batch = batch[:0]
		var last strata.Position
		var readErr error
		it := first
		n := 0
		for {
			if it.err != nil {
				readErr = it.err
				break
			}
			n++
			last = it.e.Position
			if t.filter.Match(&it.e) {
				batch = append(batch, it.e)
			}
			if n >= t.batch {
				break
			}
			var ok bool
			select {
			case it = <-ch:
				ok = true
			default:
			}
			if !ok {
				break
			}
		}
		if n > 0 {
			if len(batch) == 0 {
				skipped += n
				skippedTo = last
				if skipped >= t.batch {
					if err := commitSkipped(); err != nil {
						return err
					}
				}
			} else {
				recs, err := t.deliver(ctx, &lease, batch, nil)
				if err != nil {
					return err
				}
				pos := last
				if err := cm.submit(strata.DeliveryCommit{Transmitter: t.name, Deliveries: recs, Checkpoint: &pos}); err != nil {
					return err
				}
				skipped = 0
			}
		}
		if readErr != nil {
			return readErr
		}
	}
}

// committer stores commits one after another in a goroutine of its own. A failed commit ends
// it: its error is reported once, and later submits return it.
type committer struct {
	jobs chan strata.DeliveryCommit
	errc chan error // the first failure
	idle chan chan struct{}
	done chan struct{}
	err  error // set by the goroutine before it closes done
}

func newCommitter(ctx context.Context, ts strata.TransmitStore, lease *strata.TransmitLease) *committer {
	c := &committer{jobs: make(chan strata.DeliveryCommit), errc: make(chan error, 1), idle: make(chan chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(c.done)
		for {
			select {
			case j, ok := <-c.jobs:
				if !ok {
					return
				}
				// A delivered batch is worth recording even while the transmitter stops: the
				// commit outlives ctx (bounded), so that a clean stop re-sends nothing.
				cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
				j.Lease = lease
				err := ts.CommitDeliveries(cctx, j)
				cancel()
				if err != nil {
					c.err = err
					c.errc <- err
					return
				}
			case ack := <-c.idle:
				close(ack) // every job submitted before was taken and stored
			}
		}
	}()
	return c
}

// submit hands a commit over, waiting while the previous one is being stored.
func (c *committer) submit(j strata.DeliveryCommit) error {
	select {
	case c.jobs <- j:
		return nil
	case <-c.done:
		return c.err
	}
}

// flush waits until every submitted commit is stored.
func (c *committer) flush() error {
	ack := make(chan struct{})
	select {
	case c.idle <- ack:
		// jobs is unbuffered: every job submitted before was taken, and the goroutine answers
		// only between commits.
		<-ack
		return nil
	case <-c.done:
		return c.err
	}
}

// close stores what is queued and stops the goroutine.
func (c *committer) close() {
	select {
	case <-c.done:
		return
	default:
	}
	close(c.jobs)
	<-c.done
}

// track follows one event through the tries of deliver.
type track struct {
	msg      *Message
	xerr     error // the transform's error
	attempts int
	rejects  int
	first    time.Time
	last     time.Time
	lastErr  string
	status   strata.DeliveryStatus
	sentAt   time.Time
}

// deliver sends evs until each is sent or dead, and returns their records. prior holds the
// stored records of re-sent dead letters (nil for events read from the log). It returns an
// error only when ctx ends or failure records cannot be stored; nothing is recorded then, so
// the events are sent again.
func (t *Transmitter) deliver(ctx context.Context, lease *strata.TransmitLease, evs []strata.Event, prior []strata.Delivery) ([]strata.Delivery, error) {
	tr := make([]track, len(evs))
	// prepare makes event i's message, through the transform. Every retry round makes it
	// again: a failed transform is run again like a failed send, and a payload revealed in
	// one round may be redacted in the next (its subject erased meanwhile).
	prepare := func(i int) {
		out := evs[i]
		tr[i].xerr = nil
		if t.xform != nil {
			if err := t.xform(ctx, &out); err != nil {
				tr[i].xerr = Reject(fmt.Errorf("payload transform: %w", err))
			}
		}
		tr[i].msg = NewMessage(t.source, out)
		tr[i].msg.Redelivery = prior != nil
	}
	for i := range evs {
		prepare(i)
		if prior != nil {
			tr[i].attempts = prior[i].Attempts
			tr[i].first = prior[i].FirstAttemptAt
		}
	}
	// A re-sent dead letter lies behind the checkpoint, so that the log is never read for it
	// again: while it is retried, its record stays pending, for redeliver to pick up after a
	// restart. An event read from the log is read again until it is sent or dead.
	retrying := strata.DeliveryFailed
	if prior != nil {
		retrying = strata.DeliveryPending
	}
	live := make([]int, len(evs))
	for i := range live {
		live[i] = i
	}
	send := make([]*Message, 0, len(evs))
	sentIdx := make([]int, 0, len(evs))
	for round := 1; ; round++ {
		now := strata.Timestamp(t.now())
		send, sentIdx = send[:0], sentIdx[:0]
		if round > 1 {
			for _, i := range live {
				if tr[i].xerr != nil || t.xform != nil {
					prepare(i)
				}
			}
		}
		for _, i := range live {
			tr[i].attempts++
			tr[i].last = now
			if tr[i].first.IsZero() {
				tr[i].first = now
			}
			if tr[i].xerr == nil {
				send = append(send, tr[i].msg)
				sentIdx = append(sentIdx, i)
			}
		}
		errs := map[int]error{}
		for _, i := range live {
			if tr[i].xerr != nil {
				errs[i] = tr[i].xerr
			}
		}
		if len(send) > 0 {
			err := t.sink.Send(ctx, send)
			var be *BatchError
			switch {
			case err == nil:
			case errors.As(err, &be):
				for j, e := range be.Errors {
					if j >= 0 && j < len(sentIdx) {
						errs[sentIdx[j]] = e
					}
				}
			default:
				for _, i := range sentIdx {
					errs[i] = err
				}
			}
		}
		// Stopped during the send: a round the destination confirmed entirely is still worth
		// recording (a clean stop re-sends nothing); any failure may be the stop's doing, so
		// nothing is recorded and the events are sent again.
		if err := ctx.Err(); err != nil && len(errs) > 0 {
			return nil, &strata.Error{Code: strata.Unavailable, Op: "transmit", Msg: "transmitter " + t.name + " stopped", Err: err}
		}
		next := live[:0:0]
		var failed []strata.Delivery
		var sampleErr error
		for _, i := range live {
			err, bad := errs[i]
			if !bad {
				tr[i].status, tr[i].sentAt = strata.DeliverySent, now
				t.sent.Add(1)
				continue
			}
			if isNotSent(err) {
				tr[i].attempts-- // never tried
				next = append(next, i)
				continue
			}
			sampleErr = err
			tr[i].lastErr = err.Error()
			if IsRejection(err) {
				tr[i].rejects++
				if tr[i].rejects > t.maxRetries {
					tr[i].status = strata.DeliveryDead
					t.dead.Add(1)
					t.log.Warn("event dead-lettered", "event", tr[i].msg.ID(), "type", tr[i].msg.Event.Type,
						"stream", tr[i].msg.Event.Stream, "attempts", tr[i].attempts, "error", tr[i].lastErr)
					continue
				}
			}
			tr[i].status = retrying
			t.failed.Add(1)
			next = append(next, i)
			failed = append(failed, t.record(evs[i], &tr[i]))
		}
		if len(next) == 0 {
			break
		}
		if len(failed) > 0 {
			if err := t.ts.CommitDeliveries(ctx, strata.DeliveryCommit{Transmitter: t.name, Deliveries: failed, Lease: lease}); err != nil {
				return nil, err
			}
		}
		wait := t.backoff(round)
		t.log.Warn("delivery failed; retrying", "failed", len(next), "round", round, "wait", wait, "error", sampleErr)
		timer := time.NewTimer(wait)
		select {
		case <-timer.C:
		case <-ctx.Done():
			timer.Stop()
			return nil, &strata.Error{Code: strata.Unavailable, Op: "transmit", Msg: "transmitter " + t.name + " stopped", Err: ctx.Err()}
		}
		live = next
	}
	recs := make([]strata.Delivery, len(evs))
	for i := range evs {
		recs[i] = t.record(evs[i], &tr[i])
	}
	return recs, nil
}

func (t *Transmitter) record(e strata.Event, tr *track) strata.Delivery {
	return strata.Delivery{
		EventID: e.ID, Position: e.Position, Stream: e.Stream, Version: e.Version, Type: e.Type,
		Status: tr.status, Attempts: tr.attempts, LastError: tr.lastErr,
		FirstAttemptAt: tr.first, LastAttemptAt: tr.last, SentAt: tr.sentAt,
	}
}

// backoff returns the wait before retry round n (1-based): RetryDelay, doubled per round when
// exponential, capped at MaxDelay, with equal jitter (half fixed, half random) so that many
// transmitters that failed together do not retry in lockstep.
func (t *Transmitter) backoff(n int) time.Duration {
	d := t.retryDelay
	if t.exponential {
		for i := 1; i < n && d < t.maxDelay; i++ {
			if d > t.maxDelay/2 {
				d = t.maxDelay // doubling would pass it, or overflow near the largest duration
				break
			}
			d *= 2
		}
	}
	d = min(d, t.maxDelay)
	if d <= 1 {
		return d
	}
	half := d / 2
	return half + rand.N(d-half+1)
}

// redeliver re-sends the transmitter's pending records (dead letters put back by hand), read
// again from the store, and records the outcome.
func (t *Transmitter) redeliver(ctx context.Context, lease *strata.TransmitLease) error {
	after := strata.Start
	for {
		ds, err := t.ts.Deliveries(ctx, strata.DeliveryQuery{Transmitter: t.name, Status: strata.DeliveryPending, After: after, Limit: t.batch})
		if err != nil || len(ds) == 0 {
			return err
		}
		after = ds[len(ds)-1].Position
		var evs []strata.Event
		var prior, gone []strata.Delivery
		for _, d := range ds {
			e, err := t.readEvent(ctx, d)
			if err != nil {
				if strata.ErrorCode(err) != strata.NotFound {
					return err
				}
				d.Status, d.LastError, d.LastAttemptAt = strata.DeliveryDead, err.Error(), strata.Timestamp(t.now())
				gone = append(gone, d)
				continue
			}
			evs = append(evs, e)
			prior = append(prior, d)
		}
		recs := gone
		if len(evs) > 0 {
			t.log.Info("re-sending dead letters", "events", len(evs))
			sent, err := t.deliver(ctx, lease, evs, prior)
			if err != nil {
				return err
			}
			recs = append(recs, sent...)
		}
		// Like the committer's, this commit outlives a stop (bounded), so that a re-send the
		// destination confirmed while the transmitter stopped is not made once more.
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		err = t.ts.CommitDeliveries(cctx, strata.DeliveryCommit{Transmitter: t.name, Deliveries: recs, Lease: lease})
		cancel()
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return &strata.Error{Code: strata.Unavailable, Op: "transmit", Msg: "transmitter " + t.name + " stopped", Err: err}
		}
	}
}

// readEvent reads the event of a record back from its stream.
func (t *Transmitter) readEvent(ctx context.Context, d strata.Delivery) (strata.Event, error) {
	for e, err := range t.store.ReadStream(ctx, d.Stream, strata.ReadStreamOptions{From: d.Version, Limit: 1}) {
		if err != nil {
			return strata.Event{}, err
		}
		if e.ID == d.EventID {
			return e, nil
		}
		break
	}
	return strata.Event{}, strata.Errorf(strata.NotFound, "redeliver", "event %s (%s version %d) is no longer in the store", d.EventID, d.Stream, d.Version)
}
