package postgres_test

import (
	"path/filepath"
	"testing"

	"github.com/strata-events/strata"
	"github.com/strata-events/strata/internal/testenv"
	"github.com/strata-events/strata/postgres"
)

// rawContains is storetest.Features.RawContains for PostgreSQL: it reports whether needle
// occurs in any column of any row of any table of the store's schema, on a connection of its
// own. A bytea column is searched as its bytes, any other column as the UTF-8 of its text
// form. It sees live rows only: row versions that an UPDATE or DELETE left for VACUUM are
// invisible to SQL.
func rawContains(t testing.TB, s strata.Store, needle []byte) bool {
	t.Helper()
	return len(testenv.PostgresContains(t, testDSN(t), s.(*postgres.Store).Schema(), needle)) > 0
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
