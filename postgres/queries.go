package postgres

import "strings"

// queries holds the SQL of a store, with its schema filled in.
type queries struct {
	// appendUpsert and appendUpdate append to one stream in one statement: they take the
	// transaction's ID, check the restore guard, lock and bump the stream's row if its version
	// lies between $3 and $4, and insert the events. Upsert creates a missing stream (Any,
	// NoStream); update requires it (StreamExists, Exact). The variants ending in 1 do the
	// same for one event with scalar parameters, sparing unnest a fifth of the cost.
	appendUpsert, appendUpdate, appendUpsert1, appendUpdate1 string
	// begin, streamUpsert, streamUpdate, insert and lastTx are the steps of AppendMulti.
	begin, streamUpsert, streamUpdate, insert, lastTx string

	raise, writers, notify, lookup, version string
	readForward, readBackward               string
	streamInfo                              string
	// readAll and listStreams are prefixes that the readers complete with conditions.
	readAll, listStreams string
}

// The columns a read returns, in the order fetch scans them.
const eventColumns = `seq, tx, version, recorded_at, occurred_at, id, schema, stream, type, meta, data`

// ownTx is this transaction's ID plus the clock's offset. Calling pg_current_xact_id()
// assigns the ID if the transaction has none yet, which happens after the statement's
// snapshot was taken: the restore guard relies on that.
const ownTx = `pg_current_xact_id()::text::bigint + ` + offset

// offset reads the clock's offset. It is a scalar subquery rather than a join so that the
// planner counts on one row, whatever the statistics say.
const offset = `(SELECT tx_offset FROM {schema}.clock)`

// topTx is the largest tx the statement's snapshot sees: one backward probe of events_pkey.
const topTx = `(SELECT e.tx FROM {schema}.events e ORDER BY e.tx DESC, e.seq DESC LIMIT 1)`

// An append's tx is greatest(own tx, the stream's last_tx), read from the stream's row under
// its lock, and stored back as last_tx. PostgreSQL assigns a transaction its ID before it waits
// for a row lock, so an append that queued behind another on the same stream may hold the lower
// ID; inheriting last_tx keeps a stream's versions in global order all the same (seq breaks the
// tie). A tx is never below the writer's own, so the horizon rules hold.
const appendHead = `WITH h AS MATERIALIZED (
	SELECT ` + ownTx + ` AS own, ` + topTx + ` AS top
), ok AS (
	SELECT h.own FROM h WHERE h.top IS NULL OR h.own > h.top
), s AS (`

const appendTail = `
), ins AS (
	INSERT INTO {schema}.events (tx, version, recorded_at, occurred_at, id, schema, stream, type, tenant, meta, data)
	SELECT s.last_tx, s.version - $2::bigint + u.ord, now(), coalesce(u.occurred_at, now()),
		u.id, u.schema, $1::text, u.type, u.tenant, u.meta, u.data
	FROM s, unnest($5::uuid[], $6::text[], $7::int[], $8::bytea[], $9::bytea[], $10::bytea[], $11::timestamptz[])
		WITH ORDINALITY AS u(id, type, schema, data, meta, tenant, occurred_at, ord)
	ORDER BY u.ord
)
SELECT h.own, h.top, (SELECT s.version FROM s) FROM h`

const appendTail1 = `
), ins AS (
	INSERT INTO {schema}.events (tx, version, recorded_at, occurred_at, id, schema, stream, type, tenant, meta, data)
	SELECT s.last_tx, s.version, now(), coalesce($11::timestamptz, now()),
		$5::uuid, $7::int, $1::text, $6::text, $10::bytea, $9::bytea, $8::bytea
	FROM s
)
SELECT h.own, h.top, (SELECT s.version FROM s) FROM h`

// The stream steps take $1 name, $2 number of events, and $3 and $4, the allowed range of the
// current version. In AppendMulti, where they are statements of their own, they return the
// new last_tx, and the append's tx, the greatest of them, is stored back by lastTx.
const streamUpsert = `INSERT INTO {schema}.streams AS t (name, version, last_tx, first_recorded_at, last_recorded_at)
	SELECT $1::text, $2::bigint, {own}, now(), now()`

const streamUpsertTail = `
	ON CONFLICT (name) DO UPDATE SET version = t.version + $2::bigint, last_tx = greatest(t.last_tx, excluded.last_tx), last_recorded_at = now()
		WHERE t.version BETWEEN $3::bigint AND $4::bigint
	RETURNING t.version, t.last_tx`

const streamUpdate = `UPDATE {schema}.streams AS t SET version = t.version + $2::bigint, last_tx = greatest(t.last_tx, {own}), last_recorded_at = now()`

const streamUpdateTail = ` t.name = $1::text AND t.version BETWEEN $3::bigint AND $4::bigint
	RETURNING t.version, t.last_tx`

func buildQueries(schema string) queries {
	r := strings.NewReplacer("{schema}", schema)
	one := strings.NewReplacer("{own}", "ok.own")
	multi := strings.NewReplacer("{own}", ownTx)
	upsert := one.Replace(streamUpsert + ` FROM ok` + streamUpsertTail)
	update := one.Replace(streamUpdate + ` FROM ok WHERE` + streamUpdateTail)
	return queries{
		appendUpsert:  r.Replace(appendHead + upsert + appendTail),
		appendUpdate:  r.Replace(appendHead + update + appendTail),
		appendUpsert1: r.Replace(appendHead + upsert + appendTail1),
		appendUpdate1: r.Replace(appendHead + update + appendTail1),

		begin:        r.Replace(`SELECT ` + ownTx + `, ` + topTx),
		streamUpsert: r.Replace(multi.Replace(streamUpsert + streamUpsertTail)),
		streamUpdate: r.Replace(multi.Replace(streamUpdate + ` WHERE` + streamUpdateTail)),
		insert: r.Replace(`INSERT INTO {schema}.events (tx, version, recorded_at, occurred_at, id, schema, stream, type, tenant, meta, data)
	SELECT $1::bigint, u.version, now(), coalesce(u.occurred_at, now()),
		u.id, u.schema, u.stream, u.type, u.tenant, u.meta, u.data
	FROM unnest($2::text[], $3::bigint[], $4::uuid[], $5::text[], $6::int[], $7::bytea[], $8::bytea[], $9::bytea[], $10::timestamptz[])
		WITH ORDINALITY AS u(stream, version, id, type, schema, data, meta, tenant, occurred_at, ord)
	ORDER BY u.ord`),
		lastTx: r.Replace(`UPDATE {schema}.streams SET last_tx = $1 WHERE name = ANY($2::text[])`),

		// raise lifts the offset so that this and every later transaction's tx exceeds every
		// stored tx; it changes nothing when that already holds.
		raise: r.Replace(`UPDATE {schema}.clock AS c SET tx_offset = c.tx_offset + (h.top - (pg_current_xact_id()::text::bigint + c.tx_offset) + 1)
	FROM (SELECT ` + topTx + ` AS top) h
	WHERE h.top IS NOT NULL AND pg_current_xact_id()::text::bigint + c.tx_offset <= h.top`),
		// notify commits asynchronously: a NOTIFY transaction has an ID and a commit record,
		// and waiting for its WAL flush would only delay the next append's.
		notify:  `SELECT set_config('synchronous_commit', 'off', true), pg_notify($1, '')`,
		lookup:  r.Replace(`SELECT ` + eventColumns + ` FROM {schema}.events WHERE id = ANY($1::uuid[])`),
		version: r.Replace(`SELECT version FROM {schema}.streams WHERE name = $1`),

		readForward: r.Replace(`SELECT ` + eventColumns + ` FROM {schema}.events
	WHERE stream = $1 AND version >= $2 ORDER BY version LIMIT $3`),
		readBackward: r.Replace(`SELECT ` + eventColumns + ` FROM {schema}.events
	WHERE stream = $1 AND version <= $2 ORDER BY version DESC LIMIT $3`),
		streamInfo: r.Replace(`SELECT version, first_recorded_at, last_recorded_at FROM {schema}.streams WHERE name = $1`),

		// readAll reads a page of the global log below the horizon. The lateral join returns one
		// row with NULL event columns when the page is empty, so that the horizon columns always
		// arrive; it is a nested loop over one outer row, so rows keep the ORDER BY of the page.
		// horizon is xmin + offset, or $4 when that is higher (see Store.writersHorizon);
		// ceiling is xmax + offset; top is the largest tx the snapshot sees.
		readAll: r.Replace(`SELECT p.*, hz.horizon, hz.ceiling, hz.top FROM (
	SELECT greatest(pg_snapshot_xmin(s)::text::bigint + ` + offset + `, $4::bigint) AS horizon,
		pg_snapshot_xmax(s)::text::bigint + ` + offset + ` AS ceiling, ` + topTx + ` AS top
	FROM pg_current_snapshot() s
) hz LEFT JOIN LATERAL (
	SELECT ` + eventColumns + ` FROM {schema}.events
	WHERE (tx, seq) > ($1, $2) AND tx < hz.horizon{filter}
	ORDER BY tx, seq LIMIT $3
) p ON true`),
		// writers returns the snapshot's xmax, the offset, and the 32-bit IDs of transactions
		// that hold a lock on the events table ($1), which every append takes before it has an ID.
		writers: r.Replace(`SELECT pg_snapshot_xmax(pg_current_snapshot())::text::bigint, ` + offset + `, ARRAY(
	SELECT x FROM (
		SELECT max(l.transactionid::text::bigint) FILTER (WHERE l.locktype = 'transactionid' AND l.mode = 'ExclusiveLock' AND l.granted) AS x
		FROM pg_locks l
		GROUP BY l.virtualtransaction
		HAVING bool_or(l.locktype = 'relation' AND l.relation = $1::oid)
	) w WHERE x IS NOT NULL)`),
		listStreams: r.Replace(`SELECT name, version, first_recorded_at, last_recorded_at FROM {schema}.streams
	WHERE name > $1`),
	}
}
