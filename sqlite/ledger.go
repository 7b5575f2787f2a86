package sqlite

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
	sqlLedgerHead    = `SELECT size, position_commit, position_event FROM ledger_head WHERE id = 1`
	sqlSetLedgerHead = `UPDATE ledger_head SET size = ?, position_commit = ?, position_event = ? WHERE id = 1`
	sqlLedgerLeafRow = `(?, ?, ?, ?, ?, ?)`
	sqlLedgerLeaves  = `INSERT INTO ledger_leaves (leaf_index, event_id, position_commit, position_event, stream, version) VALUES `
	sqlLedgerTile    = `INSERT INTO ledger_tiles (level, tile_index, data) VALUES (?, ?, ?)
		ON CONFLICT (level, tile_index) DO UPDATE SET data = excluded.data`
	sqlLedgerLeafCols  = `leaf_index, event_id, position_commit, position_event, stream, version`
	sqlLedgerCPs       = `SELECT size, note, created_at FROM ledger_checkpoints WHERE size > ? ORDER BY size LIMIT ?`
	sqlLatestLedgerCP  = `SELECT size, note, created_at FROM ledger_checkpoints ORDER BY size DESC LIMIT 1`
	ledgerLeafChunk    = 500 // rows per INSERT: 3,000 parameters
	ledgerLeavesPage   = 5000
	ledgerCheckpointPg = 100
)

// LedgerHead implements strata.LedgerStore.
func (s *Store) LedgerHead(ctx context.Context) (strata.LedgerHead, error) {
	const op = "ledger head"
	if err := s.checkOpen(op); err != nil {
		return strata.LedgerHead{}, err
	}
	var h strata.LedgerHead
	var size, c, e int64
	if err := s.r.QueryRowContext(ctx, sqlLedgerHead).Scan(&size, &c, &e); err != nil {
		return h, s.fail(ctx, op, err)
	}
	return strata.LedgerHead{Size: uint64(size), Last: strata.Position{Commit: uint64(c), Event: uint64(e)}}, nil
}

// AppendLedger implements strata.LedgerStore. It runs in one BEGIN IMMEDIATE transaction on
// the write connection, in turn with appends.
func (s *Store) AppendLedger(ctx context.Context, from strata.LedgerHead, leaves []strata.LedgerLeaf, tiles []strata.LedgerTile) error {
	const op = "append ledger"
	if err := s.checkOpen(op); err != nil {
		return err
	}
	to, err := strata.PrepareLedgerAppend(op, from, leaves, tiles)
	if err != nil {
		return err
	}
	w := s.wr
	if err := w.acquire(ctx, s.closed); err != nil {
		return s.failWrite(ctx, op, err)
	}
	defer w.release()
	if _, err := w.begin.ExecContext(ctx); err != nil {
		return s.failWrite(ctx, op, err)
	}
	if err := s.appendLedgerTx(ctx, op, w.conn, from, to, leaves, tiles); err != nil {
		w.abort(ctx)
		return err
	}
	if err := ctx.Err(); err != nil {
		w.abort(ctx)
		return s.failWrite(ctx, op, err)
	}
	// Once committing, finish: a commit cut short by the context could succeed and still report
	// an error.
	if _, err := w.commit.ExecContext(context.WithoutCancel(ctx)); err != nil {
		w.abort(ctx)
		return s.failWrite(ctx, op, err)
	}
	return nil
}

func (s *Store) appendLedgerTx(ctx context.Context, op string, c *sql.Conn, from, to strata.LedgerHead, leaves []strata.LedgerLeaf, tiles []strata.LedgerTile) error {
	var size, pc, pe int64
	if err := c.QueryRowContext(ctx, sqlLedgerHead).Scan(&size, &pc, &pe); err != nil {
		return s.failWrite(ctx, op, err)
	}
	if got := (strata.LedgerHead{Size: uint64(size), Last: strata.Position{Commit: uint64(pc), Event: uint64(pe)}}); got != from {
		return strata.LedgerHeadConflict(op, from, got)
	}
	args := make([]any, 0, ledgerLeafChunk*6)
	var full *sql.Stmt
	defer func() {
		if full != nil {
			full.Close()
		}
	}()
	for rest := leaves; len(rest) > 0; {
		n := min(len(rest), ledgerLeafChunk)
		args = args[:0]
		for i := range rest[:n] {
			l := &rest[i]
			args = append(args, int64(l.Index), l.EventID[:], int64(l.Position.Commit), int64(l.Position.Event), l.Stream, l.Version)
		}
		query := sqlLedgerLeaves + sqlLedgerLeafRow + strings.Repeat(", "+sqlLedgerLeafRow, n-1)
		var err error
		if n == ledgerLeafChunk {
			if full == nil {
				if full, err = c.PrepareContext(ctx, query); err != nil {
					return s.failWrite(ctx, op, err)
				}
			}
			_, err = full.ExecContext(ctx, args...)
		} else {
			_, err = c.ExecContext(ctx, query, args...)
		}
		if err != nil {
			if isConstraint(err) {
				return strata.Errorf(strata.Conflict, op, "an event of the batch already has a leaf: %w", err)
			}
			return s.failWrite(ctx, op, err)
		}
		rest = rest[n:]
	}
	for _, t := range tiles {
		if _, err := c.ExecContext(ctx, sqlLedgerTile, t.Level, int64(t.Index), t.Data); err != nil {
			return s.failWrite(ctx, op, err)
		}
	}
	if _, err := c.ExecContext(ctx, sqlSetLedgerHead, int64(to.Size), int64(to.Last.Commit), int64(to.Last.Event)); err != nil {
		return s.failWrite(ctx, op, err)
	}
	return nil
}

// LedgerTiles implements strata.LedgerStore.
func (s *Store) LedgerTiles(ctx context.Context, ids []strata.LedgerTileID) ([]strata.LedgerTile, error) {
	const op = "ledger tiles"
	if err := s.checkOpen(op); err != nil {
		return nil, err
	}
	out := make([]strata.LedgerTile, 0, len(ids))
	for len(ids) > 0 {
		n := min(len(ids), 200)
		var q strings.Builder
		q.WriteString(`SELECT level, tile_index, data FROM ledger_tiles WHERE (level, tile_index) IN (VALUES `)
		args := make([]any, 0, 2*n)
		for i, id := range ids[:n] {
			if i > 0 {
				q.WriteString(", ")
			}
			q.WriteString("(?, ?)")
			args = append(args, id.Level, int64(id.Index))
		}
		q.WriteString(")")
		rows, err := s.r.QueryContext(ctx, q.String(), args...)
		if err != nil {
			return nil, s.fail(ctx, op, err)
		}
		for rows.Next() {
			var t strata.LedgerTile
			var idx int64
			if err := rows.Scan(&t.Level, &idx, &t.Data); err != nil {
				rows.Close()
				return nil, s.fail(ctx, op, err)
			}
			t.Index = uint64(idx)
			out = append(out, t)
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return nil, s.fail(ctx, op, err)
		}
		ids = ids[n:]
	}
	return out, nil
}

type leafScanner struct {
	idx, pc, pe, version int64
	id                   []byte
	stream               string
}

func (ls *leafScanner) dest() []any {
	return []any{&ls.idx, &ls.id, &ls.pc, &ls.pe, &ls.stream, &ls.version}
}

func (ls *leafScanner) leaf() (strata.LedgerLeaf, error) {
	l := strata.LedgerLeaf{Index: uint64(ls.idx), Position: strata.Position{Commit: uint64(ls.pc), Event: uint64(ls.pe)}, Stream: ls.stream, Version: ls.version}
	if len(ls.id) != 16 {
		return l, strata.Errorf(strata.Internal, "ledger leaf", "leaf %d has an event ID of %d bytes", ls.idx, len(ls.id))
	}
	copy(l.EventID[:], ls.id)
	return l, nil
}

// LedgerLeaves implements strata.LedgerStore.
func (s *Store) LedgerLeaves(ctx context.Context, from uint64) iter.Seq2[strata.LedgerLeaf, error] {
	const op = "ledger leaves"
	return pager.Seq(ledgerLeavesPage, from, func(buf []strata.LedgerLeaf, from uint64) ([]strata.LedgerLeaf, error) {
		if err := s.checkOpen(op); err != nil {
			return nil, err
		}
		rows, err := s.r.QueryContext(ctx, `SELECT `+sqlLedgerLeafCols+` FROM ledger_leaves WHERE leaf_index >= ? ORDER BY leaf_index LIMIT ?`, int64(from), ledgerLeavesPage)
		if err != nil {
			return nil, s.fail(ctx, op, err)
		}
		defer rows.Close()
		var sc leafScanner
		for rows.Next() {
			if err := rows.Scan(sc.dest()...); err != nil {
				return nil, s.fail(ctx, op, err)
			}
			l, err := sc.leaf()
			if err != nil {
				return nil, s.fail(ctx, op, err)
			}
			buf = append(buf, l)
		}
		if err := rows.Err(); err != nil {
			return nil, s.fail(ctx, op, err)
		}
		return buf, nil
	}, func(l strata.LedgerLeaf) uint64 { return l.Index + 1 })
}

// LedgerLeaf implements strata.LedgerStore.
func (s *Store) LedgerLeaf(ctx context.Context, eventID uuid.UUID) (strata.LedgerLeaf, error) {
	const op = "ledger leaf"
	if err := s.checkOpen(op); err != nil {
		return strata.LedgerLeaf{}, err
	}
	var sc leafScanner
	err := s.r.QueryRowContext(ctx, `SELECT `+sqlLedgerLeafCols+` FROM ledger_leaves WHERE event_id = ?`, eventID[:]).Scan(sc.dest()...)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return strata.LedgerLeaf{}, strata.LedgerLeafNotFound(op, eventID)
	case err != nil:
		return strata.LedgerLeaf{}, s.fail(ctx, op, err)
	}
	return sc.leaf()
}

// SaveLedgerCheckpoint implements strata.LedgerStore.
func (s *Store) SaveLedgerCheckpoint(ctx context.Context, c strata.LedgerCheckpoint) error {
	const op = "save ledger checkpoint"
	if err := s.checkOpen(op); err != nil {
		return err
	}
	err := strata.SaveLedgerCheckpointMerged(ctx, op, c,
		func(ctx context.Context, size uint64) ([]byte, bool, error) {
			var note []byte
			err := s.r.QueryRowContext(ctx, `SELECT note FROM ledger_checkpoints WHERE size = ?`, int64(size)).Scan(&note)
			if errors.Is(err, sql.ErrNoRows) {
				return nil, false, nil
			}
			return note, err == nil, err
		},
		func(ctx context.Context, c strata.LedgerCheckpoint) (bool, error) {
			n, err := s.execN(ctx, op, `INSERT INTO ledger_checkpoints (size, note, created_at) VALUES (?, ?, ?) ON CONFLICT (size) DO NOTHING`,
				int64(c.Size), c.Note, strata.Timestamp(time.Now()).UnixMicro())
			return n == 1, err
		},
		func(ctx context.Context, size uint64, old, note []byte) (bool, error) {
			n, err := s.execN(ctx, op, `UPDATE ledger_checkpoints SET note = ? WHERE size = ? AND note = ?`, note, int64(size), old)
			return n == 1, err
		})
	if err != nil {
		var se *strata.Error
		if errors.As(err, &se) {
			return err
		}
		return s.failWrite(ctx, op, err)
	}
	return nil
}

func scanCheckpoint(sc interface{ Scan(...any) error }) (strata.LedgerCheckpoint, error) {
	var c strata.LedgerCheckpoint
	var size, at int64
	if err := sc.Scan(&size, &c.Note, &at); err != nil {
		return c, err
	}
	c.Size, c.CreatedAt = uint64(size), time.UnixMicro(at).UTC()
	return c, nil
}

// LedgerCheckpoints implements strata.LedgerStore.
func (s *Store) LedgerCheckpoints(ctx context.Context, after uint64) iter.Seq2[strata.LedgerCheckpoint, error] {
	const op = "ledger checkpoints"
	return func(yield func(strata.LedgerCheckpoint, error) bool) {
		if err := s.checkOpen(op); err != nil {
			yield(strata.LedgerCheckpoint{}, err)
			return
		}
		for {
			rows, err := s.r.QueryContext(ctx, sqlLedgerCPs, int64(after), ledgerCheckpointPg)
			if err != nil {
				yield(strata.LedgerCheckpoint{}, s.fail(ctx, op, err))
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
				yield(strata.LedgerCheckpoint{}, s.fail(ctx, op, err))
				return
			}
			for _, c := range page {
				if !yield(c, nil) {
					return
				}
			}
			if len(page) < ledgerCheckpointPg {
				return
			}
			after = page[len(page)-1].Size
		}
	}
}

// LatestLedgerCheckpoint implements strata.LedgerStore.
func (s *Store) LatestLedgerCheckpoint(ctx context.Context) (strata.LedgerCheckpoint, error) {
	const op = "latest ledger checkpoint"
	if err := s.checkOpen(op); err != nil {
		return strata.LedgerCheckpoint{}, err
	}
	c, err := scanCheckpoint(s.r.QueryRowContext(ctx, sqlLatestLedgerCP))
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return strata.LedgerCheckpoint{}, strata.LedgerCheckpointNotFound(op)
	case err != nil:
		return strata.LedgerCheckpoint{}, s.fail(ctx, op, err)
	}
	return c, nil
}
