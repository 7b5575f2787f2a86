-- strata schema, version 12: an event's tombstone is kept in its row. Retention rewrites the
-- row of each event it removes anyway (data 'null', metadata its tenant's alone); the same
-- UPDATE now stores the leaf hash the ledger sealed, the run that removed the payload and when.
-- The tombstones table cost every removed event an insert into its primary key, a locking read
-- of the rows before, and an anti-join in every retention pass: half of a batch's time.
--
-- The columns are added at the end of the row, which MySQL 8 and MariaDB do in place, without
-- copying the table (ALGORITHM=INSTANT). There is no CHECK that the three go together, as the
-- PostgreSQL and SQLite backends have: adding one copies the whole table under a lock that
-- stops appends. strata writes the three in one statement, BINARY(32) and BINARY(16) fix the
-- hash's and the run's lengths, and strata.PrepareTombstones checks them before.
--
-- Every statement is idempotent, as in version 1 (MySQL 8 has no ADD COLUMN IF NOT EXISTS): the
-- columns are added when they are missing, and the tombstones moved while their table is
-- there (under either name). The move locks only the tombstoned rows, which appends never wait
-- for.
SET @strata_add_removed = IF((SELECT COUNT(*) FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'events' AND COLUMN_NAME = 'removed_leaf_hash') = 0, 'ALTER TABLE events ADD COLUMN removed_leaf_hash BINARY(32) NULL, ADD COLUMN removed_run BINARY(16) NULL, ADD COLUMN removed_at DATETIME(6) NULL', 'DO 0');
PREPARE strata_add_removed FROM @strata_add_removed;
EXECUTE strata_add_removed;
DEALLOCATE PREPARE strata_add_removed;

-- The table is renamed before the move: a process of an older version still running fails its
-- next tombstone insert from then on, and rolls back the blanking with it, where one that
-- committed between the move and the DROP would have left an event blanked without its
-- tombstone. RENAME waits for the transactions that wrote to the table to end.
SET @strata_hide_tombstones = IF((SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'tombstones') = 1, 'RENAME TABLE tombstones TO tombstones_0012', 'DO 0');
PREPARE strata_hide_tombstones FROM @strata_hide_tombstones;
EXECUTE strata_hide_tombstones;
DEALLOCATE PREPARE strata_hide_tombstones;

SET @strata_move_tombstones = IF((SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'tombstones_0012') = 1, 'UPDATE events e JOIN tombstones_0012 t ON t.event_id = e.id SET e.removed_leaf_hash = t.leaf_hash, e.removed_run = t.run, e.removed_at = t.removed_at', 'DO 0');
PREPARE strata_move_tombstones FROM @strata_move_tombstones;
EXECUTE strata_move_tombstones;
DEALLOCATE PREPARE strata_move_tombstones;

DROP TABLE IF EXISTS tombstones_0012;

-- The index of events retention may remove, after the move (which would update each entry it
-- moved): live_recorded_at is an event's recorded_at until retention removes its payload, then
-- NULL, which a range of times passes over. A retention pass over every tenant walks it from
-- the cursor to the cutoff, as PostgreSQL's events_retention_idx, instead of walking the log
-- from its start past every event removed before and on past every event after the cutoff. A
-- VIRTUAL column takes no room in the row; the index, built without stopping appends, costs
-- each append one more insert, at the B-tree's right edge (recorded_at grows).
SET @strata_add_live = IF((SELECT COUNT(*) FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'events' AND COLUMN_NAME = 'live_recorded_at') = 0, 'ALTER TABLE events ADD COLUMN live_recorded_at DATETIME(6) AS (IF(removed_leaf_hash IS NULL, recorded_at, NULL)) VIRTUAL', 'DO 0');
PREPARE strata_add_live FROM @strata_add_live;
EXECUTE strata_add_live;
DEALLOCATE PREPARE strata_add_live;

SET @strata_add_retention = IF((SELECT COUNT(*) FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'events' AND INDEX_NAME = 'events_retention') = 0, 'ALTER TABLE events ADD INDEX events_retention (live_recorded_at, position)', 'DO 0');
PREPARE strata_add_retention FROM @strata_add_retention;
EXECUTE strata_add_retention;
DEALLOCATE PREPARE strata_add_retention;
