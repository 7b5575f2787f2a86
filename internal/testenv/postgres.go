package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// DefaultPostgres is the local PostgreSQL that STRATA_TEST_POSTGRES defaults to.
const DefaultPostgres = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"

// Postgres returns the test PostgreSQL's connection string (STRATA_TEST_POSTGRES, default
// DefaultPostgres), skipping the test, or failing it in CI, when the server does not answer.
func Postgres(t testing.TB) string {
	t.Helper()
	return Service(t, "STRATA_TEST_POSTGRES", DefaultPostgres, func(ctx context.Context, dsn string) error {
		conn, err := pgx.Connect(ctx, dsn)
		if err != nil {
			return err
		}
		defer conn.Close(ctx)
		return conn.Ping(ctx)
	})
}

// PostgresSchema returns a fresh schema name on dsn, dropped with everything in it when the test
// ends, so that concurrent test runs never share tables.
func PostgresSchema(t testing.TB, dsn string) string {
	t.Helper()
	b := make([]byte, 6)
	rand.Read(b)
	schema := "strata_test_" + hex.EncodeToString(b)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, dsn)
		if err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{schema}.Sanitize()+" CASCADE"); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
	})
	return schema
}

// PostgresRowsContaining returns "table: row" for every row of every table of schema whose
// text form contains needle (bytea columns show as hex there, so it also searches for the hex
// of needle).
func PostgresRowsContaining(t testing.TB, dsn, schema string, needle []byte) []string {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, "SELECT table_name FROM information_schema.tables WHERE table_schema = $1", schema)
	if err != nil {
		t.Fatal(err)
	}
	tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	var hits []string
	for _, table := range tables {
		q := "SELECT t::text FROM " + pgx.Identifier{schema, table}.Sanitize() + " t"
		rows, err := conn.Query(ctx, q)
		if err != nil {
			t.Fatalf("scan %s: %v", table, err)
		}
		texts, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatalf("scan %s: %v", table, err)
		}
		for _, text := range texts {
			if strings.Contains(text, string(needle)) || strings.Contains(text, hex.EncodeToString(needle)) {
				hits = append(hits, table+": "+text)
			}
		}
	}
	return hits
}
