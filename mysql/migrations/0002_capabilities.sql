-- strata schema, version 2: the optional capabilities (strata.SnapshotStore, strata.TimerStore,
-- strata.CheckpointStore).
--
-- As in version 1, names are VARBINARY so that they compare byte by byte, every statement is
-- idempotent (a migration that stopped half way is run again), and indexes are declared inside
-- CREATE TABLE (MySQL 8 has no CREATE INDEX IF NOT EXISTS). "schema" and "key" are reserved
-- words: the schema column is schema_version, as in events, and key is always quoted.

-- At most one snapshot per stream.
CREATE TABLE IF NOT EXISTS snapshots (
    stream         VARBINARY(255) NOT NULL,
    version        BIGINT         NOT NULL,
    schema_version BIGINT         NOT NULL,
    data           LONGBLOB       NOT NULL,
    taken_at       DATETIME(6)    NOT NULL,
    PRIMARY KEY (stream)
) ENGINE = InnoDB ROW_FORMAT = DYNAMIC;

-- Durable timers; workers ask for one owner's due timers, earliest first.
CREATE TABLE IF NOT EXISTS timers (
    id     BINARY(16)     NOT NULL,
    owner  VARBINARY(255) NOT NULL,
    `key`  VARBINARY(255) NOT NULL,
    name   VARBINARY(255) NOT NULL,
    due_at DATETIME(6)    NOT NULL,
    data   LONGBLOB       NOT NULL,
    PRIMARY KEY (id),
    KEY timers_due (owner, due_at, id)
) ENGINE = InnoDB ROW_FORMAT = DYNAMIC;

-- Named cursors into the global log: the two unsigned 64-bit parts of a strata.Position.
CREATE TABLE IF NOT EXISTS checkpoints (
    name            VARBINARY(255)  NOT NULL,
    position_commit BIGINT UNSIGNED NOT NULL,
    position_event  BIGINT UNSIGNED NOT NULL,
    PRIMARY KEY (name)
) ENGINE = InnoDB;
