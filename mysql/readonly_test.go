package mysql

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"testing"

	"github.com/strata-events/strata"
	"github.com/strata-events/strata/storetest"
)

// TestReadOnlyUserOpens: a user that may only read (an auditor's, for strata verify) opens a
// database whose schema is up to date and reads it.
func TestReadOnlyUserOpens(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dsn := newDatabase(t)
	w := openStore(t, dsn)
	if _, err := w.Append(ctx, "certificate-7F3A", strata.NoStream, strata.EventData{Type: "CertificateIssued", Data: []byte(`{"serial":"7F3A"}`)}); err != nil {
		t.Fatal(err)
	}
	cfg, err := parseDSN(dsn)
	if err != nil {
		t.Fatal(err)
	}
	admin, err := sql.Open("mysql", cfg.FormatDSN())
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 4)
	rand.Read(b)
	user := "strata_ro_" + hex.EncodeToString(b)
	for _, stmt := range []string{
		"CREATE USER '" + user + "'@'%' IDENTIFIED BY 'ro-secret'",
		"GRANT SELECT ON `" + cfg.DBName + "`.* TO '" + user + "'@'%'",
	} {
		if _, err := admin.ExecContext(ctx, stmt); err != nil {
			t.Fatalf("%s: %v", stmt, err)
		}
	}
	t.Cleanup(func() {
		if _, err := admin.Exec("DROP USER '" + user + "'@'%'"); err != nil {
			t.Errorf("drop user %s: %v", user, err)
		}
		admin.Close()
	})
	cfg.User, cfg.Passwd = user, "ro-secret"
	ro, err := Open(ctx, cfg.FormatDSN())
	if err != nil {
		t.Fatalf("a read-only user cannot open the store: %v", err)
	}
	defer ro.Close()
	if evs, err := storetest.Collect(ro.ReadAll(ctx, strata.ReadAllOptions{})); err != nil || len(evs) != 1 {
		t.Fatalf("the read-only user read %d events, %v; want 1", len(evs), err)
	}
}
