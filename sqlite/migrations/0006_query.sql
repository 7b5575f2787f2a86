-- Temporal and audit queries (strata.QueryStore, strata.TemporalSnapshotStore,
-- strata.RetentionStore; package query).

-- The search indexes are not created here: each costs every append of a tenant's event an
-- index insert, so a store that is searched creates them once with Store.CreateQueryIndexes
-- (strata query --create-indexes). See sqlite/query.go.

-- Snapshots by the times they hold for: many per stream and model. recorded_upto and
-- occurred_upto are running maxima over versions 1..version, so both grow with version.
CREATE TABLE temporal_snapshots (
    stream        TEXT    NOT NULL,
    model         TEXT    NOT NULL,
    version       INTEGER NOT NULL CHECK (version > 0),
    recorded_upto INTEGER NOT NULL, -- Unix microseconds, UTC
    occurred_upto INTEGER NOT NULL, -- Unix microseconds, UTC
    data          BLOB    NOT NULL,
    PRIMARY KEY (stream, model, version)
);

-- Retention's walk: the events retention may still have to remove, in recording-time order
-- (the rowid, position, ends every entry), so that a pass reads only events recorded before
-- its cutoff and none it removed before. A removed event (data 'null', metadata its tenant's
-- alone: '{}', or {"tenant":"..."} of length(tenant) + 13 bytes) leaves the index. An event
-- that holds nothing to remove is never indexed; one with an escaped tenant stays indexed
-- (the tombstone check skips it). retentionLive in query.go repeats the predicate, as the
-- planner needs.
CREATE INDEX events_retention ON events (recorded_at)
    WHERE data <> x'6e756c6c' OR length(CAST(meta AS BLOB)) <> CASE WHEN tenant = '' THEN 2 ELSE length(CAST(tenant AS BLOB)) + 13 END;

-- Events whose payload retention removed. The event row stays (its version, position and
-- times); this row keeps the leaf hash the ledger sealed, and which run removed it.
CREATE TABLE tombstones (
    event_id   BLOB    NOT NULL PRIMARY KEY CHECK (length(event_id) = 16),
    leaf_hash  BLOB    NOT NULL CHECK (length(leaf_hash) = 32),
    run        BLOB    NOT NULL CHECK (length(run) = 16),
    removed_at INTEGER NOT NULL -- Unix microseconds, UTC
) WITHOUT ROWID;

-- Streams under legal hold: retention never touches them.
CREATE TABLE legal_holds (
    stream  TEXT    NOT NULL PRIMARY KEY,
    reason  TEXT    NOT NULL,
    held_by TEXT    NOT NULL,
    held_at INTEGER NOT NULL -- Unix microseconds, UTC
);
