-- strata schema, version 1.
--
-- Names, types and tenants are VARBINARY so that they compare byte by byte: the utf8mb4_bin
-- collation is PAD SPACE, under which "a" and "a " are the same key.
--
-- Every statement is idempotent: MySQL commits DDL implicitly, so a migration that stopped half
-- way is simply run again.

CREATE TABLE IF NOT EXISTS events (
    seq            BIGINT        NOT NULL AUTO_INCREMENT,
    position       BIGINT        NULL,
    id             BINARY(16)    NOT NULL,
    stream         VARBINARY(255) NOT NULL,
    version        BIGINT        NOT NULL,
    type           VARBINARY(255) NOT NULL,
    schema_version BIGINT        NOT NULL,
    data           LONGBLOB      NOT NULL,
    meta           MEDIUMBLOB    NOT NULL,
    tenant         VARBINARY(255) NOT NULL,
    recorded_at    DATETIME(6)   NOT NULL,
    occurred_at    DATETIME(6)   NULL, -- NULL: the writer gave none; reads return recorded_at
    PRIMARY KEY (seq),
    UNIQUE KEY events_position (position),
    UNIQUE KEY events_id (id),
    UNIQUE KEY events_stream_version (stream, version),
    KEY events_tenant_position (tenant, position)
) ENGINE = InnoDB ROW_FORMAT = DYNAMIC;

CREATE TABLE IF NOT EXISTS streams (
    name              VARBINARY(255) NOT NULL,
    version           BIGINT         NOT NULL,
    first_recorded_at DATETIME(6)    NOT NULL,
    last_recorded_at  DATETIME(6)    NOT NULL,
    PRIMARY KEY (name)
) ENGINE = InnoDB;

CREATE TABLE IF NOT EXISTS log_head (
    id       TINYINT NOT NULL,
    position BIGINT  NOT NULL,
    PRIMARY KEY (id)
) ENGINE = InnoDB;

INSERT IGNORE INTO log_head (id, position) VALUES (1, 0);
