package postgres

import (
	"context"
	"errors"
	"iter"
	"strings"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/strata-events/strata"
	"github.com/strata-events/strata/internal/pager"
)

var _ strata.LedgerStore = (*Store)(nil)

const (
	ledgerLeavesPage     = 5000
	ledgerCheckpointPage = 100
)

// lq fills the store's schema into a ledger statement (migration 0003).
func (s *Store) lq(query string) string {
	return strings.ReplaceAll(query, "{schema}", pgx.Identifier{s.schema}.Sanitize())
}

func (s *Store) ledgerOpen(op string) error {
	if s.closed.Load() {
		return strata.ClosedError(op)
	}
	return nil
}

func headOf(size, pc, pe int64) strata.LedgerHead {
	return strata.LedgerHead{Size: uint64(size), Last: strata.Position{Commit: uint64(pc), Event: uint64(pe)}}
}

// LedgerHead implements strata.LedgerStore.
func (s *Store) LedgerHead(ctx context.Context) (strata.LedgerHead, error) {
	const op = "ledger head"
	if err := s.ledgerOpen(op); err != nil {
		return strata.LedgerHead{}, err
	}
	var size, pc, pe int64
	if err := s.pool.QueryRow(ctx, s.lq(`SELECT size, position_commit, position_event FROM {schema}.ledger_head WHERE id = 1`)).Scan(&size, &pc, &pe); err != nil {
		return strata.LedgerHead{}, s.fail(op, err)
	}
	return headOf(size, pc, pe), nil
}

// AppendLedger implements strata.LedgerStore: one transaction that locks the head row, copies
// the leaves in with COPY, upserts the tiles and moves the head.
func (s *Store) AppendLedger(ctx context.Context, from strata.LedgerHead, leaves []strata.LedgerLeaf, tiles []strata.LedgerTile) error {
	const op = "append ledger"
	if err := s.ledgerOpen(op); err != nil {
		return err
	}
	to, err := strata.PrepareLedgerAppend(op, from, leaves, tiles)
	if err != nil {
		return err
	}
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return s.fail(op, err)
	}
	defer func() {
		rctx, cancel := cleanupContext(ctx)
		defer cancel()
		_ = tx.Rollback(rctx)
	}()
	var size, pc, pe int64
	if err := tx.QueryRow(ctx, s.lq(`SELECT size, position_commit, position_event FROM {schema}.ledger_head WHERE id = 1 FOR UPDATE`)).Scan(&size, &pc, &pe); err != nil {
		return s.fail(op, err)
	}
	if got := headOf(size, pc, pe); got != from {
		return strata.LedgerHeadConflict(op, from, got)
	}
	i := 0
	_, err = tx.CopyFrom(ctx, pgx.Identifier{s.schema, "ledger_leaves"},
		[]string{"leaf_index", "event_id", "position_commit", "position_event", "stream", "version"},
		pgx.CopyFromFunc(func() ([]any, error) {
			if i == len(leaves) {
				return nil, nil
			}
			l := &leaves[i]
			i++
			return []any{int64(l.Index), pgtype.UUID{Bytes: l.EventID, Valid: true}, int64(l.Position.Commit), int64(l.Position.Event), l.Stream, l.Version}, nil
		}))
	if err != nil {
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == "23505" {
			return &strata.Error{Code: strata.Conflict, Op: op, Msg: "an event of the batch already has a leaf", Err: err}
		}
		return s.fail(op, err)
	}
	if len(tiles) > 0 {
		var b pgx.Batch
		q := s.lq(`INSERT INTO {schema}.ledger_tiles (level, tile_index, data) VALUES ($1, $2, $3)
			ON CONFLICT (level, tile_index) DO UPDATE SET data = excluded.data`)
		for _, t := range tiles {
			b.Queue(q, int32(t.Level), int64(t.Index), t.Data)
		}
		if err := tx.SendBatch(ctx, &b).Close(); err != nil {
			return s.fail(op, err)
		}
	}
	if _, err := tx.Exec(ctx, s.lq(`UPDATE {schema}.ledger_head SET size = $1, position_commit = $2, position_event = $3 WHERE id = 1`),
		int64(to.Size), int64(to.Last.Commit), int64(to.Last.Event)); err != nil {
		return s.fail(op, err)
	}
	if err := tx.Commit(ctx); err != nil {
		return s.fail(op, err)
	}
	return nil
}

// LedgerTiles implements strata.LedgerStore.
func (s *Store) LedgerTiles(ctx context.Context, ids []strata.LedgerTileID) ([]strata.LedgerTile, error) {
	const op = "ledger tiles"
	if err := s.ledgerOpen(op); err != nil {
		return nil, err
	}
	levels := make([]int32, len(ids))
	idxs := make([]int64, len(ids))
	for i, id := range ids {
		levels[i], idxs[i] = int32(id.Level), int64(id.Index)
	}
	rows, err := s.pool.Query(ctx, s.lq(`SELECT t.level, t.tile_index, t.data FROM {schema}.ledger_tiles t
		JOIN unnest($1::integer[], $2::bigint[]) AS w(level, tile_index) ON t.level = w.level AND t.tile_index = w.tile_index`), levels, idxs)
	if err != nil {
		return nil, s.fail(op, err)
	}
	defer rows.Close()
	out := make([]strata.LedgerTile, 0, len(ids))
	for rows.Next() {
		var t strata.LedgerTile
		var level int32
		var idx int64
		if err := rows.Scan(&level, &idx, &t.Data); err != nil {
			return nil, s.fail(op, err)
		}
		t.Level, t.Index = int(level), uint64(idx)
		out = append(out, t)
	}
	if err := rows.Err(); err != nil {
		return nil, s.fail(op, err)
	}
	return out, nil
}

const ledgerLeafCols = `leaf_index, event_id, position_commit, position_event, stream, version`

func scanLeaf(row pgx.Row) (strata.LedgerLeaf, error) {
	var idx, pc, pe int64
	var l strata.LedgerLeaf
	var id pgtype.UUID
	if err := row.Scan(&idx, &id, &pc, &pe, &l.Stream, &l.Version); err != nil {
		return l, err
	}
	l.Index, l.EventID, l.Position = uint64(idx), uuid.UUID(id.Bytes), strata.Position{Commit: uint64(pc), Event: uint64(pe)}
	return l, nil
}

// LedgerLeaves implements strata.LedgerStore.
func (s *Store) LedgerLeaves(ctx context.Context, from uint64) iter.Seq2[strata.LedgerLeaf, error] {
	const op = "ledger leaves"
	q := s.lq(`SELECT ` + ledgerLeafCols + ` FROM {schema}.ledger_leaves WHERE leaf_index >= $1 ORDER BY leaf_index LIMIT $2`)
	return pager.Seq(ledgerLeavesPage, from, func(buf []strata.LedgerLeaf, from uint64) ([]strata.LedgerLeaf, error) {
		if err := s.ledgerOpen(op); err != nil {
			return nil, err
		}
		rows, err := s.pool.Query(ctx, q, int64(from), ledgerLeavesPage)
		if err != nil {
			return nil, s.fail(op, err)
		}
		buf, err = pgx.AppendRows(buf, rows, func(r pgx.CollectableRow) (strata.LedgerLeaf, error) { return scanLeaf(r) })
		if err != nil {
			return nil, s.fail(op, err)
		}
		return buf, nil
	}, func(l strata.LedgerLeaf) uint64 { return l.Index + 1 })
}

// LedgerLeaf implements strata.LedgerStore.
func (s *Store) LedgerLeaf(ctx context.Context, eventID uuid.UUID) (strata.LedgerLeaf, error) {
	const op = "ledger leaf"
	if err := s.ledgerOpen(op); err != nil {
		return strata.LedgerLeaf{}, err
	}
	l, err := scanLeaf(s.pool.QueryRow(ctx, s.lq(`SELECT `+ledgerLeafCols+` FROM {schema}.ledger_leaves WHERE event_id = $1`), pgtype.UUID{Bytes: eventID, Valid: true}))
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return strata.LedgerLeaf{}, strata.LedgerLeafNotFound(op, eventID)
	case err != nil:
		return strata.LedgerLeaf{}, s.fail(op, err)
	}
	return l, nil
}

// SaveLedgerCheckpoint implements strata.LedgerStore.
func (s *Store) SaveLedgerCheckpoint(ctx context.Context, c strata.LedgerCheckpoint) error {
	const op = "save ledger checkpoint"
	if err := s.ledgerOpen(op); err != nil {
		return err
	}
	err := strata.SaveLedgerCheckpointMerged(ctx, op, c,
		func(ctx context.Context, size uint64) ([]byte, bool, error) {
			var note []byte
			err := s.pool.QueryRow(ctx, s.lq(`SELECT note FROM {schema}.ledger_checkpoints WHERE size = $1`), int64(size)).Scan(&note)
			if errors.Is(err, pgx.ErrNoRows) {
				return nil, false, nil
			}
			return note, err == nil, err
		},
		func(ctx context.Context, c strata.LedgerCheckpoint) (bool, error) {
			tag, err := s.pool.Exec(ctx, s.lq(`INSERT INTO {schema}.ledger_checkpoints (size, note) VALUES ($1, $2) ON CONFLICT (size) DO NOTHING`), int64(c.Size), c.Note)
			return tag.RowsAffected() == 1, err
		},
		func(ctx context.Context, size uint64, old, note []byte) (bool, error) {
			tag, err := s.pool.Exec(ctx, s.lq(`UPDATE {schema}.ledger_checkpoints SET note = $3 WHERE size = $1 AND note = $2`), int64(size), old, note)
			return tag.RowsAffected() == 1, err
		})
	return s.fail(op, err)
}

func scanCheckpoint(row pgx.Row) (strata.LedgerCheckpoint, error) {
	var c strata.LedgerCheckpoint
	var size int64
	if err := row.Scan(&size, &c.Note, &c.CreatedAt); err != nil {
		return c, err
	}
	c.Size, c.CreatedAt = uint64(size), c.CreatedAt.UTC()
	return c, nil
}

// LedgerCheckpoints implements strata.LedgerStore.
func (s *Store) LedgerCheckpoints(ctx context.Context, after uint64) iter.Seq2[strata.LedgerCheckpoint, error] {
	const op = "ledger checkpoints"
	return func(yield func(strata.LedgerCheckpoint, error) bool) {
		if err := s.ledgerOpen(op); err != nil {
			yield(strata.LedgerCheckpoint{}, err)
			return
		}
		q := s.lq(`SELECT size, note, created_at FROM {schema}.ledger_checkpoints WHERE size > $1 ORDER BY size LIMIT $2`)
		for {
			rows, err := s.pool.Query(ctx, q, int64(after), ledgerCheckpointPage)
			if err != nil {
				yield(strata.LedgerCheckpoint{}, s.fail(op, err))
				return
			}
			page, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (strata.LedgerCheckpoint, error) { return scanCheckpoint(r) })
			if err != nil {
				yield(strata.LedgerCheckpoint{}, s.fail(op, err))
				return
			}
			for _, c := range page {
				if !yield(c, nil) {
					return
				}
			}
			if len(page) < ledgerCheckpointPage {
				return
			}
			after = page[len(page)-1].Size
		}
	}
}

// LatestLedgerCheckpoint implements strata.LedgerStore.
func (s *Store) LatestLedgerCheckpoint(ctx context.Context) (strata.LedgerCheckpoint, error) {
	const op = "latest ledger checkpoint"
	if err := s.ledgerOpen(op); err != nil {
		return strata.LedgerCheckpoint{}, err
	}
	c, err := scanCheckpoint(s.pool.QueryRow(ctx, s.lq(`SELECT size, note, created_at FROM {schema}.ledger_checkpoints ORDER BY size DESC LIMIT 1`)))
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return strata.LedgerCheckpoint{}, strata.LedgerCheckpointNotFound(op)
	case err != nil:
		return strata.LedgerCheckpoint{}, s.fail(op, err)
	}
	return c, nil
}
