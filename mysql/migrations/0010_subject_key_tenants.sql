-- strata schema, version 10: data keys belong to a tenant (strata.SubjectKey.Tenant). A subject
-- ID names a different data subject in each tenant, with its own key, erased apart: the key of
-- (subject, tenant) protects the personal data of the subject in the events of that tenant.
-- tenant is VARBINARY like events.tenant ('' for none); the primary key (subject, tenant) finds
-- one key and lists a subject's keys in every tenant.
--
-- Every statement is idempotent, as in version 1: the column is added only when it is missing
-- (MySQL 8 has no ADD COLUMN IF NOT EXISTS), in one ALTER with the new primary key.
SET @strata_add_tenant = IF((SELECT COUNT(*) FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'subject_keys' AND COLUMN_NAME = 'tenant') = 0, 'ALTER TABLE subject_keys ADD COLUMN tenant VARBINARY(255) NOT NULL DEFAULT '''' AFTER subject, DROP PRIMARY KEY, ADD PRIMARY KEY (subject, tenant)', 'DO 0');
PREPARE strata_add_tenant FROM @strata_add_tenant;
EXECUTE strata_add_tenant;
DEALLOCATE PREPARE strata_add_tenant;

-- Keys made before this version belong to no tenant. Each goes to every tenant whose events
-- hold ciphertext of its subject (the metadata key "subject" and an envelope in the payload);
-- a key whose subject appears in no such event stays with no tenant. A subject whose personal
-- data was written in several tenants before this version keeps one data key, copied into each
-- of them: it is shredded for good once each of those tenants erased it (docs/DATA-PROTECTION.md).
DROP TEMPORARY TABLE IF EXISTS strata_key_tenants;
DROP TEMPORARY TABLE IF EXISTS strata_key_moved;
CREATE TEMPORARY TABLE strata_key_tenants AS
    SELECT DISTINCT CAST(JSON_UNQUOTE(JSON_EXTRACT(CONVERT(e.meta USING utf8mb4), '$.subject')) AS BINARY) AS subject,
        -- events.tenant holds a tenant longer than 200 bytes as its hashed key (tenantKey in
        -- append.go): such a tenant's name is read from the metadata.
        IF(LENGTH(e.tenant) <= 200, e.tenant, CAST(JSON_UNQUOTE(JSON_EXTRACT(CONVERT(e.meta USING utf8mb4), '$.tenant')) AS BINARY)) AS tenant
    FROM events e
    WHERE LOCATE('"subject":', e.meta) > 0 AND LOCATE('strata:enc:v1:', e.data) > 0
        AND JSON_VALID(CONVERT(e.meta USING utf8mb4))
        AND JSON_TYPE(JSON_EXTRACT(CONVERT(e.meta USING utf8mb4), '$.subject')) = 'STRING';
-- The subjects whose ciphertext lies only in events of tenants: their key without a tenant goes.
CREATE TEMPORARY TABLE strata_key_moved AS
    SELECT subject FROM strata_key_tenants GROUP BY subject HAVING MAX(tenant = '') = 0;

INSERT IGNORE INTO subject_keys (subject, tenant, kek, wrapped, created_at, erased_at)
    SELECT k.subject, t.tenant, k.kek, k.wrapped, k.created_at, k.erased_at
    FROM subject_keys k JOIN strata_key_tenants t ON t.subject = k.subject
    WHERE k.tenant = '' AND t.tenant <> '';
DELETE FROM subject_keys WHERE tenant = '' AND subject IN (SELECT subject FROM strata_key_moved);

DROP TEMPORARY TABLE IF EXISTS strata_key_tenants;
DROP TEMPORARY TABLE IF EXISTS strata_key_moved;
