package sqlite

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"iter"
	"math"
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
	b.WriteString(` AND e.removed_leaf_hash IS NULL
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
// commit, when another call waits for the writer, it waits a quarter as long as it held the
// writer before it returns, so that a run whose next batch is ready at once (package query
// reads it meanwhile) still leaves appends a fifth of the writer's time, however fast it reads.
// With no call waiting by the commit it returns at once: a write that comes during the next
// batch waits for that batch only, as for any batch.
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

// tombstoneEvents removes ts in one write transaction and returns how long it held the writer
// when another call waited for it by the commit, else 0.
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
	if !w.contended() { // before release: a waiter takes the turn at once, and counts no more
		return n, 0, nil
	}
	return n, time.Since(start), nil
}

// tombstoneChunk bounds the events of one statement of tombstoneTx (four parameters each at
// most, within SQLite's 32,766).
const tombstoneChunk = 2500

// tombstoneTx works set-wise, a chunk of the batch per statement, and the statements return
// no rows: reading back (RETURNING) each row an UPDATE blanked took a third of a batch.
//
//   - One UPDATE blanks the chunk's events of plain tenants (strata.TombstoneTenantBytes) that
//     are neither held nor tombstoned, writing their tombstone metadata ({"tenant":"..."}) in
//     SQL and their tombstones into their rows (migration 0011).
//   - Only when it blanked fewer rows than the chunk has events does a SELECT look for the
//     chunk's other events that are due: those of tenants whose canonical metadata escapes a
//     byte, which a second UPDATE blanks with the metadata Go writes.
//   - When the store holds temporal snapshots, a DELETE drops those of the streams whose
//     events this call blanked: the rows of the chunk with this call's removed_at.
func (s *Store) tombstoneTx(ctx context.Context, op string, c *sql.Conn, ts []strata.Tombstone) (int, error) {
	// The writer is held: no other call of this store writes meanwhile. Were the clock to
	// repeat a microsecond, the DELETE would drop snapshots of the call before too: a cache.
	now := strata.Timestamp(time.Now()).UnixMicro()
	byID := make(map[uuid.UUID]strata.Tombstone, len(ts))
	for _, t := range ts {
		byID[t.EventID] = t // the last of an event's tombstones wins
	}
	ids := make([]uuid.UUID, 0, len(byID))
	for id := range byID {
		ids = append(ids, id)
	}
	// In ID order, which for IDs of version 7 is about the rows' order: the UPDATE reads the
	// VALUES in turn, and neighbouring rows share their pages.
	slices.SortFunc(ids, func(a, b uuid.UUID) int { return bytes.Compare(a[:], b[:]) })
	var snapshots bool
	if err := c.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM temporal_snapshots)`).Scan(&snapshots); err != nil {
		return 0, s.failWrite(ctx, op, err)
	}
	n := 0
	for start := 0; start < len(ids); start += tombstoneChunk {
		chunk := ids[start:min(start+tombstoneChunk, len(ids))]
		args := make([]any, 0, 3*len(chunk)+3)
		args = append(args, []byte(strata.TombstoneData), now, plainTenantGlob)
		for _, id := range chunk {
			t := byID[id]
			args = append(args, id[:], t.LeafHash, t.Run[:])
		}
		k, err := s.blank(ctx, c, `CASE WHEN e.tenant = '' THEN '{}' ELSE '{"tenant":"' || e.tenant || '"}' END`,
			`(VALUES (?4, ?5, ?6)`+strings.Repeat(`, (?, ?, ?)`, len(chunk)-1)+`) AS v`,
			plainTenant("e.tenant", "?3"), args)
		if err != nil {
			return 0, s.failWrite(ctx, op, err)
		}
		if k < len(chunk) {
			more, err := s.blankEscaped(ctx, c, chunk, byID, now)
			if err != nil {
				return 0, s.failWrite(ctx, op, err)
			}
			k += more
		}
		if k > 0 && snapshots {
			// The streams' temporal snapshots hold states folded from the removed payloads.
			mine := make([]any, 0, len(chunk)+1)
			mine = append(mine, now)
			for _, id := range chunk {
				mine = append(mine, id[:])
			}
			if _, err := c.ExecContext(ctx, `DELETE FROM temporal_snapshots WHERE stream IN (SELECT stream FROM events
				WHERE removed_at = ?1 AND id IN (?`+strings.Repeat(`, ?`, len(chunk)-1)+`))`, mine...); err != nil {
				return 0, s.failWrite(ctx, op, err)
			}
		}
		n += k
	}
	return n, nil
}

// blank runs tombstoneTx's UPDATE: the events named in rows (VALUES whose column1 to column3
// are an event's ID, leaf hash and run) that pass where and are neither held nor tombstoned
// get the tombstone data ?1, the metadata meta and their tombstone, removed at ?2. It returns
// how many it blanked.
func (s *Store) blank(ctx context.Context, c *sql.Conn, meta, rows, where string, args []any) (int, error) {
	res, err := c.ExecContext(ctx, `UPDATE events AS e SET data = ?1, meta = `+meta+`,
		removed_leaf_hash = v.column2, removed_run = v.column3, removed_at = ?2
		FROM `+rows+`
		WHERE e.id = v.column1 AND e.removed_leaf_hash IS NULL AND `+where+`
		AND NOT EXISTS (SELECT 1 FROM legal_holds h WHERE h.stream = e.stream)`, args...)
	if err != nil {
		return 0, err
	}
	k, err := res.RowsAffected()
	return int(k), err
}

// blankEscaped blanks the events of chunk whose tenants are not plain, with the metadata Go
// writes for each tenant, and returns how many.
func (s *Store) blankEscaped(ctx context.Context, c *sql.Conn, chunk []uuid.UUID, byID map[uuid.UUID]strata.Tombstone, now int64) (int, error) {
	args := make([]any, 0, len(chunk)+1)
	args = append(args, plainTenantGlob)
	for _, id := range chunk {
		args = append(args, id[:])
	}
	rows, err := c.QueryContext(ctx, `SELECT e.id, e.tenant FROM events e WHERE e.id IN (?2`+strings.Repeat(`, ?`, len(chunk)-1)+`)
		AND e.removed_leaf_hash IS NULL AND NOT (`+plainTenant("e.tenant", "?1")+`)
		AND NOT EXISTS (SELECT 1 FROM legal_holds h WHERE h.stream = e.stream)`, args...)
	if err != nil {
		return 0, err
	}
	up := []any{[]byte(strata.TombstoneData), now}
	metas := map[string]string{}
	for rows.Next() {
		var id []byte
		var tenant string
		if err := rows.Scan(&id, &tenant); err != nil {
			rows.Close()
			return 0, err
		}
		meta, ok := metas[tenant]
		if !ok {
			meta = tombstoneMeta(tenant)
			metas[tenant] = meta
		}
		t := byID[uuid.UUID(id)]
		up = append(up, t.EventID[:], t.LeafHash, t.Run[:], meta)
	}
	if err := rows.Close(); err != nil {
		return 0, err
	}
	k := (len(up) - 2) / 4
	if k == 0 {
		return 0, nil
	}
	return s.blank(ctx, c, `v.column4`, `(VALUES (?3, ?4, ?5, ?6)`+strings.Repeat(`, (?, ?, ?, ?)`, k-1)+`) AS v`, `1`, up)
}

// plainTenantGlob matches a text that holds a character not in strata.TombstoneTenantBytes:
// in a GLOB class, a ] first is itself, and so are the ^ and - of a range (^ to DEL).
const plainTenantGlob = "*[^]^-\x7f !#-%'-;=?-[]*"

// plainTenant is the SQL condition that the tenant col is plain (strata.TombstoneTenantBytes)
// with pattern, the parameter that holds plainTenantGlob. GLOB reads a text up to its first
// NUL and length counts its characters up to it: a text as long in characters as in bytes has
// neither NUL nor a byte from 0x80. rtrim by the plain bytes says the same, at a fifth of the
// UPDATE's time (it reads its set of characters anew for each row).
func plainTenant(col, pattern string) string {
	return col + ` NOT GLOB ` + pattern + ` AND length(` + col + `) = length(CAST(` + col + ` AS BLOB))`
}

// tombstoneMeta is the canonical metadata of a tombstoned event of tenant.
func tombstoneMeta(tenant string) string {
	meta := strata.TombstoneMeta(strata.Metadata{Tenant: tenant})
	return encodeMeta(&meta)
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
	err := s.r.QueryRowContext(ctx, `SELECT removed_leaf_hash, removed_run, removed_at FROM events WHERE id = ? AND removed_leaf_hash IS NOT NULL`, id[:]).Scan(&t.LeafHash, &run, &at)
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
