-- The keys of crypto-shredding (strata.KeyStore) and the event schemas that say which fields
-- they protect (strata.SchemaStore). Subjects and types use the BINARY collation: byte order of
-- their UTF-8, as ListSubjectKeys and EventSchemas promise.

-- One data key per subject, wrapped by a key-encryption key that never reaches the store. An
-- erased subject keeps its row as a tombstone: wrapped is empty and erased_at is set.
CREATE TABLE subject_keys (
    subject    TEXT    NOT NULL PRIMARY KEY,
    kek        TEXT    NOT NULL,
    wrapped    BLOB    NOT NULL,
    created_at INTEGER NOT NULL, -- Unix microseconds, UTC
    erased_at  INTEGER,          -- Unix microseconds, UTC; NULL while the key lives
    CHECK ((erased_at IS NULL) = (length(wrapped) > 0))
);

-- Which JSON paths of an event type's payload hold personal data. sensitive is a JSON array of
-- strings; subject is the path of the field naming the data subject, '' for none.
CREATE TABLE event_schemas (
    type      TEXT NOT NULL PRIMARY KEY,
    sensitive TEXT NOT NULL,
    subject   TEXT NOT NULL
);
