-- API keys of the HTTP API (strata.APIKeyStore). Only a SHA-256 hash of each key is kept; the
-- key itself is shown once, when it is made. Revoked keys stay as rows (revoked_at set), so that
-- an ID is never reused. IDs use the BINARY collation: byte order, as ListAPIKeys promises.
CREATE TABLE api_keys (
    id         TEXT    NOT NULL PRIMARY KEY,
    hash       BLOB    NOT NULL CHECK (length(hash) = 32),
    role       TEXT    NOT NULL,
    tenant     TEXT    NOT NULL,
    name       TEXT    NOT NULL,
    created_at INTEGER NOT NULL, -- Unix microseconds, UTC
    revoked_at INTEGER           -- Unix microseconds, UTC; NULL while the key is valid
);
