-- Transmitters (strata.TransmitStore): each transmitter's checkpoint, and one delivery record
-- per event it handled. Names are VARBINARY (byte order of their UTF-8). Times are Unix
-- microseconds, UTC, as in the projection tables, so that every backend compares them alike.

CREATE TABLE IF NOT EXISTS transmit_state (
    name       VARBINARY(200) NOT NULL,
    pos_commit BIGINT         NOT NULL,
    pos_event  BIGINT         NOT NULL,
    updated_at BIGINT         NOT NULL,
    PRIMARY KEY (name)
) ENGINE = InnoDB;

CREATE TABLE IF NOT EXISTS transmit_deliveries (
    transmitter      VARBINARY(200) NOT NULL,
    event_id         BINARY(16)     NOT NULL,
    pos_commit       BIGINT         NOT NULL,
    pos_event        BIGINT         NOT NULL,
    stream           VARBINARY(255) NOT NULL,
    version          BIGINT         NOT NULL,
    type             VARBINARY(255) NOT NULL,
    status           VARBINARY(8)   NOT NULL,
    attempts         INT            NOT NULL,
    last_error       BLOB           NOT NULL,
    first_attempt_at BIGINT         NOT NULL,
    last_attempt_at  BIGINT         NOT NULL,
    sent_at          BIGINT         NOT NULL, -- 0 unless sent
    PRIMARY KEY (transmitter, event_id),
    KEY transmit_deliveries_status (transmitter, status, pos_commit, pos_event)
) ENGINE = InnoDB ROW_FORMAT = DYNAMIC;
