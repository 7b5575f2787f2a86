-- strata schema, version 12: the restore guard checks the server, not the events. guarded_at
-- is the start time of the server (pg_postmaster_start_time) on which the offset was last
-- raised, or found high enough. Transaction IDs can only fall below stored positions on another
-- server (a restore into a fresh cluster, a logical replica promoted, pg_resetwal), and any of
-- those starts a postmaster: an append whose server started at guarded_at writes; any other
-- writes nothing, raises the offset (which sets guarded_at) and retries. NULL, until the first
-- raise, matches no server.
ALTER TABLE clock ADD COLUMN guarded_at timestamptz;
