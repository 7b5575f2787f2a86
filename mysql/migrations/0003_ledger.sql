-- strata schema, version 3: the tamper-evident log (strata.LedgerStore, package ledger).
--
-- As in the earlier versions every statement is idempotent and indexes are declared inside
-- CREATE TABLE. Leaf indexes and positions are unsigned 64-bit.

-- The one-row head: how many leaves are sealed, and the position of the last sealed event.
CREATE TABLE IF NOT EXISTS ledger_head (
    id              INT             NOT NULL,
    size            BIGINT UNSIGNED NOT NULL,
    position_commit BIGINT UNSIGNED NOT NULL,
    position_event  BIGINT UNSIGNED NOT NULL,
    PRIMARY KEY (id)
) ENGINE = InnoDB;
INSERT IGNORE INTO ledger_head (id, size, position_commit, position_event) VALUES (1, 0, 0, 0);

-- Leaf index -> event. The leaf's hash is in the level-0 tile.
CREATE TABLE IF NOT EXISTS ledger_leaves (
    leaf_index      BIGINT UNSIGNED NOT NULL,
    event_id        BINARY(16)      NOT NULL,
    position_commit BIGINT UNSIGNED NOT NULL,
    position_event  BIGINT UNSIGNED NOT NULL,
    stream          VARBINARY(255)  NOT NULL,
    version         BIGINT          NOT NULL,
    PRIMARY KEY (leaf_index),
    UNIQUE KEY ledger_leaves_event (event_id)
) ENGINE = InnoDB;

-- The tree's hashes as C2SP tlog-tiles: the widest version of each tile (at most 8 KiB).
CREATE TABLE IF NOT EXISTS ledger_tiles (
    level      INT             NOT NULL,
    tile_index BIGINT UNSIGNED NOT NULL,
    data       BLOB            NOT NULL,
    PRIMARY KEY (level, tile_index)
) ENGINE = InnoDB;

-- Signed checkpoints, one per tree size.
CREATE TABLE IF NOT EXISTS ledger_checkpoints (
    size       BIGINT UNSIGNED NOT NULL,
    note       BLOB            NOT NULL,
    created_at DATETIME(6)     NOT NULL,
    PRIMARY KEY (size)
) ENGINE = InnoDB;
