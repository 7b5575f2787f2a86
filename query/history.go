package query

import (
	"context"
	"encoding/json"
	"errors"
	"iter"
	"slices"
	"strings"
	"time"

	"github.com/strata-events/strata"
)

// Entry is one event of a history: who did it, when (both times), why, and what it changed.
type Entry struct {
	ID         string          `json:"id"`
	Stream     string          `json:"stream"`
	Version    int64           `json:"version"`
	Position   strata.Position `json:"position"`
	Type       string          `json:"type"`
	RecordedAt time.Time       `json:"recordedAt"`
	OccurredAt time.Time       `json:"occurredAt"`
	// Principal and Session say who; Reason, Correlation and Causation say why. Reason comes
	// from the metadata key "reason", else from a top-level "reason" string of the payload.
	Principal   string `json:"principal,omitempty"`
	Session     string `json:"session,omitempty"`
	Reason      string `json:"reason,omitempty"`
	Correlation string `json:"correlation,omitempty"`
	Causation   string `json:"causation,omitempty"`
	// Tombstoned is set when retention removed the event's payload: its metadata and diff are
	// gone with it.
	Tombstoned bool `json:"tombstoned,omitempty"`
	// Diff is the change of the stream's state (under the history's model) by this event.
	Diff []Change `json:"diff"`
	// Event is the event as stored.
	Event strata.Event `json:"-"`
}

// MetaReason is the metadata key an Entry's Reason is read from first.
const MetaReason = "reason"

func entryOf(e *strata.Event) Entry {
	en := Entry{
		ID: e.ID.String(), Stream: e.Stream, Version: e.Version, Position: e.Position, Type: e.Type,
		RecordedAt: e.RecordedAt, OccurredAt: e.OccurredAt,
		Principal: e.Meta.Principal, Session: e.Meta.Session, Correlation: e.Meta.Correlation, Causation: e.Meta.Causation,
		Reason: e.Meta.Extra[MetaReason], Event: *e,
	}
	if en.Reason == "" {
		var p struct {
			Reason any `json:"reason"`
		}
		if json.Unmarshal(e.Data, &p) == nil {
			if s, ok := p.Reason.(string); ok {
				en.Reason = s
			}
		}
	}
	return en
}

// HistoryOptions select part of a history.
type HistoryOptions struct {
	// From and To keep events recorded in [From, To); zero means open. Earlier events are still
	// folded, so that the first diff is against the true state before it.
	From, To time.Time
}

// History reads stream in version order and yields each event with the diff of m's state
// (as JSON) before and after it.
func History[S any](ctx context.Context, store strata.Store, m Model[S], stream string, opts HistoryOptions) iter.Seq2[Entry, error] {
	const op = "history"
	return func(yield func(Entry, error) bool) {
		if err := m.validate(op); err != nil {
			yield(Entry{}, err)
			return
		}
		if !opts.From.IsZero() && !opts.To.IsZero() && !opts.From.Before(opts.To) {
			yield(Entry{}, strata.Errorf(strata.Invalid, op, "time range %s to %s is empty", opts.From.Format(time.RFC3339Nano), opts.To.Format(time.RFC3339Nano)))
			return
		}
		rs, _ := store.(strata.RetentionStore)
		state := m.initial()
		before, err := json.Marshal(state)
		if err != nil {
			yield(Entry{}, strata.Errorf(strata.Invalid, op, "encode state: %w", err))
			return
		}
		for e, err := range store.ReadStream(ctx, stream, strata.ReadStreamOptions{}) {
			if err != nil {
				yield(Entry{}, err)
				return
			}
			if !opts.To.IsZero() && !e.RecordedAt.Before(opts.To) {
				return
			}
			if state, err = m.evolve(ctx, state, e); err != nil {
				yield(Entry{}, err)
				return
			}
			after, err := json.Marshal(state)
			if err != nil {
				yield(Entry{}, strata.Errorf(strata.Invalid, op, "encode state: %w", err))
				return
			}
			if e.RecordedAt.Before(opts.From) {
				before = after
				continue
			}
			en := entryOf(&e)
			if en.Tombstoned, err = isTombstone(ctx, rs, &e); err != nil {
				yield(Entry{}, err)
				return
			}
			if en.Diff, err = Diff(before, after); err != nil {
				yield(Entry{}, err)
				return
			}
			before = after
			if !yield(en, nil) {
				return
			}
		}
	}
}

// isTombstone reports whether e's payload was removed by retention.
func isTombstone(ctx context.Context, rs strata.RetentionStore, e *strata.Event) (bool, error) {
	if rs == nil || string(e.Data) != string(strata.TombstoneData) || !e.Meta.Equal(strata.TombstoneMeta(e.Meta)) {
		return false, nil
	}
	_, err := rs.Tombstone(ctx, e.ID)
	if errors.Is(err, strata.ErrNotFound) {
		return false, nil
	}
	return err == nil, err
}

// Entity names a thing that events of several streams are about, such as a certificate that
// its own stream and its revocation requests refer to: events of Tenant whose payload has the
// top-level field Field (default "serial") equal to ID, or whose metadata key "entity" is ID.
type Entity struct {
	Tenant string
	ID     string
	Field  string
	// StreamPrefixes, when set, bound the search to these streams (recommended: it is a scan
	// of the tenant's events otherwise).
	StreamPrefixes []string
	// Reveal, when set, decrypts the personal data of each event before the diffs are made
	// (see Revealing).
	Reveal func(context.Context, *strata.Event) error
}

// MetaEntity is the metadata key that names an event's entity explicitly.
const MetaEntity = "entity"

// EntityHistory yields every event about entity across streams, in (RecordedAt, Position)
// order, each with the diff of its own stream's JSON state (JSONModel), folded from the
// tenant's events alone: another tenant's events in a shared stream never show in a diff. The
// store must implement strata.QueryStore.
func EntityHistory(ctx context.Context, store strata.Store, ent Entity) iter.Seq2[Entry, error] {
	const op = "entity history"
	return func(yield func(Entry, error) bool) {
		if ent.ID == "" {
			yield(Entry{}, strata.Errorf(strata.Invalid, op, "an entity needs an ID"))
			return
		}
		field := ent.Field
		if field == "" {
			field = "serial"
		}
		prefixes := ent.StreamPrefixes
		if len(prefixes) == 0 {
			prefixes = []string{""}
		}
		var hits []strata.Event
		for _, p := range prefixes {
			for e, err := range Search(ctx, store, strata.EventQuery{Tenant: ent.Tenant, StreamPrefix: p, Limit: strata.MaxQueryLimit}) {
				if err != nil {
					yield(Entry{}, err)
					return
				}
				if about(&e, field, ent.ID) {
					hits = append(hits, e)
				}
			}
		}
		slices.SortFunc(hits, func(a, b strata.Event) int { return strata.CompareQueryOrder(&a, &b) })
		hits = slices.CompactFunc(hits, func(a, b strata.Event) bool { return a.ID == b.ID })
		// Diffs against each stream's state just before the event (a fold of the tenant's events
		// of its stream up to there: entity histories are for audits, not hot paths).
		m := JSONModel()
		if ent.Reveal != nil {
			m = Revealing(m, ent.Reveal)
		}
		rs, _ := store.(strata.RetentionStore)
		for _, e := range hits {
			st := m.initial()
			if e.Version > 1 {
				for pe, err := range store.ReadStream(ctx, e.Stream, strata.ReadStreamOptions{Limit: int(e.Version - 1)}) {
					if err != nil {
						yield(Entry{}, err)
						return
					}
					if pe.Meta.Tenant != ent.Tenant {
						continue // another tenant's event in a shared stream: not the tenant's to see
					}
					if st, err = m.evolve(ctx, st, pe); err != nil {
						yield(Entry{}, err)
						return
					}
				}
			}
			before, _ := json.Marshal(st)
			next, err := m.evolve(ctx, st, e)
			if err != nil {
				yield(Entry{}, err)
				return
			}
			after, _ := json.Marshal(next)
			en := entryOf(&e)
			if en.Tombstoned, err = isTombstone(ctx, rs, &e); err != nil {
				yield(Entry{}, err)
				return
			}
			if en.Diff, err = Diff(before, after); err != nil {
				yield(Entry{}, err)
				return
			}
			if !yield(en, nil) {
				return
			}
		}
	}
}

func about(e *strata.Event, field, id string) bool {
	if e.Meta.Extra[MetaEntity] == id {
		return true
	}
	// A payload that holds the ID neither plainly nor with an escape in it is not about it: the
	// quick test spares decoding most payloads of the tenant. An escape (encoding/json writes &
	// as \u0026, other encoders any non-ASCII character as \uXXXX) spells the ID otherwise.
	if !strings.Contains(string(e.Data), id) && !strings.Contains(string(e.Data), `\`) {
		return false
	}
	var obj map[string]json.RawMessage
	if json.Unmarshal(e.Data, &obj) != nil {
		return false
	}
	var v string
	return json.Unmarshal(obj[field], &v) == nil && v == id
}
