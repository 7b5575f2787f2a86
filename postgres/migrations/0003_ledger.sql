-- strata schema, version 3: the tamper-evident log (strata.LedgerStore, package ledger). Runs
-- with search_path set to the store's schema. strata.Position's parts and leaf indexes are
-- unsigned 64-bit; bigint is signed, so each is stored as the bigint with the same bits.

-- The one-row head: how many leaves are sealed, and the position of the last sealed event.
CREATE TABLE ledger_head (
    id              integer PRIMARY KEY CHECK (id = 1),
    size            bigint NOT NULL,
    position_commit bigint NOT NULL,
    position_event  bigint NOT NULL
);
INSERT INTO ledger_head (id, size, position_commit, position_event) VALUES (1, 0, 0, 0);

-- Leaf index -> event. The leaf's hash is in the level-0 tile.
CREATE TABLE ledger_leaves (
    leaf_index      bigint PRIMARY KEY,
    event_id        uuid   NOT NULL,
    position_commit bigint NOT NULL,
    position_event  bigint NOT NULL,
    stream          text COLLATE "C" NOT NULL,
    version         bigint NOT NULL,
    CONSTRAINT ledger_leaves_event_key UNIQUE (event_id)
);

-- The tree's hashes as C2SP tlog-tiles: the widest version of each tile.
CREATE TABLE ledger_tiles (
    level      integer NOT NULL,
    tile_index bigint  NOT NULL,
    data       bytea   NOT NULL,
    PRIMARY KEY (level, tile_index)
);

-- Signed checkpoints, one per tree size.
CREATE TABLE ledger_checkpoints (
    size       bigint PRIMARY KEY,
    note       bytea       NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
