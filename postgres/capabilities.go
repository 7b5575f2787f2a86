package postgres

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/strata-events/strata"
)

var (
	_ strata.SnapshotStore   = (*Store)(nil)
	_ strata.TimerStore      = (*Store)(nil)
	_ strata.CheckpointStore = (*Store)(nil)
)

// capQueries holds the SQL of the optional capabilities (migration 0002), with the store's
// schema filled in. Every call is one statement, so none needs a transaction.
type capQueries struct {
	saveSnapshot, loadSnapshot, deleteSnapshot string
	scheduleTimer, dueTimers, deleteTimer      string
	saveCheckpoint, loadCheckpoint             string
}

func buildCapQueries(schema string) capQueries {
	r := strings.NewReplacer("{schema}", schema)
	return capQueries{
		// The stored snapshot is replaced unless it has a higher version, in one statement:
		// concurrent savers cannot roll it back. TakenAt is the database's clock, like
		// RecordedAt; timestamptz holds microseconds.
		saveSnapshot: r.Replace(`INSERT INTO {schema}.snapshots AS s (stream, version, schema, data, taken_at)
	VALUES ($1, $2, $3, $4, now())
	ON CONFLICT (stream) DO UPDATE SET version = excluded.version, schema = excluded.schema,
		data = excluded.data, taken_at = excluded.taken_at
	WHERE s.version <= excluded.version`),
		loadSnapshot:   r.Replace(`SELECT version, schema, data, taken_at FROM {schema}.snapshots WHERE stream = $1`),
		deleteSnapshot: r.Replace(`DELETE FROM {schema}.snapshots WHERE stream = $1`),

		scheduleTimer: r.Replace(`INSERT INTO {schema}.timers (id, owner, key, name, due_at, data)
	VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (id) DO NOTHING`),
		// dueTimers walks timers_due_idx; LIMIT NULL means no limit.
		dueTimers: r.Replace(`SELECT id, key, name, due_at, data FROM {schema}.timers
	WHERE owner = $1 AND due_at <= $2 ORDER BY due_at, id LIMIT $3::bigint`),
		deleteTimer: r.Replace(`DELETE FROM {schema}.timers WHERE id = $1`),

		saveCheckpoint: r.Replace(`INSERT INTO {schema}.checkpoints (name, position_commit, position_event) VALUES ($1, $2, $3)
	ON CONFLICT (name) DO UPDATE SET position_commit = excluded.position_commit, position_event = excluded.position_event`),
		loadCheckpoint: r.Replace(`SELECT position_commit, position_event FROM {schema}.checkpoints WHERE name = $1`),
	}
}

// exec runs one statement of op, unless the store is closed.
func (s *Store) exec(ctx context.Context, op, query string, args ...any) error {
	if s.closed.Load() {
		return strata.ClosedError(op)
	}
	if _, err := s.pool.Exec(ctx, query, args...); err != nil {
		return s.fail(op, err)
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
	return s.exec(ctx, op, s.cq.saveSnapshot, snap.Stream, snap.Version, int32(snap.Schema), snap.Data)
}

// LoadSnapshot implements strata.SnapshotStore.
func (s *Store) LoadSnapshot(ctx context.Context, stream string) (strata.Snapshot, error) {
	const op = "load snapshot"
	if err := strata.ValidateStreamName(op, stream); err != nil {
		return strata.Snapshot{}, err
	}
	if s.closed.Load() {
		return strata.Snapshot{}, strata.ClosedError(op)
	}
	snap := strata.Snapshot{Stream: stream}
	var schema int32
	err := s.pool.QueryRow(ctx, s.cq.loadSnapshot, stream).Scan(&snap.Version, &schema, &snap.Data, &snap.TakenAt)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
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
	if err := strata.ValidateStreamName(op, stream); err != nil {
		return err
	}
	return s.exec(ctx, op, s.cq.deleteSnapshot, stream)
}

// ScheduleTimer implements strata.TimerStore.
func (s *Store) ScheduleTimer(ctx context.Context, t strata.Timer) error {
	const op = "schedule timer"
	t, err := strata.PrepareTimer(op, t)
	if err != nil {
		return err
	}
	return s.exec(ctx, op, s.cq.scheduleTimer, t.ID, t.Owner, t.Key, t.Name, t.DueAt, t.Data)
}

// DueTimers implements strata.TimerStore.
func (s *Store) DueTimers(ctx context.Context, owner string, now time.Time, limit int) ([]strata.Timer, error) {
	const op = "due timers"
	if err := strata.ValidateTimerOwner(op, owner); err != nil {
		return nil, err
	}
	if s.closed.Load() {
		return nil, strata.ClosedError(op)
	}
	var lim *int64
	if limit > 0 {
		n := int64(limit)
		lim = &n
	}
	rows, _ := s.pool.Query(ctx, s.cq.dueTimers, owner, strata.Timestamp(now), lim)
	due, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (strata.Timer, error) {
		t := strata.Timer{Owner: owner}
		if err := row.Scan(&t.ID, &t.Key, &t.Name, &t.DueAt, &t.Data); err != nil {
			return strata.Timer{}, err
		}
		t.DueAt = t.DueAt.UTC()
		if t.Data == nil {
			t.Data = []byte{}
		}
		return t, nil
	})
	if err != nil {
		return nil, s.fail(op, err)
	}
	return due, nil
}

// DeleteTimer implements strata.TimerStore.
func (s *Store) DeleteTimer(ctx context.Context, id uuid.UUID) error {
	return s.exec(ctx, "delete timer", s.cq.deleteTimer, id)
}

// SaveCheckpoint implements strata.CheckpointStore. Each part of pos is stored as the bigint
// with the same bits.
func (s *Store) SaveCheckpoint(ctx context.Context, name string, pos strata.Position) error {
	const op = "save checkpoint"
	if err := strata.ValidateCheckpointName(op, name); err != nil {
		return err
	}
	return s.exec(ctx, op, s.cq.saveCheckpoint, name, int64(pos.Commit), int64(pos.Event))
}

// LoadCheckpoint implements strata.CheckpointStore.
func (s *Store) LoadCheckpoint(ctx context.Context, name string) (strata.Position, error) {
	const op = "load checkpoint"
	if err := strata.ValidateCheckpointName(op, name); err != nil {
		return strata.Start, err
	}
	if s.closed.Load() {
		return strata.Start, strata.ClosedError(op)
	}
	var commit, event int64
	err := s.pool.QueryRow(ctx, s.cq.loadCheckpoint, name).Scan(&commit, &event)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return strata.Start, nil
	case err != nil:
		return strata.Start, s.fail(op, err)
	}
	return strata.Position{Commit: uint64(commit), Event: uint64(event)}, nil
}
