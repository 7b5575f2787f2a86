package testenv

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"strings"
	"testing"
	"time"

	mysqldrv "github.com/go-sql-driver/mysql"
)

// DefaultMySQL is the local MariaDB that STRATA_TEST_MYSQL defaults to.
const DefaultMySQL = "mysql://root@127.0.0.1:3306/test"

// mysqlConfig turns a mysql:// URL into a driver config without a database.
func mysqlConfig(dsn string) (*mysqldrv.Config, error) {
	u, err := url.Parse(dsn)
	if err != nil {
		return nil, err
	}
	cfg := mysqldrv.NewConfig()
	cfg.Net = "tcp"
	cfg.Addr = u.Host
	cfg.User = u.User.Username()
	cfg.Passwd, _ = u.User.Password()
	return cfg, nil
}

// MySQLDatabase returns a mysql:// URL of a fresh database on the test server
// (STRATA_TEST_MYSQL, default DefaultMySQL), dropped when the test ends; it skips the test, or
// fails it in CI, when the server does not answer.
func MySQLDatabase(t testing.TB) string {
	t.Helper()
	var cfg *mysqldrv.Config
	dsn := Service(t, "STRATA_TEST_MYSQL", DefaultMySQL, func(ctx context.Context, dsn string) error {
		c, err := mysqlConfig(dsn)
		if err != nil {
			return err
		}
		db, err := sql.Open("mysql", c.FormatDSN())
		if err != nil {
			return err
		}
		defer db.Close()
		cfg = c
		return db.PingContext(ctx)
	})
	admin, err := sql.Open("mysql", cfg.FormatDSN())
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 6)
	rand.Read(b)
	name := "strata_test_" + hex.EncodeToString(b)
	if _, err := admin.Exec("CREATE DATABASE " + name); err != nil {
		admin.Close()
		t.Fatalf("create database: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := admin.ExecContext(ctx, "DROP DATABASE "+name); err != nil {
			t.Errorf("drop database %s: %v", name, err)
		}
		admin.Close()
	})
	u, _ := url.Parse(dsn)
	u.Path = "/" + name
	return u.String()
}

// MySQLRowsContaining returns "table: row" for every row of every table of the database at the
// mysql:// URL dsn whose columns, as bytes, contain needle.
func MySQLRowsContaining(t testing.TB, dsn string, needle []byte) []string {
	t.Helper()
	cfg, err := mysqlConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(dsn)
	cfg.DBName = strings.TrimPrefix(u.Path, "/")
	db, err := sql.Open("mysql", cfg.FormatDSN())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	return rowsContaining(t, db, "SELECT table_name FROM information_schema.tables WHERE table_schema = DATABASE()", "`", needle)
}

// rowsContaining scans every table that listTables names for needle.
func rowsContaining(t testing.TB, db *sql.DB, listTables, quote string, needle []byte) []string {
	t.Helper()
	ctx := context.Background()
	rows, err := db.QueryContext(ctx, listTables)
	if err != nil {
		t.Fatal(err)
	}
	var tables []string
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			t.Fatal(err)
		}
		tables = append(tables, name)
	}
	rows.Close()
	var hits []string
	for _, table := range tables {
		rs, err := db.QueryContext(ctx, "SELECT * FROM "+quote+table+quote)
		if err != nil {
			t.Fatalf("scan %s: %v", table, err)
		}
		cols, _ := rs.Columns()
		vals := make([]sql.RawBytes, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		for rs.Next() {
			if err := rs.Scan(ptrs...); err != nil {
				t.Fatalf("scan %s: %v", table, err)
			}
			for _, v := range vals {
				if strings.Contains(string(v), string(needle)) {
					hits = append(hits, table+": "+string(v))
				}
			}
		}
		rs.Close()
	}
	return hits
}
