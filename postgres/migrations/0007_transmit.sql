-- Transmitters (strata.TransmitStore): each transmitter's checkpoint, and one delivery record
-- per event it handled. Names use the "C" collation (byte order). Times are Unix microseconds,
-- UTC, as in the projection tables, so that every backend compares them alike.

CREATE TABLE transmit_state (
    name       text COLLATE "C" PRIMARY KEY,
    pos_commit bigint NOT NULL,
    pos_event  bigint NOT NULL,
    updated_at bigint NOT NULL
);

CREATE TABLE transmit_deliveries (
    transmitter      text COLLATE "C" NOT NULL,
    event_id         uuid   NOT NULL,
    pos_commit       bigint NOT NULL,
    pos_event        bigint NOT NULL,
    stream           text COLLATE "C" NOT NULL,
    version          bigint NOT NULL,
    type             text COLLATE "C" NOT NULL,
    status           text   NOT NULL CHECK (status IN ('pending', 'sent', 'failed', 'dead')),
    attempts         integer NOT NULL,
    last_error       text   NOT NULL,
    first_attempt_at bigint NOT NULL,
    last_attempt_at  bigint NOT NULL,
    sent_at          bigint NOT NULL, -- 0 unless sent
    PRIMARY KEY (transmitter, event_id)
);

CREATE INDEX transmit_deliveries_status ON transmit_deliveries (transmitter, status, pos_commit, pos_event);
