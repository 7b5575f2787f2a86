-- The optional capabilities of the store (strata.SnapshotStore, strata.TimerStore,
-- strata.CheckpointStore). Names use the BINARY collation: byte order of their UTF-8, so that
-- names differing only in case, accents or trailing spaces stay distinct.

-- At most one snapshot per stream. Rows may be large (up to 8 MiB of data), so the table keeps
-- its rowid: WITHOUT ROWID suits small rows only.
CREATE TABLE snapshots (
    stream   TEXT    NOT NULL PRIMARY KEY,
    version  INTEGER NOT NULL CHECK (version > 0),
    schema   INTEGER NOT NULL CHECK (schema >= 0),
    data     BLOB    NOT NULL,
    taken_at INTEGER NOT NULL -- Unix microseconds, UTC
);

-- Durable timers; workers ask for one owner's due timers, earliest first.
CREATE TABLE timers (
    id     BLOB    NOT NULL PRIMARY KEY CHECK (length(id) = 16),
    owner  TEXT    NOT NULL,
    "key"  TEXT    NOT NULL,
    name   TEXT    NOT NULL,
    due_at INTEGER NOT NULL, -- Unix microseconds, UTC
    data   BLOB    NOT NULL
);

CREATE INDEX timers_due ON timers (owner, due_at, id);

-- Named cursors into the global log. strata.Position's parts are unsigned 64-bit; INTEGER is
-- signed, so each part is stored as the int64 with the same bits (only equality is ever asked).
CREATE TABLE checkpoints (
    name            TEXT    NOT NULL PRIMARY KEY,
    position_commit INTEGER NOT NULL,
    position_event  INTEGER NOT NULL
);
