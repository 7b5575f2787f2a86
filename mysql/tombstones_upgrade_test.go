package mysql

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/strata-events/strata"
	"github.com/strata-events/strata/storetest"
)

// TestPlainTenant evaluates plainTenant in the server for a tenant of every byte and some
// longer ones: it holds exactly when the tenant is at most 200 bytes (the tenant column holds a
// longer one's key) and every byte of it is in strata.TombstoneTenantBytes.
func TestPlainTenant(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	s := newStore(t)
	tenants := []string{"", "acme", "a b~!", "a]b", "a^b", "a-b", "[x]", "a\x00b", "nul\x00<", "é", "a\u2028", "\xc3", "a\x80", "\x7f\x7f",
		"0123456789ABCDEFabcdef", strata.TombstoneTenantBytes, strata.TombstoneTenantBytes + `"`, strings.Repeat("a", 200), strings.Repeat("a", 201)}
	for c := range 256 {
		tenants = append(tenants, string([]byte{byte(c)}))
	}
	for _, tenant := range tenants {
		var got bool
		if err := s.db.QueryRowContext(ctx, `SELECT `+plainTenant("?"), []byte(tenant), []byte(tenant)).Scan(&got); err != nil {
			t.Fatal(err)
		}
		if want := len(tenant) <= 200 && strings.Trim(tenant, strata.TombstoneTenantBytes) == ""; got != want {
			t.Errorf("tenant %q: plain in SQL %v, want %v", tenant, got, want)
		}
	}
}

// TestUpgradeMovesTombstonesIntoEvents opens a database whose tombstones are in a table of their
// own, as before the migration *_tombstones_in_events.sql: each tombstone reads back the same
// from its event's row, the removed events are no retention candidates, the others still are,
// the table is gone and the index of live events is there. The migration then runs after a
// stop at its RENAME, and once more over its own result.
func TestUpgradeMovesTombstonesIntoEvents(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	dsn := newDatabase(t)
	s := openStore(t, dsn)
	before := storetest.RemoveBeforeUpgrade(t, s)
	names, _ := filepath.Glob(filepath.Join("migrations", "*_tombstones_in_events.sql"))
	if len(names) != 1 {
		t.Fatalf("migrations *_tombstones_in_events.sql: %q", names)
	}
	version, _, _ := strings.Cut(filepath.Base(names[0]), "_")
	forget := "DELETE FROM strata_migrations WHERE version = " + strings.TrimLeft(version, "0")
	// revert puts the schema back as before the migration, the tombstones in a table of name;
	// "tombstones_0012" is where the migration's RENAME leaves them, as after a stop there.
	revert := func(name string) {
		t.Helper()
		for _, stmt := range []string{
			`CREATE TABLE ` + name + ` (
				event_id   BINARY(16)  NOT NULL,
				leaf_hash  BINARY(32)  NOT NULL,
				run        BINARY(16)  NOT NULL,
				removed_at DATETIME(6) NOT NULL,
				PRIMARY KEY (event_id)
			) ENGINE = InnoDB`,
			`INSERT INTO ` + name + ` SELECT id, removed_leaf_hash, removed_run, removed_at FROM events WHERE removed_leaf_hash IS NOT NULL`,
			`ALTER TABLE events DROP INDEX events_retention, DROP COLUMN live_recorded_at`,
			`ALTER TABLE events DROP COLUMN removed_leaf_hash, DROP COLUMN removed_run, DROP COLUMN removed_at`,
			forget,
		} {
			if _, err := s.db.ExecContext(ctx, stmt); err != nil {
				t.Fatalf("%s: %v", stmt, err)
			}
		}
		var n int
		if err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM `+name).Scan(&n); err != nil || n != 3 {
			t.Fatalf("%d tombstones in %s before the upgrade (%v), want 3", n, name, err)
		}
	}
	revert("tombstones")
	s.Close()

	// Pass 0 upgrades; pass 1 after a stop at the RENAME; pass 2 runs the migration again.
	for pass := range 3 {
		s = openStore(t, dsn)
		var n int
		if err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME LIKE 'tombstones%'`).Scan(&n); err != nil || n != 0 {
			t.Errorf("pass %d: %d tables of tombstones after the upgrade (%v), want none", pass, n, err)
		}
		if err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'events' AND INDEX_NAME = 'events_retention'`).Scan(&n); err != nil || n != 2 {
			t.Errorf("pass %d: events_retention has %d columns (%v), want 2", pass, n, err)
		}
		storetest.TombstonesUpgraded(t, s, before)
		if pass == 0 {
			revert("tombstones_0012")
		} else if _, err := s.db.ExecContext(ctx, forget); err != nil {
			t.Fatal(err)
		}
		s.Close()
	}
}
