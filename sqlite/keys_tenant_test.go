package sqlite_test

import (
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/strata-events/strata/storetest"
)

// TestUpgradeGivesKeysTenants opens a file whose keys table is as it was before migration 0010
// (one key per subject): each key goes to the tenants whose events hold its subject's
// ciphertext (storetest.WantUpgradedKeyTenants).
func TestUpgradeGivesKeysTenants(t *testing.T) {
	t.Parallel()
	st := open(t)
	path := st.Path()
	legacy := storetest.LegacyKeyEvents(t, st)
	st.Close()
	db := rawConn(t, path)
	revertTombstonesInEvents(t, db) // the later migration runs again too
	if _, err := db.Exec(`DROP TABLE subject_keys;
		CREATE TABLE subject_keys (
			subject    TEXT    NOT NULL PRIMARY KEY,
			kek        TEXT    NOT NULL,
			wrapped    BLOB    NOT NULL,
			created_at INTEGER NOT NULL,
			erased_at  INTEGER,
			CHECK ((erased_at IS NULL) = (length(wrapped) > 0))
		);
		PRAGMA user_version = ` + strconv.Itoa(keyTenantsVersion(t)-1)); err != nil {
		t.Fatal(err)
	}
	for _, k := range legacy {
		var erased any
		if k.Erased() {
			erased = k.ErasedAt.UnixMicro()
		}
		if _, err := db.Exec(`INSERT INTO subject_keys VALUES (?, ?, ?, ?, ?)`, k.Subject, k.KEK, k.Wrapped, k.CreatedAt.UnixMicro(), erased); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()
	storetest.WantUpgradedKeyTenants(t, openPath(t, path), legacy)
}

// keyTenantsVersion returns the version of the migration that gave keys a tenant.
func keyTenantsVersion(t testing.TB) int {
	t.Helper()
	for i, name := range migrationFiles(t) {
		if strings.HasSuffix(filepath.Base(name), "_subject_key_tenants.sql") {
			return i + 1
		}
	}
	t.Fatal("no migration *_subject_key_tenants.sql")
	return 0
}
