package main

import (
	"context"
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/strata-events/strata/internal/testenv"
)

// The commands end to end on PostgreSQL and MySQL, each test in a fresh schema or database.
// They run when STRATA_TEST_POSTGRES / STRATA_TEST_MYSQL (or the default addresses) answer.

const (
	defaultTestPostgres = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
	defaultTestMySQL    = "mysql://root@127.0.0.1:3306/test"
)

func pingPostgres(ctx context.Context, dsn string) error {
	c, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return err
	}
	defer c.Close(ctx)
	return c.Ping(ctx)
}

// postgresDB returns a --db value for a fresh schema that is dropped after the test.
func postgresDB(t *testing.T) string {
	t.Helper()
	dsn := testenv.Service(t, "STRATA_TEST_POSTGRES", defaultTestPostgres, pingPostgres)
	schema := fmt.Sprintf("strata_cmdtest_%x", uuid.New().String()[:8])
	t.Cleanup(func() {
		ctx := context.Background()
		c, err := pgx.Connect(ctx, dsn)
		if err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
			return
		}
		defer c.Close(ctx)
		if _, err := c.Exec(ctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{schema}.Sanitize()+" CASCADE"); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
	})
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("schema", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

func pingMySQL(ctx context.Context, dsn string) error {
	u, err := url.Parse(dsn)
	if err != nil {
		return err
	}
	cfg, err := mysqlConfig(u)
	if err != nil {
		return err
	}
	db, err := openMySQL(cfg, 1)
	if err != nil {
		return err
	}
	defer db.Close()
	return db.PingContext(ctx)
}

// mysqlDB returns a --db value for a fresh database that is dropped after the test.
func mysqlDB(t *testing.T) string {
	t.Helper()
	dsn := testenv.Service(t, "STRATA_TEST_MYSQL", defaultTestMySQL, pingMySQL)
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := mysqlConfig(u)
	if err != nil {
		t.Fatal(err)
	}
	cfg.DBName = ""
	admin, err := openMySQL(cfg, 1)
	if err != nil {
		t.Fatal(err)
	}
	name := fmt.Sprintf("strata_cmdtest_%x", uuid.New().String()[:8])
	if _, err := admin.ExecContext(testContext(t), "CREATE DATABASE `"+name+"`"); err != nil {
		admin.Close()
		t.Fatalf("create database: %v", err)
	}
	t.Cleanup(func() {
		defer admin.Close()
		if _, err := admin.ExecContext(context.Background(), "DROP DATABASE IF EXISTS `"+name+"`"); err != nil {
			t.Errorf("drop database %s: %v", name, err)
		}
	})
	u.Path = "/" + name
	return u.String()
}

func TestPostgres(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name string
		fn   func(*testing.T, string)
	}{
		{"RoundTrip", testRoundTrip}, {"ReadAll", testReadAll}, {"Follow", testFollow}, {"Demo", testDemoTwice},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			c.fn(t, postgresDB(t))
		})
	}
	t.Run("Bench", func(t *testing.T) {
		t.Parallel()
		// The bench makes and drops its own scratch schemas.
		testBenchSmall(t, testenv.Service(t, "STRATA_TEST_POSTGRES", defaultTestPostgres, pingPostgres))
	})
}

func TestMySQL(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name string
		fn   func(*testing.T, string)
	}{
		{"RoundTrip", testRoundTrip}, {"ReadAll", testReadAll}, {"Follow", testFollow}, {"Demo", testDemoTwice},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			c.fn(t, mysqlDB(t))
		})
	}
	t.Run("Bench", func(t *testing.T) {
		t.Parallel()
		// The bench makes and drops its own scratch databases.
		testBenchSmall(t, testenv.Service(t, "STRATA_TEST_MYSQL", defaultTestMySQL, pingMySQL))
	})
}

func testBenchSmall(t *testing.T, db string) {
	for _, args := range [][]string{{"append", "--batch", "3"}, {"read", "--batch", "3"}, {"command"}} {
		out := mustCLI(t, db, append([]string{"bench"}, append(args, "--clients", "2", "--events", "20")...)...)
		if !strings.Contains(out, "raw ev/s") || !strings.Contains(out, "x\n") {
			t.Errorf("bench %s printed no ratio:\n%s", args[0], out)
		}
	}
	checkProtectBench(t, mustCLI(t, db, "bench", "protect", "--clients", "2", "--batch", "3", "--events", "100"))
	checkRetentionBench(t, mustCLI(t, db, "bench", "retention", "--batch", "7", "--events", "60"), true)
}

// checkRetentionBench checks the table of strata bench retention: both rates and their ratio
// (where there is a baseline), the target and the writers' rates.
func checkRetentionBench(t *testing.T, out string, baseline bool) {
	t.Helper()
	var row []string
	for l := range strings.Lines(out) {
		if f := strings.Fields(l); len(f) > 1 && f[1] == "retention" {
			row = f
		}
	}
	// backend retention events batch strata raw ratio ≥ target verdict writers alone during
	if len(row) != 13 || (baseline && !strings.HasSuffix(row[6], "x")) || (row[9] != "met" && row[9] != "missed") || row[10] != "2" || row[11] == "-" || row[12] == "-" {
		t.Errorf("bench retention printed %q:\n%s", row, out)
	}
	if !regexp.MustCompile(`\(append latency alone: p50 [0-9.]+ ms, p99 [0-9.]+ ms, max [0-9.]+ ms over [1-9][0-9]* appends; during retention: (p50 [0-9.]+ ms, p99 [0-9.]+ ms, max [0-9.]+ ms over [1-9][0-9]* appends|no appends)\)`).MatchString(out) {
		t.Errorf("bench retention printed no append latencies:\n%s", out)
	}
}

// checkProtectBench checks the table of strata bench protect: both workloads, each with an
// overhead and a verdict on its target.
func checkProtectBench(t *testing.T, out string) {
	t.Helper()
	for _, w := range []string{"protect append", "protect read"} {
		line := ""
		for l := range strings.Lines(out) {
			if strings.Contains(l, w) {
				line = l
			}
		}
		if !strings.Contains(line, "%") || !(strings.HasSuffix(strings.TrimSpace(line), "met") || strings.HasSuffix(strings.TrimSpace(line), "missed")) {
			t.Errorf("bench protect printed no overhead and verdict for %s:\n%s", w, out)
		}
	}
	if !strings.Contains(out, "median of 16 rounds") {
		t.Errorf("bench protect printed no rounds:\n%s", out)
	}
}

// TestPostgresReadersDoNotCreateASchema: a command that only reads, given a schema that holds
// no store (a typo in ?schema=), fails with exit 4 instead of creating the schema with empty
// tables and printing nothing; a command that writes still creates it.
func TestPostgresReadersDoNotCreateASchema(t *testing.T) {
	t.Parallel()
	db := postgresDB(t)
	u, err := url.Parse(db)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	schema := q.Get("schema")
	q.Del("schema")
	u.RawQuery = q.Encode()
	schemaExists := func() bool {
		ctx := testContext(t)
		c, err := pgx.Connect(ctx, u.String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close(ctx)
		var ok bool
		if err := c.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)`, schema).Scan(&ok); err != nil {
			t.Fatal(err)
		}
		return ok
	}
	for _, args := range [][]string{{"streams"}, {"read", "--all"}, {"query", "--tenant", "t"}, {"verify", "--quiet"}, {"proof", "01890a5d-ac96-774b-bcce-b302099a8057"}, {"transmit", "status"}} {
		r := cli(t, testContext(t), db, "", args...)
		if r.code != exitNotFound || !strings.Contains(r.stderr, schema) {
			t.Errorf("strata %s on a schema without a store: exit %d, want %d naming the schema: %s%s", strings.Join(args, " "), r.code, exitNotFound, r.stdout, r.stderr)
		}
	}
	if schemaExists() {
		t.Fatalf("a command that only reads created schema %s", schema)
	}
	mustCLI(t, db, "append", "s", "E", `{}`)
	if got := lines(t, mustCLI(t, db, "streams")); len(got) != 1 {
		t.Errorf("streams after the first append: %v", got)
	}
}

// TestMySQLReadersDoNotCreateTables: a command that only reads, given a MySQL database without
// strata's tables, fails with exit 4 instead of creating them and printing nothing.
func TestMySQLReadersDoNotCreateTables(t *testing.T) {
	t.Parallel()
	db := mysqlDB(t)
	for _, args := range [][]string{{"streams"}, {"read", "--all"}} {
		r := cli(t, testContext(t), db, "", args...)
		if r.code != exitNotFound || !strings.Contains(r.stderr, "no strata store") {
			t.Errorf("strata %s on a database without a store: exit %d, want %d: %s%s", strings.Join(args, " "), r.code, exitNotFound, r.stdout, r.stderr)
		}
	}
	mustCLI(t, db, "append", "s", "E", `{}`)
	if got := lines(t, mustCLI(t, db, "streams")); len(got) != 1 {
		t.Errorf("streams after the first append: %v", got)
	}
}
