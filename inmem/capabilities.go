package inmem

import (
	"bytes"
	"context"
	"slices"
	"time"

	"github.com/google/uuid"

	"github.com/strata-events/strata"
)

var (
	_ strata.SnapshotStore   = (*Store)(nil)
	_ strata.TimerStore      = (*Store)(nil)
	_ strata.CheckpointStore = (*Store)(nil)
)

// lock takes the write lock for op after checking ctx, and fails when the store is closed. The
// caller unlocks on a nil error.
func (s *Store) lock(ctx context.Context, op string) error {
	if err := ctx.Err(); err != nil {
		return &strata.Error{Code: strata.Unavailable, Op: op, Err: err}
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return strata.ClosedError(op)
	}
	return nil
}

// rlock is lock with the read lock; the caller calls RUnlock on a nil error.
func (s *Store) rlock(ctx context.Context, op string) error {
	if err := ctx.Err(); err != nil {
		return &strata.Error{Code: strata.Unavailable, Op: op, Err: err}
	}
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		return strata.ClosedError(op)
	}
	return nil
}

// SaveSnapshot implements strata.SnapshotStore.
func (s *Store) SaveSnapshot(ctx context.Context, snap strata.Snapshot) error {
	const op = "save snapshot"
	snap, err := strata.PrepareSnapshot(op, snap)
	if err != nil {
		return err
	}
	if err := s.lock(ctx, op); err != nil {
		return err
	}
	defer s.mu.Unlock()
	if old, ok := s.snapshots[snap.Stream]; ok && old.Version > snap.Version {
		return nil
	}
	snap.TakenAt = strata.Timestamp(s.now())
	s.snapshots[snap.Stream] = snap
	return nil
}

// LoadSnapshot implements strata.SnapshotStore.
func (s *Store) LoadSnapshot(ctx context.Context, stream string) (strata.Snapshot, error) {
	const op = "load snapshot"
	if err := strata.ValidateStreamName(op, stream); err != nil {
		return strata.Snapshot{}, err
	}
	if err := s.rlock(ctx, op); err != nil {
		return strata.Snapshot{}, err
	}
	defer s.mu.RUnlock()
	snap, ok := s.snapshots[stream]
	if !ok {
		return strata.Snapshot{}, strata.SnapshotNotFound(op, stream)
	}
	snap.Data = slices.Clone(snap.Data)
	return snap, nil
}

// DeleteSnapshot implements strata.SnapshotStore.
func (s *Store) DeleteSnapshot(ctx context.Context, stream string) error {
	const op = "delete snapshot"
	if err := strata.ValidateStreamName(op, stream); err != nil {
		return err
	}
	if err := s.lock(ctx, op); err != nil {
		return err
	}
	defer s.mu.Unlock()
	delete(s.snapshots, stream)
	return nil
}

// ScheduleTimer implements strata.TimerStore.
func (s *Store) ScheduleTimer(ctx context.Context, t strata.Timer) error {
	const op = "schedule timer"
	t, err := strata.PrepareTimer(op, t)
	if err != nil {
		return err
	}
	if err := s.lock(ctx, op); err != nil {
		return err
	}
	defer s.mu.Unlock()
	if _, ok := s.timers[t.ID]; !ok {
		s.timers[t.ID] = t
	}
	return nil
}

// DueTimers implements strata.TimerStore.
func (s *Store) DueTimers(ctx context.Context, owner string, now time.Time, limit int) ([]strata.Timer, error) {
	const op = "due timers"
	if err := strata.ValidateTimerOwner(op, owner); err != nil {
		return nil, err
	}
	if err := s.rlock(ctx, op); err != nil {
		return nil, err
	}
	now = strata.Timestamp(now)
	var due []strata.Timer
	for _, t := range s.timers {
		if t.Owner == owner && !t.DueAt.After(now) {
			due = append(due, t)
		}
	}
	s.mu.RUnlock()
	slices.SortFunc(due, func(a, b strata.Timer) int {
		if c := a.DueAt.Compare(b.DueAt); c != 0 {
			return c
		}
		return bytes.Compare(a.ID[:], b.ID[:])
	})
	if limit > 0 && len(due) > limit {
		due = due[:limit]
	}
	for i := range due {
		due[i].Data = slices.Clone(due[i].Data)
	}
	return due, nil
}

// DeleteTimer implements strata.TimerStore.
func (s *Store) DeleteTimer(ctx context.Context, id uuid.UUID) error {
	const op = "delete timer"
	if err := s.lock(ctx, op); err != nil {
		return err
	}
	defer s.mu.Unlock()
	delete(s.timers, id)
	return nil
}

// SaveCheckpoint implements strata.CheckpointStore.
func (s *Store) SaveCheckpoint(ctx context.Context, name string, pos strata.Position) error {
	const op = "save checkpoint"
	if err := strata.ValidateCheckpointName(op, name); err != nil {
		return err
	}
	if err := s.lock(ctx, op); err != nil {
		return err
	}
	defer s.mu.Unlock()
	s.checkpoints[name] = pos
	return nil
}

// LoadCheckpoint implements strata.CheckpointStore.
func (s *Store) LoadCheckpoint(ctx context.Context, name string) (strata.Position, error) {
	const op = "load checkpoint"
	if err := strata.ValidateCheckpointName(op, name); err != nil {
		return strata.Start, err
	}
	if err := s.rlock(ctx, op); err != nil {
		return strata.Start, err
	}
	defer s.mu.RUnlock()
	return s.checkpoints[name], nil
}
