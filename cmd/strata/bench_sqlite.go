package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/google/uuid"
	_ "modernc.org/sqlite" // the driver strata's sqlite package uses, registered as "sqlite"

	"github.com/strata-events/strata/sqlite"
)

const (
	sqliteRawInsert = `INSERT INTO events (id, stream, version, type, schema, data, meta, tenant, recorded_at, occurred_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
	sqliteRawPage = `SELECT position, id, stream, version, type, schema, data, meta, recorded_at, occurred_at
		FROM events WHERE position > ? ORDER BY position LIMIT 1000`
)

// setupSQLiteBench makes a scratch directory next to the database file and opens strata and the
// baseline there, with the same durability (WAL, synchronous FULL) and one writer each.
func setupSQLiteBench(ctx context.Context, d dsn, clients int) (*benchEnv, error) {
	dir, err := os.MkdirTemp(filepath.Dir(d.target), ".strata-bench-")
	if err != nil {
		return nil, fmt.Errorf("bench: scratch directory: %w", err)
	}
	st, err := sqlite.Open(ctx, filepath.Join(dir, "strata.db"), sqlite.WithReadConns(max(clients, runtime.GOMAXPROCS(0))))
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	raw, err := openSQLiteRaw(ctx, filepath.Join(dir, "raw.db"), filepath.Join(dir, "strata.db"), clients)
	if err != nil {
		st.Close()
		os.RemoveAll(dir)
		return nil, fmt.Errorf("bench: raw baseline: %w", err)
	}
	return &benchEnv{st: st, raw: raw, cleanup: func() error {
		return errors.Join(st.Close(), raw.w.Close(), raw.r.Close(), os.RemoveAll(dir))
	}}, nil
}

// sqliteEventsDDL returns the statements that made the events table of the database at path
// and its indexes, read from the live schema: the baseline's table is a copy of strata's (the
// retention index too), so the two cannot drift apart.
func sqliteEventsDDL(ctx context.Context, path string) (string, error) {
	db, err := sql.Open("sqlite", "file:"+filepath.ToSlash(path)+"?mode=ro")
	if err != nil {
		return "", err
	}
	defer db.Close()
	rows, err := db.QueryContext(ctx, `SELECT sql FROM sqlite_schema
		WHERE tbl_name = 'events' AND type IN ('table', 'index') AND sql IS NOT NULL
		ORDER BY type = 'index', rowid`)
	if err != nil {
		return "", fmt.Errorf("read the events table's schema: %w", err)
	}
	defer rows.Close()
	var ddl []string
	for rows.Next() {
		var stmt string
		if err := rows.Scan(&stmt); err != nil {
			return "", err
		}
		ddl = append(ddl, stmt)
	}
	if err := rows.Err(); err != nil {
		return "", err
	}
	if len(ddl) == 0 {
		return "", fmt.Errorf("%s has no events table", path)
	}
	return strings.Join(ddl, ";\n"), nil
}

type sqliteRaw struct {
	w   *sql.DB // one connection, like strata's writer
	r   *sql.DB
	ins *sql.Stmt
}

// openSQLiteRaw creates the baseline's database at path, with a copy of the events table of
// the strata database at like.
func openSQLiteRaw(ctx context.Context, path, like string, clients int) (*sqliteRaw, error) {
	ddl, err := sqliteEventsDDL(ctx, like)
	if err != nil {
		return nil, err
	}
	uri := "file:" + filepath.ToSlash(path) + "?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)"
	w, err := sql.Open("sqlite", uri+"&_pragma=synchronous(FULL)&_txlock=immediate")
	if err != nil {
		return nil, err
	}
	w.SetMaxOpenConns(1)
	r, err := sql.Open("sqlite", uri)
	if err != nil {
		w.Close()
		return nil, err
	}
	r.SetMaxOpenConns(max(clients, runtime.GOMAXPROCS(0)))
	raw := &sqliteRaw{w: w, r: r}
	if _, err := w.ExecContext(ctx, ddl); err != nil {
		w.Close()
		r.Close()
		return nil, err
	}
	if raw.ins, err = w.PrepareContext(ctx, sqliteRawInsert); err != nil {
		w.Close()
		r.Close()
		return nil, err
	}
	return raw, nil
}

func (s *sqliteRaw) insert(ctx context.Context, _ int, stream string, first int64, evs []rawEvent) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	ins := tx.StmtContext(ctx, s.ins)
	now := time.Now().UnixMicro()
	for i, e := range evs {
		if _, err := ins.ExecContext(ctx, e.id[:], stream, first+int64(i), e.typ, e.schema, e.data, string(e.meta), e.tenant, now, now); err != nil {
			return err
		}
	}
	return tx.Commit()
}

func (s *sqliteRaw) readAll(ctx context.Context, _ int) (int, error) {
	var (
		pos, version, rec, occ int64
		schema                 int
		id, data               []byte
		stream, typ, meta      string
	)
	n := 0
	for {
		rows, err := s.r.QueryContext(ctx, sqliteRawPage, pos)
		if err != nil {
			return n, err
		}
		got := 0
		for rows.Next() {
			if err := rows.Scan(&pos, &id, &stream, &version, &typ, &schema, &data, &meta, &rec, &occ); err != nil {
				rows.Close()
				return n, err
			}
			got++
		}
		if err := rows.Close(); err != nil {
			return n, err
		}
		if err := rows.Err(); err != nil {
			return n, err
		}
		n += got
		if got < 1000 {
			return n, nil
		}
	}
}

func (s *sqliteRaw) blank(ctx context.Context, ids []uuid.UUID, data, meta []byte) (int, error) {
	return blankIn(ctx, s.w, ids, data, string(meta))
}

// blankIn blanks the events ids with UPDATE ... WHERE id IN (...), in statements of at most
// 2500 IDs (SQLite's and MySQL's bounds on parameters are far above) in one transaction.
func blankIn(ctx context.Context, db *sql.DB, ids []uuid.UUID, data []byte, meta any) (int, error) {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback()
	n := 0
	for i := 0; i < len(ids); i += 2500 {
		chunk := ids[i:min(i+2500, len(ids))]
		args := []any{data, meta}
		for _, id := range chunk {
			args = append(args, id[:])
		}
		res, err := tx.ExecContext(ctx, `UPDATE events SET data = ?, meta = ? WHERE id IN (?`+strings.Repeat(`, ?`, len(chunk)-1)+`)`, args...)
		if err != nil {
			return 0, err
		}
		k, err := res.RowsAffected()
		if err != nil {
			return 0, err
		}
		n += int(k)
	}
	return n, tx.Commit()
}
