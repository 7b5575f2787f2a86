-- strata schema: projection state (strata.ProjectionStore). One row per partition of a
-- projection version with its checkpoint, mode, failure record, outbox and lease; the active
-- version of each projection (blue-green); the heartbeats of workers sharing partitions.
-- Positions are stored as the signed BIGINT with the same bits, times as Unix microseconds.
-- Names are VARBINARY (byte order), as everywhere in this schema.
CREATE TABLE IF NOT EXISTS projections (
    name          VARBINARY(255) NOT NULL,
    version       BIGINT         NOT NULL,
    part          BIGINT         NOT NULL,
    parts         BIGINT         NOT NULL,
    filter        LONGBLOB       NOT NULL,
    pos_commit    BIGINT         NOT NULL,
    pos_event     BIGINT         NOT NULL,
    processed     BIGINT         NOT NULL,
    rebuilding    BIGINT         NOT NULL,
    target_commit BIGINT         NOT NULL,
    target_event  BIGINT         NOT NULL,
    paused        BIGINT         NOT NULL,
    failure       LONGBLOB       NULL,
    pending       LONGBLOB       NULL,
    owner         VARBINARY(255) NOT NULL,
    epoch         BIGINT         NOT NULL,
    lease_until   BIGINT         NOT NULL,
    updated_at    BIGINT         NOT NULL,
    PRIMARY KEY (name, version, part)
) ENGINE = InnoDB ROW_FORMAT = DYNAMIC;

CREATE TABLE IF NOT EXISTS projection_active (
    name    VARBINARY(255) NOT NULL,
    version BIGINT         NOT NULL,
    PRIMARY KEY (name)
) ENGINE = InnoDB;

CREATE TABLE IF NOT EXISTS projection_workers (
    name       VARBINARY(255) NOT NULL,
    version    BIGINT         NOT NULL,
    owner      VARBINARY(255) NOT NULL,
    expires_at BIGINT         NOT NULL,
    PRIMARY KEY (name, version, owner)
) ENGINE = InnoDB;
