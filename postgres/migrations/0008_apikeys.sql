-- strata schema, version 8: API keys of the HTTP API (strata.APIKeyStore). Runs with
-- search_path set to the store's schema. Only a SHA-256 hash of each key is kept; the key itself
-- is shown once, when it is made. Revoked keys stay as rows (revoked_at set), so that an ID is
-- never reused. Collation "C": IDs compare byte-wise, as ListAPIKeys promises.
CREATE TABLE api_keys (
    id         text COLLATE "C" PRIMARY KEY,
    hash       bytea       NOT NULL CHECK (length(hash) = 32),
    role       text        NOT NULL,
    tenant     text        NOT NULL,
    name       text        NOT NULL,
    created_at timestamptz NOT NULL,
    revoked_at timestamptz
);
