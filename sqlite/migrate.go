package sqlite

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

	"github.com/strata-events/strata"
)

// applicationID marks a file as a strata database (PRAGMA application_id): "strt".
const applicationID = 0x73747274

//go:embed migrations/*.sql
var migrationFS embed.FS

type migration struct {
	version int
	name    string
	sql     string
}

// migrations returns the embedded migrations in version order. A file is named NNNN_what.sql,
// and the versions run 1, 2, 3... with no gaps.
func migrations() ([]migration, error) {
	names, err := fs.Glob(migrationFS, "migrations/*.sql")
	if err != nil {
		return nil, err
	}
	var ms []migration
	for _, n := range names {
		base := path.Base(n)
		num, _, ok := strings.Cut(base, "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v < 1 {
			return nil, fmt.Errorf("migration %s: name must start with a version number and '_'", base)
		}
		b, err := migrationFS.ReadFile(n)
		if err != nil {
			return nil, err
		}
		ms = append(ms, migration{version: v, name: base, sql: string(b)})
	}
	slices.SortFunc(ms, func(a, b migration) int { return a.version - b.version })
	for i, m := range ms {
		if m.version != i+1 {
			return nil, fmt.Errorf("migration %s: expected version %d", m.name, i+1)
		}
	}
	return ms, nil
}

// migrate brings the schema to the newest version. It runs in one BEGIN IMMEDIATE transaction
// (db is opened with _txlock=immediate), so of two processes opening a new file at once, one
// migrates and the other then finds the schema current. The version is PRAGMA user_version.
func migrate(ctx context.Context, db *sql.DB, op string, fail func(context.Context, string, error) error) error {
	ms, err := migrations()
	if err != nil {
		return strata.Errorf(strata.Internal, op, "embedded migrations: %w", err)
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fail(ctx, op, err)
	}
	defer tx.Rollback()
	version, appID, err := checkFile(ctx, tx, op, len(ms), fail)
	if err != nil {
		return err
	}
	if version == len(ms) && appID == applicationID {
		return nil
	}
	for _, m := range ms[version:] {
		if _, err := tx.ExecContext(ctx, m.sql); err != nil {
			return fail(ctx, op+": migration "+m.name, err)
		}
	}
	// PRAGMAs take no parameters; both values are integers formatted here.
	if _, err := tx.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d; PRAGMA application_id = %d", len(ms), applicationID)); err != nil {
		return fail(ctx, op, err)
	}
	if err := tx.Commit(); err != nil {
		return fail(ctx, op, err)
	}
	return nil
}

// checkFile reads the file's schema version and application_id and refuses a file that is
// another application's, or of a newer strata than one that knows known migrations. It only
// reads, so setup runs it before switching the file to WAL mode, and migrate again in its
// transaction.
func checkFile(ctx context.Context, q interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
}, op string, known int, fail func(context.Context, string, error) error) (version, appID int, err error) {
	if err := q.QueryRowContext(ctx, "PRAGMA user_version").Scan(&version); err != nil {
		return 0, 0, fail(ctx, op, err)
	}
	if err := q.QueryRowContext(ctx, "PRAGMA application_id").Scan(&appID); err != nil {
		return 0, 0, fail(ctx, op, err)
	}
	if appID != 0 && appID != applicationID {
		return 0, 0, strata.Errorf(strata.Invalid, op, "the file is not a strata database (application_id %#x)", appID)
	}
	if appID == 0 && version != 0 {
		// strata stamps application_id in the transaction that first sets user_version: a
		// versioned file without it belongs to another application.
		return 0, 0, strata.Errorf(strata.Invalid, op, "the file is not a strata database (user_version %d without strata's application_id)", version)
	}
	if version > known {
		return 0, 0, strata.Errorf(strata.Internal, op, "the database schema is at version %d, newer than this strata knows (%d): upgrade strata", version, known)
	}
	if version == 0 {
		var n int
		if err := q.QueryRowContext(ctx, "SELECT count(*) FROM sqlite_schema").Scan(&n); err != nil {
			return 0, 0, fail(ctx, op, err)
		}
		if n > 0 {
			return 0, 0, strata.Errorf(strata.Invalid, op, "the file holds %d tables or indexes that strata did not create; refusing to add its schema", n)
		}
	}
	return version, appID, nil
}
