package sqlite

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"iter"
	"math"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/strata-events/strata"
)

var (
	_ strata.QueryStore            = (*Store)(nil)
	_ strata.TemporalSnapshotStore = (*Store)(nil)
	_ strata.RetentionStore        = (*Store)(nil)
	_ strata.QueryIndexer          = (*Store)(nil)
)

// queryIndexes are the search indexes of CreateQueryIndexes. Every query names a tenant, so
// every index leads with it, and each ends with the query order (recorded_at, position), so
// that one filter plus the keyset cursor is a single range scan. They are partial: events
// without a tenant (tenant = ”) are never searched and cost appends nothing. Metadata filters
// index json_extract of the canonical metadata JSON; queryWhere repeats the expressions and
// the tenant <> ” term exactly, as SQLite's planner requires.
var queryIndexes = []string{
	`CREATE INDEX IF NOT EXISTS events_q_time ON events (tenant, recorded_at, position) WHERE tenant <> ''`,
	`CREATE INDEX IF NOT EXISTS events_q_type ON events (tenant, type, recorded_at, position) WHERE tenant <> ''`,
	`CREATE INDEX IF NOT EXISTS events_q_stream ON events (tenant, stream, recorded_at, position) WHERE tenant <> ''`,
	`CREATE INDEX IF NOT EXISTS events_q_principal ON events (tenant, json_extract(meta, '$.principal'), recorded_at, position) WHERE tenant <> ''`,
	`CREATE INDEX IF NOT EXISTS events_q_session ON events (tenant, json_extract(meta, '$.session'), recorded_at, position) WHERE tenant <> ''`,
	`CREATE INDEX IF NOT EXISTS events_q_correlation ON events (tenant, json_extract(meta, '$.correlation'), recorded_at, position) WHERE tenant <> ''`,
	`CREATE INDEX IF NOT EXISTS events_q_causation ON events (tenant, json_extract(meta, '$.causation'), recorded_at, position) WHERE tenant <> ''`,
	`CREATE INDEX IF NOT EXISTS events_q_subsystem ON events (tenant, json_extract(meta, '$.subsystem'), recorded_at, position) WHERE tenant <> ''`,
	`CREATE INDEX IF NOT EXISTS events_q_category ON events (tenant, json_extract(meta, '$.category'), recorded_at, position) WHERE tenant <> ''`,
}

// CreateQueryIndexes implements strata.QueryIndexer. Each index is one write in its turn;
// appends wait while one builds.
func (s *Store) CreateQueryIndexes(ctx context.Context) error {
	const op = "create query indexes"
	if err := s.checkOpen(op); err != nil {
		return err
	}
	for _, ix := range queryIndexes {
		if err := s.exec(ctx, op, ix); err != nil {
			return err
		}
	}
	return nil
}

// queryWhere builds the WHERE clause of q (without the cursor) over the indexes of migration
// 0006: the tenant, the tenant <> ” term that lets the partial indexes serve, and each filter.
func queryWhere(q *strata.EventQuery) (string, []any) {
	var b strings.Builder
	args := []any{q.Tenant}
	b.WriteString(`tenant = ? AND tenant <> ''`)
	if len(q.Types) > 0 {
		b.WriteString(` AND type IN (?` + strings.Repeat(`, ?`, len(q.Types)-1) + `)`)
		for _, t := range q.Types {
			args = append(args, t)
		}
	}
	for _, f := range q.MetaFilters() {
		b.WriteString(` AND json_extract(meta, '$.` + f[0] + `') = ?`)
		args = append(args, f[1])
	}
	if q.StreamPrefix != "" {
		b.WriteString(` AND stream >= ?`)
		args = append(args, q.StreamPrefix)
		if end, ok := strata.PrefixEnd(q.StreamPrefix); ok {
			b.WriteString(` AND stream < ?`)
			args = append(args, end)
		}
	}
	if !q.RecordedFrom.IsZero() {
		b.WriteString(` AND recorded_at >= ?`)
		args = append(args, q.RecordedFrom.UnixMicro())
	}
	if !q.RecordedTo.IsZero() {
		b.WriteString(` AND recorded_at < ?`)
		args = append(args, q.RecordedTo.UnixMicro())
	}
	return b.String(), args
}

// QueryEvents implements strata.QueryStore.
func (s *Store) QueryEvents(ctx context.Context, q strata.EventQuery) (strata.EventPage, error) {
	const op = "query events"
	if err := s.checkOpen(op); err != nil {
		return strata.EventPage{}, err
	}
	q, cur, after, err := strata.PrepareEventQuery(op, q)
	if err != nil {
		return strata.EventPage{}, err
	}
	where, args := queryWhere(&q)
	if after {
		where += ` AND (recorded_at, position) > (?, ?)`
		args = append(args, cur.RecordedAt.UnixMicro(), int64(cur.Position.Event))
	}
	args = append(args, q.Limit+1)
	rows, more, err := s.page(ctx, op, nil, q.Limit+1, `SELECT `+eventCols+` FROM events WHERE `+where+` ORDER BY recorded_at, position LIMIT ?`, args...)
	if err != nil {
		return strata.EventPage{}, err
	}
	return strata.QueryPage(&q, rows, more && len(rows) <= q.Limit), nil
}

// CountEvents implements strata.QueryStore.
func (s *Store) CountEvents(ctx context.Context, q strata.EventQuery) (int64, error) {
	const op = "count events"
	if err := s.checkOpen(op); err != nil {
		return 0, err
	}
	q.Cursor, q.Limit = "", 0
	q, _, _, err := strata.PrepareEventQuery(op, q)
	if err != nil {
		return 0, err
	}
	where, args := queryWhere(&q)
	var n int64
	if err := s.r.QueryRowContext(ctx, `SELECT count(*) FROM events WHERE `+where, args...).Scan(&n); err != nil {
		return 0, s.fail(ctx, op, err)
	}
	return n, nil
}

// SaveTemporalSnapshot implements strata.TemporalSnapshotStore.
func (s *Store) SaveTemporalSnapshot(ctx context.Context, snap strata.TemporalSnapshot) error {
	const op = "save temporal snapshot"
	if err := s.checkOpen(op); err != nil {
		return err
	}
	snap, err := strata.PrepareTemporalSnapshot(op, snap)
	if err != nil {
		return err
	}
	return s.exec(ctx, op, `INSERT INTO temporal_snapshots (stream, model, version, recorded_upto, occurred_upto, data)
		VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (stream, model, version) DO UPDATE SET recorded_upto = excluded.recorded_upto,
			occurred_upto = excluded.occurred_upto, data = excluded.data`,
		snap.Stream, snap.Model, snap.Version, snap.RecordedUpTo.UnixMicro(), snap.OccurredUpTo.UnixMicro(), snap.Data)
}

// TemporalSnapshotAt implements strata.TemporalSnapshotStore. recorded_upto grows with version,
// so the scan down the primary key stops at the first row valid for both times.
func (s *Store) TemporalSnapshotAt(ctx context.Context, stream, model string, recordedBy, occurredBy time.Time) (strata.TemporalSnapshot, error) {
	const op = "temporal snapshot"
	if err := s.checkOpen(op); err != nil {
		return strata.TemporalSnapshot{}, err
	}
	occ := int64(math.MaxInt64)
	if !occurredBy.IsZero() {
		occ = unixMicroSaturated(occurredBy)
	}
	t := strata.TemporalSnapshot{Stream: stream, Model: model}
	var rec, oc int64
	err := s.r.QueryRowContext(ctx, `SELECT version, recorded_upto, occurred_upto, data FROM temporal_snapshots
		WHERE stream = ? AND model = ? AND recorded_upto <= ? AND occurred_upto <= ? ORDER BY version DESC LIMIT 1`,
		stream, model, unixMicroSaturated(recordedBy), occ).Scan(&t.Version, &rec, &oc, &t.Data)
	if errors.Is(err, sql.ErrNoRows) {
		return strata.TemporalSnapshot{}, strata.TemporalSnapshotNotFound(op, stream, model)
	}
	if err != nil {
		return strata.TemporalSnapshot{}, s.fail(ctx, op, err)
	}
	t.RecordedUpTo, t.OccurredUpTo = time.UnixMicro(rec).UTC(), time.UnixMicro(oc).UTC()
	return t, nil
}

// unixMicroSaturated is t.UnixMicro, or the least or greatest int64 for a time before or after
// every one that has its microseconds in an int64 (t.UnixMicro would wrap around).
func unixMicroSaturated(t time.Time) int64 {
	switch {
	case t.Before(time.UnixMicro(math.MinInt64)):
		return math.MinInt64
	case t.After(time.UnixMicro(math.MaxInt64)):
		return math.MaxInt64
	}
	return t.UnixMicro()
}

// retentionLive is the predicate of the partial index events_retention (migration 0006),
// exactly: SQLite uses a partial index only for a query that repeats its terms.
const retentionLive = `(data <> x'6e756c6c' OR length(CAST(meta AS BLOB)) <> CASE WHEN tenant = '' THEN 2 ELSE length(CAST(tenant AS BLOB)) + 13 END)`

// RetentionCandidates implements strata.RetentionStore: a walk of events_retention in
// (recorded_at, position) order from the cursor to the cutoff. The index holds only events
// that retention has not removed, so a pass reads neither the events removed by earlier runs
// nor those recorded after the cutoff.
func (s *Store) RetentionCandidates(ctx context.Context, sel strata.RetentionSelect) (strata.RetentionPage, error) {
	const op = "retention candidates"
	if err := s.checkOpen(op); err != nil {
		return strata.RetentionPage{}, err
	}
	if err := strata.ValidateRetentionSelect(op, sel); err != nil {
		return strata.RetentionPage{}, err
	}
	cur, after, err := strata.RetentionCursor(op, sel)
	if err != nil {
		return strata.RetentionPage{}, err
	}
	var b strings.Builder
	args := []any{sel.RecordedBefore.UnixMicro()}
	b.WriteString(`SELECT ` + eventCols + ` FROM events e INDEXED BY events_retention WHERE ` + retentionLive + ` AND recorded_at < ?`)
	if after {
		b.WriteString(` AND (recorded_at, position) > (?, ?)`)
		args = append(args, cur.RecordedAt.UnixMicro(), int64(cur.Position.Event))
	}
	if !sel.UpTo.IsZero() {
		b.WriteString(` AND position <= ?`)
		args = append(args, int64(sel.UpTo.Event))
	}
	if !sel.AnyTenant {
		b.WriteString(` AND tenant = ?`)
		args = append(args, sel.Tenant)
	}
	if len(sel.Types) > 0 {
		b.WriteString(` AND type IN (?` + strings.Repeat(`, ?`, len(sel.Types)-1) + `)`)
		for _, t := range sel.Types {
			args = append(args, t)
		}
	}
	if len(sel.ExcludeTypes) > 0 {
		b.WriteString(` AND type NOT IN (?` + strings.Repeat(`, ?`, len(sel.ExcludeTypes)-1) + `)`)
		for _, t := range sel.ExcludeTypes {
			args = append(args, t)
		}
	}
	if sel.ExcludePrefix != "" {
		b.WriteString(` AND substr(stream, 1, length(?)) <> ?`)
		args = append(args, sel.ExcludePrefix, sel.ExcludePrefix)
	}
	b.WriteString(` AND NOT EXISTS (SELECT 1 FROM tombstones t WHERE t.event_id = e.id)
		AND NOT EXISTS (SELECT 1 FROM legal_holds h WHERE h.stream = e.stream) ORDER BY recorded_at, position LIMIT ?`)
	args = append(args, sel.Limit)
	rows, more, err := s.page(ctx, op, nil, sel.Limit, b.String(), args...)
	if err != nil {
		return strata.RetentionPage{}, err
	}
	var last *strata.Event
	if len(rows) > 0 {
		last = &rows[len(rows)-1]
	}
	return strata.RetentionPageOf(rows, more, last), nil
}

// TombstoneEvents implements strata.RetentionStore: one write transaction per batch, which
// appends wait for like any other write, so batches are kept short by the caller. After the
// commit it waits a quarter as long as it held the writer before it returns, so that a run
// whose next batch is ready at once (package query reads it meanwhile) still leaves appends a
// fifth of the writer's time, however fast it reads.
func (s *Store) TombstoneEvents(ctx context.Context, ts []strata.Tombstone) (int, error) {
	n, held, err := s.tombstoneEvents(ctx, ts)
	if err == nil && held > 0 {
		t := time.NewTimer(held / 4)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
		}
	}
	return n, err
}

func (s *Store) tombstoneEvents(ctx context.Context, ts []strata.Tombstone) (_ int, held time.Duration, _ error) {
	const op = "tombstone events"
	if err := s.checkOpen(op); err != nil {
		return 0, 0, err
	}
	if err := strata.PrepareTombstones(op, ts); err != nil {
		return 0, 0, err
	}
	if len(ts) == 0 {
		return 0, 0, nil
	}
	w := s.wr
	if err := w.acquire(ctx, s.closed); err != nil {
		return 0, 0, s.failWrite(ctx, op, err)
	}
	start := time.Now()
	defer w.release()
	if _, err := w.begin.ExecContext(ctx); err != nil {
		return 0, 0, s.failWrite(ctx, op, err)
	}
	n, err := s.tombstoneTx(ctx, op, w.conn, ts)
	if err != nil {
		w.abort(ctx)
		return 0, 0, err
	}
	if err := ctx.Err(); err != nil {
		w.abort(ctx)
		return 0, 0, s.failWrite(ctx, op, err)
	}
	// Once committing, finish: a commit cut short by the context could succeed and still report
	// an error.
	if _, err := w.commit.ExecContext(context.WithoutCancel(ctx)); err != nil {
		w.abort(ctx)
		return 0, 0, s.failWrite(ctx, op, err)
	}
	return n, time.Since(start), nil
}

// tombstoneChunk bounds the events of one statement of tombstoneTx (up to four parameters
// each, within SQLite's 32,766).
const tombstoneChunk = 2500

// tombstoneTx works set-wise, a chunk per statement: one UPDATE blanks the batch's events that
// are neither held nor tombstoned and returns them, and one INSERT keeps their tombstones. The
// UPDATE writes each row's tombstone metadata ({"tenant":...}, see strata.TombstoneMeta) by
// itself; the few rows of a tenant whose canonical metadata differs from that (a name JSON
// escapes) get theirs from Go after.
func (s *Store) tombstoneTx(ctx context.Context, op string, c *sql.Conn, ts []strata.Tombstone) (int, error) {
	now := strata.Timestamp(time.Now()).UnixMicro()
	byID := make(map[uuid.UUID]strata.Tombstone, len(ts))
	for _, t := range ts {
		byID[t.EventID] = t
	}
	ids := make([]uuid.UUID, 0, len(byID))
	for id := range byID {
		ids = append(ids, id)
	}
	n := 0
	for start := 0; start < len(ids); start += tombstoneChunk {
		chunk := ids[start:min(start+tombstoneChunk, len(ids))]
		args := make([]any, 0, len(chunk)+1)
		args = append(args, []byte(strata.TombstoneData))
		for _, id := range chunk {
			args = append(args, id[:])
		}
		rows, err := c.QueryContext(ctx, `UPDATE events AS e SET data = ?,
			meta = CASE WHEN tenant = '' THEN '{}' ELSE '{"tenant":"' || tenant || '"}' END
			WHERE id IN (?`+strings.Repeat(`, ?`, len(chunk)-1)+`)
			AND NOT EXISTS (SELECT 1 FROM legal_holds h WHERE h.stream = e.stream)
			AND NOT EXISTS (SELECT 1 FROM tombstones t WHERE t.event_id = e.id)
			RETURNING id, tenant, stream`, args...)
		if err != nil {
			return 0, s.failWrite(ctx, op, err)
		}
		var ins []any
		escaped := map[string][]any{}    // by tenant: rows whose metadata the UPDATE wrote wrong
		canonical := map[string]string{} // by tenant: its tombstone metadata, when not the UPDATE's
		streams := map[string]bool{}
		for rows.Next() {
			var id []byte
			var tenant, stream string
			if err := rows.Scan(&id, &tenant, &stream); err != nil {
				rows.Close()
				return 0, s.failWrite(ctx, op, err)
			}
			streams[stream] = true
			t := byID[uuid.UUID(id)]
			ins = append(ins, t.EventID[:], t.LeafHash, t.Run[:], now)
			meta, seen := canonical[tenant]
			if !seen {
				if meta = tombstoneMeta(tenant); meta == sqlTombstoneMeta(tenant) {
					meta = ""
				}
				canonical[tenant] = meta
			}
			if meta != "" {
				escaped[tenant] = append(escaped[tenant], t.EventID[:])
			}
		}
		if err := rows.Close(); err != nil {
			return 0, s.failWrite(ctx, op, err)
		}
		if len(ins) == 0 {
			continue
		}
		k := len(ins) / 4
		if _, err := c.ExecContext(ctx, `INSERT INTO tombstones (event_id, leaf_hash, run, removed_at) VALUES (?, ?, ?, ?)`+
			strings.Repeat(`, (?, ?, ?, ?)`, k-1), ins...); err != nil {
			return 0, s.failWrite(ctx, op, err)
		}
		// The streams' temporal snapshots hold states folded from the removed payloads.
		del := make([]any, 0, len(streams))
		for st := range streams {
			del = append(del, st)
		}
		if _, err := c.ExecContext(ctx, `DELETE FROM temporal_snapshots WHERE stream IN (?`+strings.Repeat(`, ?`, len(del)-1)+`)`, del...); err != nil {
			return 0, s.failWrite(ctx, op, err)
		}
		for tenant, tids := range escaped {
			a := append([]any{canonical[tenant]}, tids...)
			if _, err := c.ExecContext(ctx, `UPDATE events SET meta = ? WHERE id IN (?`+strings.Repeat(`, ?`, len(tids)-1)+`)`, a...); err != nil {
				return 0, s.failWrite(ctx, op, err)
			}
		}
		n += k
	}
	return n, nil
}

// tombstoneMeta is the canonical metadata of a tombstoned event of tenant.
func tombstoneMeta(tenant string) string {
	meta := strata.TombstoneMeta(strata.Metadata{Tenant: tenant})
	return encodeMeta(&meta)
}

// sqlTombstoneMeta is the metadata tombstoneTx's UPDATE writes for tenant, in SQL.
func sqlTombstoneMeta(tenant string) string {
	if tenant == "" {
		return "{}"
	}
	return `{"tenant":"` + tenant + `"}`
}

// Tombstone implements strata.RetentionStore.
func (s *Store) Tombstone(ctx context.Context, id uuid.UUID) (strata.Tombstone, error) {
	const op = "tombstone"
	if err := s.checkOpen(op); err != nil {
		return strata.Tombstone{}, err
	}
	t := strata.Tombstone{EventID: id}
	var run []byte
	var at int64
	err := s.r.QueryRowContext(ctx, `SELECT leaf_hash, run, removed_at FROM tombstones WHERE event_id = ?`, id[:]).Scan(&t.LeafHash, &run, &at)
	if errors.Is(err, sql.ErrNoRows) {
		return strata.Tombstone{}, strata.TombstoneNotFound(op, id)
	}
	if err != nil {
		return strata.Tombstone{}, s.fail(ctx, op, err)
	}
	copy(t.Run[:], run)
	t.RemovedAt = time.UnixMicro(at).UTC()
	t.LeafHash = bytes.Clone(t.LeafHash)
	return t, nil
}

// PlaceLegalHold implements strata.RetentionStore.
func (s *Store) PlaceLegalHold(ctx context.Context, h strata.LegalHold) error {
	const op = "place legal hold"
	if err := s.checkOpen(op); err != nil {
		return err
	}
	if err := strata.ValidateLegalHold(op, h); err != nil {
		return err
	}
	return s.exec(ctx, op, `INSERT INTO legal_holds (stream, reason, held_by, held_at) VALUES (?, ?, ?, ?)
		ON CONFLICT (stream) DO UPDATE SET reason = excluded.reason, held_by = excluded.held_by`,
		h.Stream, h.Reason, h.HeldBy, strata.Timestamp(time.Now()).UnixMicro())
}

// ReleaseLegalHold implements strata.RetentionStore.
func (s *Store) ReleaseLegalHold(ctx context.Context, stream string) error {
	const op = "release legal hold"
	if err := s.checkOpen(op); err != nil {
		return err
	}
	if err := strata.ValidateStreamName(op, stream); err != nil {
		return err
	}
	return s.exec(ctx, op, `DELETE FROM legal_holds WHERE stream = ?`, stream)
}

// LegalHolds implements strata.RetentionStore.
func (s *Store) LegalHolds(ctx context.Context) iter.Seq2[strata.LegalHold, error] {
	const op = "legal holds"
	return func(yield func(strata.LegalHold, error) bool) {
		if err := s.checkOpen(op); err != nil {
			yield(strata.LegalHold{}, err)
			return
		}
		rows, err := s.r.QueryContext(ctx, `SELECT stream, reason, held_by, held_at FROM legal_holds ORDER BY stream`)
		if err != nil {
			yield(strata.LegalHold{}, s.fail(ctx, op, err))
			return
		}
		var hs []strata.LegalHold
		for rows.Next() {
			var h strata.LegalHold
			var at int64
			if err := rows.Scan(&h.Stream, &h.Reason, &h.HeldBy, &at); err != nil {
				rows.Close()
				yield(strata.LegalHold{}, s.fail(ctx, op, err))
				return
			}
			h.HeldAt = time.UnixMicro(at).UTC()
			hs = append(hs, h)
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			yield(strata.LegalHold{}, s.fail(ctx, op, err))
			return
		}
		for _, h := range hs {
			if !yield(h, nil) {
				return
			}
		}
	}
}
