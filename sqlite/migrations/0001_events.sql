-- The event log, and the only state of the store.
--
-- position is the global log order. Writers are serialized, so it is also commit order.
-- AUTOINCREMENT keeps a position from ever being handed out twice, even after deletes.
--
-- A stream's version is max(version) of its events (an index probe on UNIQUE (stream, version)),
-- so an append writes its events and nothing else. It follows that a stream's last event must
-- never be deleted: its version would be handed out again.
CREATE TABLE events (
    position    INTEGER PRIMARY KEY AUTOINCREMENT,
    id          BLOB    NOT NULL UNIQUE CHECK (length(id) = 16),
    stream      TEXT    NOT NULL, -- BINARY collation: byte order of the UTF-8 names
    version     INTEGER NOT NULL CHECK (version > 0),
    type        TEXT    NOT NULL,
    schema      INTEGER NOT NULL,
    data        BLOB    NOT NULL, -- the payload exactly as appended, byte for byte
    meta        TEXT    NOT NULL, -- canonical strata.Metadata JSON
    tenant      TEXT    NOT NULL, -- Meta.Tenant, '' for none; a column so that filters use an index
    recorded_at INTEGER NOT NULL, -- Unix microseconds, UTC
    occurred_at INTEGER NOT NULL, -- Unix microseconds, UTC
    UNIQUE (stream, version)
);

-- Tenant-filtered reads of the global log, in log order.
CREATE INDEX events_tenant ON events (tenant, position);
