-- strata schema: projection state (strata.ProjectionStore). One row per partition of a
-- projection version with its checkpoint, mode, failure record, outbox and lease; the active
-- version of each projection (blue-green); the heartbeats of workers sharing partitions.
-- Positions are stored as the bigint with the same bits, times as Unix microseconds.
CREATE TABLE projections (
    name          text COLLATE "C" NOT NULL,
    version       bigint   NOT NULL,
    part          bigint   NOT NULL,
    parts         bigint   NOT NULL,
    filter        bytea    NOT NULL, -- JSON of strata.Filter
    pos_commit    bigint   NOT NULL,
    pos_event     bigint   NOT NULL,
    processed     bigint   NOT NULL,
    rebuilding    bigint   NOT NULL,
    target_commit bigint   NOT NULL,
    target_event  bigint   NOT NULL,
    paused        bigint   NOT NULL,
    failure       bytea,
    pending       bytea,
    owner         text COLLATE "C" NOT NULL,
    epoch         bigint   NOT NULL,
    lease_until   bigint   NOT NULL,
    updated_at    bigint   NOT NULL,
    PRIMARY KEY (name, version, part)
);

CREATE TABLE projection_active (
    name    text COLLATE "C" PRIMARY KEY,
    version bigint NOT NULL
);

CREATE TABLE projection_workers (
    name       text COLLATE "C" NOT NULL,
    version    bigint NOT NULL,
    owner      text COLLATE "C" NOT NULL,
    expires_at bigint NOT NULL,
    PRIMARY KEY (name, version, owner)
);
