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

// MySQLContains returns "table.column" for every column of every base table of the database
// that dsn names (a mysql:// URL or a driver DSN) that holds needle in some row. Every column is
// searched as its bytes (CAST AS BINARY: the stored bytes of a VARBINARY or BLOB, the text form
// of a number or time). It sees current rows only: row versions that InnoDB keeps for purge are
// invisible to SQL.
func MySQLContains(t testing.TB, dsn string, needle []byte) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var cfg *mysqldrv.Config
	var err error
	if strings.HasPrefix(dsn, "mysql://") {
		if cfg, err = mysqlConfig(dsn); err == nil {
			u, _ := url.Parse(dsn)
			cfg.DBName = strings.TrimPrefix(u.Path, "/")
		}
	} else {
		cfg, err = mysqldrv.ParseDSN(dsn)
	}
	if err != nil {
		t.Fatalf("raw scan: %v", err)
	}
	db, err := sql.Open("mysql", cfg.FormatDSN())
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
	var hits []string
	for _, c := range cols {
		var found bool
		q := "SELECT EXISTS (SELECT 1 FROM " + quote(c.table) + " WHERE LOCATE(UNHEX(?), CAST(" + quote(c.name) + " AS BINARY)) > 0)"
		if err := db.QueryRowContext(ctx, q, hexNeedle).Scan(&found); err != nil {
			t.Fatalf("raw scan: %s.%s: %v", c.table, c.name, err)
		}
		if found {
			hits = append(hits, c.table+"."+c.name)
		}
	}
	return hits
}
