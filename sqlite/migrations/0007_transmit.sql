-- Transmitters (strata.TransmitStore): each transmitter's checkpoint, and one delivery record
-- per event it handled. Names use the BINARY collation (byte order of their UTF-8). Positions
-- are stored as int64 (positions never reach 2^63), times as Unix microseconds, UTC.

CREATE TABLE transmit_state (
    name       TEXT    NOT NULL PRIMARY KEY,
    pos_commit INTEGER NOT NULL,
    pos_event  INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);

CREATE TABLE transmit_deliveries (
    transmitter      TEXT    NOT NULL,
    event_id         BLOB    NOT NULL CHECK (length(event_id) = 16),
    pos_commit       INTEGER NOT NULL,
    pos_event        INTEGER NOT NULL,
    stream           TEXT    NOT NULL,
    version          INTEGER NOT NULL,
    type             TEXT    NOT NULL,
    status           TEXT    NOT NULL CHECK (status IN ('pending', 'sent', 'failed', 'dead')),
    attempts         INTEGER NOT NULL,
    last_error       TEXT    NOT NULL,
    first_attempt_at INTEGER NOT NULL,
    last_attempt_at  INTEGER NOT NULL,
    sent_at          INTEGER NOT NULL, -- 0 unless sent
    PRIMARY KEY (transmitter, event_id)
) WITHOUT ROWID;

CREATE INDEX transmit_deliveries_status ON transmit_deliveries (transmitter, status, pos_commit, pos_event);
