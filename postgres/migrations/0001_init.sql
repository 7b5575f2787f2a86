-- strata schema, version 1. Runs with search_path set to the store's schema.

-- clock holds the offset added to transaction IDs to make the tx column of events. It only ever
-- grows: see "Restore safety" in the package documentation.
CREATE TABLE clock (
    id        boolean PRIMARY KEY DEFAULT true CHECK (id),
    tx_offset bigint  NOT NULL
);
INSERT INTO clock (tx_offset) VALUES (0);
ANALYZE clock;

-- streams holds one row per stream with events. Appends lock and bump its version, which is
-- the optimistic-concurrency check, and last_tx, the tx of its last append, which the next
-- append's tx may not be below. Collation "C" makes order and prefixes byte-wise.
CREATE TABLE streams (
    name              text COLLATE "C" PRIMARY KEY,
    version           bigint      NOT NULL CHECK (version > 0),
    last_tx           bigint      NOT NULL,
    first_recorded_at timestamptz NOT NULL,
    last_recorded_at  timestamptz NOT NULL
);

-- events is the log. The global order is (tx, seq): tx is the writing transaction's ID plus the
-- clock offset, seq a sequence number. data holds the payload bytes exactly as appended; meta
-- the canonical JSON of the metadata (NULL when empty); tenant repeats meta's tenant (NULL when
-- empty) for the filtered index, as bytes because a tenant may hold any string, even NUL.
CREATE TABLE events (
    seq         bigint GENERATED ALWAYS AS IDENTITY,
    tx          bigint      NOT NULL,
    version     bigint      NOT NULL,
    recorded_at timestamptz NOT NULL,
    occurred_at timestamptz NOT NULL,
    id          uuid        NOT NULL,
    schema      integer     NOT NULL,
    stream      text COLLATE "C" NOT NULL,
    type        text COLLATE "C" NOT NULL,
    tenant      bytea,
    meta        bytea,
    data        bytea       NOT NULL,
    CONSTRAINT events_pkey PRIMARY KEY (tx, seq),
    CONSTRAINT events_id_key UNIQUE (id),
    CONSTRAINT events_stream_version_key UNIQUE (stream, version)
);

-- The global log of one tenant.
CREATE INDEX events_tenant_idx ON events (tenant, tx, seq) WHERE tenant IS NOT NULL;
