package mysql

import (
	"context"
	"database/sql"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	mysqldrv "github.com/go-sql-driver/mysql"

	"github.com/strata-events/strata"
)

// rawContains is storetest.Features.RawContains for MySQL and MariaDB: it reports whether needle
// occurs in any column of any row of any table of the store's database, on a connection pool of
// its own. Every column is searched as its bytes (CAST AS BINARY: the stored bytes of a
// VARBINARY or BLOB, the text form of a number or time). It sees current rows only: row
// versions that InnoDB keeps for purge are invisible to SQL.
func rawContains(t testing.TB, s strata.Store, needle []byte) bool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dsn := s.(*Store).dsn
	cfg, err := mysqldrv.ParseDSN(dsn)
	if err != nil {
		t.Fatalf("raw scan: %v", err)
	}
	db, err := sql.Open("mysql", dsn)
	if err != nil {
		t.Fatalf("raw scan: %v", err)
	}
	defer db.Close()
	rows, err := db.QueryContext(ctx, `SELECT c.TABLE_NAME, c.COLUMN_NAME
		FROM information_schema.COLUMNS c JOIN information_schema.TABLES t
			ON t.TABLE_SCHEMA = c.TABLE_SCHEMA AND t.TABLE_NAME = c.TABLE_NAME
		WHERE c.TABLE_SCHEMA = ? AND t.TABLE_TYPE = 'BASE TABLE'
		ORDER BY c.TABLE_NAME, c.ORDINAL_POSITION`, cfg.DBName)
	if err != nil {
		t.Fatalf("raw scan: list columns of %s: %v", cfg.DBName, err)
	}
	type column struct{ table, name string }
	var cols []column
	for rows.Next() {
		var c column
		if err := rows.Scan(&c.table, &c.name); err != nil {
			t.Fatalf("raw scan: %v", err)
		}
		cols = append(cols, c)
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("raw scan: %v", err)
	}
	rows.Close()
	if len(cols) == 0 {
		t.Fatalf("raw scan: database %s has no tables", cfg.DBName)
	}
	quote := func(name string) string { return "`" + strings.ReplaceAll(name, "`", "``") + "`" }
	// The needle travels as hex, so that no character set conversion can touch it.
	hexNeedle := hex.EncodeToString(needle)
	for _, c := range cols {
		var found bool
		q := "SELECT EXISTS (SELECT 1 FROM " + quote(c.table) + " WHERE LOCATE(UNHEX(?), CAST(" + quote(c.name) + " AS BINARY)) > 0)"
		if err := db.QueryRowContext(ctx, q, hexNeedle).Scan(&found); err != nil {
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
