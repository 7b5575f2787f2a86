package mysql

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/strata-events/strata"
	"github.com/strata-events/strata/internal/testenv"
)

// rawContains is storetest.Features.RawContains for MySQL and MariaDB: it reports whether needle
// occurs in any column of any row of any table of the store's database, on a connection pool of
// its own. Every column is searched as its bytes (CAST AS BINARY: the stored bytes of a
// VARBINARY or BLOB, the text form of a number or time). It sees current rows only: row
// versions that InnoDB keeps for purge are invisible to SQL.
func rawContains(t testing.TB, s strata.Store, needle []byte) bool {
	t.Helper()
	return len(testenv.MySQLContains(t, s.(*Store).dsn, needle)) > 0
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

// tablesSince returns the tables that the migrations from version on create, for a test that
// rolls a database back to an older version.
func tablesSince(t testing.TB, version int) []string {
	t.Helper()
	names, err := filepath.Glob(filepath.Join("migrations", "*.sql"))
	if err != nil {
		t.Fatal(err)
	}
	var tables []string
	for _, name := range names[version-1:] {
		b, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(string(b), "\n") {
			if rest, ok := strings.CutPrefix(line, "CREATE TABLE "); ok {
				rest = strings.TrimPrefix(rest, "IF NOT EXISTS ")
				tables = append(tables, strings.Fields(rest)[0])
			}
		}
	}
	return tables
}
