package mysql

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"iter"
	"maps"
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

// queryIndexes are the search indexes of CreateQueryIndexes: each leads with the tenant and
// ends with the query order (recorded_at, position). Metadata filters are checked on the rows
// these select (a match of the canonical "key":"value" bytes after '{' or ',', then q.Match in
// Go).
var queryIndexes = []struct{ name, cols string }{
	{"events_q_time", "tenant, recorded_at, position"},
	{"events_q_type", "tenant, type, recorded_at, position"},
	{"events_q_stream", "tenant, stream, recorded_at, position"},
}

// CreateQueryIndexes implements strata.QueryIndexer. InnoDB builds them online: appends go on.
func (s *Store) CreateQueryIndexes(ctx context.Context) error {
	const op = "create query indexes"
	if s.isClosed() {
		return strata.ClosedError(op)
	}
	for _, ix := range queryIndexes {
		var n int
		if err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM information_schema.statistics
			WHERE table_schema = DATABASE() AND table_name = 'events' AND index_name = ?`, ix.name).Scan(&n); err != nil {
			return s.fail(op, err)
		}
		if n > 0 {
			continue
		}
		if err := s.addQueryIndex(ctx, ix.name, ix.cols); err != nil {
			return s.fail(op, err)
		}
	}
	return nil
}

// addQueryIndex adds the index name on cols to the events table. An index of that name made
// meanwhile (another process creating the query indexes at once) counts as made.
func (s *Store) addQueryIndex(ctx context.Context, name, cols string) error {
	_, err := s.db.ExecContext(ctx, "ALTER TABLE events ADD INDEX "+name+" ("+cols+"), ALGORITHM=INPLACE, LOCK=NONE")
	if isMySQLError(err, errDupKeyName) {
		return nil
	}
	return err
}

// metaPattern is the bytes of "key":"value" as the canonical metadata JSON holds them.
func metaPattern(key, value string) []byte {
	var m strata.Metadata
	m.Set(key, value)
	b, _ := m.MarshalJSON()
	return b[1 : len(b)-1]
}

func queryWhere(q *strata.EventQuery) (string, []any) {
	var b strings.Builder
	args := []any{tenantKey(q.Tenant)}
	b.WriteString(`tenant = ? AND position IS NOT NULL`)
	if len(q.Types) > 0 {
		b.WriteString(` AND type IN (?` + strings.Repeat(`, ?`, len(q.Types)-1) + `)`)
		for _, t := range q.Types {
			args = append(args, t)
		}
	}
	for _, f := range q.MetaFilters() {
		// The pair starts the object or follows a comma: a key ending in `"principal`, say,
		// holds the bytes "principal":"v" too, after an escaping backslash.
		pat := metaPattern(f[0], f[1])
		b.WriteString(` AND (LOCATE(?, meta) > 0 OR LOCATE(?, meta) > 0)`)
		args = append(args, append([]byte{'{'}, pat...), append([]byte{','}, pat...))
	}
	if q.StreamPrefix != "" {
		b.WriteString(` AND stream >= ?`)
		args = append(args, q.StreamPrefix)
		if end, ok := strata.PrefixEnd(q.StreamPrefix); ok {
			b.WriteString(` AND stream < ?`)
			args = append(args, end)
		}
	}
	// PrepareEventQuery rounds a time in the last microsecond of year 9999 up into year
	// 10000, past every DATETIME (and the driver's range): no event is recorded at or after it.
	switch {
	case q.RecordedFrom.After(latestDue):
		b.WriteString(` AND FALSE`)
	case !q.RecordedFrom.IsZero():
		b.WriteString(` AND recorded_at >= ?`)
		args = append(args, q.RecordedFrom)
	}
	if !q.RecordedTo.IsZero() && !q.RecordedTo.After(latestDue) {
		b.WriteString(` AND recorded_at < ?`)
		args = append(args, q.RecordedTo)
	}
	return b.String(), args
}

// QueryEvents implements strata.QueryStore. It runs a sequencing pass first when committed
// events wait for positions, so that a page sees every event committed before it started.
func (s *Store) QueryEvents(ctx context.Context, q strata.EventQuery) (strata.EventPage, error) {
	const op = "query events"
	if s.isClosed() {
		return strata.EventPage{}, strata.ClosedError(op)
	}
	q, cur, after, err := strata.PrepareEventQuery(op, q)
	if err != nil {
		return strata.EventPage{}, err
	}
	if err := s.sequenceIfNeeded(ctx); err != nil {
		return strata.EventPage{}, s.fail(op, err)
	}
	where, args := queryWhere(&q)
	if after {
		where += ` AND (recorded_at > ? OR recorded_at = ? AND position > ?)`
		args = append(args, cur.RecordedAt, cur.RecordedAt, int64(cur.Position.Event))
	}
	args = append(args, q.Limit+1)
	p, err := s.readEvents(ctx, nil, q.Limit+1, `SELECT `+eventColumns+` FROM events WHERE `+where+` ORDER BY recorded_at, position LIMIT ?`, args...)
	if err != nil {
		return strata.EventPage{}, s.fail(op, err)
	}
	return strata.QueryPage(&q, p.evs, p.more && len(p.evs) <= q.Limit), nil
}

// CountEvents implements strata.QueryStore.
func (s *Store) CountEvents(ctx context.Context, q strata.EventQuery) (int64, error) {
	const op = "count events"
	if s.isClosed() {
		return 0, strata.ClosedError(op)
	}
	q.Cursor, q.Limit = "", 0
	q, _, _, err := strata.PrepareEventQuery(op, q)
	if err != nil {
		return 0, err
	}
	if err := s.sequenceIfNeeded(ctx); err != nil {
		return 0, s.fail(op, err)
	}
	where, args := queryWhere(&q)
	var n int64
	if err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM events WHERE `+where, args...).Scan(&n); err != nil {
		return 0, s.fail(op, err)
	}
	return n, nil
}

// SaveTemporalSnapshot implements strata.TemporalSnapshotStore.
func (s *Store) SaveTemporalSnapshot(ctx context.Context, snap strata.TemporalSnapshot) error {
	const op = "save temporal snapshot"
	if s.isClosed() {
		return strata.ClosedError(op)
	}
	snap, err := strata.PrepareTemporalSnapshot(op, snap)
	if err != nil {
		return err
	}
	_, err = s.db.ExecContext(ctx, `INSERT INTO temporal_snapshots (stream, model, version, recorded_upto, occurred_upto, data)
		VALUES (?, ?, ?, ?, ?, ?) ON DUPLICATE KEY UPDATE recorded_upto = VALUES(recorded_upto),
			occurred_upto = VALUES(occurred_upto), data = VALUES(data)`,
		snap.Stream, snap.Model, snap.Version, snap.RecordedUpTo, snap.OccurredUpTo, snap.Data)
	return s.fail(op, err)
}

// TemporalSnapshotAt implements strata.TemporalSnapshotStore.
func (s *Store) TemporalSnapshotAt(ctx context.Context, stream, model string, recordedBy, occurredBy time.Time) (strata.TemporalSnapshot, error) {
	const op = "temporal snapshot"
	if s.isClosed() {
		return strata.TemporalSnapshot{}, strata.ClosedError(op)
	}
	// No valid time is no bound: every stored time is at or before latestDue.
	occ := latestDue
	if !occurredBy.IsZero() {
		occ = occurredBy.UTC()
	}
	rec := recordedBy.UTC()
	// Every stored time is at or before latestDue, which the driver can send; later ones
	// cannot be. Nor can times before year 1, before every stored one: no snapshot holds then.
	rec, occ = minTime(rec, latestDue), minTime(occ, latestDue)
	if rec.Year() < 1 || occ.Year() < 1 {
		return strata.TemporalSnapshot{}, strata.TemporalSnapshotNotFound(op, stream, model)
	}
	t := strata.TemporalSnapshot{Stream: stream, Model: model}
	err := s.db.QueryRowContext(ctx, `SELECT version, recorded_upto, occurred_upto, data FROM temporal_snapshots
		WHERE stream = ? AND model = ? AND recorded_upto <= ? AND occurred_upto <= ? ORDER BY version DESC LIMIT 1`,
		stream, model, rec, occ).Scan(&t.Version, &t.RecordedUpTo, &t.OccurredUpTo, &t.Data)
	if errors.Is(err, sql.ErrNoRows) {
		return strata.TemporalSnapshot{}, strata.TemporalSnapshotNotFound(op, stream, model)
	}
	if err != nil {
		return strata.TemporalSnapshot{}, s.fail(op, err)
	}
	t.RecordedUpTo, t.OccurredUpTo = t.RecordedUpTo.UTC(), t.OccurredUpTo.UTC()
	return t, nil
}

// RetentionCandidates implements strata.RetentionStore. A pass over every tenant walks
// events_retention (migration 0012) in (recorded_at, position) order from the cursor to the
// cutoff: the index keys an event removed by retention on NULL, so the pass reads neither the
// events removed before nor those recorded after the cutoff. A pass over one tenant walks
// events_tenant_position in Position order from the cursor, past the tenant's removed and
// recent events (an index for it would cost every append a third insert).
func (s *Store) RetentionCandidates(ctx context.Context, sel strata.RetentionSelect) (strata.RetentionPage, error) {
	const op = "retention candidates"
	if s.isClosed() {
		return strata.RetentionPage{}, strata.ClosedError(op)
	}
	if err := strata.ValidateRetentionSelect(op, sel); err != nil {
		return strata.RetentionPage{}, err
	}
	cur, after, err := strata.RetentionCursor(op, sel)
	if err != nil {
		return strata.RetentionPage{}, err
	}
	// The first page of a pass has every event committed before it sequenced; later pages
	// do not wait for the events appended meanwhile (recorded after the pass began, they
	// are not due), which would make each page wait for a sequencing pass under appends.
	if !after {
		if err := s.sequenceIfNeeded(ctx); err != nil {
			return strata.RetentionPage{}, s.fail(op, err)
		}
	}
	var b strings.Builder
	args := []any{sel.RecordedBefore.UTC()}
	order := ` ORDER BY position`
	if sel.AnyTenant {
		b.WriteString(`SELECT ` + eventColumns + ` FROM events e FORCE INDEX (events_retention) WHERE live_recorded_at < ? AND position IS NOT NULL`)
		if after {
			at := cur.RecordedAt.UTC()
			b.WriteString(` AND (live_recorded_at > ? OR (live_recorded_at = ? AND position > ?))`)
			args = append(args, at, at, int64(cur.Position.Event))
		}
		order = ` ORDER BY live_recorded_at, position`
	} else {
		b.WriteString(`SELECT ` + eventColumns + ` FROM events e WHERE recorded_at < ? AND position > ? AND tenant = ? AND removed_leaf_hash IS NULL`)
		args = append(args, int64(cur.Position.Event), tenantKey(sel.Tenant))
	}
	if !sel.UpTo.IsZero() {
		b.WriteString(` AND position <= ?`)
		args = append(args, int64(sel.UpTo.Event))
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
		b.WriteString(` AND LEFT(stream, ?) <> ?`)
		args = append(args, len(sel.ExcludePrefix), sel.ExcludePrefix)
	}
	b.WriteString(` AND NOT EXISTS (SELECT 1 FROM legal_holds h WHERE h.stream = e.stream)` + order + ` LIMIT ?`)
	args = append(args, sel.Limit)
	p, err := s.readEvents(ctx, nil, sel.Limit, b.String(), args...)
	if err != nil {
		return strata.RetentionPage{}, s.fail(op, err)
	}
	if len(p.evs) == 0 {
		return strata.RetentionPage{}, nil
	}
	last := p.evs[len(p.evs)-1]
	evs := p.evs
	if !sel.AnyTenant {
		evs = filterTenant(evs, sel.Tenant)
	}
	return strata.RetentionPageOf(evs, p.more, &last), nil
}

// filterTenant drops events of another tenant that shares a long tenant's key.
func filterTenant(evs []strata.Event, tenant string) []strata.Event {
	out := evs[:0]
	for _, e := range evs {
		if e.Meta.Tenant == tenant {
			out = append(out, e)
		}
	}
	return out
}

// tombstoneParts is how many transactions TombstoneEvents runs at once, on as many pooled
// connections, for a batch of at least tombstonePartMin events a part: a statement runs on one
// server thread, and two parts remove a batch faster on two cores (see the PostgreSQL
// backend's).
const (
	tombstoneParts   = 2
	tombstonePartMin = 500
)

// TombstoneEvents implements strata.RetentionStore: a batch of fewer than 2×tombstonePartMin
// events takes one transaction, a larger one is cut in tombstoneParts parts, each one
// transaction, run at once. Each event's tombstone is kept in its row (migration 0012): the
// UPDATE that blanks the row stores it, and locks only the part's rows, by events_id (appends
// insert new rows and never wait for them). Of the indexes, it changes only the row's entry
// in events_retention, to NULL. See tombstonePart for the statements.
func (s *Store) TombstoneEvents(ctx context.Context, ts []strata.Tombstone) (int, error) {
	const op = "tombstone events"
	if s.isClosed() {
		return 0, strata.ClosedError(op)
	}
	if err := strata.PrepareTombstones(op, ts); err != nil {
		return 0, err
	}
	if len(ts) == 0 {
		return 0, nil
	}
	n, err := strata.TombstonesInParts(ctx, ts, tombstoneParts, tombstonePartMin, s.tombstonePart)
	if err != nil {
		return n, s.fail(op, err)
	}
	return n, nil
}

// plainTenantRegexp matches the hex form (HEX, upper case) of a tenant whose bytes are all in
// strata.TombstoneTenantBytes, byte by byte: 0x20-0x7f but for 0x22 ("), 0x26 (&), 0x3c (<),
// 0x3e (>) and 0x5c (\). A regular expression over the hex text, not over the VARBINARY
// tenant, because MySQL 8 refuses REGEXP on binary strings.
const plainTenantRegexp = `^(2[013-57-9A-F]|3[0-9ABDF]|4[0-9A-F]|5[0-9ABD-F]|[67][0-9A-F])*$`

// plainTenant is the SQL condition that the events column col holds a plain tenant (see
// strata.TombstoneTenantBytes) as it is: at most 200 bytes, not a long tenant's key (tenantKey).
func plainTenant(col string) string {
	return `(LENGTH(` + col + `) <= 200 AND HEX(` + col + `) REGEXP '` + plainTenantRegexp + `')`
}

// tombstonePart removes ts (one tombstone per event) in one transaction, of statements whose
// placeholders stay within MySQL's 65,535 for a part of strata.MaxTombstoneBatch events:
//   - One UPDATE blanks the part's events of plain tenants (or none) that are neither removed
//     nor held and stores their tombstones, joined to a derived table of the part's IDs, leaf
//     hashes and runs; the metadata it keeps, {"tenant":"..."}, is made in SQL. It returns no
//     rows: RowsAffected counts them (every row it matches changes).
//   - Only when it left some of the part, a locking read finds those of other tenants, and an
//     UPDATE per distinct tenant blanks them with the metadata Metadata.MarshalJSON writes.
//   - Only when temporal snapshots exist, a read of the blanked events' streams and one DELETE
//     of their snapshots, which hold states folded from the removed payloads.
//
// A call that waits for an event's row another call holds reads the row as that call left it
// (InnoDB's locking reads see the latest version): an event it removed meanwhile is skipped.
func (s *Store) tombstonePart(ctx context.Context, ts []strata.Tombstone) (int, error) {
	byID := make(map[uuid.UUID]strata.Tombstone, len(ts))
	for _, t := range ts {
		byID[t.EventID] = t
	}
	// In ID order, the order the rows are locked in: two calls never wait for each other both.
	ids := slices.SortedFunc(maps.Keys(byID), func(a, b uuid.UUID) int { return bytes.Compare(a[:], b[:]) })
	none, _ := strata.TombstoneMeta(strata.Metadata{}).MarshalJSON()
	var n int
	tx := func(c *sql.Conn) error {
		now := strata.Timestamp(time.Now())
		args := []any{}
		derived := tombstoneDerived(ids, byID, &args)
		args = append(args, []byte(strata.TombstoneData), none, now)
		res, err := c.ExecContext(ctx, `UPDATE `+derived+` v STRAIGHT_JOIN events e ON e.id = v.id
			SET e.data = ?, e.meta = IF(e.tenant = '', ?, CONCAT('{"tenant":"', e.tenant, '"}')),
				e.removed_leaf_hash = v.leaf, e.removed_run = v.run, e.removed_at = ?
			WHERE e.removed_leaf_hash IS NULL AND `+plainTenant("e.tenant")+`
				AND NOT EXISTS (SELECT 1 FROM legal_holds h WHERE h.stream = e.stream)`, args...)
		if err != nil {
			return err
		}
		k, err := res.RowsAffected()
		if err != nil {
			return err
		}
		n = int(k)
		if n < len(ids) {
			more, err := s.tombstoneEscaped(ctx, c, ids, byID, now)
			if err != nil {
				return err
			}
			n += more
		}
		if n == 0 {
			return nil
		}
		var snapshots bool
		if err := c.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM temporal_snapshots)`).Scan(&snapshots); err != nil || !snapshots {
			return err
		}
		streams, err := s.blankedStreams(ctx, c, ids, now)
		if err != nil || len(streams) == 0 {
			return err
		}
		_, err = c.ExecContext(ctx, `DELETE FROM temporal_snapshots WHERE stream IN (?`+strings.Repeat(`, ?`, len(streams)-1)+`)`, streams...)
		return err
	}
	if err := s.inTx(ctx, tx); err != nil {
		return 0, err
	}
	return n, nil
}

// blankedStreams returns the streams, in byte order, of the events of ids that this
// transaction blanked: those it stamped now (removed_at is exact to the microsecond, as now
// is). A plain read, apart from the DELETE that uses them: a subquery of a DELETE takes shared
// locks on the rows it reads, which deadlocked two calls at once, each holding events the
// other's subquery read.
func (s *Store) blankedStreams(ctx context.Context, c *sql.Conn, ids []uuid.UUID, now time.Time) ([]any, error) {
	args := make([]any, 0, len(ids)+1)
	args = append(args, now)
	for _, id := range ids {
		args = append(args, id[:])
	}
	rows, err := c.QueryContext(ctx, `SELECT DISTINCT stream FROM events WHERE removed_at = ? AND id IN (?`+strings.Repeat(`, ?`, len(ids)-1)+`) ORDER BY stream`, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var streams []any
	for rows.Next() {
		var stream []byte
		if err := rows.Scan(&stream); err != nil {
			return nil, err
		}
		streams = append(streams, stream)
	}
	return streams, rows.Err()
}

// tombstoneDerived returns a derived table (id, leaf, run) of the tombstones of ids, appending
// its arguments to args: a UNION ALL of one-row SELECTs, which MySQL and MariaDB both read (their
// table value constructors are written differently).
func tombstoneDerived(ids []uuid.UUID, byID map[uuid.UUID]strata.Tombstone, args *[]any) string {
	var b strings.Builder
	b.WriteString(`(SELECT ? AS id, ? AS leaf, ? AS run`)
	for range len(ids) - 1 {
		b.WriteString(` UNION ALL SELECT ?, ?, ?`)
	}
	b.WriteString(`)`)
	for _, id := range ids {
		t := byID[id]
		*args = append(*args, id[:], t.LeafHash, t.Run[:])
	}
	return b.String()
}

// tombstoneEscaped removes those of ids that tombstonePart's first UPDATE left for their
// tenants (not plain, or longer than 200 bytes, whose metadata is read to find the tenant):
// a locking read of them, then an UPDATE per distinct metadata they keep, usually one.
func (s *Store) tombstoneEscaped(ctx context.Context, c *sql.Conn, ids []uuid.UUID, byID map[uuid.UUID]strata.Tombstone, now time.Time) (int, error) {
	// The same plan as the UPDATE's, the derived table first and a probe of events_id per ID:
	// it locks nothing the UPDATE did not (a plain IN list let MariaDB scan the table for a
	// part that is a large share of it, locking every row in seq order, and deadlock).
	args := []any{}
	derived := tombstoneDerived(ids, byID, &args)
	rows, err := c.QueryContext(ctx, `SELECT e.id, e.tenant, IF(LENGTH(e.tenant) > 200, e.meta, NULL) FROM `+derived+` v STRAIGHT_JOIN events e ON e.id = v.id
		WHERE e.removed_leaf_hash IS NULL AND NOT `+plainTenant("e.tenant")+`
			AND NOT EXISTS (SELECT 1 FROM legal_holds h WHERE h.stream = e.stream) FOR UPDATE`, args...)
	if err != nil {
		return 0, err
	}
	byMeta := map[string][]uuid.UUID{}
	var metas []string              // in first-seen order, for a stable statement order
	tombMeta := map[string][]byte{} // by tenant column, for the tenants it holds whole
	for rows.Next() {
		var id, tenant, meta []byte
		if err := rows.Scan(&id, &tenant, &meta); err != nil {
			rows.Close()
			return 0, err
		}
		tm, ok := tombMeta[string(tenant)]
		if !ok {
			var m strata.Metadata
			if meta == nil {
				m.Tenant = string(tenant)
			} else if err := m.UnmarshalJSON(meta); err != nil {
				rows.Close()
				return 0, err
			}
			tm, _ = strata.TombstoneMeta(m).MarshalJSON()
			if meta == nil {
				tombMeta[string(tenant)] = tm
			}
		}
		if _, ok := byMeta[string(tm)]; !ok {
			metas = append(metas, string(tm))
		}
		byMeta[string(tm)] = append(byMeta[string(tm)], uuid.UUID(id))
	}
	// A deadlock met while reading the rows ends the transaction: it must not go on.
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return 0, err
	}
	n := 0
	for _, meta := range metas {
		// The rows are locked: each is blanked.
		args := []any{}
		derived := tombstoneDerived(byMeta[meta], byID, &args)
		args = append(args, []byte(strata.TombstoneData), []byte(meta), now)
		res, err := c.ExecContext(ctx, `UPDATE `+derived+` v STRAIGHT_JOIN events e ON e.id = v.id
			SET e.data = ?, e.meta = ?, e.removed_leaf_hash = v.leaf, e.removed_run = v.run, e.removed_at = ?`, args...)
		if err != nil {
			return 0, err
		}
		k, err := res.RowsAffected()
		if err != nil {
			return 0, err
		}
		n += int(k)
	}
	return n, nil
}

// Tombstone implements strata.RetentionStore.
func (s *Store) Tombstone(ctx context.Context, id uuid.UUID) (strata.Tombstone, error) {
	const op = "tombstone"
	if s.isClosed() {
		return strata.Tombstone{}, strata.ClosedError(op)
	}
	t := strata.Tombstone{EventID: id}
	var run []byte
	err := s.db.QueryRowContext(ctx, `SELECT removed_leaf_hash, removed_run, removed_at FROM events
		WHERE id = ? AND removed_leaf_hash IS NOT NULL`, id[:]).Scan(&t.LeafHash, &run, &t.RemovedAt)
	if errors.Is(err, sql.ErrNoRows) {
		return strata.Tombstone{}, strata.TombstoneNotFound(op, id)
	}
	if err != nil {
		return strata.Tombstone{}, s.fail(op, err)
	}
	copy(t.Run[:], run)
	t.RemovedAt = t.RemovedAt.UTC()
	return t, nil
}

// PlaceLegalHold implements strata.RetentionStore.
func (s *Store) PlaceLegalHold(ctx context.Context, h strata.LegalHold) error {
	const op = "place legal hold"
	if s.isClosed() {
		return strata.ClosedError(op)
	}
	if err := strata.ValidateLegalHold(op, h); err != nil {
		return err
	}
	_, err := s.db.ExecContext(ctx, `INSERT INTO legal_holds (stream, reason, held_by, held_at) VALUES (?, ?, ?, UTC_TIMESTAMP(6))
		ON DUPLICATE KEY UPDATE reason = VALUES(reason), held_by = VALUES(held_by)`, h.Stream, h.Reason, h.HeldBy)
	return s.fail(op, err)
}

// ReleaseLegalHold implements strata.RetentionStore.
func (s *Store) ReleaseLegalHold(ctx context.Context, stream string) error {
	const op = "release legal hold"
	if s.isClosed() {
		return strata.ClosedError(op)
	}
	if err := strata.ValidateStreamName(op, stream); err != nil {
		return err
	}
	_, err := s.db.ExecContext(ctx, `DELETE FROM legal_holds WHERE stream = ?`, stream)
	return s.fail(op, err)
}

// LegalHolds implements strata.RetentionStore.
func (s *Store) LegalHolds(ctx context.Context) iter.Seq2[strata.LegalHold, error] {
	const op = "legal holds"
	return func(yield func(strata.LegalHold, error) bool) {
		if s.isClosed() {
			yield(strata.LegalHold{}, strata.ClosedError(op))
			return
		}
		rows, err := s.db.QueryContext(ctx, `SELECT stream, reason, held_by, held_at FROM legal_holds ORDER BY stream`)
		if err != nil {
			yield(strata.LegalHold{}, s.fail(op, err))
			return
		}
		var hs []strata.LegalHold
		for rows.Next() {
			var h strata.LegalHold
			var stream, reason, by []byte
			if err := rows.Scan(&stream, &reason, &by, &h.HeldAt); err != nil {
				rows.Close()
				yield(strata.LegalHold{}, s.fail(op, err))
				return
			}
			h.Stream, h.Reason, h.HeldBy, h.HeldAt = string(stream), string(reason), string(by), h.HeldAt.UTC()
			hs = append(hs, h)
		}
		err = rows.Close()
		if err == nil {
			err = rows.Err()
		}
		if err != nil {
			yield(strata.LegalHold{}, s.fail(op, err))
			return
		}
		for _, h := range hs {
			if !yield(h, nil) {
				return
			}
		}
	}
}

// minTime returns the earlier of a and b.
func minTime(a, b time.Time) time.Time {
	if a.After(b) {
		return b
	}
	return a
}
