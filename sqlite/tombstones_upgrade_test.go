package sqlite_test

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/strata-events/strata"
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
	ctx := context.Background()
	s := open(t)
	path := s.Path()
	var ids []uuid.UUID
	for i, tenant := range []string{"acme", `esc"aped`, "", "acme", `esc"aped`} {
		id := uuid.Must(uuid.NewV7())
		if _, err := s.Append(ctx, "upgrade-"+strings.Repeat("x", i+1), strata.NoStream, strata.EventData{ID: id, Type: "Issued", Data: []byte(`{"cn":"a"}`),
			Meta: strata.Metadata{Tenant: tenant, Principal: "op"}}); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	run := uuid.Must(uuid.NewV7())
	var ts []strata.Tombstone
	for i, id := range ids[:3] {
		ts = append(ts, strata.Tombstone{EventID: id, LeafHash: bytes.Repeat([]byte{byte(i + 1)}, 32), Run: run})
	}
	if n, err := s.TombstoneEvents(ctx, ts); n != 3 || err != nil {
		t.Fatalf("TombstoneEvents: %d, %v", n, err)
	}
	var want []strata.Tombstone
	for _, id := range ids[:3] {
		tomb, err := s.Tombstone(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, tomb)
	}
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
	for i, id := range ids {
		got, err := s.Tombstone(ctx, id)
		if i >= 3 {
			if !errors.Is(err, strata.ErrNotFound) {
				t.Errorf("event %d, never removed: Tombstone = %+v, %v; want NotFound", i, got, err)
			}
			continue
		}
		if err != nil || !bytes.Equal(got.LeafHash, want[i].LeafHash) || got.Run != want[i].Run || !got.RemovedAt.Equal(want[i].RemovedAt) {
			t.Errorf("event %d: Tombstone = %+v, %v; want %+v", i, got, err, want[i])
		}
	}
	page, err := s.RetentionCandidates(ctx, strata.RetentionSelect{AnyTenant: true, RecordedBefore: time.Now().Add(time.Hour), Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	var got []uuid.UUID
	for _, ev := range page.Events {
		got = append(got, ev.ID)
	}
	if len(got) != 2 || got[0] != ids[3] || got[1] != ids[4] {
		t.Errorf("retention candidates after the upgrade: %v, want the two events never removed %v", got, ids[3:])
	}
	// The columns go together, and a leaf hash has 32 bytes and a run 16.
	w := rawConn(t, path)
	for _, bad := range []string{
		`UPDATE events SET removed_leaf_hash = x'00', removed_run = randomblob(16), removed_at = 1 WHERE id = ?`,
		`UPDATE events SET removed_leaf_hash = randomblob(32), removed_run = randomblob(15), removed_at = 1 WHERE id = ?`,
		`UPDATE events SET removed_run = randomblob(16) WHERE id = ?`,
		`UPDATE events SET removed_leaf_hash = randomblob(32), removed_run = randomblob(16) WHERE id = ?`,
	} {
		if _, err := w.Exec(bad, ids[3][:]); err == nil || !strings.Contains(err.Error(), "CHECK constraint failed") {
			t.Errorf("%s: %v, want a CHECK constraint failure", bad, err)
		}
	}
}
