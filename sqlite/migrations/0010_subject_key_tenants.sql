-- Data keys belong to a tenant (strata.SubjectKey.Tenant): a subject ID names a different data
-- subject in each tenant, with its own key, erased apart. The key of (subject, tenant) protects
-- the personal data of the subject in the events of that tenant (events.tenant, '' for none).
--
-- Keys made before this version belong to no tenant. Each goes to every tenant whose events
-- hold ciphertext of its subject (the metadata key "subject" and an envelope in the payload);
-- a key whose subject appears in no such event stays with no tenant. A subject whose personal
-- data was written in several tenants before this version keeps one data key, copied into each
-- of them: it is shredded for good once each of those tenants erased it (docs/DATA-PROTECTION.md).
--
-- The old table's pages are freed with secure_delete on, so that no copy of a wrapped key is
-- left in free pages, where a later erasure could not reach it.
PRAGMA secure_delete = ON;

-- The new table takes the old one's name at the end.
CREATE TABLE
    subject_keys_by_tenant (
    subject    TEXT    NOT NULL,
    tenant     TEXT    NOT NULL, -- Meta.Tenant of the events the key seals, '' for none
    kek        TEXT    NOT NULL,
    wrapped    BLOB    NOT NULL,
    created_at INTEGER NOT NULL, -- Unix microseconds, UTC
    erased_at  INTEGER,          -- Unix microseconds, UTC; NULL while the key lives
    PRIMARY KEY (subject, tenant),
    CHECK ((erased_at IS NULL) = (length(wrapped) > 0))
);

-- Which tenants hold ciphertext of which subjects: one scan of the events.
CREATE TEMP TABLE key_tenants AS
    SELECT DISTINCT json_extract(meta, '$.subject') AS subject, tenant FROM events
    WHERE instr(meta, '"subject":') > 0 AND instr(data, CAST('strata:enc:v1:' AS BLOB)) > 0
        AND json_valid(meta) AND json_type(meta, '$.subject') = 'text';

INSERT INTO subject_keys_by_tenant (subject, tenant, kek, wrapped, created_at, erased_at)
    SELECT k.subject, t.tenant, k.kek, k.wrapped, k.created_at, k.erased_at
    FROM subject_keys k JOIN key_tenants t ON t.subject = k.subject;
INSERT INTO subject_keys_by_tenant (subject, tenant, kek, wrapped, created_at, erased_at)
    SELECT k.subject, '', k.kek, k.wrapped, k.created_at, k.erased_at
    FROM subject_keys k WHERE NOT EXISTS (SELECT 1 FROM key_tenants t WHERE t.subject = k.subject);

DROP TABLE key_tenants;
DROP TABLE subject_keys;
ALTER TABLE subject_keys_by_tenant RENAME TO subject_keys;
