package postgres_test

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/strata-events/strata/storetest"
)

// TestUpgradeMovesTombstonesIntoEvents opens a schema whose tombstones are in a table of their
// own, as before the migration *_tombstones_in_events.sql: each tombstone reads back the same
// from its event's row, a removed event of an escaped tenant (which stays in the index of live
// events) is no retention candidate, and the others still are.
func TestUpgradeMovesTombstonesIntoEvents(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	s := e.open()
	before := storetest.RemoveBeforeUpgrade(t, s)
	s.Close()

	names, _ := filepath.Glob(filepath.Join("migrations", "*_tombstones_in_events.sql"))
	if len(names) != 1 {
		t.Fatalf("migrations *_tombstones_in_events.sql: %q", names)
	}
	version, _, _ := strings.Cut(filepath.Base(names[0]), "_")
	e.exec(`CREATE TABLE tombstones (
			event_id   uuid        PRIMARY KEY,
			leaf_hash  bytea       NOT NULL CHECK (length(leaf_hash) = 32),
			run        uuid        NOT NULL,
			removed_at timestamptz NOT NULL
		);
		INSERT INTO tombstones SELECT id, removed_leaf_hash, removed_run, removed_at FROM events WHERE removed_leaf_hash IS NOT NULL;
		ALTER TABLE events DROP CONSTRAINT events_removed_check, DROP COLUMN removed_leaf_hash, DROP COLUMN removed_run, DROP COLUMN removed_at;
		DELETE FROM schema_migrations WHERE version = ` + strings.TrimLeft(version, "0"))
	if n := e.queryInt(`SELECT count(*) FROM tombstones`); n != 3 {
		t.Fatalf("%d tombstones in the table before the upgrade, want 3", n)
	}

	s = e.open()
	if n := e.queryInt(`SELECT count(*) FROM pg_tables WHERE schemaname = current_schema() AND tablename = 'tombstones'`); n != 0 {
		t.Errorf("the tombstones table is still there after the upgrade")
	}
	storetest.TombstonesUpgraded(t, s, before)
	// Every row moved holds a whole tombstone: the constraint, NOT VALID, validates.
	e.exec(`ALTER TABLE events VALIDATE CONSTRAINT events_removed_check`)
	// The columns go together, and a leaf hash has 32 bytes, in rows written from now on.
	for _, bad := range []string{
		`UPDATE events SET removed_leaf_hash = '\x00'::bytea, removed_run = gen_random_uuid(), removed_at = now() WHERE id = $1`,
		`UPDATE events SET removed_run = gen_random_uuid() WHERE id = $1`,
	} {
		if err := e.execErr(bad, before.IDs[3]); err == nil || !strings.Contains(err.Error(), "events_removed_check") {
			t.Errorf("%s: %v, want a violation of events_removed_check", bad, err)
		}
	}
}
