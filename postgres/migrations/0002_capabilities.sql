-- strata schema, version 2: the optional capabilities (strata.SnapshotStore, strata.TimerStore,
-- strata.CheckpointStore). Runs with search_path set to the store's schema. Collation "C" makes
-- names compare byte-wise, as stream names do in streams and events.

-- At most one snapshot per stream.
CREATE TABLE snapshots (
    stream   text COLLATE "C" PRIMARY KEY,
    version  bigint      NOT NULL CHECK (version > 0),
    schema   integer     NOT NULL CHECK (schema >= 0),
    data     bytea       NOT NULL,
    taken_at timestamptz NOT NULL
);

-- Durable timers; workers ask for one owner's due timers, earliest first.
CREATE TABLE timers (
    id     uuid PRIMARY KEY,
    owner  text COLLATE "C" NOT NULL,
    key    text COLLATE "C" NOT NULL,
    name   text COLLATE "C" NOT NULL,
    due_at timestamptz NOT NULL,
    data   bytea       NOT NULL
);
CREATE INDEX timers_due_idx ON timers (owner, due_at, id);

-- Named cursors into the global log. strata.Position's parts are unsigned 64-bit; bigint is
-- signed, so each part is stored as the bigint with the same bits (only equality is ever asked).
CREATE TABLE checkpoints (
    name            text COLLATE "C" PRIMARY KEY,
    position_commit bigint NOT NULL,
    position_event  bigint NOT NULL
);
