package postgres

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"math"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/strata-events/strata"
)

var (
	_ strata.QueryStore            = (*Store)(nil)
	_ strata.TemporalSnapshotStore = (*Store)(nil)
	_ strata.RetentionStore        = (*Store)(nil)
	_ strata.QueryIndexer          = (*Store)(nil)
)

// queryIndexes are the search indexes of CreateQueryIndexes: every one leads with the tenant
// (every query names one) and ends with the query order (recorded_at, tx, seq), so that a
// filter and the keyset cursor make one range scan. They are partial: events without a tenant
// are never searched and cost nothing, and a metadata index holds only the events that have
// its key (a filter meta_text(...) = $n implies meta_text(...) IS NOT NULL, so the planner
// uses it), which keeps events without that key, and every event retention removed, out of it:
// retention's update of a row inserts nothing into the six metadata indexes.
var queryIndexes = []struct{ name, cols, where string }{
	{"events_q_time", "tenant, recorded_at, tx, seq", ""},
	{"events_q_type", "tenant, type, recorded_at, tx, seq", ""},
	{"events_q_stream", "tenant, stream, recorded_at, tx, seq", ""},
	{"events_q_principal", "tenant, {schema}.meta_text(meta, 'principal'), recorded_at, tx, seq", "{schema}.meta_text(meta, 'principal')"},
	{"events_q_session", "tenant, {schema}.meta_text(meta, 'session'), recorded_at, tx, seq", "{schema}.meta_text(meta, 'session')"},
	{"events_q_correlation", "tenant, {schema}.meta_text(meta, 'correlation'), recorded_at, tx, seq", "{schema}.meta_text(meta, 'correlation')"},
	{"events_q_causation", "tenant, {schema}.meta_text(meta, 'causation'), recorded_at, tx, seq", "{schema}.meta_text(meta, 'causation')"},
	{"events_q_subsystem", "tenant, {schema}.meta_text(meta, 'subsystem'), recorded_at, tx, seq", "{schema}.meta_text(meta, 'subsystem')"},
	{"events_q_category", "tenant, {schema}.meta_text(meta, 'category'), recorded_at, tx, seq", "{schema}.meta_text(meta, 'category')"},
}

func (s *Store) sq(query string) string {
	return strings.ReplaceAll(query, "{schema}", pgx.Identifier{s.schema}.Sanitize())
}

// smallTable is the estimated row count below which CreateQueryIndexes builds without
// CONCURRENTLY.
const smallTable = 100_000

// CreateQueryIndexes implements strata.QueryIndexer: it builds the missing search indexes with
// CREATE INDEX CONCURRENTLY, so appends go on meanwhile (plainly on a table of fewer than
// smallTable rows), replacing any that a failed build left invalid.
func (s *Store) CreateQueryIndexes(ctx context.Context) error {
	const op = "create query indexes"
	if s.closed.Load() {
		return strata.ClosedError(op)
	}
	// CONCURRENTLY waits for every transaction in the cluster that might see the table, which a
	// long transaction elsewhere can stretch for as long as it runs; a small table is indexed in
	// milliseconds with the plain form, whose lock appends wait out.
	var tuples float64
	if err := s.pool.QueryRow(ctx, `SELECT greatest(c.reltuples, 0) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE n.nspname = $1 AND c.relname = 'events'`, s.schema).Scan(&tuples); err != nil {
		return s.fail(op, err)
	}
	how := "CONCURRENTLY "
	if tuples < smallTable {
		how = ""
	}
	for _, ix := range queryIndexes {
		var valid *bool
		err := s.pool.QueryRow(ctx, `SELECT i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
			JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relname = $2`, s.schema, ix.name).Scan(&valid)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
		case err != nil:
			return s.fail(op, err)
		case *valid:
			continue
		default:
			if _, err := s.pool.Exec(ctx, s.sq(`DROP INDEX `+how+`IF EXISTS {schema}.`+ix.name)); err != nil {
				return s.fail(op, err)
			}
		}
		where := `tenant IS NOT NULL`
		if ix.where != "" {
			where += ` AND ` + ix.where + ` IS NOT NULL`
		}
		if _, err := s.pool.Exec(ctx, s.sq(`CREATE INDEX `+how+`IF NOT EXISTS `+ix.name+` ON {schema}.events (`+ix.cols+`) WHERE `+where)); err != nil {
			return s.fail(op, fmt.Errorf("index %s: %w", ix.name, err))
		}
	}
	return nil
}

// metaParam returns the value that meta_text yields for a metadata value v, and false when
// the index cannot be used for it (a value holding the text \u0000 would read differently).
func metaParam(v string) (string, bool) {
	if strings.Contains(v, `\u0000`) {
		return "", false
	}
	return strings.ReplaceAll(strings.ToValidUTF8(v, "\uFFFD"), "\x00", "\uFFFD"), true
}

// queryWhere builds the conditions of q without the cursor; rows that pass are checked again
// with q.Match. exact reports that the conditions select exactly the events that match q, so
// that no row needs that check (a count may then be counted in SQL).
func (s *Store) queryWhere(q *strata.EventQuery) (where string, args []any, exact bool) {
	var b strings.Builder
	args = []any{[]byte(q.Tenant)}
	exact = true
	arg := func(v any) string {
		args = append(args, v)
		return fmt.Sprintf("$%d", len(args))
	}
	b.WriteString(`tenant = $1::bytea`)
	if len(q.Types) > 0 {
		var ts []string
		for _, t := range q.Types {
			if storableText(t) {
				ts = append(ts, t)
			}
		}
		b.WriteString(` AND type = ANY(` + arg(ts) + `::text[])`)
	}
	for _, f := range q.MetaFilters() {
		v, ok := metaParam(f[1])
		if ok {
			b.WriteString(s.sq(` AND {schema}.meta_text(meta, '` + f[0] + `') = ` + arg(v) + `::text`))
		}
		// meta_text reads NUL, U+FFFD and invalid UTF-8 all as U+FFFD, and the text \u0000
		// as the text \ufffd.
		if !ok || v != f[1] || strings.ContainsRune(v, utf8.RuneError) || strings.Contains(v, `\ufffd`) {
			exact = false
		}
	}
	if q.StreamPrefix != "" {
		p := storablePrefix(q.StreamPrefix)
		exact = exact && p == q.StreamPrefix
		b.WriteString(` AND stream >= ` + arg(p) + `::text`)
		if end, ok := prefixEnd(p); ok {
			b.WriteString(` AND stream < ` + arg(end) + `::text`)
		}
	}
	if !q.RecordedFrom.IsZero() {
		b.WriteString(` AND recorded_at >= ` + arg(q.RecordedFrom) + `::timestamptz`)
	}
	if !q.RecordedTo.IsZero() {
		b.WriteString(` AND recorded_at < ` + arg(q.RecordedTo) + `::timestamptz`)
	}
	return b.String(), args, exact
}

// QueryEvents implements strata.QueryStore.
func (s *Store) QueryEvents(ctx context.Context, q strata.EventQuery) (strata.EventPage, error) {
	const op = "query events"
	q, cur, after, err := strata.PrepareEventQuery(op, q)
	if err != nil {
		return strata.EventPage{}, err
	}
	where, args, _ := s.queryWhere(&q)
	if after {
		n := len(args)
		where += fmt.Sprintf(` AND (recorded_at, tx, seq) > ($%d::timestamptz, $%d::bigint, $%d::bigint)`, n+1, n+2, n+3)
		args = append(args, cur.RecordedAt, int64(cur.Position.Commit), int64(cur.Position.Event))
	}
	args = append(args, q.Limit+1)
	sql := s.sq(`SELECT ` + eventColumns + ` FROM {schema}.events WHERE ` + where +
		fmt.Sprintf(` ORDER BY recorded_at, tx, seq LIMIT $%d`, len(args)))
	var p page
	if err := s.fetch(ctx, op, &p, q.Limit+1, nil, false, sql, args...); err != nil {
		return strata.EventPage{}, err
	}
	return strata.QueryPage(&q, p.events, p.full && len(p.events) <= q.Limit), nil
}

// CountEvents implements strata.QueryStore.
func (s *Store) CountEvents(ctx context.Context, q strata.EventQuery) (int64, error) {
	const op = "count events"
	if s.closed.Load() {
		return 0, strata.ClosedError(op)
	}
	q.Cursor, q.Limit = "", 0
	q, _, _, err := strata.PrepareEventQuery(op, q)
	if err != nil {
		return 0, err
	}
	where, args, exact := s.queryWhere(&q)
	if !exact {
		// The conditions select a superset: count what QueryEvents returns, page by page.
		var n int64
		for q.Limit = strata.MaxQueryLimit; ; {
			p, err := s.QueryEvents(ctx, q)
			if err != nil {
				return 0, err
			}
			n += int64(len(p.Events))
			if p.Next == "" {
				return n, nil
			}
			q.Cursor = p.Next
		}
	}
	var n int64
	if err := s.pool.QueryRow(ctx, s.sq(`SELECT count(*) FROM {schema}.events WHERE `+where), args...).Scan(&n); err != nil {
		return 0, s.fail(op, err)
	}
	return n, nil
}

// SaveTemporalSnapshot implements strata.TemporalSnapshotStore.
func (s *Store) SaveTemporalSnapshot(ctx context.Context, snap strata.TemporalSnapshot) error {
	const op = "save temporal snapshot"
	snap, err := strata.PrepareTemporalSnapshot(op, snap)
	if err != nil {
		return err
	}
	return s.exec(ctx, op, s.sq(`INSERT INTO {schema}.temporal_snapshots (stream, model, version, recorded_upto, occurred_upto, data)
		VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (stream, model, version) DO UPDATE SET recorded_upto = excluded.recorded_upto,
			occurred_upto = excluded.occurred_upto, data = excluded.data`),
		snap.Stream, snap.Model, snap.Version, snap.RecordedUpTo, snap.OccurredUpTo, snap.Data)
}

// TemporalSnapshotAt implements strata.TemporalSnapshotStore.
func (s *Store) TemporalSnapshotAt(ctx context.Context, stream, model string, recordedBy, occurredBy time.Time) (strata.TemporalSnapshot, error) {
	const op = "temporal snapshot"
	if s.closed.Load() {
		return strata.TemporalSnapshot{}, strata.ClosedError(op)
	}
	if !storableText(stream) || !storableText(model) {
		return strata.TemporalSnapshot{}, strata.TemporalSnapshotNotFound(op, stream, model)
	}
	// A bound after every time the driver sends (and so every stored one) is no bound; one
	// before PostgreSQL's first time holds no snapshot. Either would be out of range.
	if recordedBy.Before(earliestTimestamptz) || !occurredBy.IsZero() && occurredBy.Before(earliestTimestamptz) {
		return strata.TemporalSnapshot{}, strata.TemporalSnapshotNotFound(op, stream, model)
	}
	var rec, occ any
	if !recordedBy.After(latestTimestamptz) {
		rec = recordedBy
	}
	if !occurredBy.IsZero() && !occurredBy.After(latestTimestamptz) {
		occ = occurredBy
	}
	t := strata.TemporalSnapshot{Stream: stream, Model: model}
	err := s.pool.QueryRow(ctx, s.sq(`SELECT version, recorded_upto, occurred_upto, data FROM {schema}.temporal_snapshots
		WHERE stream = $1 AND model = $2 AND ($3::timestamptz IS NULL OR recorded_upto <= $3) AND ($4::timestamptz IS NULL OR occurred_upto <= $4)
		ORDER BY version DESC LIMIT 1`), stream, model, rec, occ).Scan(&t.Version, &t.RecordedUpTo, &t.OccurredUpTo, &t.Data)
	if errors.Is(err, pgx.ErrNoRows) {
		return strata.TemporalSnapshot{}, strata.TemporalSnapshotNotFound(op, stream, model)
	}
	if err != nil {
		return strata.TemporalSnapshot{}, s.fail(op, err)
	}
	t.RecordedUpTo, t.OccurredUpTo = t.RecordedUpTo.UTC(), t.OccurredUpTo.UTC()
	return t, nil
}

// The range of times TemporalSnapshotAt can send: PostgreSQL's first timestamptz (4714 BC) and
// the last time pgx encodes (its microseconds since 1970 fill an int64), which is before
// PostgreSQL's last.
var (
	earliestTimestamptz = time.Date(-4713, 11, 24, 0, 0, 0, 0, time.UTC)
	latestTimestamptz   = time.UnixMicro(math.MaxInt64).UTC()
)

// retentionLive is the predicate of events_retention_idx (migration 0006), exactly: the
// planner uses the partial index only for a query that repeats it. Its bytea constant is an E'...'
// literal, the same constant as the migration's '\x6e756c6c' but read the same whatever
// standard_conforming_strings a connection has (off, '\x6e' is a string escape).
const retentionLive = `(data <> E'\\x6e756c6c'::bytea OR (meta IS NOT NULL AND (tenant IS NULL OR length(meta) <> length(tenant) + 13)))`

// RetentionCandidates implements strata.RetentionStore: a walk of events_retention_idx in
// (recorded_at, tx, seq) order from the cursor to the cutoff. The index holds only events that
// retention has not removed, so a pass reads neither the events removed by earlier runs nor
// those recorded after the cutoff.
func (s *Store) RetentionCandidates(ctx context.Context, sel strata.RetentionSelect) (strata.RetentionPage, error) {
	const op = "retention candidates"
	if err := strata.ValidateRetentionSelect(op, sel); err != nil {
		return strata.RetentionPage{}, err
	}
	cur, after, err := strata.RetentionCursor(op, sel)
	if err != nil {
		return strata.RetentionPage{}, err
	}
	if s.closed.Load() {
		return strata.RetentionPage{}, strata.ClosedError(op)
	}
	args := []any{sel.RecordedBefore}
	arg := func(v any) string {
		args = append(args, v)
		return fmt.Sprintf("$%d", len(args))
	}
	var b strings.Builder
	b.WriteString(`SELECT ` + eventColumns + ` FROM {schema}.events e WHERE ` + retentionLive + ` AND recorded_at < $1::timestamptz`)
	if after {
		b.WriteString(` AND (recorded_at, tx, seq) > (` + arg(cur.RecordedAt) + `::timestamptz, ` + arg(int64(cur.Position.Commit)) + `::bigint, ` +
			arg(int64(cur.Position.Event)) + `::bigint)`)
	}
	if !sel.UpTo.IsZero() {
		b.WriteString(` AND (tx, seq) <= (` + arg(int64(sel.UpTo.Commit)) + `::bigint, ` + arg(int64(sel.UpTo.Event)) + `::bigint)`)
	}
	if !sel.AnyTenant {
		b.WriteString(` AND tenant = ` + arg([]byte(sel.Tenant)) + `::bytea`)
	}
	if len(sel.Types) > 0 {
		b.WriteString(` AND type = ANY(` + arg(storable(sel.Types)) + `::text[])`)
	}
	if len(sel.ExcludeTypes) > 0 {
		b.WriteString(` AND NOT type = ANY(` + arg(storable(sel.ExcludeTypes)) + `::text[])`)
	}
	if p := storablePrefix(sel.ExcludePrefix); p != "" {
		b.WriteString(` AND NOT starts_with(stream, ` + arg(p) + `::text)`)
	}
	b.WriteString(` AND removed_leaf_hash IS NULL
		AND NOT EXISTS (SELECT FROM {schema}.legal_holds h WHERE h.stream = e.stream)
		ORDER BY recorded_at, tx, seq LIMIT ` + arg(sel.Limit))
	var (
		evs  []strata.Event
		more bool
	)
	// The walk must follow events_retention_idx: a plan that sorts (on statistics that count
	// too few rows, as after a bulk load before ANALYZE) reads every candidate of the pass for
	// each page. enable_sort = off, for this transaction only, leaves the ordered index scans
	// (this index, or events_q_time for one tenant) as the only plans.
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SET LOCAL enable_sort = off`); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, s.sq(b.String()), args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		var (
			d    rowDecoder
			size int
		)
		for rows.Next() {
			raw := rows.RawValues()
			if len(evs) == 0 && !binaryColumns(rows.FieldDescriptions(), eventColumnCount) {
				return &strata.Error{Code: strata.Internal, Op: op, Msg: "unexpected column types or formats from PostgreSQL"}
			}
			var ev strata.Event
			if meta := d.decode(raw, &ev); meta != nil {
				if err := d.meta.Decode(&ev.Meta, meta); err != nil {
					return &strata.Error{Code: strata.Internal, Op: op, Msg: "stored metadata of event " + ev.Position.String() + " is not valid", Err: err}
				}
				size += len(meta)
			}
			evs = append(evs, ev)
			if size += len(ev.Data); size >= pageBytes {
				more = true
				return nil // rows.Close discards the rest
			}
		}
		more = len(evs) >= sel.Limit
		return rows.Err()
	})
	if err != nil {
		var se *strata.Error
		if errors.As(err, &se) {
			return strata.RetentionPage{}, err
		}
		return strata.RetentionPage{}, s.fail(op, err)
	}
	var last *strata.Event
	if len(evs) > 0 {
		last = &evs[len(evs)-1]
	}
	return strata.RetentionPageOf(evs, more, last), nil
}

func storable(ss []string) []string {
	out := make([]string, 0, len(ss))
	for _, t := range ss {
		if storableText(t) {
			out = append(out, t)
		}
	}
	return out
}

// tombstoneEvents is TombstoneEvents' one statement: $1 the event IDs and $2 their leaf
// hashes, $3 the runs, $4 the tombstone data, $5 the plain bytes of a tenant (strata.TombstoneTenantBytes)
// and $6 and $7 the metadata that events of other tenants keep, by tenant. It returns the
// number of events it tombstoned and the IDs of the events it left for want of their tenant's
// metadata in $7 (at most those of tenants not plain, which TombstoneEvents then passes).
//
// sel finds each event not removed yet once, through a LATERAL probe of events_id_key (LIMIT
// 1 keeps the planner from flattening it into a join: a hash join it preferred for tables of
// some 10^5 events scanned the whole table for every batch, which took half of the statement's
// time at 50k events and grows with the log), and leaves out events of a held stream: an event
// removed before costs neither a tenant lookup nor its stream's temporal snapshots. The update
// blanks each row and stores its tombstone in it, skipping the rows tombstoned meanwhile (a
// statement that waited for a row's lock checks the row as the other run left it). It joins
// sel to events, which tombstoneStatement runs with hash and merge joins off: the plan is a
// nested loop with sel outside, an index probe per event, rather than a hash join the
// planner's estimates for unnest and the anti-join could choose (EXPLAIN, generic and custom
// plans of 2,000 events).
var tombstoneEvents = `WITH sel AS MATERIALIZED (
	SELECT t.id, t.leaf, t.run, e.stream, e.tenant, ` + tombstoneMetaOf("e") + ` AS meta
	FROM unnest($1::uuid[], $2::bytea[], $3::uuid[]) AS t(id, leaf, run)
	CROSS JOIN LATERAL (SELECT e.stream, e.tenant FROM {schema}.events e WHERE e.id = t.id AND e.removed_leaf_hash IS NULL LIMIT 1) e
	WHERE NOT EXISTS (SELECT FROM {schema}.legal_holds h WHERE h.stream = e.stream)
), upd AS (
	UPDATE {schema}.events e SET data = $4::bytea, meta = sel.meta,
		removed_leaf_hash = sel.leaf, removed_run = sel.run, removed_at = now()
	FROM sel WHERE e.id = sel.id AND e.removed_leaf_hash IS NULL AND (sel.tenant IS NULL OR sel.meta IS NOT NULL)
	RETURNING 1
), snaps AS (
	-- The streams' temporal snapshots hold states folded from the removed payloads (a cache:
	-- dropping those of a stream whose events were all left costs a rebuild only). They are
	-- locked in key order, as the events in ID order, after them (snaps, which the main query
	-- does not read, runs once the main query is done): two statements at once never deadlock.
	DELETE FROM {schema}.temporal_snapshots s WHERE (s.stream, s.model, s.version) IN (
		SELECT l.stream, l.model, l.version FROM {schema}.temporal_snapshots l
		WHERE l.stream IN (SELECT stream FROM sel) ORDER BY l.stream, l.model, l.version FOR UPDATE)
)
SELECT (SELECT count(*) FROM upd), array(SELECT id FROM sel WHERE tenant IS NOT NULL AND meta IS NULL)`

// tombstoneMetaOf is the metadata a tombstoned event of the events row r keeps: NULL without a
// tenant; for a plain tenant (strata.TombstoneTenantBytes), {"tenant":"..."} made in SQL; else
// the metadata $7 holds for the tenant in $6, NULL if $6 does not hold it. A tenant is read
// through encode(tenant, 'escape'), which writes each plain byte as itself and every byte it
// escapes (NUL, a backslash, bytes from 0x80) with a backslash, which is not plain: rtrim by
// the plain bytes leaves nothing exactly of a plain tenant. The bytea constants are E'...'
// literals, read the same whatever standard_conforming_strings a connection has (a pool of
// WithPool may have it off, which made '\x7b22...' the bytes "{22...").
func tombstoneMetaOf(r string) string {
	return `CASE WHEN ` + r + `.tenant IS NULL THEN NULL
		WHEN rtrim(encode(` + r + `.tenant, 'escape'), $5::text) = '' THEN E'\\x7b2274656e616e74223a22'::bytea || ` + r + `.tenant || E'\\x227d'::bytea
		ELSE ($7::bytea[])[array_position($6::bytea[], ` + r + `.tenant)] END`
}

// tombstoneParts is how many statements TombstoneEvents runs at once, on as many pooled
// connections, for a batch of at least tombstonePartMin events a part. A statement runs on one
// server process: blanking the rows and inserting their index entries, on one core, is what
// bounds a retention run (the bare UPDATE of a batch takes 27 ms of the statement's 45 here).
// Two parts remove a batch 1.4× as fast on two cores with appends going on (strata bench
// retention: 30k → 43k events/s); four, 1.55×, but halve the appends' rate once more.
const (
	tombstoneParts   = 2
	tombstonePartMin = 500
)

// TombstoneEvents implements strata.RetentionStore: a batch of fewer than 2×tombstonePartMin
// events takes one statement (see tombstonePart for a second one) that blanks the rows and
// stores each tombstone in its row (migration 0012), writing each row once and locking only
// those rows (appends insert new rows and never wait for them); a larger one is cut in
// tombstoneParts parts, removed at once.
// The blanked row version leaves events_retention_idx and, holding no metadata but the tenant,
// the partial metadata search indexes: the update inserts into the other indexes only.
func (s *Store) TombstoneEvents(ctx context.Context, ts []strata.Tombstone) (int, error) {
	const op = "tombstone events"
	if err := strata.PrepareTombstones(op, ts); err != nil {
		return 0, err
	}
	if s.closed.Load() {
		return 0, strata.ClosedError(op)
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

// tombstoneBatch is the columns of tombstones for tombstoneEvents. [16]byte, not uuid.UUID:
// pgx would encode a uuid.UUID through its driver.Valuer, as text parsed back, which took a
// quarter of a retention run's Go CPU.
type tombstoneBatch struct {
	ids, runs [][16]byte
	hashes    [][]byte
}

func (b *tombstoneBatch) add(t strata.Tombstone) {
	b.ids, b.runs, b.hashes = append(b.ids, t.EventID), append(b.runs, t.Run), append(b.hashes, t.LeafHash)
}

// tombstonePart removes ts (one tombstone per event): the events of tenants whose metadata
// tombstoneEvents writes itself in one statement, those of other tenants (see strata.TombstoneTenantBytes) in
// a second one, once their tenants are read; each statement is its own transaction.
func (s *Store) tombstonePart(ctx context.Context, ts []strata.Tombstone) (int, error) {
	var b tombstoneBatch
	for _, t := range ts {
		b.add(t)
	}
	n, left, err := s.tombstoneStatement(ctx, b, [][]byte{}, [][]byte{})
	if err != nil || len(left) == 0 {
		return n, err
	}
	byID := make(map[[16]byte]strata.Tombstone, len(ts))
	for _, t := range ts {
		byID[t.EventID] = t
	}
	var rest tombstoneBatch
	for _, id := range left {
		rest.add(byID[id])
	}
	// Events are never re-tenanted: the tenants read here are those the statement finds.
	tenants, metas, err := s.batchTenants(ctx, rest.ids)
	if err != nil {
		return n, err
	}
	more, left, err := s.tombstoneStatement(ctx, rest, tenants, metas)
	if err == nil && len(left) > 0 {
		err = fmt.Errorf("%d events were left although their tenants' metadata was given", len(left))
	}
	return n + more, err
}

// tombstoneStatement runs tombstoneEvents on b, with the metadata of tenants not plain, in a
// transaction whose joins are nested loops (see tombstoneEvents).
func (s *Store) tombstoneStatement(ctx context.Context, b tombstoneBatch, tenants, metas [][]byte) (n int, left [][16]byte, err error) {
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT set_config('enable_hashjoin', 'off', true), set_config('enable_mergejoin', 'off', true)`); err != nil {
			return err
		}
		return tx.QueryRow(ctx, s.sq(tombstoneEvents), b.ids, b.hashes, b.runs, strata.TombstoneData, strata.TombstoneTenantBytes, tenants, metas).Scan(&n, &left)
	})
	if err != nil {
		return 0, nil, err
	}
	return n, left, nil
}

// batchTenants returns the distinct tenants of the events ids and the metadata a tombstoned
// event of each keeps.
func (s *Store) batchTenants(ctx context.Context, ids [][16]byte) (tenants, metas [][]byte, err error) {
	// One probe of events_id_key per ID, as in tombstoneEvents: id = ANY($1) made the planner
	// scan the table for tables of some 10^5 events.
	rows, _ := s.pool.Query(ctx, s.sq(`SELECT DISTINCT e.tenant FROM unnest($1::uuid[]) AS t(id)
	CROSS JOIN LATERAL (SELECT e.tenant FROM {schema}.events e WHERE e.id = t.id LIMIT 1) e
	WHERE e.tenant IS NOT NULL`), ids)
	tenants, err = pgx.CollectRows(rows, pgx.RowTo[[]byte])
	if err != nil {
		return nil, nil, err
	}
	for _, t := range tenants {
		m, _ := strata.TombstoneMeta(strata.Metadata{Tenant: string(t)}).MarshalJSON()
		metas = append(metas, m)
	}
	return tenants, metas, nil
}

// Tombstone implements strata.RetentionStore.
func (s *Store) Tombstone(ctx context.Context, id uuid.UUID) (strata.Tombstone, error) {
	const op = "tombstone"
	if s.closed.Load() {
		return strata.Tombstone{}, strata.ClosedError(op)
	}
	t := strata.Tombstone{EventID: id}
	err := s.pool.QueryRow(ctx, s.sq(`SELECT removed_leaf_hash, removed_run, removed_at FROM {schema}.events
		WHERE id = $1 AND removed_leaf_hash IS NOT NULL`), id).Scan(&t.LeafHash, &t.Run, &t.RemovedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return strata.Tombstone{}, strata.TombstoneNotFound(op, id)
	}
	if err != nil {
		return strata.Tombstone{}, s.fail(op, err)
	}
	t.RemovedAt = t.RemovedAt.UTC()
	return t, nil
}

// PlaceLegalHold implements strata.RetentionStore.
func (s *Store) PlaceLegalHold(ctx context.Context, h strata.LegalHold) error {
	const op = "place legal hold"
	if err := strata.ValidateLegalHold(op, h); err != nil {
		return err
	}
	if !storableText(h.Reason) || !storableText(h.HeldBy) {
		return strata.Errorf(strata.Invalid, op, "reason and holder must be UTF-8 without NUL")
	}
	return s.exec(ctx, op, s.sq(`INSERT INTO {schema}.legal_holds (stream, reason, held_by, held_at) VALUES ($1, $2, $3, now())
		ON CONFLICT (stream) DO UPDATE SET reason = excluded.reason, held_by = excluded.held_by`), h.Stream, h.Reason, h.HeldBy)
}

// ReleaseLegalHold implements strata.RetentionStore.
func (s *Store) ReleaseLegalHold(ctx context.Context, stream string) error {
	const op = "release legal hold"
	if err := strata.ValidateStreamName(op, stream); err != nil {
		return err
	}
	return s.exec(ctx, op, s.sq(`DELETE FROM {schema}.legal_holds WHERE stream = $1`), stream)
}

// LegalHolds implements strata.RetentionStore.
func (s *Store) LegalHolds(ctx context.Context) iter.Seq2[strata.LegalHold, error] {
	const op = "legal holds"
	return func(yield func(strata.LegalHold, error) bool) {
		if s.closed.Load() {
			yield(strata.LegalHold{}, strata.ClosedError(op))
			return
		}
		rows, _ := s.pool.Query(ctx, s.sq(`SELECT stream, reason, held_by, held_at FROM {schema}.legal_holds ORDER BY stream`))
		hs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (strata.LegalHold, error) {
			var h strata.LegalHold
			err := r.Scan(&h.Stream, &h.Reason, &h.HeldBy, &h.HeldAt)
			h.HeldAt = h.HeldAt.UTC()
			return h, err
		})
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
