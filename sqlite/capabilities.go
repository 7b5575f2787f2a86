package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/strata-events/strata"
)

var (
	_ strata.SnapshotStore   = (*Store)(nil)
	_ strata.TimerStore      = (*Store)(nil)
	_ strata.CheckpointStore = (*Store)(nil)
)

// The statements of the optional capabilities (migration 0002). Each write is one statement in
// autocommit mode on the write connection, so it takes its turn with appends like they do.
const (
	// sqlSaveSnapshot replaces the stored snapshot unless it has a higher version, in one
	// statement: concurrent savers cannot roll a snapshot back.
	sqlSaveSnapshot = `INSERT INTO snapshots (stream, version, schema, data, taken_at) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (stream) DO UPDATE SET version = excluded.version, schema = excluded.schema,
			data = excluded.data, taken_at = excluded.taken_at
		WHERE excluded.version >= snapshots.version`
	sqlLoadSnapshot   = `SELECT version, schema, data, taken_at FROM snapshots WHERE stream = ?`
	sqlDeleteSnapshot = `DELETE FROM snapshots WHERE stream = ?`

	sqlScheduleTimer = `INSERT INTO timers (id, owner, "key", name, due_at, data) VALUES (?, ?, ?, ?, ?, ?)
		ON CONFLICT (id) DO NOTHING`
	// sqlDueTimers walks index timers_due; LIMIT -1 means no limit.
	sqlDueTimers = `SELECT id, "key", name, due_at, data FROM timers
		WHERE owner = ? AND due_at <= ? ORDER BY due_at, id LIMIT ?`
	sqlDeleteTimer = `DELETE FROM timers WHERE id = ?`

	sqlSaveCheckpoint = `INSERT INTO checkpoints (name, position_commit, position_event) VALUES (?, ?, ?)
		ON CONFLICT (name) DO UPDATE SET position_commit = excluded.position_commit, position_event = excluded.position_event`
	sqlLoadCheckpoint = `SELECT position_commit, position_event FROM checkpoints WHERE name = ?`
)

// exec runs one write statement on the write connection, in its turn.
func (s *Store) exec(ctx context.Context, op, query string, args ...any) error {
	w := s.wr
	if err := w.acquire(ctx, s.closed); err != nil {
		return s.failWrite(ctx, op, err)
	}
	defer w.release()
	if _, err := w.conn.ExecContext(ctx, query, args...); err != nil {
		return s.failWrite(ctx, op, err)
	}
	return nil
}

// SaveSnapshot implements strata.SnapshotStore.
func (s *Store) SaveSnapshot(ctx context.Context, snap strata.Snapshot) error {
	const op = "save snapshot"
	if err := s.checkOpen(op); err != nil {
		return err
	}
	snap, err := strata.PrepareSnapshot(op, snap)
	if err != nil {
		return err
	}
	now := strata.Timestamp(time.Now()).UnixMicro()
	return s.exec(ctx, op, sqlSaveSnapshot, snap.Stream, snap.Version, int64(snap.Schema), snap.Data, now)
}

// LoadSnapshot implements strata.SnapshotStore.
func (s *Store) LoadSnapshot(ctx context.Context, stream string) (strata.Snapshot, error) {
	const op = "load snapshot"
	if err := s.checkOpen(op); err != nil {
		return strata.Snapshot{}, err
	}
	if err := strata.ValidateStreamName(op, stream); err != nil {
		return strata.Snapshot{}, err
	}
	snap := strata.Snapshot{Stream: stream}
	var schema, taken int64
	err := s.r.QueryRowContext(ctx, sqlLoadSnapshot, stream).Scan(&snap.Version, &schema, &snap.Data, &taken)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return strata.Snapshot{}, strata.SnapshotNotFound(op, stream)
	case err != nil:
		return strata.Snapshot{}, s.fail(ctx, op, err)
	}
	snap.Schema = int(schema)
	snap.TakenAt = time.UnixMicro(taken).UTC()
	if snap.Data == nil {
		snap.Data = []byte{}
	}
	return snap, nil
}

// DeleteSnapshot implements strata.SnapshotStore.
func (s *Store) DeleteSnapshot(ctx context.Context, stream string) error {
	const op = "delete snapshot"
	if err := s.checkOpen(op); err != nil {
		return err
	}
	if err := strata.ValidateStreamName(op, stream); err != nil {
		return err
	}
	return s.exec(ctx, op, sqlDeleteSnapshot, stream)
}

// ScheduleTimer implements strata.TimerStore.
func (s *Store) ScheduleTimer(ctx context.Context, t strata.Timer) error {
	const op = "schedule timer"
	if err := s.checkOpen(op); err != nil {
		return err
	}
	t, err := strata.PrepareTimer(op, t)
	if err != nil {
		return err
	}
	return s.exec(ctx, op, sqlScheduleTimer, t.ID[:], t.Owner, t.Key, t.Name, t.DueAt.UnixMicro(), t.Data)
}

// DueTimers implements strata.TimerStore.
func (s *Store) DueTimers(ctx context.Context, owner string, now time.Time, limit int) ([]strata.Timer, error) {
	const op = "due timers"
	if err := s.checkOpen(op); err != nil {
		return nil, err
	}
	if err := strata.ValidateTimerOwner(op, owner); err != nil {
		return nil, err
	}
	if limit <= 0 {
		limit = -1
	}
	rows, err := s.r.QueryContext(ctx, sqlDueTimers, owner, strata.Timestamp(now).UnixMicro(), limit)
	if err != nil {
		return nil, s.fail(ctx, op, err)
	}
	defer rows.Close()
	var due []strata.Timer
	for rows.Next() {
		t := strata.Timer{Owner: owner}
		var id []byte
		var at int64
		if err := rows.Scan(&id, &t.Key, &t.Name, &at, &t.Data); err != nil {
			return nil, s.fail(ctx, op, err)
		}
		if len(id) != len(t.ID) {
			return nil, s.fail(ctx, op, fmt.Errorf("a timer of %q has an ID of %d bytes", owner, len(id)))
		}
		copy(t.ID[:], id)
		t.DueAt = time.UnixMicro(at).UTC()
		if t.Data == nil {
			t.Data = []byte{}
		}
		due = append(due, t)
	}
	if err := rows.Err(); err != nil {
		return nil, s.fail(ctx, op, err)
	}
	return due, nil
}

// DeleteTimer implements strata.TimerStore.
func (s *Store) DeleteTimer(ctx context.Context, id uuid.UUID) error {
	const op = "delete timer"
	if err := s.checkOpen(op); err != nil {
		return err
	}
	return s.exec(ctx, op, sqlDeleteTimer, id[:])
}

// SaveCheckpoint implements strata.CheckpointStore. Each part of pos is stored as the int64
// with the same bits.
func (s *Store) SaveCheckpoint(ctx context.Context, name string, pos strata.Position) error {
	const op = "save checkpoint"
	if err := s.checkOpen(op); err != nil {
		return err
	}
	if err := strata.ValidateCheckpointName(op, name); err != nil {
		return err
	}
	return s.exec(ctx, op, sqlSaveCheckpoint, name, int64(pos.Commit), int64(pos.Event))
}

// LoadCheckpoint implements strata.CheckpointStore.
func (s *Store) LoadCheckpoint(ctx context.Context, name string) (strata.Position, error) {
	const op = "load checkpoint"
	if err := s.checkOpen(op); err != nil {
		return strata.Start, err
	}
	if err := strata.ValidateCheckpointName(op, name); err != nil {
		return strata.Start, err
	}
	var commit, event int64
	err := s.r.QueryRowContext(ctx, sqlLoadCheckpoint, name).Scan(&commit, &event)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return strata.Start, nil
	case err != nil:
		return strata.Start, s.fail(ctx, op, err)
	}
	return strata.Position{Commit: uint64(commit), Event: uint64(event)}, nil
}
