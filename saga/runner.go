package saga

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/strata-events/strata"
	"github.com/strata-events/strata/aggregate"
	"github.com/strata-events/strata/codec"
)

// DefaultTimerPoll is how often a running saga looks for due timers by default.
const DefaultTimerPoll = time.Second

// stepRetries bounds how often a step is decided again when another runner of the same saga
// appended to the instance's stream first.
const stepRetries = 5

// timerBatch is how many due timers one look fetches.
const timerBatch = 100

// Runner runs one saga against a store. Run it in one process, or in several: steps are
// idempotent, and concurrent runners only cost repeated work.
type Runner[S any, E any] struct {
	def      Definition[S, E]
	store    strata.Store
	codec    *codec.Registry
	dispatch Dispatcher
	timers   strata.TimerStore
	cps      strata.CheckpointStore
	clock    func() time.Time
	poll     time.Duration

	mu   sync.Mutex // one step at a time
	kick chan struct{}
}

// Option configures a Runner.
type Option func(*options)

type options struct {
	clock func() time.Time
	poll  time.Duration
}

// WithClock sets the clock that decides when timers are due. Default time.Now; tests pass a
// clock they move.
func WithClock(now func() time.Time) Option { return func(o *options) { o.clock = now } }

// WithTimerPoll sets how often Run looks for due timers (default DefaultTimerPoll). Timers a
// step schedules are looked at right away.
func WithTimerPoll(d time.Duration) Option { return func(o *options) { o.poll = d } }

// NewRunner returns a runner for def on store, decoding with reg (where the saga's event types
// and the input types must be registered) and delivering commands with dispatch. The store must
// implement strata.TimerStore and strata.CheckpointStore.
func NewRunner[S any, E any](store strata.Store, reg *codec.Registry, def Definition[S, E], dispatch Dispatcher, opts ...Option) (*Runner[S, E], error) {
	const op = "saga new"
	switch {
	case store == nil || reg == nil || dispatch == nil:
		return nil, strata.Errorf(strata.Invalid, op, "a saga runner needs a store, a codec registry and a dispatcher")
	case def.Correlate == nil || def.React == nil || def.Evolve == nil:
		return nil, strata.Errorf(strata.Invalid, op, "saga %q needs Correlate, React and Evolve", def.Name)
	}
	if err := strata.ValidateStreamName(op, def.Name); err != nil {
		return nil, err
	}
	timers, ok := store.(strata.TimerStore)
	if !ok {
		return nil, strata.Errorf(strata.Invalid, op, "sagas need a store that implements strata.TimerStore; %T does not", store)
	}
	cps, ok := store.(strata.CheckpointStore)
	if !ok {
		return nil, strata.Errorf(strata.Invalid, op, "sagas need a store that implements strata.CheckpointStore; %T does not", store)
	}
	if err := RegisterRecords(reg); err != nil {
		return nil, err
	}
	o := options{clock: time.Now, poll: DefaultTimerPoll}
	for _, f := range opts {
		f(&o)
	}
	if o.poll <= 0 {
		o.poll = DefaultTimerPoll
	}
	return &Runner[S, E]{def: def, store: store, codec: reg, dispatch: dispatch, timers: timers, cps: cps,
		clock: o.clock, poll: o.poll, kick: make(chan struct{}, 1)}, nil
}

// Stream returns the stream of the saga instance id.
func (r *Runner[S, E]) Stream(id string) string { return r.def.Name + "-" + id }

func (r *Runner[S, E]) checkpoint() string { return "saga:" + r.def.Name }

// Run follows the log from the saga's checkpoint and fires due timers, until ctx is done (it
// then returns nil) or a step fails (it returns that error; the next Run resumes at that step).
func (r *Runner[S, E]) Run(ctx context.Context) error {
	parent := ctx
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, 2)
	go func() { errc <- r.runLog(ctx) }()
	go func() { errc <- r.runTimers(ctx) }()
	err := <-errc
	cancel()
	if err2 := <-errc; err == nil {
		err = err2
	}
	// Only the caller's context ending is a clean stop: a step error that wraps a context
	// error of its own (a dispatcher's timeout) is a failure to report.
	if parent.Err() != nil && (err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)) {
		return nil
	}
	return err
}

// Catchup handles every event of the log after the checkpoint and every timer due now, then
// returns: a saga run as a one-shot job.
func (r *Runner[S, E]) Catchup(ctx context.Context) error {
	from, err := r.cps.LoadCheckpoint(ctx, r.checkpoint())
	if err != nil {
		return err
	}
	for e, err := range r.store.ReadAll(ctx, strata.ReadAllOptions{After: from, Filter: r.def.Filter}) {
		if err != nil {
			return err
		}
		if err := r.handleEvent(ctx, e); err != nil {
			return err
		}
	}
	_, err = r.FireDue(ctx)
	return err
}

func (r *Runner[S, E]) runLog(ctx context.Context) error {
	from, err := r.cps.LoadCheckpoint(ctx, r.checkpoint())
	if err != nil {
		return err
	}
	for e, err := range r.store.Subscribe(ctx, from, r.def.Filter) {
		if err != nil {
			return err
		}
		if err := r.handleEvent(ctx, e); err != nil {
			return err
		}
	}
	return nil
}

// handleEvent runs the step of each message e decodes into, then moves the checkpoint past e.
func (r *Runner[S, E]) handleEvent(ctx context.Context, e strata.Event) error {
	msgs, err := r.codec.Decode(ctx, e)
	if err != nil {
		return err
	}
	for i := range msgs {
		m := msgs[i]
		id, ok, err := r.correlate(m)
		if err != nil {
			return err
		}
		if !ok {
			continue
		}
		cause := e.ID
		if len(msgs) > 1 {
			cause = uuid.NewSHA1(e.ID, []byte(strconv.Itoa(i)))
		}
		in := Input{Message: &m, At: e.RecordedAt}
		if err := r.step(ctx, id, in, "event "+cause.String(), m.Type, e.Position.String(), cause, e.Meta); err != nil {
			return err
		}
	}
	return r.cps.SaveCheckpoint(ctx, r.checkpoint(), e.Position)
}

func (r *Runner[S, E]) runTimers(ctx context.Context) error {
	t := time.NewTicker(r.poll)
	defer t.Stop()
	for {
		if _, err := r.FireDue(ctx); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		case <-r.kick:
		}
	}
}

// FireDue handles every timer of the saga that is due by the runner's clock, and returns how
// many it handled.
func (r *Runner[S, E]) FireDue(ctx context.Context) (int, error) {
	n := 0
	for {
		due, err := r.timers.DueTimers(ctx, r.def.Name, r.clock(), timerBatch)
		if err != nil {
			return n, err
		}
		for _, t := range due {
			id, ok := strings.CutPrefix(t.Key, r.def.Name+"-")
			if !ok {
				return n, strata.Errorf(strata.Internal, "saga timer", "timer %s of saga %q has key %q, not one of its streams", t.ID, r.def.Name, t.Key)
			}
			in := Input{Timer: &Fired{Name: t.Name, DueAt: t.DueAt, Data: t.Data}, At: t.DueAt}
			if err := r.step(ctx, id, in, "timer "+t.ID.String(), t.Name, "", t.ID, strata.Metadata{}); err != nil {
				return n, err
			}
			if err := r.timers.DeleteTimer(ctx, t.ID); err != nil {
				return n, err
			}
			n++
		}
		if len(due) < timerBatch {
			return n, nil
		}
	}
}

// history is an instance's stream as a step sees it.
type history[S any] struct {
	state   S
	version int64
	// handled is set when the stream already holds this step; state and pending are then as
	// they were before it.
	handled bool
	pending map[string]StepTimer
	// tenant is the tenant of the instance's first event: timer steps carry it on.
	tenant string
}

// Load returns the state of the saga instance id and its stream's version.
func (r *Runner[S, E]) Load(ctx context.Context, id string) (S, int64, error) {
	h, err := r.history(ctx, r.Stream(id), "")
	return h.state, h.version, err
}

// history folds the instance's stream up to the first event of the step caused by cause
// (all of it when cause is empty or not found).
func (r *Runner[S, E]) history(ctx context.Context, stream, cause string) (history[S], error) {
	h := history[S]{pending: map[string]StepTimer{}}
	if r.def.Initial != nil {
		var err error
		if h.state, err = r.initial(); err != nil {
			return h, err
		}
	}
	for e, err := range r.store.ReadStream(ctx, stream, strata.ReadStreamOptions{}) {
		if err != nil {
			return h, err
		}
		if cause != "" && e.Meta.Causation == cause {
			h.handled = true
			return h, nil
		}
		if e.Version == 1 {
			h.tenant = e.Meta.Tenant
		}
		h.version = e.Version
		msgs, err := r.codec.Decode(ctx, e)
		if err != nil {
			return h, err
		}
		for _, m := range msgs {
			switch v := m.Value.(type) {
			case Step:
				if fired, ok := strings.CutPrefix(v.Input, "timer "); ok {
					for name, t := range h.pending {
						if t.ID.String() == fired {
							delete(h.pending, name)
						}
					}
				}
				for _, t := range v.Cancelled {
					if h.pending[t.Name].ID == t.ID {
						delete(h.pending, t.Name)
					}
				}
				for _, t := range v.Timers {
					h.pending[t.Name] = t
				}
			case CommandRejected:
			default:
				ev, ok := v.(E)
				if !ok {
					return h, strata.Errorf(strata.Invalid, "saga load", "stream %q version %d: event type %q decodes to %T, not an event of saga %q", stream, e.Version, m.Type, v, r.def.Name)
				}
				if h.state, err = r.evolve(h.state, ev); err != nil {
					return h, strata.Errorf(strata.Internal, "saga load", "stream %q version %d: %w", stream, e.Version, err)
				}
			}
		}
	}
	return h, nil
}

// step handles one input of instance id. input names it in the Step record; cause is the
// input's ID, from which every ID the step makes derives; from is the input event's metadata,
// whose tenant and correlation the step's events and commands carry on.
func (r *Runner[S, E]) step(ctx context.Context, id string, in Input, input, inputType, position string, cause uuid.UUID, from strata.Metadata) error {
	const op = "saga step"
	r.mu.Lock()
	defer r.mu.Unlock()
	stream := r.Stream(id)
	if err := strata.ValidateStreamName(op, stream); err != nil {
		return err
	}
	meta := strata.Metadata{Tenant: from.Tenant, Principal: "saga:" + r.def.Name, Causation: cause.String(), Correlation: from.Correlation}
	if meta.Correlation == "" {
		meta.Correlation = meta.Causation
	}
	for attempt := 0; ; attempt++ {
		h, err := r.history(ctx, stream, meta.Causation)
		if err != nil {
			return err
		}
		if !h.handled && r.def.Done != nil {
			done, err := r.done(h.state)
			if err != nil {
				return err
			}
			if done {
				return nil
			}
		}
		if in.Timer != nil && !h.handled {
			// A timer that a step after its listing replaced or cancelled does not fire.
			if p, ok := h.pending[in.Timer.Name]; !ok || p.ID != cause {
				return nil
			}
		}
		if meta.Tenant == "" {
			meta.Tenant = h.tenant
		}
		react, err := r.react(h.state, in)
		if err != nil {
			return fmt.Errorf("saga %q instance %q, %s: %w", r.def.Name, id, input, err)
		}
		step := Step{Input: input, InputType: inputType, Position: position}
		dispatches := make([]Dispatch, len(react.Commands))
		for i, c := range react.Commands {
			if c.Command == nil {
				return strata.Errorf(strata.Invalid, op, "saga %q instance %q: command %d is nil", r.def.Name, id, i)
			}
			d := Dispatch{ID: deriveID(cause, stream, "command", strconv.Itoa(i)), Stream: c.Stream, Command: c.Command, Meta: meta}
			dispatches[i] = d
			step.Commands = append(step.Commands, StepCommand{ID: d.ID, Command: c.Command.CommandName(), Stream: c.Stream})
		}
		for _, name := range react.CancelTimers {
			if t, ok := h.pending[name]; ok {
				step.Cancelled = append(step.Cancelled, t)
			}
		}
		for _, t := range react.Timers {
			if old, ok := h.pending[t.Name]; ok {
				step.Cancelled = append(step.Cancelled, old)
			}
			st := StepTimer{ID: deriveID(cause, stream, "timer", t.Name), Name: t.Name, At: strata.Timestamp(t.At)}
			// Checked before the step is recorded: a recorded timer that the store refuses
			// would fail the step's effects on every attempt.
			if _, err := strata.PrepareTimer(op, strata.Timer{ID: st.ID, Owner: r.def.Name, Key: stream, Name: t.Name, DueAt: t.At, Data: t.Data}); err != nil {
				return fmt.Errorf("saga %q instance %q, %s: React returned a timer the store cannot keep: %w", r.def.Name, id, input, err)
			}
			step.Timers = append(step.Timers, st)
		}
		if !h.handled {
			data := make([]strata.EventData, 0, len(react.Events)+1)
			for i, e := range react.Events {
				d, err := r.codec.EncodeID(ctx, deriveID(cause, stream, "event", strconv.Itoa(i)), e, meta)
				if err != nil {
					return err
				}
				data = append(data, d)
			}
			d, err := r.codec.EncodeID(ctx, deriveID(cause, stream, "step"), step, meta)
			if err != nil {
				return err
			}
			data = append(data, d)
			_, err = r.store.Append(ctx, stream, strata.Exact(h.version), data...)
			// Taken IDs mean another runner recorded this step first, decided on another state:
			// its record counts, and the next attempt finds it.
			if (aggregate.IsVersionConflict(err) || errors.Is(err, strata.ErrEventIDReused)) && attempt < stepRetries {
				continue
			}
			if err != nil {
				return err
			}
		}
		timers := react.Timers
		if h.handled && len(step.Timers) > 0 {
			// The step was done before: its timers may have fired, or later steps replaced or
			// cancelled them. Schedule again only those the stream still holds pending.
			if step, timers, err = r.stillPending(ctx, stream, step, timers); err != nil {
				return err
			}
		}
		return r.effects(ctx, stream, step, timers, dispatches)
	}
}

// stillPending keeps of step's timers (and the matching timers) those that are pending after the
// whole of the instance's stream.
func (r *Runner[S, E]) stillPending(ctx context.Context, stream string, step Step, timers []Timer) (Step, []Timer, error) {
	all, err := r.history(ctx, stream, "")
	if err != nil {
		return step, timers, err
	}
	var keepSteps []StepTimer
	var keep []Timer
	for i, t := range step.Timers {
		if p, ok := all.pending[t.Name]; ok && p.ID == t.ID {
			keepSteps = append(keepSteps, t)
			keep = append(keep, timers[i])
		}
	}
	step.Timers = keepSteps
	return step, keep, nil
}

// effects schedules and cancels the step's timers and dispatches its commands. Every effect is
// idempotent, so a step repeated after a crash repeats them harmlessly.
func (r *Runner[S, E]) effects(ctx context.Context, stream string, step Step, timers []Timer, dispatches []Dispatch) error {
	for _, t := range step.Cancelled {
		if err := r.timers.DeleteTimer(ctx, t.ID); err != nil {
			return err
		}
	}
	for i, t := range step.Timers {
		if err := r.timers.ScheduleTimer(ctx, strata.Timer{ID: t.ID, Owner: r.def.Name, Key: stream, Name: t.Name, DueAt: t.At, Data: timers[i].Data}); err != nil {
			return err
		}
	}
	if len(step.Timers) > 0 {
		select {
		case r.kick <- struct{}{}:
		default:
		}
	}
	for _, d := range dispatches {
		err := r.dispatch(ctx, d)
		if err == nil {
			continue
		}
		if retryable(ctx, err) {
			return fmt.Errorf("saga %q: dispatch %s %s to %q: %w", r.def.Name, d.Command.CommandName(), d.ID, d.Stream, err)
		}
		rej := CommandRejected{CommandID: d.ID, Command: d.Command.CommandName(), Stream: d.Stream, Error: err.Error()}
		var se *strata.Error
		if errors.As(err, &se) {
			rej.Code = se.Code
		}
		meta := d.Meta
		meta.Causation = d.ID.String()
		ed, eerr := r.codec.EncodeID(ctx, deriveID(d.ID, stream, "rejected"), rej, meta)
		if eerr != nil {
			return eerr
		}
		if _, aerr := r.store.Append(ctx, stream, strata.Any, ed); aerr != nil && !errors.Is(aerr, strata.ErrEventIDReused) {
			return aerr
		}
	}
	return nil
}

// retryable reports whether a dispatch error means "try again later" rather than "refused".
func retryable(ctx context.Context, err error) bool {
	if ctx.Err() != nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	var se *strata.Error
	return errors.As(err, &se) && (se.Retryable() || errors.Is(err, strata.ErrClosed) || aggregate.IsVersionConflict(err))
}

func deriveID(base uuid.UUID, parts ...string) uuid.UUID {
	return uuid.NewSHA1(base, []byte(strings.Join(parts, "\x00")))
}

// correlate runs Correlate, turning a panic into an error.
func (r *Runner[S, E]) correlate(m codec.Message) (id string, ok bool, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = strata.Errorf(strata.Internal, "saga correlate", "saga %q: correlate panicked on %s %s: %v", r.def.Name, m.Type, m.Event.ID, p)
		}
	}()
	id, ok = r.def.Correlate(m)
	return id, ok, nil
}

// initial runs Initial, turning a panic into an error.
func (r *Runner[S, E]) initial() (s S, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = strata.Errorf(strata.Internal, "saga initial", "saga %q: initial panicked: %v", r.def.Name, p)
		}
	}()
	return r.def.Initial(), nil
}

// done runs Done, turning a panic into an error.
func (r *Runner[S, E]) done(s S) (done bool, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = strata.Errorf(strata.Internal, "saga done", "saga %q: done panicked: %v", r.def.Name, p)
		}
	}()
	return r.def.Done(s), nil
}

// react runs React, turning a panic into an error.
func (r *Runner[S, E]) react(s S, in Input) (out Reaction[E], err error) {
	defer func() {
		if p := recover(); p != nil {
			err = strata.Errorf(strata.Internal, "saga react", "react panicked: %v", p)
		}
	}()
	return r.def.React(s, in)
}

// evolve runs Evolve, turning a panic into an error.
func (r *Runner[S, E]) evolve(s S, e E) (out S, err error) {
	defer func() {
		if p := recover(); p != nil {
			out, err = s, fmt.Errorf("evolve panicked on %T: %v", e, p)
		}
	}()
	return r.def.Evolve(s, e), nil
}
