-- The tamper-evident log (strata.LedgerStore, package ledger).

-- The one-row head: how many leaves are sealed, and the position of the last sealed event.
-- Positions are stored as the int64 with the same bits as each unsigned part.
CREATE TABLE ledger_head (
    id              INTEGER PRIMARY KEY CHECK (id = 1),
    size            INTEGER NOT NULL,
    position_commit INTEGER NOT NULL,
    position_event  INTEGER NOT NULL
);
INSERT INTO ledger_head (id, size, position_commit, position_event) VALUES (1, 0, 0, 0);

-- Leaf index -> event. The leaf's hash is in the level-0 tile.
CREATE TABLE ledger_leaves (
    leaf_index      INTEGER PRIMARY KEY,
    event_id        BLOB    NOT NULL UNIQUE CHECK (length(event_id) = 16),
    position_commit INTEGER NOT NULL,
    position_event  INTEGER NOT NULL,
    stream          TEXT    NOT NULL,
    version         INTEGER NOT NULL
);

-- The tree's hashes as C2SP tlog-tiles: the widest version of each tile.
CREATE TABLE ledger_tiles (
    level      INTEGER NOT NULL,
    tile_index INTEGER NOT NULL,
    data       BLOB    NOT NULL,
    PRIMARY KEY (level, tile_index)
) WITHOUT ROWID;

-- Signed checkpoints, one per tree size.
CREATE TABLE ledger_checkpoints (
    size       INTEGER PRIMARY KEY,
    note       BLOB    NOT NULL,
    created_at INTEGER NOT NULL -- Unix microseconds, UTC
);
