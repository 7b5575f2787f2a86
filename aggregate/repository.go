package aggregate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"strconv"
	"time"

	"github.com/google/uuid"

	"github.com/strata-events/strata"
	"github.com/strata-events/strata/codec"
)

// DefaultRetries is how often Handle decides again after a concurrency conflict by default.
const DefaultRetries = 3

// Envelope is a command with what the store needs to handle it.
type Envelope[C Command] struct {
	// ID identifies the command. Handling a command whose ID was handled before appends nothing
	// new and returns a Result with Duplicate set; resend the same ID when retrying a call whose
	// outcome is unknown. A resent command that the state now refuses is told apart from a new
	// one within the stream's last DuplicateWindow events. A zero ID gets a fresh UUIDv7 (no
	// idempotency across calls).
	ID uuid.UUID
	// Stream is the aggregate's stream, e.g. "certificate-7F3A".
	Stream string
	// Command is the command itself.
	Command C
	// Meta is copied to every event the command causes: tenant, principal, session and
	// correlation. Causation is set to the command's ID, and Correlation to it too when empty.
	Meta strata.Metadata
}

// Result is the outcome of Handle.
type Result[S any] struct {
	// State is the aggregate's state after the command (or as found, for a duplicate).
	State S
	// Version is the stream's version after the command.
	Version int64
	// Events is how many events this call appended: 0 for a command that changed nothing and for
	// a duplicate.
	Events int
	// Duplicate is set when the command's ID had been handled before.
	Duplicate bool
}

// Repository handles commands for one kind of aggregate. It is safe for concurrent use.
type Repository[S any, C Command, E any] struct {
	store   strata.Store
	codec   *codec.Registry
	decider Decider[S, C, E]
	snaps   strata.SnapshotStore
	cfg     config
	// sensitive is set when S has fields tagged strata:"sensitive": its snapshots must go
	// through a SnapshotProtector.
	sensitive bool
}

type config struct {
	retries        int
	snapshotEvery  int64
	snapshotSchema int
	log            *CommandLog
	logger         *slog.Logger
}

// Option configures a Repository.
type Option func(*config)

// WithRetries sets how often Handle loads and decides again after a concurrency conflict
// (another writer appended to the stream in between) before it returns the Conflict error.
// Default DefaultRetries; 0 turns retrying off.
func WithRetries(n int) Option { return func(c *config) { c.retries = max(n, 0) } }

// WithSnapshots saves a snapshot of the state each time a command moves the stream past a
// multiple of every events, and loads from the snapshot when there is one. schema is the version
// of S's JSON encoding: change it when S changes shape, and snapshots of other schemas are
// ignored (and replaced in time). The store must implement strata.SnapshotStore. A state with
// fields tagged strata:"sensitive" is snapshotted only through a SnapshotProtector of the codec
// registry (a *shred.Protector), never in clear.
func WithSnapshots(every int, schema int) Option {
	return func(c *config) { c.snapshotEvery, c.snapshotSchema = int64(every), schema }
}

// WithCommandLog records every handled command as a CommandSucceeded or CommandFailed event
// (see CommandLog).
func WithCommandLog(l CommandLog) Option { return func(c *config) { c.log = &l } }

// WithLogger sets where the repository reports what it cannot return to a caller (a snapshot
// that failed to save). Default slog.Default().
func WithLogger(l *slog.Logger) Option { return func(c *config) { c.logger = l } }

// New returns a repository that handles commands with decider d, storing events in store and
// converting them with reg, where every event type of E must be registered.
func New[S any, C Command, E any](store strata.Store, reg *codec.Registry, d Decider[S, C, E], opts ...Option) (*Repository[S, C, E], error) {
	const op = "aggregate new"
	if store == nil || reg == nil {
		return nil, strata.Errorf(strata.Invalid, op, "a repository needs a store and a codec registry")
	}
	if err := d.validate(op); err != nil {
		return nil, err
	}
	r := &Repository[S, C, E]{store: store, codec: reg, decider: d, cfg: config{retries: DefaultRetries, logger: slog.Default()}}
	for _, o := range opts {
		o(&r.cfg)
	}
	if r.cfg.snapshotEvery < 0 || r.cfg.snapshotSchema < 0 {
		return nil, strata.Errorf(strata.Invalid, op, "snapshot interval and schema must not be negative")
	}
	if r.cfg.snapshotEvery > 0 {
		ss, ok := store.(strata.SnapshotStore)
		if !ok {
			return nil, strata.Errorf(strata.Invalid, op, "snapshots need a store that implements strata.SnapshotStore; %T does not", store)
		}
		r.snaps = ss
		r.sensitive = hasSensitive(reflect.TypeFor[S]())
	}
	if r.cfg.log != nil {
		if err := r.cfg.log.init(reg); err != nil {
			return nil, err
		}
	}
	return r, nil
}

// Load returns the state of the aggregate in stream and the stream's version (0 when it has no
// events), folding the events after the snapshot when there is one.
func (r *Repository[S, C, E]) Load(ctx context.Context, stream string) (S, int64, error) {
	return r.load(ctx, stream, 0)
}

// LoadVersion returns the state after the event at version (the whole stream when version is 0
// or above the stream's version). It never uses a snapshot newer than version.
func (r *Repository[S, C, E]) LoadVersion(ctx context.Context, stream string, version int64) (S, int64, error) {
	return r.load(ctx, stream, version)
}

func (r *Repository[S, C, E]) load(ctx context.Context, stream string, upTo int64) (S, int64, error) {
	const op = "aggregate load"
	state, version := r.decider.initial(), int64(0)
	if r.snaps != nil {
		snap, err := r.snaps.LoadSnapshot(ctx, stream)
		switch {
		case err == nil && snap.Schema == r.cfg.snapshotSchema && (upTo == 0 || snap.Version <= upTo):
			if s, ok := r.openSnapshot(ctx, &snap); ok {
				state, version = s, snap.Version
			}
		case err == nil, errors.Is(err, strata.ErrNotFound):
		default:
			return state, 0, err
		}
	}
	limit := 0
	if upTo > 0 {
		if upTo <= version {
			return state, version, nil
		}
		limit = int(upTo - version)
	}
	for e, err := range r.store.ReadStream(ctx, stream, strata.ReadStreamOptions{From: version + 1, Limit: limit}) {
		if err != nil {
			return state, version, err
		}
		msgs, err := r.codec.Decode(ctx, e)
		if err != nil {
			return state, version, err
		}
		for _, m := range msgs {
			ev, err := asEvent[E](m.Value, m.Type)
			if err != nil {
				return state, version, strata.Errorf(strata.Invalid, op, "stream %q version %d: %w", stream, e.Version, err)
			}
			if state, err = r.evolve(state, ev); err != nil {
				return state, version, strata.Errorf(strata.Internal, op, "stream %q version %d: %w", stream, e.Version, err)
			}
		}
		version = e.Version
	}
	return state, version, nil
}

// Handle loads the aggregate in env.Stream, decides env.Command and appends the events it causes
// with the version it loaded as the expected version. When another writer appended in between,
// it loads and decides again, up to the configured retries. The decider's own error is returned
// as it is (errors.Is works on it); store errors are *strata.Error.
func (r *Repository[S, C, E]) Handle(ctx context.Context, env Envelope[C]) (Result[S], error) {
	const op = "aggregate handle"
	start := time.Now()
	if err := strata.ValidateStreamName(op, env.Stream); err != nil {
		return Result[S]{}, err
	}
	if any(env.Command) == nil {
		return Result[S]{}, strata.Errorf(strata.Invalid, op, "stream %q: the envelope has no command", env.Stream)
	}
	if env.ID == uuid.Nil {
		id, err := uuid.NewV7()
		if err != nil {
			return Result[S]{}, strata.Errorf(strata.Internal, op, "command ID: %w", err)
		}
		env.ID = id
	}
	meta := env.Meta
	meta.Causation = env.ID.String()
	if meta.Correlation == "" {
		meta.Correlation = meta.Causation
	}
	name := env.Command.CommandName()
	creator, guess := any(env.Command).(Creator)
	guess = guess && creator.CreatesStream()
	for attempt := 0; ; attempt++ {
		var (
			state   S
			version int64
			err     error
		)
		if guess {
			state = r.decider.initial() // the stream is guessed to be new; the append checks it
		} else if state, version, err = r.load(ctx, env.Stream, 0); err != nil {
			return Result[S]{}, err
		}
		events, err := r.decide(state, env.Command)
		if (err != nil || len(events) == 0) && guess {
			// Refused, or nothing to append (no write checks the guess): decide on the real state.
			guess, attempt = false, attempt-1
			continue
		}
		if err != nil {
			// A resent command that was handled is a duplicate, even when the state it led to
			// refuses it.
			if dup, herr := r.handled(ctx, env.Stream, env.ID); herr != nil {
				return Result[S]{}, herr
			} else if dup {
				return Result[S]{State: state, Version: version, Duplicate: true}, nil
			}
			r.cfg.log.failed(ctx, r.codec, r.store, env.ID, env.Stream, name, meta, version, start, err)
			return Result[S]{State: state, Version: version}, err
		}
		appends := make([]strata.StreamAppend, 0, 2)
		if len(events) > 0 {
			data := make([]strata.EventData, len(events))
			for i, e := range events {
				d, err := r.codec.EncodeID(ctx, EventID(env.ID, env.Stream, i), e, meta)
				if err != nil {
					return Result[S]{}, err
				}
				data[i] = d
			}
			appends = append(appends, strata.StreamAppend{Stream: env.Stream, Expected: strata.Exact(version), Events: data})
		}
		newState := state
		for _, e := range events {
			if newState, err = r.evolve(newState, e); err != nil {
				return Result[S]{}, strata.Errorf(strata.Internal, op, "stream %q: evolving a decided event: %w", env.Stream, err)
			}
		}
		newVersion := version + int64(len(events))
		if rec, ok, err := r.cfg.log.succeeded(ctx, r.codec, env.ID, env.Stream, name, meta, start, version, newVersion, len(events)); err != nil {
			return Result[S]{}, err
		} else if ok {
			appends = append(appends, rec)
		}
		if len(appends) == 0 {
			return Result[S]{State: state, Version: version}, nil
		}
		res, err := r.store.AppendMulti(ctx, appends...)
		switch {
		case err == nil && len(events) > 0 && res[0].Replayed:
			return r.duplicate(ctx, env.Stream)
		case err == nil:
			r.maybeSnapshot(ctx, env.Stream, newState, version, newVersion)
			return Result[S]{State: newState, Version: newVersion, Events: len(events)}, nil
		case errors.Is(err, strata.ErrEventIDReused):
			return r.duplicate(ctx, env.Stream)
		case IsVersionConflict(err) && guess:
			guess, attempt = false, attempt-1 // the stream exists: a wrong guess is not a retry
			continue
		case IsVersionConflict(err) && attempt < r.cfg.retries:
			continue
		}
		if IsVersionConflict(err) {
			r.cfg.log.failed(ctx, r.codec, r.store, env.ID, env.Stream, name, meta, version, start, err)
		}
		return Result[S]{}, err
	}
}

// duplicate is the result of a command that had been handled before.
func (r *Repository[S, C, E]) duplicate(ctx context.Context, stream string) (Result[S], error) {
	state, version, err := r.load(ctx, stream, 0)
	if err != nil {
		return Result[S]{}, err
	}
	return Result[S]{State: state, Version: version, Duplicate: true}, nil
}

// DuplicateWindow is how many of a stream's last events Handle reads, when the state refuses a
// command, to tell a resent command that was handled before (a Duplicate) from a refusal. It
// bounds what every refusal costs: a command resent after more than this many later events of
// its stream is refused as the state says.
const DuplicateWindow = 1000

// handled reports whether the last DuplicateWindow events of stream hold one that command id
// caused: a retried command's events are near the end.
func (r *Repository[S, C, E]) handled(ctx context.Context, stream string, id uuid.UUID) (bool, error) {
	first := EventID(id, stream, 0)
	for e, err := range r.store.ReadStream(ctx, stream, strata.ReadStreamOptions{Backward: true, Limit: DuplicateWindow}) {
		if err != nil {
			return false, err
		}
		if e.ID == first {
			return true, nil
		}
	}
	return false, nil
}

// IsVersionConflict reports whether err is a failed expected-version check (another writer
// appended first), as opposed to an event ID used before.
func IsVersionConflict(err error) bool {
	return errors.Is(err, strata.ErrConflict) && !errors.Is(err, strata.ErrEventIDReused)
}

// EventID returns the ID of the i-th event that command id causes in stream. IDs derived from the
// command make a retried command idempotent: the store recognises the events it already holds.
func EventID(command uuid.UUID, stream string, i int) uuid.UUID {
	return uuid.NewSHA1(command, []byte(stream+"\x00"+strconv.Itoa(i)))
}

// SaveSnapshot saves a snapshot of the aggregate in stream now, whatever the interval.
func (r *Repository[S, C, E]) SaveSnapshot(ctx context.Context, stream string) error {
	if r.snaps == nil {
		return strata.Errorf(strata.Invalid, "aggregate snapshot", "snapshots are not enabled (use WithSnapshots)")
	}
	state, version, err := r.load(ctx, stream, 0)
	if err != nil {
		return err
	}
	if version == 0 {
		return strata.Errorf(strata.NotFound, "aggregate snapshot", "stream %q has no events", stream)
	}
	return r.saveSnapshot(ctx, stream, state, version)
}

func (r *Repository[S, C, E]) maybeSnapshot(ctx context.Context, stream string, state S, from, to int64) {
	if r.snaps == nil || to/r.cfg.snapshotEvery == from/r.cfg.snapshotEvery {
		return
	}
	if err := r.saveSnapshot(ctx, stream, state, to); err != nil {
		// The command is committed; a missing snapshot only costs a longer load.
		r.cfg.logger.WarnContext(ctx, "strata: saving a snapshot failed", "stream", stream, "version", to, "error", err)
	}
}

func (r *Repository[S, C, E]) saveSnapshot(ctx context.Context, stream string, state S, version int64) error {
	const op = "aggregate snapshot"
	data, err := json.Marshal(state)
	if err != nil {
		return strata.Errorf(strata.Invalid, op, "encode state of %q: %w", stream, err)
	}
	snap := strata.Snapshot{Stream: stream, Version: version, Schema: r.cfg.snapshotSchema, Data: data}
	switch p := snapshotProtector(r.codec); {
	case p != nil:
		if err := p.SealSnapshot(ctx, state, &snap); err != nil {
			return strata.Errorf(strata.Invalid, op, "protect the snapshot of %q: %w", stream, err)
		}
	case r.sensitive:
		return strata.Errorf(strata.Invalid, op, "the state of %q (%T) has fields tagged strata:\"sensitive\", and no transform of the codec registry protects snapshots (install a *shred.Protector with Use): no snapshot is saved in clear", stream, state)
	}
	return r.snaps.SaveSnapshot(ctx, snap)
}

// openSnapshot decodes a loaded snapshot, through the registry's SnapshotProtector when it has
// one. It reports false when the snapshot is not to be used: it does not open or decode (a full
// replay, not an outage), it holds personal data of an erased subject (it is deleted, and the
// replay yields the redaction markers that the events yield), or the state has sensitive fields
// and there is no protector to open it.
func (r *Repository[S, C, E]) openSnapshot(ctx context.Context, snap *strata.Snapshot) (S, bool) {
	s := r.decider.initial()
	p := snapshotProtector(r.codec)
	if p == nil && r.sensitive {
		r.cfg.logger.WarnContext(ctx, "strata: ignoring the snapshot of a state with sensitive fields: no transform of the codec registry opens snapshots", "stream", snap.Stream, "version", snap.Version)
		return s, false
	}
	if p != nil {
		ok, err := p.OpenSnapshot(ctx, (*S)(nil), snap)
		if err != nil {
			r.cfg.logger.WarnContext(ctx, "strata: ignoring a snapshot that does not open", "stream", snap.Stream, "version", snap.Version, "error", err)
			return s, false
		}
		if !ok {
			if err := r.snaps.DeleteSnapshot(ctx, snap.Stream); err != nil {
				r.cfg.logger.WarnContext(ctx, "strata: deleting the snapshot of an erased subject failed", "stream", snap.Stream, "version", snap.Version, "error", err)
			}
			return s, false
		}
	}
	// The snapshot is the saved state itself, decoded into S's zero value: laid over the
	// initial state, the fields its JSON omits (an emptied map, an omitempty field) would come
	// back as the initial state has them.
	var saved S
	if err := json.Unmarshal(snap.Data, &saved); err != nil {
		// A snapshot that no longer decodes costs a full replay, not an outage.
		r.cfg.logger.WarnContext(ctx, "strata: ignoring a snapshot that does not decode", "stream", snap.Stream, "version", snap.Version, "error", err)
		return s, false
	}
	return saved, true
}

// decide runs the decider, turning a panic into an error: a command never crashes the process.
func (r *Repository[S, C, E]) decide(s S, c C) (events []E, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = strata.Errorf(strata.Internal, "aggregate decide", "%s panicked: %v", c.CommandName(), p)
		}
	}()
	return r.decider.Decide(s, c)
}

// evolve runs Evolve, turning a panic into an error: replay never crashes the process.
func (r *Repository[S, C, E]) evolve(s S, e E) (out S, err error) {
	defer func() {
		if p := recover(); p != nil {
			out, err = s, fmt.Errorf("evolve panicked on %T: %v", e, p)
		}
	}()
	return r.decider.Evolve(s, e), nil
}
