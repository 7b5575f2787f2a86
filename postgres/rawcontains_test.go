package postgres_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/strata-events/strata"
	"github.com/strata-events/strata/postgres"
)

// rawContains is storetest.Features.RawContains for PostgreSQL: it reports whether needle
// occurs in any column of any row of any table of the store's schema, on a connection of its
// own. A bytea column is searched as its bytes, any other column as the UTF-8 of its text
// form. It sees live rows only: row versions that an UPDATE or DELETE left for VACUUM are
// invisible to SQL.
func rawContains(t testing.TB, s strata.Store, needle []byte) bool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, testDSN(t))
	if err != nil {
		t.Fatalf("raw scan: %v", err)
	}
	defer conn.Close(context.Background())
	schema := s.(*postgres.Store).Schema()
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
			return true
		}
	}
	return false
}

// migrationCount returns the number of embedded migrations: tests that count the recorded
// migrations compare with it, so that a new migration does not break them.
func migrationCount(t testing.TB) int64 {
	t.Helper()
	names, err := filepath.Glob(filepath.Join("migrations", "*.sql"))
	if err != nil || len(names) == 0 {
		t.Fatalf("migrations: %v (%d files)", err, len(names))
	}
	return int64(len(names))
}
