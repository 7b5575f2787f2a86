package mysql

import (
	"context"
	"database/sql"
	"errors"
	"iter"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/strata-events/strata"
	"github.com/strata-events/strata/internal/pager"
)

var _ strata.LedgerStore = (*Store)(nil)

// The statements of the ledger (migration 0003).
const (
	sqlLedgerHead        = "SELECT size, position_commit, position_event FROM ledger_head WHERE id = 1"
	sqlSetLedgerHead     = "UPDATE ledger_head SET size = ?, position_commit = ?, position_event = ? WHERE id = 1"
	sqlLedgerLeafCols    = "leaf_index, event_id, position_commit, position_event, stream, version"
	sqlLedgerLeafInsert  = "INSERT INTO ledger_leaves (" + sqlLedgerLeafCols + ") VALUES "
	sqlLedgerTileInsert  = "INSERT INTO ledger_tiles (level, tile_index, data) VALUES "
	ledgerLeafChunk      = 1000
	ledgerLeavesPage     = 5000
	ledgerCheckpointPage = 100
)

func (s *Store) ledgerOpen(op string) error {
	if s.isClosed() {
		return strata.ClosedError(op)
	}
	return nil
}

func scanHead(row interface{ Scan(...any) error }) (strata.LedgerHead, error) {
	var h strata.LedgerHead
	err := row.Scan(&h.Size, &h.Last.Commit, &h.Last.Event)
	return h, err
}

// LedgerHead implements strata.LedgerStore.
func (s *Store) LedgerHead(ctx context.Context) (strata.LedgerHead, error) {
	const op = "ledger head"
	if err := s.ledgerOpen(op); err != nil {
		return strata.LedgerHead{}, err
	}
	h, err := scanHead(s.db.QueryRowContext(ctx, sqlLedgerHead))
	if err != nil {
		return strata.LedgerHead{}, s.fail(op, err)
	}
	return h, nil
}

// AppendLedger implements strata.LedgerStore: one transaction that locks the head row
// (SELECT ... FOR UPDATE), inserts the leaves in multi-row statements, upserts the tiles and
// moves the head.
func (s *Store) AppendLedger(ctx context.Context, from strata.LedgerHead, leaves []strata.LedgerLeaf, tiles []strata.LedgerTile) error {
	const op = "append ledger"
	if err := s.ledgerOpen(op); err != nil {
		return err
	}
	to, err := strata.PrepareLedgerAppend(op, from, leaves, tiles)
	if err != nil {
		return err
	}
	err = s.inTx(ctx, func(c *sql.Conn) error {
		got, err := scanHead(c.QueryRowContext(ctx, sqlLedgerHead+" FOR UPDATE"))
		if err != nil {
			return err
		}
		if got != from {
			return strata.LedgerHeadConflict(op, from, got)
		}
		args := make([]any, 0, ledgerLeafChunk*6)
		for rest := leaves; len(rest) > 0; {
			n := min(len(rest), ledgerLeafChunk)
			args = args[:0]
			for i := range rest[:n] {
				l := &rest[i]
				args = append(args, l.Index, l.EventID[:], l.Position.Commit, l.Position.Event, l.Stream, l.Version)
			}
			q := sqlLedgerLeafInsert + "(?, ?, ?, ?, ?, ?)" + strings.Repeat(", (?, ?, ?, ?, ?, ?)", n-1)
			if _, err := c.ExecContext(ctx, q, args...); err != nil {
				if isMySQLError(err, errDupEntry) {
					return &strata.Error{Code: strata.Conflict, Op: op, Msg: "an event of the batch already has a leaf", Err: err}
				}
				return err
			}
			rest = rest[n:]
		}
		if len(tiles) > 0 {
			targs := make([]any, 0, 3*len(tiles))
			for _, t := range tiles {
				targs = append(targs, t.Level, t.Index, t.Data)
			}
			q := sqlLedgerTileInsert + "(?, ?, ?)" + strings.Repeat(", (?, ?, ?)", len(tiles)-1) + " ON DUPLICATE KEY UPDATE data = VALUES(data)"
			if _, err := c.ExecContext(ctx, q, targs...); err != nil {
				return err
			}
		}
		_, err = c.ExecContext(ctx, sqlSetLedgerHead, to.Size, to.Last.Commit, to.Last.Event)
		return err
	})
	return s.fail(op, err)
}

// LedgerTiles implements strata.LedgerStore.
func (s *Store) LedgerTiles(ctx context.Context, ids []strata.LedgerTileID) ([]strata.LedgerTile, error) {
	const op = "ledger tiles"
	if err := s.ledgerOpen(op); err != nil {
		return nil, err
	}
	out := make([]strata.LedgerTile, 0, len(ids))
	for len(ids) > 0 {
		n := min(len(ids), 200)
		q := "SELECT level, tile_index, data FROM ledger_tiles WHERE (level, tile_index) IN ((?, ?)" + strings.Repeat(", (?, ?)", n-1) + ")"
		args := make([]any, 0, 2*n)
		for _, id := range ids[:n] {
			args = append(args, id.Level, id.Index)
		}
		rows, err := s.db.QueryContext(ctx, q, args...)
		if err != nil {
			return nil, s.fail(op, err)
		}
		for rows.Next() {
			var t strata.LedgerTile
			if err := rows.Scan(&t.Level, &t.Index, &t.Data); err != nil {
				rows.Close()
				return nil, s.fail(op, err)
			}
			out = append(out, t)
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return nil, s.fail(op, err)
		}
		ids = ids[n:]
	}
	return out, nil
}

func scanLeaf(row interface{ Scan(...any) error }) (strata.LedgerLeaf, error) {
	var l strata.LedgerLeaf
	var id []byte
	if err := row.Scan(&l.Index, &id, &l.Position.Commit, &l.Position.Event, &l.Stream, &l.Version); err != nil {
		return l, err
	}
	if len(id) != 16 {
		return l, strata.Errorf(strata.Internal, "ledger leaf", "leaf %d has an event ID of %d bytes", l.Index, len(id))
	}
	copy(l.EventID[:], id)
	return l, nil
}

// LedgerLeaves implements strata.LedgerStore.
func (s *Store) LedgerLeaves(ctx context.Context, from uint64) iter.Seq2[strata.LedgerLeaf, error] {
	const op = "ledger leaves"
	return pager.Seq(ledgerLeavesPage, from, func(buf []strata.LedgerLeaf, from uint64) ([]strata.LedgerLeaf, error) {
		if err := s.ledgerOpen(op); err != nil {
			return nil, err
		}
		rows, err := s.db.QueryContext(ctx, "SELECT "+sqlLedgerLeafCols+" FROM ledger_leaves WHERE leaf_index >= ? ORDER BY leaf_index LIMIT ?", from, ledgerLeavesPage)
		if err != nil {
			return nil, s.fail(op, err)
		}
		defer rows.Close()
		for rows.Next() {
			l, err := scanLeaf(rows)
			if err != nil {
				return nil, s.fail(op, err)
			}
			buf = append(buf, l)
		}
		if err := rows.Err(); err != nil {
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
	l, err := scanLeaf(s.db.QueryRowContext(ctx, "SELECT "+sqlLedgerLeafCols+" FROM ledger_leaves WHERE event_id = ?", eventID[:]))
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return strata.LedgerLeaf{}, strata.LedgerLeafNotFound(op, eventID)
	case err != nil:
		return strata.LedgerLeaf{}, s.fail(op, err)
	}
	return l, nil
}

// SaveLedgerCheckpoint implements strata.LedgerStore.
func (s *Store) SaveLedgerCheckpoint(ctx context.Context, c strata.LedgerCheckpoint) error {
	const op = "save ledger checkpoint"
	if s.isClosed() {
		return strata.ClosedError(op)
	}
	err := strata.SaveLedgerCheckpointMerged(ctx, op, c,
		func(ctx context.Context, size uint64) ([]byte, bool, error) {
			var note []byte
			err := s.db.QueryRowContext(ctx, "SELECT note FROM ledger_checkpoints WHERE size = ?", size).Scan(&note)
			if errors.Is(err, sql.ErrNoRows) {
				return nil, false, nil
			}
			return note, err == nil, err
		},
		func(ctx context.Context, c strata.LedgerCheckpoint) (bool, error) {
			// Affects no row when one of this size exists: the driver counts changed rows, not
			// found ones (sessionConfig turns clientFoundRows off). execRows retries deadlocks.
			n, err := s.execRows(ctx, op, "INSERT INTO ledger_checkpoints (size, note, created_at) VALUES (?, ?, UTC_TIMESTAMP(6)) ON DUPLICATE KEY UPDATE size = size", c.Size, c.Note)
			return n == 1, err
		},
		func(ctx context.Context, size uint64, old, note []byte) (bool, error) {
			n, err := s.execRows(ctx, op, "UPDATE ledger_checkpoints SET note = ? WHERE size = ? AND note = ?", note, size, old)
			return n == 1, err
		})
	return s.fail(op, err)
}

func scanCheckpoint(row interface{ Scan(...any) error }) (strata.LedgerCheckpoint, error) {
	var c strata.LedgerCheckpoint
	var at time.Time
	if err := row.Scan(&c.Size, &c.Note, &at); err != nil {
		return c, err
	}
	c.CreatedAt = at.UTC()
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
		for {
			rows, err := s.db.QueryContext(ctx, "SELECT size, note, created_at FROM ledger_checkpoints WHERE size > ? ORDER BY size LIMIT ?", after, ledgerCheckpointPage)
			if err != nil {
				yield(strata.LedgerCheckpoint{}, s.fail(op, err))
				return
			}
			var page []strata.LedgerCheckpoint
			for rows.Next() {
				var c strata.LedgerCheckpoint
				if c, err = scanCheckpoint(rows); err != nil {
					break
				}
				page = append(page, c)
			}
			if err == nil {
				err = rows.Err()
			}
			rows.Close()
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
	c, err := scanCheckpoint(s.db.QueryRowContext(ctx, "SELECT size, note, created_at FROM ledger_checkpoints ORDER BY size DESC LIMIT 1"))
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return strata.LedgerCheckpoint{}, strata.LedgerCheckpointNotFound(op)
	case err != nil:
		return strata.LedgerCheckpoint{}, s.fail(op, err)
	}
	return c, nil
}
