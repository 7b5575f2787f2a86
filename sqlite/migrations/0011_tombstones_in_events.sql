-- An event's tombstone is kept in its row. Retention rewrites the row of each event it removes
-- anyway (data 'null', metadata its tenant's alone); the same UPDATE now stores the leaf hash
-- the ledger sealed, the run that removed the payload and when (Unix microseconds, UTC). The
-- tombstones table cost every removed event an insert into its B-tree, and the UPDATE had to
-- return each row it blanked for that insert: reading those rows back took a third of a batch.
--
-- The CHECK holds the three columns together, with a hash of 32 bytes and a run of 16; SQLite
-- tests it against every row when the column is added (all NULL here). The upgrade rewrites
-- each tombstoned row once, under the write lock, as every migration runs.
ALTER TABLE events ADD COLUMN removed_at INTEGER;
ALTER TABLE events ADD COLUMN removed_run BLOB;
ALTER TABLE events ADD COLUMN removed_leaf_hash BLOB CHECK (
    (removed_leaf_hash IS NULL) = (removed_run IS NULL)
    AND (removed_run IS NULL) = (removed_at IS NULL)
    AND (removed_leaf_hash IS NULL OR (length(removed_leaf_hash) = 32 AND length(removed_run) = 16)));

UPDATE events SET removed_leaf_hash = t.leaf_hash, removed_run = t.run, removed_at = t.removed_at
FROM tombstones t WHERE t.event_id = events.id;

DROP TABLE tombstones;
