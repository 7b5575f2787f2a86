-- Temporal and audit queries (strata.QueryStore, strata.TemporalSnapshotStore,
-- strata.RetentionStore; package query). Runs with search_path set to the store's schema.
--
-- The search indexes are not created here: each costs every append of a tenant's event an
-- index insert (and the metadata ones a parse of the metadata), so a store that is searched
-- creates them once with Store.CreateQueryIndexes (strata query --create-indexes), which
-- builds them CONCURRENTLY without blocking appends. See docs/AUDITOR.md for their plans.

-- meta_text returns the value of a well-known key of the canonical metadata JSON, for the
-- expression indexes of the search. jsonb cannot hold U+0000, so \u0000 escapes read as
-- U+FFFD; the store checks every row it returns against the exact filter in Go. It is
-- IMMUTABLE (convert_from is only STABLE because of client encodings; 'UTF8' is fixed here).
CREATE FUNCTION meta_text(meta bytea, key text) RETURNS text
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    AS $$ SELECT replace(convert_from(meta, 'UTF8'), '\u0000', '\ufffd')::jsonb ->> key $$;

-- Snapshots by the times they hold for: many per stream and model. recorded_upto and
-- occurred_upto are running maxima over versions 1..version, so both grow with version.
CREATE TABLE temporal_snapshots (
    stream        text COLLATE "C" NOT NULL,
    model         text COLLATE "C" NOT NULL,
    version       bigint      NOT NULL CHECK (version > 0),
    recorded_upto timestamptz NOT NULL,
    occurred_upto timestamptz NOT NULL,
    data          bytea       NOT NULL,
    PRIMARY KEY (stream, model, version)
);

-- Retention's walk: the events retention may still have to remove, in recording-time order,
-- so that a pass reads only events recorded before its cutoff and none it removed before. A
-- removed event's row (data 'null', metadata its tenant's alone, canonical JSON
-- {"tenant":"..."} of length(tenant) + 13 bytes) leaves the index: retention's update does not
-- insert into it, and the next pass reads only what is left. An event whose payload is 'null'
-- and whose metadata is its tenant alone holds nothing to remove and is never indexed; one
-- with an escaped tenant stays indexed (the tombstone check skips it). retentionLive in
-- query.go repeats the predicate, as the planner needs.
CREATE INDEX events_retention_idx ON events (recorded_at, tx, seq)
    WHERE data <> '\x6e756c6c'::bytea OR (meta IS NOT NULL AND (tenant IS NULL OR length(meta) <> length(tenant) + 13));

-- Events whose payload retention removed. The event row stays (its version, position and
-- times); this row keeps the leaf hash the ledger sealed, and which run removed it.
CREATE TABLE tombstones (
    event_id   uuid        PRIMARY KEY,
    leaf_hash  bytea       NOT NULL CHECK (length(leaf_hash) = 32),
    run        uuid        NOT NULL,
    removed_at timestamptz NOT NULL
);

-- Streams under legal hold: retention never touches them.
CREATE TABLE legal_holds (
    stream  text COLLATE "C" PRIMARY KEY,
    reason  text        NOT NULL,
    held_by text        NOT NULL,
    held_at timestamptz NOT NULL
);
