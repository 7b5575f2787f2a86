// Package backends opens a fresh store of each backend for tests of the toolkit packages
// (projection, examples): the in-memory store, SQLite in a temporary directory, PostgreSQL in a
// fresh schema and MariaDB/MySQL in a fresh database, the last two from internal/testenv (skipped
// locally when absent, failing under CI=true).
package backends

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"path/filepath"
	"testing"
	"time"

	mysqldrv "github.com/go-sql-driver/mysql"

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

// DefaultMySQL is the local MariaDB that STRATA_TEST_MYSQL defaults to.
const DefaultMySQL = "mysql://root@127.0.0.1:3306/test"

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
		dsn := MySQLDatabase(t)
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

// mysqlServer returns the test server's driver config without a database.
func mysqlServer(t testing.TB) *mysqldrv.Config {
	t.Helper()
	dsn := testenv.Service(t, "STRATA_TEST_MYSQL", DefaultMySQL, func(ctx context.Context, dsn string) error {
		cfg, err := parseMySQL(dsn)
		if err != nil {
			return err
		}
		cfg.DBName = ""
		db, err := sql.Open("mysql", cfg.FormatDSN())
		if err != nil {
			return err
		}
		defer db.Close()
		return db.PingContext(ctx)
	})
	cfg, err := parseMySQL(dsn)
	if err != nil {
		t.Fatal(err)
	}
	cfg.DBName = ""
	return cfg
}

func parseMySQL(dsn string) (*mysqldrv.Config, error) {
	u, err := url.Parse(dsn)
	if err != nil || u.Scheme != "mysql" {
		return mysqldrv.ParseDSN(dsn)
	}
	cfg := mysqldrv.NewConfig()
	cfg.Net, cfg.Addr = "tcp", u.Host
	cfg.User = u.User.Username()
	cfg.Passwd, _ = u.User.Password()
	if len(u.Path) > 1 {
		cfg.DBName = u.Path[1:]
	}
	return cfg, nil
}

// MySQLDatabase creates a database with a random name on the test server and returns a driver
// DSN for it; it is dropped when the test ends.
func MySQLDatabase(t testing.TB) string {
	t.Helper()
	cfg := mysqlServer(t)
	admin, err := sql.Open("mysql", cfg.FormatDSN())
	if err != nil {
		t.Fatal(err)
	}
	var b [6]byte
	rand.Read(b[:])
	name := "strata_test_" + hex.EncodeToString(b[:])
	if _, err := admin.Exec("CREATE DATABASE " + name); err != nil {
		admin.Close()
		t.Fatalf("create database: %v", err)
	}
	t.Cleanup(func() {
		if _, err := admin.Exec("DROP DATABASE " + name); err != nil {
			t.Errorf("drop database %s: %v", name, err)
		}
		admin.Close()
	})
	cfg.DBName = name
	return cfg.FormatDSN()
}
