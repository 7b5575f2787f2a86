package postgres_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net/url"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/strata-events/strata"
	"github.com/strata-events/strata/postgres"
	"github.com/strata-events/strata/storetest"
)

// TestReadOnlyRoleOpens: a role that may only read (an auditor's, for strata verify) opens a
// store whose schema is up to date and reads it; its appends are refused by the database.
func TestReadOnlyRoleOpens(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	w := e.open()
	if _, err := w.Append(ctx, "certificate-7F3A", strata.NoStream, strata.EventData{Type: "CertificateIssued", Data: []byte(`{"serial":"7F3A"}`)}); err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 4)
	rand.Read(b)
	role := "strata_ro_" + hex.EncodeToString(b)
	qs, qr := pgx.Identifier{e.schema}.Sanitize(), pgx.Identifier{role}.Sanitize()
	admin, err := pgx.Connect(ctx, e.dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	for _, stmt := range []string{
		"CREATE ROLE " + qr + " LOGIN",
		"GRANT USAGE ON SCHEMA " + qs + " TO " + qr,
		"GRANT SELECT ON ALL TABLES IN SCHEMA " + qs + " TO " + qr,
	} {
		if _, err := admin.Exec(ctx, stmt); err != nil {
			t.Fatalf("%s: %v", stmt, err)
		}
	}
	t.Cleanup(func() {
		ctx := context.Background()
		c, err := pgx.Connect(ctx, e.dsn)
		if err != nil {
			return
		}
		defer c.Close(ctx)
		c.Exec(ctx, "DROP OWNED BY "+qr)
		c.Exec(ctx, "DROP ROLE "+qr)
	})
	u, err := url.Parse(e.dsn)
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.User(role)
	ro, err := postgres.Open(ctx, u.String(), postgres.WithSchema(e.schema))
	if err != nil {
		t.Fatalf("a read-only role cannot open the store: %v", err)
	}
	defer ro.Close()
	if evs, err := storetest.Collect(ro.ReadAll(ctx, strata.ReadAllOptions{})); err != nil || len(evs) != 1 {
		t.Fatalf("the read-only role read %d events, %v; want 1", len(evs), err)
	}
	_, err = ro.Append(ctx, "certificate-7F3A", strata.Any, strata.EventData{Type: "CertificateRevoked", Data: []byte(`{}`)})
	var se *strata.Error
	if err == nil || !errors.As(err, &se) {
		t.Fatalf("append by a read-only role: %v, want a *strata.Error", err)
	}
}
