package postgres_test

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/strata-events/strata/internal/testenv"
	"github.com/strata-events/strata/postgres"
)

const defaultDSN = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"

// testDSN returns the test database's connection string, skipping (or, in CI, failing) the test
// when it is unreachable.
func testDSN(t testing.TB) string { return testenv.Postgres(t) }

// freshSchema returns a new schema name, dropped when the test ends.
func freshSchema(t testing.TB, dsn string) string { return testenv.PostgresSchema(t, dsn) }

// env is one test's database: a fresh schema and a way to open stores on it and run SQL.
type env struct {
	t      testing.TB
	dsn    string
	schema string
}

func newEnv(t testing.TB) *env {
	t.Helper()
	dsn := testDSN(t)
	return &env{t: t, dsn: dsn, schema: freshSchema(t, dsn)}
}

// open opens a store on the env's schema, closed when the test ends (before the schema is
// dropped).
func (e *env) open(opts ...postgres.Option) *postgres.Store {
	e.t.Helper()
	s, err := postgres.Open(context.Background(), e.dsn, append([]postgres.Option{postgres.WithSchema(e.schema)}, opts...)...)
	if err != nil {
		e.t.Fatalf("Open: %v", err)
	}
	e.t.Cleanup(func() { s.Close() })
	return s
}

// exec runs SQL with the search path set to the env's schema, failing the test on an error.
func (e *env) exec(sql string, args ...any) {
	e.t.Helper()
	if err := e.execErr(sql, args...); err != nil {
		e.t.Fatalf("%s: %v", sql, err)
	}
}

// execErr runs SQL with the search path set to the env's schema and returns its error.
func (e *env) execErr(sql string, args ...any) error {
	e.t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, e.dsn)
	if err != nil {
		e.t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "SET search_path TO "+pgx.Identifier{e.schema}.Sanitize()); err != nil {
		e.t.Fatal(err)
	}
	_, err = conn.Exec(ctx, sql, args...)
	return err
}

// queryInt runs a query returning one integer, in the env's schema.
func (e *env) queryInt(sql string, args ...any) int64 {
	e.t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, e.dsn)
	if err != nil {
		e.t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "SET search_path TO "+pgx.Identifier{e.schema}.Sanitize()); err != nil {
		e.t.Fatal(err)
	}
	var n int64
	if err := conn.QueryRow(ctx, sql, args...).Scan(&n); err != nil {
		e.t.Fatalf("%s: %v", sql, err)
	}
	return n
}
