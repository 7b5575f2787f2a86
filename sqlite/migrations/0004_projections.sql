-- Projection state (strata.ProjectionStore): one row per partition of a projection version,
-- with its checkpoint, mode, failure record, outbox and lease; the active version of each
-- projection (blue-green); and the heartbeats of workers that share partitions. Positions are
-- stored as the int64 with the same bits, times as Unix microseconds (the caller's clock).
CREATE TABLE projections (
    name          TEXT    NOT NULL,
    version       INTEGER NOT NULL,
    part          INTEGER NOT NULL,
    parts         INTEGER NOT NULL,
    filter        BLOB    NOT NULL, -- JSON of strata.Filter
    pos_commit    INTEGER NOT NULL,
    pos_event     INTEGER NOT NULL,
    processed     INTEGER NOT NULL,
    rebuilding    INTEGER NOT NULL,
    target_commit INTEGER NOT NULL,
    target_event  INTEGER NOT NULL,
    paused        INTEGER NOT NULL,
    failure       BLOB,
    pending       BLOB,
    owner         TEXT    NOT NULL,
    epoch         INTEGER NOT NULL,
    lease_until   INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL,
    PRIMARY KEY (name, version, part)
);

CREATE TABLE projection_active (
    name    TEXT    NOT NULL PRIMARY KEY,
    version INTEGER NOT NULL
);

CREATE TABLE projection_workers (
    name       TEXT    NOT NULL,
    version    INTEGER NOT NULL,
    owner      TEXT    NOT NULL,
    expires_at INTEGER NOT NULL,
    PRIMARY KEY (name, version, owner)
);
