package postgres

import "strings"

// queries holds the SQL of a store, with its schema filled in.
type queries struct {
	// appendOne appends to one stream in one statement: it takes the transaction's ID, checks
	// the restore guard, reads the stream's version and, if it lies between $2 and $3, inserts
	// the events after it. appendOne1 does the same for one event with scalar parameters,
	// sparing unnest a fifth of the cost.
	appendOne, appendOne1 string
	// lockStreams and appendMulti are the two statements of AppendMulti.
	lockStreams, appendMulti string
	// appendGroup is appendMulti for a group commit: each stream is checked on its own, and
	// only the streams that pass are written (see appendStreams).
	appendGroup string

	// raise lifts the offset; raiseNeeded says whether it would, and lockEvents takes the
	// events table in SHARE mode first (see Store.raiseOffset).
	raise, raiseNeeded, lockEvents string
	writers, notify, lookup        string
	// storedIDs returns which of the IDs $1 the log holds.
	storedIDs                 string
	readForward, readBackward string
	streamInfo                string
	// readAll is a prefix that readAll completes with conditions; listStreams a format with
	// one %s for the conditions of each probe of the stream-name index.
	readAll, listStreams string
}

// The columns a read returns, in the order fetch scans them.
const eventColumns = `seq, tx, version, recorded_at, occurred_at, id, schema, stream, type, meta, data`

// ownTx is this transaction's ID plus the offset, in a statement that reads the one row of
// clock as c: reading it as a FROM item rather than as a scalar subquery spares an append a
// subplan. Calling pg_current_xact_id() assigns the ID if the transaction has none yet, which
// happens after the statement's snapshot was taken: the restore guard and the order of a
// stream's versions rely on that.
const ownTx = `pg_current_xact_id()::text::bigint + c.tx_offset`

// offset reads the clock's offset. It is a scalar subquery rather than a join so that the
// planner counts on one row, whatever the statistics say.
const offset = `(SELECT tx_offset FROM {schema}.clock)`

// topTx is the largest tx the statement's snapshot sees: one backward probe of events_pkey.
const topTx = `(SELECT e.tx FROM {schema}.events e ORDER BY e.tx DESC, e.seq DESC LIMIT 1)`

// versionOf is the version of the stream named by the SQL expression %s as the statement's
// snapshot sees it, 0 for none: one backward probe of events_stream_version_key.
const versionOf = `coalesce((SELECT e.version FROM {schema}.events e WHERE e.stream = %s ORDER BY e.version DESC LIMIT 1), 0)`

// An append reads the stream's version and inserts the next versions in one statement, whose
// snapshot was taken before the statement assigned the transaction its ID. The ID is therefore
// above the ID of every append whose events the snapshot shows, and a stream's versions are in
// global order. Two appends that read the same version both insert its successor: the unique
// index (stream, version) makes the second wait for the first and fail when it commits, and
// the loser retries with a new statement, a new snapshot and a new ID (see Store.append).
const appendOneHead = `WITH h AS MATERIALIZED (
	SELECT ` + ownTx + ` AS own, ` + topTx + ` AS top, {version1} AS cur FROM {schema}.clock c
), ok AS (
	SELECT h.own, h.cur FROM h WHERE (h.top IS NULL OR h.own > h.top) AND h.cur BETWEEN $2::bigint AND $3::bigint
), ins AS (
	INSERT INTO {schema}.events (tx, version, recorded_at, occurred_at, id, schema, stream, type, tenant, meta, data)`

const appendOneTail = `
	SELECT ok.own, ok.cur + u.ord, now(), coalesce(u.occurred_at, now()),
		u.id, u.schema, $1::text, u.type, u.tenant, u.meta, u.data
	FROM ok, unnest($4::uuid[], $5::text[], $6::int[], $7::bytea[], $8::bytea[], $9::bytea[], $10::timestamptz[])
		WITH ORDINALITY AS u(id, type, schema, data, meta, tenant, occurred_at, ord)
	ORDER BY u.ord
)
SELECT h.own, h.top, h.cur FROM h`

const appendOneTail1 = `
	SELECT ok.own, ok.cur + 1, now(), coalesce($10::timestamptz, now()),
		$4::uuid, $6::int, $1::text, $5::text, $9::bytea, $8::bytea, $7::bytea
	FROM ok
)
SELECT h.own, h.top, h.cur FROM h`

// lockStreams takes a transaction-scoped advisory lock per stream of an AppendMulti ($2, the
// names, under the key space $1), in the order of the keys. Concurrent multi-appends thus
// insert into shared streams one after the other instead of waiting on each other's index
// entries in opposite orders, which would deadlock. Single-stream appends take no lock: they
// wait on one stream's index entries only, so they close no cycle.
const lockStreams = `SELECT count(pg_advisory_xact_lock(k)) FROM (
	SELECT DISTINCT hashtextextended($1::text || n, 0) AS k FROM unnest($2::text[]) AS n ORDER BY k
) l`

// appendStreams is appendOne for several streams: $1 the names, $2 and $3 the bounds of each
// stream's version; per event, $4 the index of its stream (from 1) and $5 its place in that
// stream's batch (from 1). It inserts the events of the streams that pass {check} and returns
// the streams' versions before the append, in order.
const appendStreams = `WITH h AS MATERIALIZED (
	SELECT ` + ownTx + ` AS own, ` + topTx + ` AS top FROM {schema}.clock c
), c AS MATERIALIZED (
	SELECT a.i, a.name, {versionA} AS cur, a.lo, a.hi
	FROM unnest($1::text[], $2::bigint[], $3::bigint[]) WITH ORDINALITY AS a(name, lo, hi, i)
), ok AS (
	SELECT c.i, c.name, c.cur, h.own FROM h CROSS JOIN c
	WHERE (h.top IS NULL OR h.own > h.top) AND {check}
), ins AS (
	INSERT INTO {schema}.events (tx, version, recorded_at, occurred_at, id, schema, stream, type, tenant, meta, data)
	SELECT ok.own, ok.cur + u.off, now(), coalesce(u.occurred_at, now()),
		u.id, u.schema, ok.name, u.type, u.tenant, u.meta, u.data
	FROM unnest($4::bigint[], $5::bigint[], $6::uuid[], $7::text[], $8::int[], $9::bytea[], $10::bytea[], $11::bytea[], $12::timestamptz[])
		WITH ORDINALITY AS u(si, off, id, type, schema, data, meta, tenant, occurred_at, ord)
	JOIN ok ON ok.i = u.si
	ORDER BY u.ord
)
SELECT h.own, h.top, ARRAY(SELECT c.cur FROM c ORDER BY c.i) FROM h`

// The checks of appendStreams. AppendMulti writes all streams or none: every stream's
// version must lie between its bounds. A group commit (group.go) checks each stream on its
// own: the events of each stream that passes are inserted, the others' are not; its streams
// are distinct, and the caller tells from the versions returned which were written.
const (
	checkAll  = `NOT EXISTS (SELECT 1 FROM c WHERE c.cur NOT BETWEEN c.lo AND c.hi)`
	checkEach = `c.cur BETWEEN c.lo AND c.hi`
)

func buildQueries(schema string) queries {
	version := strings.ReplaceAll(versionOf, "{schema}", schema)
	r := strings.NewReplacer("{schema}", schema,
		"{version1}", strings.ReplaceAll(version, "%s", "$1::text"),
		"{versionA}", strings.ReplaceAll(version, "%s", "a.name"))
	return queries{
		appendOne:   r.Replace(appendOneHead + appendOneTail),
		appendOne1:  r.Replace(appendOneHead + appendOneTail1),
		lockStreams: lockStreams,
		appendMulti: r.Replace(strings.ReplaceAll(appendStreams, "{check}", checkAll)),
		appendGroup: r.Replace(strings.ReplaceAll(appendStreams, "{check}", checkEach)),

		// raise lifts the offset so that this and every later transaction's tx exceeds every
		// stored tx; it changes nothing when that already holds.
		raise: r.Replace(`UPDATE {schema}.clock AS c SET tx_offset = c.tx_offset + (h.top - (pg_current_xact_id()::text::bigint + c.tx_offset) + 1)
	FROM (SELECT ` + topTx + ` AS top) h
	WHERE h.top IS NOT NULL AND pg_current_xact_id()::text::bigint + c.tx_offset <= h.top`),
		raiseNeeded: r.Replace(`SELECT EXISTS (SELECT FROM {schema}.clock c
	WHERE ` + topTx + ` >= pg_current_xact_id()::text::bigint + c.tx_offset)`),
		lockEvents: r.Replace(`LOCK TABLE {schema}.events IN SHARE MODE`),
		// notify commits asynchronously: a NOTIFY transaction has an ID and a commit record,
		// and waiting for its WAL flush would only delay the next append's.
		notify: `SELECT set_config('synchronous_commit', 'off', true), pg_notify($1, '')`,
		lookup: r.Replace(`SELECT ` + eventColumns + ` FROM {schema}.events WHERE id = ANY($1::uuid[])`),
		// One probe of events_id_key per ID (see batchTenants).
		storedIDs: r.Replace(`SELECT t.id FROM unnest($1::uuid[]) AS t(id)
	WHERE EXISTS (SELECT 1 FROM {schema}.events e WHERE e.id = t.id)`),

		readForward: r.Replace(`SELECT ` + eventColumns + ` FROM {schema}.events
	WHERE stream = $1 AND version >= $2 ORDER BY version LIMIT $3`),
		readBackward: r.Replace(`SELECT ` + eventColumns + ` FROM {schema}.events
	WHERE stream = $1 AND version <= $2 ORDER BY version DESC LIMIT $3`),
		// streamInfo reads a stream's first and last events: two probes of
		// events_stream_version_key, no rows for a stream without events.
		streamInfo: r.Replace(`SELECT l.version, f.recorded_at, l.recorded_at
	FROM (SELECT e.version, e.recorded_at FROM {schema}.events e WHERE e.stream = $1 ORDER BY e.version DESC LIMIT 1) l,
		(SELECT e.recorded_at FROM {schema}.events e WHERE e.stream = $1 ORDER BY e.version LIMIT 1) f`),

		// readAll reads a page of the global log below the horizon. Its first branch returns
		// one row, with NULL event columns, that carries the horizon columns whether the page
		// is empty or not: horizon is xmin + offset, or $4 when that is higher (see
		// Store.writersHorizon); ceiling is xmax + offset; top is the largest tx the snapshot
		// sees. The statement has one snapshot, so both branches see the same horizon. The
		// page's rows carry NULL horizon columns: a join that repeated the horizon on every
		// row cost the server a third more per page than the plain SELECT of the baseline.
		readAll: r.Replace(`WITH hz AS MATERIALIZED (
	SELECT greatest(pg_snapshot_xmin(s)::text::bigint + ` + offset + `, $4::bigint) AS horizon,
		pg_snapshot_xmax(s)::text::bigint + ` + offset + ` AS ceiling, ` + topTx + ` AS top
	FROM pg_current_snapshot() s
)
SELECT NULL::bigint, NULL::bigint, NULL::bigint, NULL::timestamptz, NULL::timestamptz, NULL::uuid, NULL::integer,
	NULL::text, NULL::text, NULL::bytea, NULL::bytea, horizon, ceiling, top FROM hz
UNION ALL (
	SELECT ` + eventColumns + `, NULL, NULL, NULL FROM {schema}.events
	WHERE (tx, seq) > ($1, $2) AND tx < (SELECT horizon FROM hz){filter}
	ORDER BY tx, seq LIMIT $3
)`),
		// writers returns the snapshot's xmax, the offset, and the 32-bit IDs of transactions
		// that hold a lock on the events table ($1), which every append takes before it has an ID.
		writers: r.Replace(`SELECT pg_snapshot_xmax(pg_current_snapshot())::text::bigint, ` + offset + `, ARRAY(
	SELECT x FROM (
		SELECT max(l.transactionid::text::bigint) FILTER (WHERE l.locktype = 'transactionid' AND l.mode = 'ExclusiveLock' AND l.granted) AS x
		FROM pg_locks l
		GROUP BY l.virtualtransaction
		HAVING bool_or(l.locktype = 'relation' AND l.relation = $1::oid)
	) w WHERE x IS NOT NULL)`),
		// listStreams walks the distinct names of events_stream_version_key with one index
		// probe per stream (a loose index scan: $1 the name to start after, $2 the most names
		// to return), then reads each stream's first and last events.
		listStreams: r.Replace(`WITH RECURSIVE n AS (
	(SELECT e.stream AS name, 1 AS i FROM {schema}.events e WHERE e.stream > $1::text%[1]s ORDER BY e.stream LIMIT 1)
	UNION ALL
	SELECT (SELECT e.stream FROM {schema}.events e WHERE e.stream > n.name%[1]s ORDER BY e.stream LIMIT 1), n.i + 1
	FROM n WHERE n.name IS NOT NULL AND n.i < $2
)
SELECT n.name, l.version, f.recorded_at, l.recorded_at FROM n
	CROSS JOIN LATERAL (SELECT e.version, e.recorded_at FROM {schema}.events e WHERE e.stream = n.name ORDER BY e.version DESC LIMIT 1) l
	CROSS JOIN LATERAL (SELECT e.recorded_at FROM {schema}.events e WHERE e.stream = n.name ORDER BY e.version LIMIT 1) f
WHERE n.name IS NOT NULL
ORDER BY n.name`),
	}
}
