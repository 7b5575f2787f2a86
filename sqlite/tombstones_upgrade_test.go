package sqlite_test

import (
	"database/sql"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/strata-events/strata/storetest"
)

// tombstonesInEventsVersion returns the version of the migration that keeps a tombstone in its
// event's row.
func tombstonesInEventsVersion(t testing.TB) int {
	t.Helper()
	for i, name := range migrationFiles(t) {
		if strings.HasSuffix(filepath.Base(name), "_tombstones_in_events.sql") {
			return i + 1
		}
	}
	t.Fatal("no migration *_tombstones_in_events.sql")
	return 0
}

// revertTombstonesInEvents undoes migration *_tombstones_in_events.sql on db, tombstones and all,
// for a test that sets the schema version below it and opens the file again.
func revertTombstonesInEvents(t testing.TB, db *sql.DB) {
	t.Helper()
	if _, err := db.Exec(`CREATE TABLE tombstones (
			event_id   BLOB    NOT NULL PRIMARY KEY CHECK (length(event_id) = 16),
			leaf_hash  BLOB    NOT NULL CHECK (length(leaf_hash) = 32),
			run        BLOB    NOT NULL CHECK (length(run) = 16),
			removed_at INTEGER NOT NULL
		) WITHOUT ROWID;
		INSERT INTO tombstones SELECT id, removed_leaf_hash, removed_run, removed_at FROM events WHERE removed_leaf_hash IS NOT NULL;
		ALTER TABLE events DROP COLUMN removed_leaf_hash;
		ALTER TABLE events DROP COLUMN removed_run;
		ALTER TABLE events DROP COLUMN removed_at`); err != nil {
		t.Fatal(err)
	}
}

// TestUpgradeMovesTombstonesIntoEvents opens a file whose tombstones are in a table of their own,
// as before migration *_tombstones_in_events.sql: each tombstone reads back the same from its
// event's row, a removed event of an escaped tenant (which stays in the index of live events)
// is no retention candidate, the others still are, and the table is gone.
func TestUpgradeMovesTombstonesIntoEvents(t *testing.T) {
	t.Parallel()
	s := open(t)
	path := s.Path()
	before := storetest.RemoveBeforeUpgrade(t, s)
	s.Close()

	db := rawConn(t, path)
	revertTombstonesInEvents(t, db)
	if _, err := db.Exec(`PRAGMA user_version = ` + strconv.Itoa(tombstonesInEventsVersion(t)-1)); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := db.QueryRow(`SELECT count(*) FROM tombstones`).Scan(&n); err != nil || n != 3 {
		t.Fatalf("%d tombstones in the table before the upgrade (%v), want 3", n, err)
	}
	db.Close()

	s = openPath(t, path)
	if err := rawConn(t, path).QueryRow(`SELECT count(*) FROM sqlite_schema WHERE name = 'tombstones'`).Scan(&n); err != nil || n != 0 {
		t.Errorf("the tombstones table after the upgrade: %d, %v; want none", n, err)
	}
	storetest.TombstonesUpgraded(t, s, before)
	// The columns go together, and a leaf hash has 32 bytes and a run 16.
	w := rawConn(t, path)
	for _, bad := range []string{
		`UPDATE events SET removed_leaf_hash = x'00', removed_run = randomblob(16), removed_at = 1 WHERE id = ?`,
		`UPDATE events SET removed_leaf_hash = randomblob(32), removed_run = randomblob(15), removed_at = 1 WHERE id = ?`,
		`UPDATE events SET removed_run = randomblob(16) WHERE id = ?`,
		`UPDATE events SET removed_leaf_hash = randomblob(32), removed_run = randomblob(16) WHERE id = ?`,
	} {
		if _, err := w.Exec(bad, before.IDs[3][:]); err == nil || !strings.Contains(err.Error(), "CHECK constraint failed") {
			t.Errorf("%s: %v, want a CHECK constraint failure", bad, err)
		}
	}
}
