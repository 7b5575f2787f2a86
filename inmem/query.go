package inmem

import (
	"bytes"
	"cmp"
	"context"
	"iter"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/strata-events/strata"
)

var (
	_ strata.QueryStore            = (*Store)(nil)
	_ strata.TemporalSnapshotStore = (*Store)(nil)
	_ strata.RetentionStore        = (*Store)(nil)
)

// queryData is the state of the query capabilities, guarded by Store.mu.
type queryData struct {
	snaps      map[snapKey][]strata.TemporalSnapshot // by version
	tombstones map[uuid.UUID]strata.Tombstone
	holds      map[string]strata.LegalHold
}

type snapKey struct{ stream, model string }

// QueryEvents implements strata.QueryStore. It scans the log: the in-memory store is for tests.
func (s *Store) QueryEvents(ctx context.Context, q strata.EventQuery) (strata.EventPage, error) {
	const op = "query events"
	q, cur, after, err := strata.PrepareEventQuery(op, q)
	if err != nil {
		return strata.EventPage{}, err
	}
	if err := s.rlock(ctx, op); err != nil {
		return strata.EventPage{}, err
	}
	var match []strata.Event
	for i := range s.log {
		e := &s.log[i]
		if q.Match(e) && (!after || !cur.Before(e)) {
			match = append(match, *e)
		}
	}
	s.mu.RUnlock()
	slices.SortFunc(match, func(a, b strata.Event) int { return strata.CompareQueryOrder(&a, &b) })
	if len(match) > q.Limit+1 {
		match = match[:q.Limit+1]
	}
	for i := range match {
		match[i].Data = slices.Clone(match[i].Data)
		match[i].Meta = cloneMeta(match[i].Meta)
	}
	return strata.QueryPage(&q, match, false), nil
}

// CountEvents implements strata.QueryStore.
func (s *Store) CountEvents(ctx context.Context, q strata.EventQuery) (int64, error) {
	const op = "count events"
	q.Cursor, q.Limit = "", 0
	q, _, _, err := strata.PrepareEventQuery(op, q)
	if err != nil {
		return 0, err
	}
	if err := s.rlock(ctx, op); err != nil {
		return 0, err
	}
	defer s.mu.RUnlock()
	var n int64
	for i := range s.log {
		if q.Match(&s.log[i]) {
			n++
		}
	}
	return n, nil
}

// SaveTemporalSnapshot implements strata.TemporalSnapshotStore.
func (s *Store) SaveTemporalSnapshot(ctx context.Context, snap strata.TemporalSnapshot) error {
	const op = "save temporal snapshot"
	snap, err := strata.PrepareTemporalSnapshot(op, snap)
	if err != nil {
		return err
	}
	if err := s.lock(ctx, op); err != nil {
		return err
	}
	defer s.mu.Unlock()
	if s.qd.snaps == nil {
		s.qd.snaps = make(map[snapKey][]strata.TemporalSnapshot)
	}
	k := snapKey{snap.Stream, snap.Model}
	snap.Data = bytes.Clone(snap.Data)
	list := s.qd.snaps[k]
	i, found := slices.BinarySearchFunc(list, snap.Version, func(t strata.TemporalSnapshot, v int64) int { return cmp.Compare(t.Version, v) })
	if found {
		list[i] = snap
	} else {
		list = slices.Insert(list, i, snap)
	}
	s.qd.snaps[k] = list
	return nil
}

// TemporalSnapshotAt implements strata.TemporalSnapshotStore.
func (s *Store) TemporalSnapshotAt(ctx context.Context, stream, model string, recordedBy, occurredBy time.Time) (strata.TemporalSnapshot, error) {
	const op = "temporal snapshot"
	if err := s.rlock(ctx, op); err != nil {
		return strata.TemporalSnapshot{}, err
	}
	defer s.mu.RUnlock()
	list := s.qd.snaps[snapKey{stream, model}]
	for i := len(list) - 1; i >= 0; i-- {
		t := list[i]
		if !t.RecordedUpTo.After(recordedBy) && (occurredBy.IsZero() || !t.OccurredUpTo.After(occurredBy)) {
			t.Data = bytes.Clone(t.Data)
			return t, nil
		}
	}
	return strata.TemporalSnapshot{}, strata.TemporalSnapshotNotFound(op, stream, model)
}

// RetentionCandidates implements strata.RetentionStore: a walk of the log in Position order.
func (s *Store) RetentionCandidates(ctx context.Context, sel strata.RetentionSelect) (strata.RetentionPage, error) {
	const op = "retention candidates"
	if err := strata.ValidateRetentionSelect(op, sel); err != nil {
		return strata.RetentionPage{}, err
	}
	cur, _, err := strata.RetentionCursor(op, sel)
	if err != nil {
		return strata.RetentionPage{}, err
	}
	if err := s.rlock(ctx, op); err != nil {
		return strata.RetentionPage{}, err
	}
	defer s.mu.RUnlock()
	var out []strata.Event
	start := int(min(cur.Position.Event, uint64(len(s.log)))) // log[i].Position is i+1
	for i := start; i < len(s.log) && len(out) < sel.Limit; i++ {
		e := &s.log[i]
		if !sel.UpTo.IsZero() && sel.UpTo.Less(e.Position) {
			break
		}
		if !e.RecordedAt.Before(sel.RecordedBefore) {
			continue
		}
		if !sel.AnyTenant && e.Meta.Tenant != sel.Tenant ||
			len(sel.Types) > 0 && !slices.Contains(sel.Types, e.Type) ||
			slices.Contains(sel.ExcludeTypes, e.Type) ||
			sel.ExcludePrefix != "" && strings.HasPrefix(e.Stream, sel.ExcludePrefix) {
			continue
		}
		if _, ok := s.qd.tombstones[e.ID]; ok {
			continue
		}
		if _, ok := s.qd.holds[e.Stream]; ok {
			continue
		}
		c := *e
		c.Data, c.Meta = slices.Clone(e.Data), cloneMeta(e.Meta)
		out = append(out, c)
	}
	var last *strata.Event
	if len(out) > 0 {
		last = &out[len(out)-1]
	}
	return strata.RetentionPageOf(out, len(out) == sel.Limit, last), nil
}

// TombstoneEvents implements strata.RetentionStore.
func (s *Store) TombstoneEvents(ctx context.Context, ts []strata.Tombstone) (int, error) {
	const op = "tombstone events"
	if err := strata.PrepareTombstones(op, ts); err != nil {
		return 0, err
	}
	if err := s.lock(ctx, op); err != nil {
		return 0, err
	}
	defer s.mu.Unlock()
	if s.qd.tombstones == nil {
		s.qd.tombstones = make(map[uuid.UUID]strata.Tombstone)
	}
	now := strata.Timestamp(s.now())
	n := 0
	for k := len(ts) - 1; k >= 0; k-- { // the last of an event's tombstones wins
		t := ts[k]
		i, ok := s.ids[t.EventID]
		if !ok {
			continue
		}
		e := &s.log[i]
		if _, done := s.qd.tombstones[t.EventID]; done {
			continue
		}
		if _, held := s.qd.holds[e.Stream]; held {
			continue
		}
		t.LeafHash, t.RemovedAt = bytes.Clone(t.LeafHash), now
		s.qd.tombstones[t.EventID] = t
		e.Data, e.Meta = slices.Clone(strata.TombstoneData), strata.TombstoneMeta(e.Meta)
		// The stream's temporal snapshots hold a state folded from the removed payload.
		for k := range s.qd.snaps {
			if k.stream == e.Stream {
				delete(s.qd.snaps, k)
			}
		}
		n++
	}
	return n, nil
}

// Tombstone implements strata.RetentionStore.
func (s *Store) Tombstone(ctx context.Context, id uuid.UUID) (strata.Tombstone, error) {
	const op = "tombstone"
	if err := s.rlock(ctx, op); err != nil {
		return strata.Tombstone{}, err
	}
	defer s.mu.RUnlock()
	t, ok := s.qd.tombstones[id]
	if !ok {
		return strata.Tombstone{}, strata.TombstoneNotFound(op, id)
	}
	t.LeafHash = bytes.Clone(t.LeafHash)
	return t, nil
}

// PlaceLegalHold implements strata.RetentionStore.
func (s *Store) PlaceLegalHold(ctx context.Context, h strata.LegalHold) error {
	const op = "place legal hold"
	if err := strata.ValidateLegalHold(op, h); err != nil {
		return err
	}
	if err := s.lock(ctx, op); err != nil {
		return err
	}
	defer s.mu.Unlock()
	if s.qd.holds == nil {
		s.qd.holds = make(map[string]strata.LegalHold)
	}
	h.HeldAt = strata.Timestamp(s.now())
	if old, ok := s.qd.holds[h.Stream]; ok {
		h.HeldAt = old.HeldAt
	}
	s.qd.holds[h.Stream] = h
	return nil
}

// ReleaseLegalHold implements strata.RetentionStore.
func (s *Store) ReleaseLegalHold(ctx context.Context, stream string) error {
	const op = "release legal hold"
	if err := strata.ValidateStreamName(op, stream); err != nil {
		return err
	}
	if err := s.lock(ctx, op); err != nil {
		return err
	}
	defer s.mu.Unlock()
	delete(s.qd.holds, stream)
	return nil
}

// LegalHolds implements strata.RetentionStore.
func (s *Store) LegalHolds(ctx context.Context) iter.Seq2[strata.LegalHold, error] {
	const op = "legal holds"
	return func(yield func(strata.LegalHold, error) bool) {
		if err := s.rlock(ctx, op); err != nil {
			yield(strata.LegalHold{}, err)
			return
		}
		hs := make([]strata.LegalHold, 0, len(s.qd.holds))
		for _, h := range s.qd.holds {
			hs = append(hs, h)
		}
		s.mu.RUnlock()
		slices.SortFunc(hs, func(a, b strata.LegalHold) int { return strings.Compare(a.Stream, b.Stream) })
		for _, h := range hs {
			if !yield(h, nil) {
				return
			}
		}
	}
}
