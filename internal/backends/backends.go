// Package backends opens a fresh store of each backend for tests of the toolkit packages
// (projection, examples): the in-memory store, SQLite in a temporary directory, PostgreSQL in a
// fresh schema and MariaDB/MySQL in a fresh database, the last two from internal/testenv (skipped
// locally when absent, failing under CI=true).
package backends

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/strata-events/strata"
	"github.com/strata-events/strata/inmem"
	"github.com/strata-events/strata/internal/testenv"
	"github.com/strata-events/strata/mysql"
	"github.com/strata-events/strata/postgres"
	"github.com/strata-events/strata/sqlite"
)

// Names of the backends, for table-driven tests.
var (
	All = []string{"inmem", "sqlite", "postgres", "mysql"}
	// SQL are the backends whose read models live in the same database.
	SQL = []string{"sqlite", "postgres", "mysql"}
)

// Open returns a fresh store of the backend named kind, and a function that opens another
// Store on the same database (a second process's view). Both close when the test ends.
func Open(t testing.TB, kind string) (strata.Store, func(t testing.TB) strata.Store) {
	t.Helper()
	var open func(t testing.TB) strata.Store
	switch kind {
	case "inmem":
		s := inmem.New()
		t.Cleanup(func() { s.Close() })
		return s, func(t testing.TB) strata.Store { return s }
	case "sqlite":
		path := filepath.Join(t.TempDir(), "strata.db")
		open = func(t testing.TB) strata.Store {
			s, err := sqlite.Open(context.Background(), path, sqlite.WithSynchronous(sqlite.SyncNormal), sqlite.WithPollInterval(50*time.Millisecond))
			if err != nil {
				t.Fatalf("open sqlite: %v", err)
			}
			t.Cleanup(func() { s.Close() })
			return s
		}
	case "postgres":
		dsn := testenv.Postgres(t)
		schema := testenv.PostgresSchema(t, dsn)
		open = func(t testing.TB) strata.Store {
			s, err := postgres.Open(context.Background(), dsn, postgres.WithSchema(schema), postgres.WithPoll(100*time.Millisecond))
			if err != nil {
				t.Fatalf("open postgres: %v", err)
			}
			t.Cleanup(func() { s.Close() })
			return s
		}
	case "mysql":
		dsn := testenv.MySQLDatabase(t)
		open = func(t testing.TB) strata.Store {
			s, err := mysql.Open(context.Background(), dsn, mysql.WithPollInterval(50*time.Millisecond))
			if err != nil {
				t.Fatalf("open mysql: %v", err)
			}
			t.Cleanup(func() { s.Close() })
			return s
		}
	default:
		t.Fatalf("unknown backend %q", kind)
	}
	return open(t), open
}
