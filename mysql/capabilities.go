package mysql

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/google/uuid"

	"github.com/strata-events/strata"
)

var (
	_ strata.SnapshotStore   = (*Store)(nil)
	_ strata.TimerStore      = (*Store)(nil)
	_ strata.CheckpointStore = (*Store)(nil)
)

// The statements of the optional capabilities (migration 0002). Each is one statement, run in
// autocommit mode on the read pool.
//
// VALUES(col) in ON DUPLICATE KEY UPDATE is the syntax that MariaDB and MySQL 8 share (MySQL
// 8.0.20+ deprecates it in favour of a row alias, which MariaDB lacks). The assignments run left
// to right and each sees the ones before, so version is assigned last: the others compare the
// stored version, not the new one.
const (
	// sqlSaveSnapshot replaces the stored snapshot unless it has a higher version, in one
	// statement: concurrent savers cannot roll it back. TakenAt is the database's clock, like
	// RecordedAt.
	sqlSaveSnapshot = "INSERT INTO snapshots (stream, version, schema_version, data, taken_at) VALUES (?, ?, ?, ?, UTC_TIMESTAMP(6))" +
		" ON DUPLICATE KEY UPDATE" +
		" schema_version = IF(VALUES(version) >= version, VALUES(schema_version), schema_version)," +
		" data = IF(VALUES(version) >= version, VALUES(data), data)," +
		" taken_at = IF(VALUES(version) >= version, VALUES(taken_at), taken_at)," +
		" version = GREATEST(version, VALUES(version))"
	sqlLoadSnapshot   = "SELECT version, schema_version, data, taken_at FROM snapshots WHERE stream = ?"
	sqlDeleteSnapshot = "DELETE FROM snapshots WHERE stream = ?"

	// sqlScheduleTimer ignores a duplicate ID with a no-op update. INSERT IGNORE would also
	// turn every other error, such as a value too long for its column, into a warning.
	sqlScheduleTimer = "INSERT INTO timers (id, owner, `key`, name, due_at, data) VALUES (?, ?, ?, ?, ?, ?)" +
		" ON DUPLICATE KEY UPDATE id = id"
	// sqlDueTimers walks index timers_due; the limited form appends LIMIT ?.
	sqlDueTimers   = "SELECT id, `key`, name, due_at, data FROM timers WHERE owner = ? AND due_at <= ? ORDER BY due_at, id"
	sqlDeleteTimer = "DELETE FROM timers WHERE id = ?"

	sqlSaveCheckpoint = "INSERT INTO checkpoints (name, position_commit, position_event) VALUES (?, ?, ?)" +
		" ON DUPLICATE KEY UPDATE position_commit = VALUES(position_commit), position_event = VALUES(position_event)"
	sqlLoadCheckpoint = "SELECT position_commit, position_event FROM checkpoints WHERE name = ?"
)

// latestDue is the last instant DATETIME(6) holds: every timer is due by then.
var latestDue = time.Date(strata.MaxTimerYear, 12, 31, 23, 59, 59, 999_999_000, time.UTC)

// exec runs one write statement of op, running it again after a deadlock or a lock wait
// timeout (concurrent upserts of one new key can deadlock on InnoDB's insert intention locks).
func (s *Store) exec(ctx context.Context, op, query string, args ...any) error {
	for attempt := 1; ; attempt++ {
		if s.isClosed() {
			return strata.ClosedError(op)
		}
		_, err := s.db.ExecContext(ctx, query, args...)
		switch {
		case err == nil:
			return nil
		case !retryable(err):
			return s.fail(op, err)
		case attempt >= maxAttempts:
			return &strata.Error{Code: strata.Unavailable, Op: op, Msg: "gave up after repeated deadlocks or lock wait timeouts; retry later", Err: err}
		}
		if err := sleep(ctx, time.Duration(attempt)*time.Millisecond+rand.N(5*time.Millisecond)); err != nil {
			return s.fail(op, err)
		}
	}
}

// SaveSnapshot implements strata.SnapshotStore.
func (s *Store) SaveSnapshot(ctx context.Context, snap strata.Snapshot) error {
	const op = "save snapshot"
	if s.isClosed() {
		return strata.ClosedError(op)
	}
	snap, err := strata.PrepareSnapshot(op, snap)
	if err != nil {
		return err
	}
	return s.exec(ctx, op, sqlSaveSnapshot, snap.Stream, snap.Version, int64(snap.Schema), snap.Data)
}

// LoadSnapshot implements strata.SnapshotStore.
func (s *Store) LoadSnapshot(ctx context.Context, stream string) (strata.Snapshot, error) {
	const op = "load snapshot"
	if s.isClosed() {
		return strata.Snapshot{}, strata.ClosedError(op)
	}
	if err := strata.ValidateStreamName(op, stream); err != nil {
		return strata.Snapshot{}, err
	}
	snap := strata.Snapshot{Stream: stream}
	var schema int64
	err := s.db.QueryRowContext(ctx, sqlLoadSnapshot, stream).Scan(&snap.Version, &schema, &snap.Data, &snap.TakenAt)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return strata.Snapshot{}, strata.SnapshotNotFound(op, stream)
	case err != nil:
		return strata.Snapshot{}, s.fail(op, err)
	}
	snap.Schema = int(schema)
	snap.TakenAt = snap.TakenAt.UTC()
	if snap.Data == nil {
		snap.Data = []byte{}
	}
	return snap, nil
}

// DeleteSnapshot implements strata.SnapshotStore.
func (s *Store) DeleteSnapshot(ctx context.Context, stream string) error {
	const op = "delete snapshot"
	if s.isClosed() {
		return strata.ClosedError(op)
	}
	if err := strata.ValidateStreamName(op, stream); err != nil {
		return err
	}
	return s.exec(ctx, op, sqlDeleteSnapshot, stream)
}

// ScheduleTimer implements strata.TimerStore.
func (s *Store) ScheduleTimer(ctx context.Context, t strata.Timer) error {
	const op = "schedule timer"
	if s.isClosed() {
		return strata.ClosedError(op)
	}
	t, err := strata.PrepareTimer(op, t)
	if err != nil {
		return err
	}
	return s.exec(ctx, op, sqlScheduleTimer, t.ID[:], t.Owner, t.Key, t.Name, t.DueAt, t.Data)
}

// DueTimers implements strata.TimerStore.
func (s *Store) DueTimers(ctx context.Context, owner string, now time.Time, limit int) ([]strata.Timer, error) {
	const op = "due timers"
	if s.isClosed() {
		return nil, strata.ClosedError(op)
	}
	if err := strata.ValidateTimerOwner(op, owner); err != nil {
		return nil, err
	}
	// DATETIME holds the years 1000 to 9999 only, and so do timers (strata.PrepareTimer).
	now = strata.Timestamp(now)
	if now.Year() < strata.MinTimerYear {
		return nil, nil
	}
	if now.After(latestDue) {
		now = latestDue
	}
	query, args := sqlDueTimers, []any{owner, now}
	if limit > 0 {
		query, args = query+" LIMIT ?", append(args, limit)
	}
	rows, err := s.db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, s.fail(op, err)
	}
	defer rows.Close()
	var due []strata.Timer
	for rows.Next() {
		t := strata.Timer{Owner: owner}
		var id []byte
		if err := rows.Scan(&id, &t.Key, &t.Name, &t.DueAt, &t.Data); err != nil {
			return nil, s.fail(op, err)
		}
		if len(id) != len(t.ID) {
			return nil, s.fail(op, fmt.Errorf("a timer of %q has an ID of %d bytes", owner, len(id)))
		}
		copy(t.ID[:], id)
		t.DueAt = t.DueAt.UTC()
		if t.Data == nil {
			t.Data = []byte{}
		}
		due = append(due, t)
	}
	if err := rows.Err(); err != nil {
		return nil, s.fail(op, err)
	}
	return due, nil
}

// DeleteTimer implements strata.TimerStore.
func (s *Store) DeleteTimer(ctx context.Context, id uuid.UUID) error {
	return s.exec(ctx, "delete timer", sqlDeleteTimer, id[:])
}

// SaveCheckpoint implements strata.CheckpointStore.
func (s *Store) SaveCheckpoint(ctx context.Context, name string, pos strata.Position) error {
	const op = "save checkpoint"
	if s.isClosed() {
		return strata.ClosedError(op)
	}
	if err := strata.ValidateCheckpointName(op, name); err != nil {
		return err
	}
	return s.exec(ctx, op, sqlSaveCheckpoint, name, pos.Commit, pos.Event)
}

// LoadCheckpoint implements strata.CheckpointStore.
func (s *Store) LoadCheckpoint(ctx context.Context, name string) (strata.Position, error) {
	const op = "load checkpoint"
	if s.isClosed() {
		return strata.Start, strata.ClosedError(op)
	}
	if err := strata.ValidateCheckpointName(op, name); err != nil {
		return strata.Start, err
	}
	var pos strata.Position
	err := s.db.QueryRowContext(ctx, sqlLoadCheckpoint, name).Scan(&pos.Commit, &pos.Event)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return strata.Start, nil
	case err != nil:
		return strata.Start, s.fail(op, err)
	}
	return pos, nil
}
