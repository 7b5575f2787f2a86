package postgres_test

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/strata-events/strata"
)

// TestUpgradeMovesTombstonesIntoEvents opens a schema whose tombstones are in a table of their
// own, as before the migration *_tombstones_in_events.sql: each tombstone reads back the same
// from its event's row, a removed event of an escaped tenant (which stays in the index of live
// events) is no retention candidate, and the others still are.
func TestUpgradeMovesTombstonesIntoEvents(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t)
	s := e.open()
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
	// Every row moved holds a whole tombstone: the constraint, NOT VALID, validates.
	e.exec(`ALTER TABLE events VALIDATE CONSTRAINT events_removed_check`)
	// The columns go together, and a leaf hash has 32 bytes, in rows written from now on.
	for _, bad := range []string{
		`UPDATE events SET removed_leaf_hash = '\x00'::bytea, removed_run = gen_random_uuid(), removed_at = now() WHERE id = $1`,
		`UPDATE events SET removed_run = gen_random_uuid() WHERE id = $1`,
	} {
		if err := e.execErr(bad, ids[3]); err == nil || !strings.Contains(err.Error(), "events_removed_check") {
			t.Errorf("%s: %v, want a violation of events_removed_check", bad, err)
		}
	}
}
