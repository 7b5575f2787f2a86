package mysql

import (
	"database/sql"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/strata-events/strata"
	"github.com/strata-events/strata/storetest"
)

// TestUpgradeGivesKeysTenants opens a database whose keys table is as it was before the
// migration *_subject_key_tenants.sql (one key per subject): each key goes to the tenants whose
// events hold its subject's ciphertext (storetest.WantUpgradedKeyTenants). The migration then
// runs a second time, as after a crash before it was recorded, and changes nothing.
func TestUpgradeGivesKeysTenants(t *testing.T) {
	t.Parallel()
	dsn := newDatabase(t)
	s := openStore(t, dsn)
	legacy := storetest.LegacyKeyEvents(t, s)
	s.Close()
	names, _ := filepath.Glob(filepath.Join("migrations", "*_subject_key_tenants.sql"))
	if len(names) != 1 {
		t.Fatalf("migrations *_subject_key_tenants.sql: %q", names)
	}
	num, _, _ := strings.Cut(filepath.Base(names[0]), "_")
	version, err := strconv.Atoi(num)
	if err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("mysql", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, stmt := range []string{
		"DROP TABLE subject_keys",
		`CREATE TABLE subject_keys (
			subject    VARBINARY(255)  NOT NULL,
			kek        VARBINARY(255)  NOT NULL,
			wrapped    VARBINARY(4096) NOT NULL,
			created_at DATETIME(6)     NOT NULL,
			erased_at  DATETIME(6)     NULL,
			PRIMARY KEY (subject)
		) ENGINE = InnoDB ROW_FORMAT = DYNAMIC`,
		"DELETE FROM strata_migrations WHERE version >= " + strconv.Itoa(version),
	} {
		if _, err := db.Exec(stmt); err != nil {
			t.Fatalf("%s: %v", stmt, err)
		}
	}
	for _, k := range legacy {
		var erased any
		if k.Erased() {
			erased = k.ErasedAt
		}
		if _, err := db.Exec("INSERT INTO subject_keys VALUES (?, ?, ?, ?, ?)", k.Subject, k.KEK, k.Wrapped, k.CreatedAt, erased); err != nil {
			t.Fatal(err)
		}
	}
	s = openStore(t, dsn)
	storetest.WantUpgradedKeyTenants(t, s, legacy)
	s.Close()
	if _, err := db.Exec("DELETE FROM strata_migrations WHERE version >= " + strconv.Itoa(version)); err != nil {
		t.Fatal(err)
	}
	storetest.WantUpgradedKeyTenants(t, openStore(t, dsn), legacy)
}

// TestUpgradeGivesKeysLongTenants: the migration *_subject_key_tenants.sql gives a legacy key to
// a tenant longer than 200 bytes (whose events.tenant column holds its hashed key, see
// tenantKey) under the tenant's name, not under the hashed key.
func TestUpgradeGivesKeysLongTenants(t *testing.T) {
	t.Parallel()
	dsn := newDatabase(t)
	s := openStore(t, dsn)
	long := strings.Repeat("t", 191) + strings.Repeat("x", 40)
	if _, err := s.Append(t.Context(), "legacy-long", strata.NoStream, strata.EventData{Type: "CertificateIssued",
		Data: []byte(`{"serial":"1","subjectDN":"strata:enc:v1:s:s-long"}`),
		Meta: strata.Metadata{Tenant: long, Subject: "s-long"}}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	names, _ := filepath.Glob(filepath.Join("migrations", "*_subject_key_tenants.sql"))
	num, _, _ := strings.Cut(filepath.Base(names[0]), "_")
	db, err := sql.Open("mysql", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, stmt := range []string{
		"DROP TABLE subject_keys",
		`CREATE TABLE subject_keys (
			subject    VARBINARY(255)  NOT NULL,
			kek        VARBINARY(255)  NOT NULL,
			wrapped    VARBINARY(4096) NOT NULL,
			created_at DATETIME(6)     NOT NULL,
			erased_at  DATETIME(6)     NULL,
			PRIMARY KEY (subject)
		) ENGINE = InnoDB ROW_FORMAT = DYNAMIC`,
		"DELETE FROM strata_migrations WHERE version >= " + num,
		"INSERT INTO subject_keys VALUES ('s-long', 'local:legacy', 'wrapped', UTC_TIMESTAMP(6), NULL)",
	} {
		if _, err := db.Exec(stmt); err != nil {
			t.Fatalf("%s: %v", stmt, err)
		}
	}
	s = openStore(t, dsn)
	defer s.Close()
	k, err := s.SubjectKey(t.Context(), long, "s-long")
	if err != nil || string(k.Wrapped) != "wrapped" {
		keys, _ := s.ListSubjectKeys(t.Context(), strata.SubjectKey{}, 0)
		t.Fatalf("key of the long tenant: %+v, %v; stored keys: %+v", k, err, keys)
	}
}
