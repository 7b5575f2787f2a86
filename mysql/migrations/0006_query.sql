-- strata schema, version 6: temporal and audit queries (strata.QueryStore,
-- strata.TemporalSnapshotStore, strata.RetentionStore; package query).
--
-- As in version 1, names are VARBINARY so that they compare byte by byte and every statement
-- is idempotent. The search indexes are not created here: each costs every append an index
-- insert, so a store that is searched creates them with Store.CreateQueryIndexes.

-- Snapshots by the times they hold for: many per stream and model. recorded_upto and
-- occurred_upto are running maxima over versions 1..version, so both grow with version.
CREATE TABLE IF NOT EXISTS temporal_snapshots (
    stream        VARBINARY(255) NOT NULL,
    model         VARBINARY(255) NOT NULL,
    version       BIGINT         NOT NULL,
    recorded_upto DATETIME(6)    NOT NULL,
    occurred_upto DATETIME(6)    NOT NULL,
    data          LONGBLOB       NOT NULL,
    PRIMARY KEY (stream, model, version)
) ENGINE = InnoDB ROW_FORMAT = DYNAMIC;

-- Events whose payload retention removed. The event row stays (its version, position and
-- times); this row keeps the leaf hash the ledger sealed, and which run removed it.
CREATE TABLE IF NOT EXISTS tombstones (
    event_id   BINARY(16)  NOT NULL,
    leaf_hash  BINARY(32)  NOT NULL,
    run        BINARY(16)  NOT NULL,
    removed_at DATETIME(6) NOT NULL,
    PRIMARY KEY (event_id)
) ENGINE = InnoDB;

-- Streams under legal hold: retention never touches them.
CREATE TABLE IF NOT EXISTS legal_holds (
    stream  VARBINARY(255)  NOT NULL,
    reason  VARBINARY(4096) NOT NULL,
    held_by VARBINARY(255)  NOT NULL,
    held_at DATETIME(6)     NOT NULL,
    PRIMARY KEY (stream)
) ENGINE = InnoDB;
