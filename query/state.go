package query

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"

	"time"

	"github.com/strata-events/strata"
	"github.com/strata-events/strata/aggregate"
	"github.com/strata-events/strata/codec"
)

// Model folds the events of a stream into a state S. Name identifies the fold and the JSON
// encoding of S in snapshots ("pki.certificate/1"): change it when either changes.
type Model[S any] struct {
	Name string
	// Initial returns the state before the first event; nil means S's zero value.
	Initial func() S
	// Evolve returns the state after e. It must be pure: a replay decides the same.
	Evolve func(ctx context.Context, s S, e strata.Event) (S, error)
	// ValidTime, when set, says from when an event holds in the domain (valid time), where
	// that is not its OccurredAt: a revocation holds from its invalidity date. Nil means
	// OccurredAt. It must be pure.
	ValidTime func(e strata.Event) time.Time

	// revealed is set by Revealing: the states hold personal data in clear.
	revealed bool
}

// Revealing returns m folding each event after reveal has decrypted its personal data (such as
// shred.Protector.Reveal does, or replaced it with redaction markers once its subject is
// erased), for answers shown to a reader who holds the key. Its states hold that data in clear,
// so it neither reads nor takes temporal snapshots: StateAt folds the stream from its start,
// and TakeSnapshots refuses it. Take snapshots with m itself; they hold what the store holds.
func Revealing[S any](m Model[S], reveal func(context.Context, *strata.Event) error) Model[S] {
	evolve := m.Evolve
	m.Evolve = func(ctx context.Context, s S, e strata.Event) (S, error) {
		if err := reveal(ctx, &e); err != nil {
			return s, err
		}
		return evolve(ctx, s, e)
	}
	m.revealed = true
	return m
}

// validTime returns the valid time of e, turning a panic of ValidTime into an error, as
// evolve does for Evolve.
func (m Model[S]) validTime(e *strata.Event) (t time.Time, err error) {
	if m.ValidTime == nil {
		return e.OccurredAt, nil
	}
	defer func() {
		if p := recover(); p != nil {
			t, err = time.Time{}, strata.Errorf(strata.Internal, "query valid time", "%s v%d: ValidTime panicked: %v", e.Stream, e.Version, p)
		}
	}()
	if t := m.ValidTime(*e); !t.IsZero() {
		return strata.Timestamp(t), nil
	}
	return e.OccurredAt, nil
}

func (m Model[S]) initial() S {
	if m.Initial == nil {
		var zero S
		return zero
	}
	return m.Initial()
}

func (m Model[S]) validate(op string) (err error) {
	if m.Evolve == nil {
		return strata.Errorf(strata.Invalid, op, "a model needs Evolve")
	}
	if m.Name == "" {
		return strata.Errorf(strata.Invalid, op, "a model needs a name")
	}
	// Initial takes nothing and must be pure: one call under recover tells whether it panics,
	// so that the calls that follow never crash the process.
	if m.Initial != nil {
		defer func() {
			if p := recover(); p != nil {
				err = strata.Errorf(strata.Internal, op, "model %q: Initial panicked: %v", m.Name, p)
			}
		}()
		m.Initial()
	}
	return nil
}

// evolve runs Evolve, turning a panic into an error: replay never crashes the process.
func (m Model[S]) evolve(ctx context.Context, s S, e strata.Event) (out S, err error) {
	defer func() {
		if p := recover(); p != nil {
			out, err = s, strata.Errorf(strata.Internal, "query evolve", "%s v%d: evolve panicked: %v", e.Stream, e.Version, p)
		}
	}()
	return m.Evolve(ctx, s, e)
}

// JSONModel is the model of any stream whose events carry JSON objects: the state is the
// objects merged in order (RFC 7396 merge patch: a field set to null is removed). Tombstoned
// events (whose payload retention removed) change nothing. Numbers are json.Number, their text
// as written. It is what the CLI shows for a stream without a registered model.
func JSONModel() Model[map[string]any] {
	return Model[map[string]any]{
		Name:    "strata.json-merge/1",
		Initial: func() map[string]any { return map[string]any{} },
		Evolve: func(_ context.Context, s map[string]any, e strata.Event) (map[string]any, error) {
			var patch any
			if err := unmarshalJSONNumber(e.Data, &patch); err != nil {
				return s, strata.Errorf(strata.Invalid, "json model", "%s v%d: data is not JSON: %w", e.Stream, e.Version, err)
			}
			obj, ok := patch.(map[string]any)
			if !ok {
				return s, nil // null (a tombstone), or not an object: nothing to merge
			}
			out := make(map[string]any, len(s)+len(obj))
			for k, v := range s {
				out[k] = v
			}
			mergePatch(out, obj)
			return out, nil
		},
	}
}

// unmarshalJSONNumber is json.Unmarshal into v, numbers kept as json.Number (their text): a
// float64 would change an integer beyond 2^53, in the state and in the history's diffs.
func unmarshalJSONNumber(data []byte, v any) error {
	d := json.NewDecoder(bytes.NewReader(data))
	d.UseNumber()
	if err := d.Decode(v); err != nil {
		return err
	}
	if _, err := d.Token(); err != io.EOF {
		return errors.New("invalid data after the JSON value")
	}
	return nil
}

// decodeSnapshot decodes a snapshot's state as the fold makes it: the JSON model's numbers
// stay json.Number, so that a state from a snapshot is the state of a replay. s must be the
// zero S: JSON decoded over a model's initial state would keep what the saved state had
// dropped (a map's deleted key, a struct's field left out as empty).
func decodeSnapshot[S any](data []byte, s *S) error {
	if _, ok := any(s).(*map[string]any); ok {
		return unmarshalJSONNumber(data, s)
	}
	return json.Unmarshal(data, s)
}

func mergePatch(dst, patch map[string]any) {
	for k, v := range patch {
		if v == nil {
			delete(dst, k)
			continue
		}
		if pv, ok := v.(map[string]any); ok {
			if dv, ok := dst[k].(map[string]any); ok {
				c := make(map[string]any, len(dv))
				for kk, vv := range dv {
					c[kk] = vv
				}
				mergePatch(c, pv)
				dst[k] = c
				continue
			}
			c := map[string]any{}
			mergePatch(c, pv)
			dst[k] = c
			continue
		}
		dst[k] = v
	}
}

// DeciderModel is the model of an aggregate: events decode with reg and evolve with d. Events
// that decode into no event of the aggregate (a tombstone's null payload decodes into a zero
// value) are folded as the decider says.
func DeciderModel[S any, C aggregate.Command, E any](name string, reg *codec.Registry, d aggregate.Decider[S, C, E]) Model[S] {
	return Model[S]{
		Name:    name,
		Initial: d.Initial,
		Evolve: func(ctx context.Context, s S, e strata.Event) (S, error) {
			msgs, err := reg.Decode(ctx, e)
			if err != nil {
				return s, err
			}
			for _, m := range msgs {
				ev, ok := m.Value.(E)
				if !ok {
					return s, strata.Errorf(strata.Invalid, "decider model", "%s v%d: type %q is not an event of %s", e.Stream, e.Version, m.Type, name)
				}
				s = d.Evolve(s, ev)
			}
			return s, nil
		},
	}
}

// At says for which times a state is asked. Recorded is the transaction time: only events the
// store had committed by then count (zero means now). Occurred, when set, is the valid time:
// only events that occurred (OccurredAt) by then count, so that {Recorded: T1, Occurred: T2} is
// "the state as known at T1 about T2".
type At struct {
	Recorded time.Time
	Occurred time.Time
}

// State is a state at a time with what it was folded from.
type State[S any] struct {
	State S
	// Version is the version of the last event of the stream known at At.Recorded (0 for none):
	// with At.Occurred set, later-occurring events up to it were left out.
	Version int64
	// Events is how many events were folded after the snapshot; FromSnapshot is the version of
	// the snapshot the fold started from (0 for none).
	Events       int
	FromSnapshot int64
	// LastRecordedAt is when the last event known at At.Recorded was recorded.
	LastRecordedAt time.Time
	// Skipped counts events known at At.Recorded that occurred after At.Occurred.
	Skipped int
}

// readChunk is the first page of a state's read after its snapshot; later pages grow.
const readChunk = 128

// StateAt returns the state of stream as recorded at at.Recorded and, with at.Occurred set, as
// it was at at.Occurred by what was known at at.Recorded (valid time is the model's ValidTime,
// by default OccurredAt). The events known at a time are the
// longest prefix of the stream recorded at or before it. The fold starts from the latest
// temporal snapshot valid for both times when the store keeps them (see [TakeSnapshots]).
func StateAt[S any](ctx context.Context, store strata.Store, m Model[S], stream string, at At) (State[S], error) {
	const op = "state at"
	if err := m.validate(op); err != nil {
		return State[S]{}, err
	}
	if err := strata.ValidateStreamName(op, stream); err != nil {
		return State[S]{}, err
	}
	recorded := at.Recorded
	if recorded.IsZero() {
		recorded = time.Now()
	}
	recorded = strata.Timestamp(recorded)
	occurred := strata.Timestamp(at.Occurred)
	res := State[S]{State: m.initial()}
	var from int64
	if ts, ok := store.(strata.TemporalSnapshotStore); ok && !m.revealed {
		snap, err := ts.TemporalSnapshotAt(ctx, stream, m.Name, recorded, occurred)
		switch {
		case err == nil:
			var s S // not m.initial(): the JSON would be laid over it
			if err := decodeSnapshot(snap.Data, &s); err == nil {
				res.State, res.Version, res.FromSnapshot, res.LastRecordedAt = s, snap.Version, snap.Version, snap.RecordedUpTo
				from = snap.Version
			} // a snapshot that no longer decodes costs a full replay
		case errors.Is(err, strata.ErrNotFound):
		default:
			return res, err
		}
	}
	// From a snapshot, the read starts at its last version again, for when that event was
	// recorded: the snapshot's RecordedUpTo is the latest time of its versions, which is not
	// the last one's when a later version was recorded earlier (PostgreSQL stamps an event with
	// its transaction's start).
	start := from + 1
	if res.FromSnapshot > 0 {
		start = res.FromSnapshot
	}
	chunk := readChunk
	for {
		n := 0
		stop := false
		for e, err := range store.ReadStream(ctx, stream, strata.ReadStreamOptions{From: start, Limit: chunk}) {
			if err != nil {
				return res, err
			}
			n++
			from = e.Version
			if e.Version == res.FromSnapshot {
				res.LastRecordedAt = e.RecordedAt // folded into the snapshot, recorded by its RecordedUpTo
				continue
			}
			if e.RecordedAt.After(recorded) {
				stop = true
				break
			}
			res.Version, res.LastRecordedAt = e.Version, e.RecordedAt
			if !occurred.IsZero() {
				vt, err := m.validTime(&e)
				if err != nil {
					return res, err
				}
				if vt.After(occurred) {
					res.Skipped++
					continue
				}
			}
			var err error
			if res.State, err = m.evolve(ctx, res.State, e); err != nil {
				return res, err
			}
			res.Events++
		}
		if stop || n < chunk {
			return res, nil
		}
		start = from + 1
		chunk = min(chunk*4, 4096)
	}
}

// TakeSnapshots folds stream with m and saves a temporal snapshot after every every-th version,
// continuing from the latest snapshot of m. It returns how many it saved. The store must
// implement strata.TemporalSnapshotStore.
func TakeSnapshots[S any](ctx context.Context, store strata.Store, m Model[S], stream string, every int) (int, error) {
	const op = "take snapshots"
	if err := m.validate(op); err != nil {
		return 0, err
	}
	ts, ok := store.(strata.TemporalSnapshotStore)
	if !ok {
		return 0, strata.Errorf(strata.Invalid, op, "the store (%T) keeps no temporal snapshots", store)
	}
	if every <= 0 {
		return 0, strata.Errorf(strata.Invalid, op, "snapshot interval %d, want > 0", every)
	}
	if m.revealed {
		return 0, strata.Errorf(strata.Invalid, op, "model %q reveals personal data, and its states would keep it in clear: take snapshots with the model itself", m.Name)
	}
	state := m.initial()
	var version int64
	var recUpTo, occUpTo time.Time
	far := time.Date(strata.MaxTimerYear, 12, 31, 0, 0, 0, 0, time.UTC)
	if snap, err := ts.TemporalSnapshotAt(ctx, stream, m.Name, far, time.Time{}); err == nil {
		var s S
		if decodeSnapshot(snap.Data, &s) == nil {
			state, version, recUpTo, occUpTo = s, snap.Version, snap.RecordedUpTo, snap.OccurredUpTo
		}
	} else if !errors.Is(err, strata.ErrNotFound) {
		return 0, err
	}
	saved := 0
	for e, err := range store.ReadStream(ctx, stream, strata.ReadStreamOptions{From: version + 1}) {
		if err != nil {
			return saved, err
		}
		if state, err = m.evolve(ctx, state, e); err != nil {
			return saved, err
		}
		version = e.Version
		if e.RecordedAt.After(recUpTo) {
			recUpTo = e.RecordedAt
		}
		vt, err := m.validTime(&e)
		if err != nil {
			return saved, err
		}
		if vt.After(occUpTo) {
			occUpTo = vt
		}
		if version%int64(every) != 0 {
			continue
		}
		data, err := json.Marshal(state)
		if err != nil {
			return saved, strata.Errorf(strata.Invalid, op, "encode state of %q: %w", stream, err)
		}
		if err := ts.SaveTemporalSnapshot(ctx, strata.TemporalSnapshot{Stream: stream, Model: m.Name, Version: version, RecordedUpTo: recUpTo, OccurredUpTo: occUpTo, Data: data}); err != nil {
			return saved, err
		}
		saved++
	}
	return saved, nil
}

// Changes returns the events of stream recorded in [from, to): "what changed it that day".
// A zero to means now.
func Changes(ctx context.Context, store strata.Store, stream string, from, to time.Time) ([]strata.Event, error) {
	if !to.IsZero() && !from.Before(to) {
		return nil, strata.Errorf(strata.Invalid, "changes", "time range %s to %s is empty", from.Format(time.RFC3339), to.Format(time.RFC3339))
	}
	var out []strata.Event
	for e, err := range store.ReadStream(ctx, stream, strata.ReadStreamOptions{}) {
		if err != nil {
			return out, err
		}
		if !to.IsZero() && !e.RecordedAt.Before(to) {
			break
		}
		if !e.RecordedAt.Before(from) {
			out = append(out, e)
		}
	}
	return out, nil
}

// ChangesOccurred returns the events of stream whose valid time (OccurredAt) lies in [from, to),
// as known now: a revocation recorded on 20 March with an invalidity date of 14 March changed
// the certificate "on 14 March".
func ChangesOccurred(ctx context.Context, store strata.Store, stream string, from, to time.Time) ([]strata.Event, error) {
	return ChangesValid(ctx, store, stream, from, to, nil)
}

// ChangesValid is ChangesOccurred with the valid time that validTime gives an event (such as
// FieldValidTime's), where it gives one; nil, or a zero time, means OccurredAt.
func ChangesValid(ctx context.Context, store strata.Store, stream string, from, to time.Time, validTime func(strata.Event) time.Time) ([]strata.Event, error) {
	if to.IsZero() || !from.Before(to) {
		return nil, strata.Errorf(strata.Invalid, "changes", "need a time range with from before to")
	}
	m := Model[struct{}]{ValidTime: validTime}
	var out []strata.Event
	for e, err := range store.ReadStream(ctx, stream, strata.ReadStreamOptions{}) {
		if err != nil {
			return out, err
		}
		vt, err := m.validTime(&e)
		if err != nil {
			return out, err
		}
		if !vt.Before(from) && vt.Before(to) {
			out = append(out, e)
		}
	}
	return out, nil
}

// FieldValidTime returns a Model.ValidTime that reads the valid time from a top-level RFC 3339
// field of the payload, such as a revocation's "invalidSince"; events without it hold from their
// OccurredAt.
func FieldValidTime(field string) func(strata.Event) time.Time {
	return func(e strata.Event) time.Time {
		var obj map[string]json.RawMessage
		if json.Unmarshal(e.Data, &obj) != nil {
			return time.Time{}
		}
		var t time.Time
		if raw, ok := obj[field]; !ok || json.Unmarshal(raw, &t) != nil {
			return time.Time{}
		}
		return t
	}
}

// JSONFieldModel is JSONModel with its valid time read from the payload field named field (see
// FieldValidTime). Its name is JSONModel's with the field's digest: its temporal snapshots say
// up to which valid time their events hold by that field, and serve no other model, nor does a
// snapshot of JSONModel (whose valid time is OccurredAt) serve it.
func JSONFieldModel(field string) Model[map[string]any] {
	m := JSONModel()
	sum := sha256.Sum256([]byte(field))
	m.Name += "+valid-field:" + hex.EncodeToString(sum[:8])
	m.ValidTime = FieldValidTime(field)
	return m
}
