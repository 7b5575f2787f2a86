// Package transmit delivers committed events to brokers and webhooks, with the store as the
// outbox: each transmitter follows the gap-free global log from its own checkpoint, sends the
// events its filter selects as CloudEvents 1.0, in batches, retries failures with exponential
// backoff and jitter, dead-letters events the destination keeps rejecting, and records every
// delivery (pending, sent, failed, dead; attempts; last error; times) in the store
// (strata.TransmitStore), so that nothing is lost silently.
//
// Delivery is at least once: a batch's records and the checkpoint commit after the destination
// confirmed the batch, so a transmitter killed in between sends the batch again when it
// restarts. Every message carries the event ID as the transport's idempotency key (Nats-Msg-Id,
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
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync/atomic"
	"time"

	"github.com/strata-events/strata"
	"github.com/strata-events/strata/hub"
)

// DefaultPendingPoll is how often a running transmitter looks for dead letters put back by
// `strata transmit dlq retry`.
const DefaultPendingPoll = 5 * time.Second

// Transmitter delivers the events of one filter to one Sink. Create it with New and run it with
// Run; one Run at a time per name (two processes running the same transmitter send everything
// twice — still at least once, but wasteful).
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

	sent, failed, dead atomic.Int64
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
	}
	for _, o := range opts {
		o(t)
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

type item struct {
	e   strata.Event
	err error
}

// Run delivers events until ctx is done or the store fails, and returns why: ctx's error
// wrapped in an Unavailable *strata.Error, or the store's error. It resumes from the
// transmitter's checkpoint, and re-sends requeued dead letters as it goes. It does not close
// the sink.
func (t *Transmitter) Run(ctx context.Context) error {
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
	cm := newCommitter(ctx, t.ts)
	defer cm.close()
	if err := t.redeliver(ctx); err != nil {
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
			if err := t.redeliver(ctx); err != nil {
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
				recs, err := t.deliver(ctx, batch, nil)
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

func newCommitter(ctx context.Context, ts strata.TransmitStore) *committer {
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
func (t *Transmitter) deliver(ctx context.Context, evs []strata.Event, prior []strata.Delivery) ([]strata.Delivery, error) {
	tr := make([]track, len(evs))
	for i, e := range evs {
		out := e
		if t.xform != nil {
			if err := t.xform(ctx, &out); err != nil {
				tr[i].xerr = Reject(fmt.Errorf("payload transform: %w", err))
			}
		}
		tr[i].msg = NewMessage(t.source, out)
		if prior != nil {
			tr[i].msg.Redelivery = true
			tr[i].attempts = prior[i].Attempts
			tr[i].first = prior[i].FirstAttemptAt
		}
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
		if err := ctx.Err(); err != nil {
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
			tr[i].status = strata.DeliveryFailed
			t.failed.Add(1)
			next = append(next, i)
			failed = append(failed, t.record(evs[i], &tr[i]))
		}
		if len(next) == 0 {
			break
		}
		if len(failed) > 0 {
			if err := t.ts.CommitDeliveries(ctx, strata.DeliveryCommit{Transmitter: t.name, Deliveries: failed}); err != nil {
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
func (t *Transmitter) redeliver(ctx context.Context) error {
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
			sent, err := t.deliver(ctx, evs, prior)
			if err != nil {
				return err
			}
			recs = append(recs, sent...)
		}
		if err := t.ts.CommitDeliveries(ctx, strata.DeliveryCommit{Transmitter: t.name, Deliveries: recs}); err != nil {
			return err
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
