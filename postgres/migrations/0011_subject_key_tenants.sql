-- strata schema, version 11: data keys belong to a tenant (strata.SubjectKey.Tenant). A subject
-- ID names a different data subject in each tenant, with its own key, erased apart: the key of
-- (subject, tenant) protects the personal data of the subject in the events of that tenant.
-- tenant is bytea, as in events (a tenant of events may hold any string); '' for none. The
-- primary key (subject, tenant) finds one key and lists a subject's keys in every tenant.
ALTER TABLE subject_keys ADD COLUMN tenant bytea NOT NULL DEFAULT ''::bytea;
ALTER TABLE subject_keys DROP CONSTRAINT subject_keys_pkey, ADD PRIMARY KEY (subject, tenant);
ALTER TABLE subject_keys ALTER COLUMN tenant DROP DEFAULT;

-- Keys made before this version belong to no tenant. Each goes to every tenant whose events
-- hold ciphertext of its subject (the metadata key "subject" and an envelope in the payload);
-- a key whose subject appears in no such event stays with no tenant. A subject whose personal
-- data was written in several tenants before this version keeps one data key, copied into each
-- of them: it is shredded for good once each of those tenants erased it (docs/DATA-PROTECTION.md).
CREATE TEMP TABLE key_tenants ON COMMIT DROP AS
    SELECT DISTINCT (convert_from(e.meta, 'UTF8')::json ->> 'subject') COLLATE "C" AS subject,
        coalesce(e.tenant, ''::bytea) AS tenant
    FROM events e
    WHERE e.meta IS NOT NULL AND position('"subject":'::bytea IN e.meta) > 0
        AND position('strata:enc:v1:'::bytea IN e.data) > 0
        AND json_typeof(convert_from(e.meta, 'UTF8')::json -> 'subject') = 'string';

INSERT INTO subject_keys (subject, tenant, kek, wrapped, created_at, erased_at)
    SELECT k.subject, t.tenant, k.kek, k.wrapped, k.created_at, k.erased_at
    FROM subject_keys k JOIN key_tenants t ON t.subject = k.subject
    WHERE k.tenant = ''::bytea AND t.tenant <> ''::bytea;
DELETE FROM subject_keys k
    WHERE k.tenant = ''::bytea
        AND EXISTS (SELECT 1 FROM key_tenants t WHERE t.subject = k.subject)
        AND NOT EXISTS (SELECT 1 FROM key_tenants t WHERE t.subject = k.subject AND t.tenant = ''::bytea);
