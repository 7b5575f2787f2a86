-- strata schema, version 5: the keys of crypto-shredding (strata.KeyStore) and the event schemas
-- that say which fields they protect (strata.SchemaStore). Runs with search_path set to the
-- store's schema. Collation "C" makes subjects and types compare byte-wise, as
-- ListSubjectKeys and EventSchemas promise.

-- One data key per subject, wrapped by a key-encryption key that never reaches the store. An
-- erased subject keeps its row as a tombstone: wrapped is empty and erased_at is set.
CREATE TABLE subject_keys (
    subject    text COLLATE "C" PRIMARY KEY,
    kek        text COLLATE "C" NOT NULL,
    wrapped    bytea       NOT NULL,
    created_at timestamptz NOT NULL,
    erased_at  timestamptz,
    CHECK ((erased_at IS NULL) = (length(wrapped) > 0))
);

-- Which JSON paths of an event type's payload hold personal data: sensitive is a JSON array of
-- strings, subject the path of the field naming the data subject ('' for none).
CREATE TABLE event_schemas (
    type      text COLLATE "C" PRIMARY KEY,
    sensitive jsonb NOT NULL CHECK (jsonb_typeof(sensitive) = 'array'),
    subject   text  NOT NULL
);
