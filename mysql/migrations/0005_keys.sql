-- strata schema, version 5: the keys of crypto-shredding (strata.KeyStore) and the event schemas
-- that say which fields they protect (strata.SchemaStore).
--
-- As in version 1, names are VARBINARY so that they compare byte by byte (ListSubjectKeys and
-- EventSchemas return them in byte order), every statement is idempotent, and no column is
-- named with a reserved word: SENSITIVE is reserved, so the paths are sensitive_paths ("type"
-- is not reserved, as in events).

-- One data key per subject, wrapped by a key-encryption key that never reaches the store. An
-- erased subject keeps its row as a tombstone: wrapped is empty and erased_at is set.
CREATE TABLE IF NOT EXISTS subject_keys (
    subject    VARBINARY(255)  NOT NULL,
    kek        VARBINARY(255)  NOT NULL,
    wrapped    VARBINARY(4096) NOT NULL,
    created_at DATETIME(6)     NOT NULL,
    erased_at  DATETIME(6)     NULL, -- NULL while the key lives
    PRIMARY KEY (subject)
) ENGINE = InnoDB ROW_FORMAT = DYNAMIC;

-- Which JSON paths of an event type's payload hold personal data: sensitive_paths is a JSON
-- array of strings, as UTF-8 bytes (a BLOB, so that neither the table's character set nor
-- MySQL's JSON normalization touches it); subject is the path of the field naming the data
-- subject, empty for none.
CREATE TABLE IF NOT EXISTS event_schemas (
    type            VARBINARY(255) NOT NULL,
    sensitive_paths BLOB           NOT NULL,
    subject         VARBINARY(255) NOT NULL,
    PRIMARY KEY (type)
) ENGINE = InnoDB ROW_FORMAT = DYNAMIC;
