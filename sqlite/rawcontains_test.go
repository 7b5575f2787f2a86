package sqlite_test

import (
	"bytes"
	"database/sql"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/strata-events/strata"
	"github.com/strata-events/strata/sqlite"
)

// rawContains is storetest.Features.RawContains for SQLite: it reports whether needle occurs in
// the bytes of the store's files (the database, its WAL and a rollback journal, whichever
// exist) or in any column of any row of any table, read on a connection of its own. The file
// scan finds what SQL no longer shows (freed space, old WAL frames); the table scan finds what
// the file may hold in another form.
func rawContains(t testing.TB, s strata.Store, needle []byte) bool {
	t.Helper()
	path := s.(*sqlite.Store).Path()
	for _, suffix := range []string{"", "-wal", "-journal"} {
		b, err := os.ReadFile(path + suffix)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			t.Fatalf("raw scan: %v", err)
		}
		if bytes.Contains(b, needle) {
			return true
		}
	}
	db, err := sql.Open("sqlite", "file:"+filepath.ToSlash(path)+"?_pragma=query_only(1)&_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatalf("raw scan: %v", err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	quote := func(name string) string { return `"` + strings.ReplaceAll(name, `"`, `""`) + `"` }
	tables, err := stringColumn(db, `SELECT name FROM sqlite_schema WHERE type = 'table'`)
	if err != nil {
		t.Fatalf("raw scan: list tables: %v", err)
	}
	for _, table := range tables {
		cols, err := stringColumn(db, `SELECT name FROM pragma_table_info(?)`, table)
		if err != nil {
			t.Fatalf("raw scan: columns of %s: %v", table, err)
		}
		for _, col := range cols {
			var n int
			q := `SELECT count(*) FROM ` + quote(table) + ` WHERE instr(CAST(` + quote(col) + ` AS BLOB), ?) > 0`
			if err := db.QueryRow(q, needle).Scan(&n); err != nil {
				t.Fatalf("raw scan: %s.%s: %v", table, col, err)
			}
			if n > 0 {
				return true
			}
		}
	}
	return false
}

func stringColumn(db *sql.DB, query string, args ...any) ([]string, error) {
	rows, err := db.Query(query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

// migrationFiles returns the names of the embedded migrations, in version order: tests that
// check the schema version compare it with their number, so that a new migration does not
// break them.
func migrationFiles(t testing.TB) []string {
	t.Helper()
	names, err := filepath.Glob(filepath.Join("migrations", "*.sql"))
	if err != nil || len(names) == 0 {
		t.Fatalf("migrations: %v (%d files)", err, len(names))
	}
	return names
}

// tablesSince returns the tables that the migrations from version on create, for a test that
// rolls a file back to an older version.
func tablesSince(t testing.TB, version int) []string {
	t.Helper()
	var tables []string
	for _, name := range migrationFiles(t)[version-1:] {
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

// eventIndexesSince returns the names of the indexes on the events table that migrations
// version and later create (dropping their tables does not drop these).
func eventIndexesSince(t testing.TB, version int) []string {
	t.Helper()
	var indexes []string
	for _, name := range migrationFiles(t)[version-1:] {
		b, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(string(b), "\n") {
			if rest, ok := strings.CutPrefix(line, "CREATE INDEX "); ok {
				rest = strings.TrimPrefix(rest, "IF NOT EXISTS ")
				if f := strings.Fields(rest); len(f) >= 3 && f[1] == "ON" && f[2] == "events" {
					indexes = append(indexes, f[0])
				}
			}
		}
	}
	return indexes
}
