package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
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

// PostgresContains returns "table.column" for every column of every base table of schema that
// holds needle in some row, on a connection of its own. A bytea column is searched as its
// bytes, any other column as the UTF-8 of its text form. It sees live rows only: row versions
// that an UPDATE or DELETE left for VACUUM are invisible to SQL.
func PostgresContains(t testing.TB, dsn, schema string, needle []byte) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("raw scan: %v", err)
	}
	defer conn.Close(context.Background())
	rows, _ := conn.Query(ctx, `SELECT c.table_name, c.column_name, c.data_type = 'bytea'
		FROM information_schema.columns c JOIN information_schema.tables t USING (table_schema, table_name)
		WHERE c.table_schema = $1 AND t.table_type = 'BASE TABLE' ORDER BY 1, c.ordinal_position`, schema)
	type column struct {
		table, name string
		bytea       bool
	}
	cols, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (column, error) {
		var c column
		err := r.Scan(&c.table, &c.name, &c.bytea)
		return c, err
	})
	if err != nil {
		t.Fatalf("raw scan: list columns of %s: %v", schema, err)
	}
	if len(cols) == 0 {
		t.Fatalf("raw scan: schema %s has no tables", schema)
	}
	var hits []string
	for _, c := range cols {
		col := pgx.Identifier{c.name}.Sanitize()
		if !c.bytea {
			col = "convert_to(" + col + "::text, 'UTF8')"
		}
		var found bool
		q := `SELECT EXISTS (SELECT FROM ` + pgx.Identifier{schema, c.table}.Sanitize() + ` WHERE position($1::bytea IN ` + col + `) > 0)`
		if err := conn.QueryRow(ctx, q, needle).Scan(&found); err != nil {
			t.Fatalf("raw scan: %s.%s: %v", c.table, c.name, err)
		}
		if found {
			hits = append(hits, c.table+"."+c.name)
		}
	}
	return hits
}
