package inmem

import (
	"context"
	"iter"
	"slices"
	"time"

	"github.com/google/uuid"

	"github.com/strata-events/strata"
)

var _ strata.LedgerStore = (*Store)(nil)

// ledgerData is the store's strata.LedgerStore state, guarded by Store.mu.
type ledgerData struct {
	head        strata.LedgerHead
	leaves      []strata.LedgerLeaf // leaves[i].Index == i
	byEvent     map[uuid.UUID]uint64
	tiles       map[strata.LedgerTileID][]byte
	checkpoints []strata.LedgerCheckpoint // by size
}

// LedgerHead implements strata.LedgerStore.
func (s *Store) LedgerHead(ctx context.Context) (strata.LedgerHead, error) {
	if err := s.rlock(ctx, "ledger head"); err != nil {
		return strata.LedgerHead{}, err
	}
	defer s.mu.RUnlock()
	return s.ledger.head, nil
}

// AppendLedger implements strata.LedgerStore.
func (s *Store) AppendLedger(ctx context.Context, from strata.LedgerHead, leaves []strata.LedgerLeaf, tiles []strata.LedgerTile) error {
	const op = "append ledger"
	to, err := strata.PrepareLedgerAppend(op, from, leaves, tiles)
	if err != nil {
		return err
	}
	if err := s.lock(ctx, op); err != nil {
		return err
	}
	defer s.mu.Unlock()
	l := &s.ledger
	if l.head != from {
		return strata.LedgerHeadConflict(op, from, l.head)
	}
	for _, lf := range leaves {
		if _, dup := l.byEvent[lf.EventID]; dup {
			return strata.Errorf(strata.Conflict, op, "event %s already has a leaf", lf.EventID)
		}
	}
	if l.byEvent == nil {
		l.byEvent = make(map[uuid.UUID]uint64)
		l.tiles = make(map[strata.LedgerTileID][]byte)
	}
	for _, lf := range leaves {
		l.leaves = append(l.leaves, lf)
		l.byEvent[lf.EventID] = lf.Index
	}
	for _, t := range tiles {
		l.tiles[t.LedgerTileID] = slices.Clone(t.Data)
	}
	l.head = to
	return nil
}

// LedgerTiles implements strata.LedgerStore.
func (s *Store) LedgerTiles(ctx context.Context, ids []strata.LedgerTileID) ([]strata.LedgerTile, error) {
	if err := s.rlock(ctx, "ledger tiles"); err != nil {
		return nil, err
	}
	defer s.mu.RUnlock()
	out := make([]strata.LedgerTile, 0, len(ids))
	for _, id := range ids {
		if d, ok := s.ledger.tiles[id]; ok {
			out = append(out, strata.LedgerTile{LedgerTileID: id, Data: slices.Clone(d)})
		}
	}
	return out, nil
}

// LedgerLeaves implements strata.LedgerStore.
func (s *Store) LedgerLeaves(ctx context.Context, from uint64) iter.Seq2[strata.LedgerLeaf, error] {
	const op = "ledger leaves"
	return func(yield func(strata.LedgerLeaf, error) bool) {
		for next := from; ; {
			if err := s.rlock(ctx, op); err != nil {
				yield(strata.LedgerLeaf{}, err)
				return
			}
			var page []strata.LedgerLeaf
			if next < uint64(len(s.ledger.leaves)) {
				end := min(uint64(len(s.ledger.leaves)), next+pageSize)
				page = slices.Clone(s.ledger.leaves[next:end])
			}
			s.mu.RUnlock()
			if len(page) == 0 {
				return
			}
			for _, l := range page {
				if !yield(l, nil) {
					return
				}
			}
			next += uint64(len(page))
		}
	}
}

// LedgerLeaf implements strata.LedgerStore.
func (s *Store) LedgerLeaf(ctx context.Context, eventID uuid.UUID) (strata.LedgerLeaf, error) {
	const op = "ledger leaf"
	if err := s.rlock(ctx, op); err != nil {
		return strata.LedgerLeaf{}, err
	}
	defer s.mu.RUnlock()
	i, ok := s.ledger.byEvent[eventID]
	if !ok {
		return strata.LedgerLeaf{}, strata.LedgerLeafNotFound(op, eventID)
	}
	return s.ledger.leaves[i], nil
}

// SaveLedgerCheckpoint implements strata.LedgerStore.
func (s *Store) SaveLedgerCheckpoint(ctx context.Context, c strata.LedgerCheckpoint) error {
	const op = "save ledger checkpoint"
	if err := strata.ValidateLedgerCheckpoint(op, c); err != nil {
		return err
	}
	if err := s.lock(ctx, op); err != nil {
		return err
	}
	defer s.mu.Unlock()
	cps := s.ledger.checkpoints
	i, found := slices.BinarySearchFunc(cps, c.Size, func(c strata.LedgerCheckpoint, size uint64) int {
		switch {
		case c.Size < size:
			return -1
		case c.Size > size:
			return 1
		}
		return 0
	})
	c.Note = slices.Clone(c.Note)
	if found {
		note := strata.MergeLedgerNotes(cps[i].Note, c.Note)
		if err := strata.ValidateLedgerCheckpoint(op, strata.LedgerCheckpoint{Size: c.Size, Note: note}); err != nil {
			return err
		}
		cps[i].Note = note
		return nil
	}
	c.CreatedAt = strata.Timestamp(time.Now())
	s.ledger.checkpoints = slices.Insert(cps, i, c)
	return nil
}

// LedgerCheckpoints implements strata.LedgerStore.
func (s *Store) LedgerCheckpoints(ctx context.Context, after uint64) iter.Seq2[strata.LedgerCheckpoint, error] {
	const op = "ledger checkpoints"
	return func(yield func(strata.LedgerCheckpoint, error) bool) {
		for {
			if err := s.rlock(ctx, op); err != nil {
				yield(strata.LedgerCheckpoint{}, err)
				return
			}
			var page []strata.LedgerCheckpoint
			for _, c := range s.ledger.checkpoints {
				if c.Size > after {
					c.Note = slices.Clone(c.Note) // the caller's to keep or edit
					page = append(page, c)
					if len(page) == pageSize {
						break
					}
				}
			}
			s.mu.RUnlock()
			if len(page) == 0 {
				return
			}
			for _, c := range page {
				if !yield(c, nil) {
					return
				}
			}
			after = page[len(page)-1].Size
		}
	}
}

// LatestLedgerCheckpoint implements strata.LedgerStore.
func (s *Store) LatestLedgerCheckpoint(ctx context.Context) (strata.LedgerCheckpoint, error) {
	const op = "latest ledger checkpoint"
	if err := s.rlock(ctx, op); err != nil {
		return strata.LedgerCheckpoint{}, err
	}
	defer s.mu.RUnlock()
	if n := len(s.ledger.checkpoints); n > 0 {
		c := s.ledger.checkpoints[n-1]
		c.Note = slices.Clone(c.Note) // the caller's to keep or edit
		return c, nil
	}
	return strata.LedgerCheckpoint{}, strata.LedgerCheckpointNotFound(op)
}
