-- strata schema, version 8: API keys of the HTTP API (strata.APIKeyStore). Only a SHA-256 hash
-- of each key is kept; the key itself is shown once, when it is made. Revoked keys stay as rows
-- (revoked_at set), so that an ID is never reused. VARBINARY: IDs compare byte by byte, as
-- ListAPIKeys promises; every statement is idempotent, as in version 1.
CREATE TABLE IF NOT EXISTS api_keys (
    id         VARBINARY(64)  NOT NULL,
    hash       VARBINARY(32)  NOT NULL,
    role       VARBINARY(16)  NOT NULL,
    tenant     VARBINARY(255) NOT NULL,
    name       VARBINARY(255) NOT NULL,
    created_at DATETIME(6)    NOT NULL,
    revoked_at DATETIME(6)    NULL, -- NULL while the key is valid
    PRIMARY KEY (id)
) ENGINE = InnoDB ROW_FORMAT = DYNAMIC;
