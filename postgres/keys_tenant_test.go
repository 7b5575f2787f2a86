package postgres_test

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/strata-events/strata/storetest"
)

// TestUpgradeGivesKeysTenants opens a schema whose keys table is as it was before the migration
// *_subject_key_tenants.sql (one key per subject): each key goes to the tenants whose events
// hold its subject's ciphertext (storetest.WantUpgradedKeyTenants).
func TestUpgradeGivesKeysTenants(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	s := e.open()
	legacy := storetest.LegacyKeyEvents(t, s)
	s.Close()
	names, _ := filepath.Glob(filepath.Join("migrations", "*_subject_key_tenants.sql"))
	if len(names) != 1 {
		t.Fatalf("migrations *_subject_key_tenants.sql: %q", names)
	}
	version, _, _ := strings.Cut(filepath.Base(names[0]), "_")
	e.exec(`DROP TABLE subject_keys;
		CREATE TABLE subject_keys (
			subject    text COLLATE "C" PRIMARY KEY,
			kek        text COLLATE "C" NOT NULL,
			wrapped    bytea       NOT NULL,
			created_at timestamptz NOT NULL,
			erased_at  timestamptz,
			CHECK ((erased_at IS NULL) = (length(wrapped) > 0))
		);
		DELETE FROM schema_migrations WHERE version = ` + strings.TrimLeft(version, "0"))
	for _, k := range legacy {
		var erased any
		if k.Erased() {
			erased = k.ErasedAt
		}
		e.exec(`INSERT INTO subject_keys VALUES ($1, $2, $3, $4, $5)`, k.Subject, k.KEK, k.Wrapped, k.CreatedAt, erased)
	}
	s = e.open()
	storetest.WantUpgradedKeyTenants(t, s, legacy)
}
