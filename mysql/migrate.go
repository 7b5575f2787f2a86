package mysql

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/strata-events/strata"
)

//go:embed migrations/*.sql
var migrationFS embed.FS

type migration struct {
	version int
	name    string
	stmts   []string
}

// migrations returns the embedded migrations in version order. A file is named NNNN_what.sql
// and holds statements separated by lines ending in ";".
func migrations() ([]migration, error) {
	entries, err := fs.ReadDir(migrationFS, "migrations")
	if err != nil {
		return nil, err
	}
	var ms []migration
	for _, e := range entries {
		num, _, ok := strings.Cut(e.Name(), "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v <= 0 {
			return nil, fmt.Errorf("migration %s: name must start with a positive number and _", e.Name())
		}
		b, err := migrationFS.ReadFile(path.Join("migrations", e.Name()))
		if err != nil {
			return nil, err
		}
		ms = append(ms, migration{version: v, name: e.Name(), stmts: splitSQL(string(b))})
	}
	slices.SortFunc(ms, func(a, b migration) int { return a.version - b.version })
	for i := 1; i < len(ms); i++ {
		if ms[i].version == ms[i-1].version {
			return nil, fmt.Errorf("migrations %s and %s have the same version", ms[i-1].name, ms[i].name)
		}
	}
	return ms, nil
}

// splitSQL splits a script into statements at lines that end with ";", dropping "--" comment
// lines. The embedded scripts are written to that rule.
func splitSQL(script string) []string {
	var stmts []string
	var cur strings.Builder
	for line := range strings.Lines(script) {
		t := strings.TrimSpace(line)
		if t == "" || strings.HasPrefix(t, "--") {
			continue
		}
		cur.WriteString(line)
		if strings.HasSuffix(t, ";") {
			stmts = append(stmts, strings.TrimSuffix(strings.TrimSpace(cur.String()), ";"))
			cur.Reset()
		}
	}
	if s := strings.TrimSpace(cur.String()); s != "" {
		stmts = append(stmts, s)
	}
	return stmts
}

// migrationLockWait is how long migrate waits for another process's migration.
var migrationLockWait = 2 * time.Minute

// migrate applies the embedded migrations that the database lacks. It holds a named lock
// (GET_LOCK) for the whole run, so that processes opening the store at once apply each
// migration once. MySQL commits DDL implicitly, so the migrations are idempotent and a run that
// stopped half way is repeated from its last recorded version.
func migrate(ctx context.Context, db *sql.DB) error {
	ms, err := migrations()
	if err != nil {
		return err
	}
	conn, err := db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()

	// Lock names are at most 64 characters and server-wide: name the lock after the database.
	const lockName = "LEFT(CONCAT('strata-migrate:', DATABASE()), 64)"
	var got sql.NullInt64
	if err := conn.QueryRowContext(ctx, "SELECT GET_LOCK("+lockName+", ?)", int(migrationLockWait.Seconds())).Scan(&got); err != nil {
		return err
	}
	if !got.Valid || got.Int64 != 1 {
		return strata.Errorf(strata.Unavailable, "migrate", "could not take the migration lock within %s: another process holds it (migrating this database, or stuck)", migrationLockWait)
	}
	defer conn.ExecContext(context.WithoutCancel(ctx), "DO RELEASE_LOCK("+lockName+")")

	// CREATE TABLE IF NOT EXISTS needs the CREATE privilege even when the table exists: it runs
	// only where the table is missing, so that a role that may only read (an auditor's, for
	// strata verify) opens a database that is up to date.
	var have int
	if err := conn.QueryRowContext(ctx, "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name = 'strata_migrations'").Scan(&have); err != nil {
		return err
	}
	if have == 0 {
		if _, err := conn.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS strata_migrations (
			version    INT         NOT NULL,
			name       VARCHAR(255) NOT NULL,
			applied_at DATETIME(6) NOT NULL,
			PRIMARY KEY (version)
		) ENGINE = InnoDB`); err != nil {
			return err
		}
	}
	var current int
	if err := conn.QueryRowContext(ctx, "SELECT COALESCE(MAX(version), 0) FROM strata_migrations").Scan(&current); err != nil {
		return err
	}
	if latest := ms[len(ms)-1].version; current > latest {
		return fmt.Errorf("migrate: the database has schema version %d, newer than this strata knows (%d); upgrade strata", current, latest)
	}
	for _, m := range ms {
		if m.version <= current {
			continue
		}
		for _, stmt := range m.stmts {
			if _, err := conn.ExecContext(ctx, stmt); err != nil {
				return fmt.Errorf("migration %s: %w", m.name, err)
			}
		}
		if _, err := conn.ExecContext(ctx, "INSERT INTO strata_migrations (version, name, applied_at) VALUES (?, ?, UTC_TIMESTAMP(6))", m.version, m.name); err != nil {
			return fmt.Errorf("migration %s: %w", m.name, err)
		}
	}
	return nil
}
