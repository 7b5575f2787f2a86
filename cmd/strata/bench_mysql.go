package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"

	mysqldrv "github.com/go-sql-driver/mysql"
	"github.com/google/uuid"

	"github.com/strata-events/strata/mysql"
)

// The baseline leaves position NULL, as strata's append does, and pages by seq: it has no
// sequencer, so its order is insertion order, with the gaps that strata exists to avoid.
const mysqlRawPage = `SELECT seq, id, stream, version, type, schema_version, data, meta, recorded_at, occurred_at
	FROM events WHERE seq > ? ORDER BY seq LIMIT 1000`

// mysqlRawMaxRows bounds the rows of one INSERT.
const mysqlRawMaxRows = 1000

// setupMySQLBench creates two scratch databases, one for strata and one for the baseline, and
// drops both in cleanup.
func setupMySQLBench(ctx context.Context, d dsn, clients int) (env *benchEnv, err error) {
	u, err := url.Parse(d.target)
	if err != nil {
		return nil, invalidf("bench", "bad MySQL URL: %s", redactErr(d.target, err))
	}
	cfg, err := mysqlConfig(u)
	if err != nil {
		return nil, err
	}
	adminCfg := cfg.Clone()
	adminCfg.DBName = ""
	admin, err := openMySQL(adminCfg, 1)
	if err != nil {
		return nil, err
	}
	if err := admin.PingContext(ctx); err != nil {
		admin.Close()
		return nil, fmt.Errorf("bench: connect: %w", err)
	}
	name := scratchName()
	strataDB, rawDB := name, name+"_raw"
	var (
		dropped bool
		closers []func() error
	)
	cleanup := func() error {
		var errs []error
		for _, c := range closers {
			errs = append(errs, c())
		}
		if !dropped {
			dropped = true
			dctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			for _, db := range []string{strataDB, rawDB} {
				if _, err := admin.ExecContext(dctx, "DROP DATABASE IF EXISTS `"+db+"`"); err != nil {
					errs = append(errs, fmt.Errorf("bench: drop scratch database %s: %w", db, err))
				}
			}
			errs = append(errs, admin.Close())
		}
		return errors.Join(errs...)
	}
	defer func() {
		if err != nil {
			cleanup()
		}
	}()
	for _, db := range []string{strataDB, rawDB} {
		// The names are ours: strata_bench_ and hex digits.
		if _, err := admin.ExecContext(ctx, "CREATE DATABASE `"+db+"` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"); err != nil {
			return nil, fmt.Errorf("bench: create scratch database: %w", err)
		}
	}

	su := *u
	su.Path = "/" + strataDB
	st, err := mysql.Open(ctx, su.String(), mysql.WithMaxConns(max(32, clients+2)))
	if err != nil {
		return nil, err
	}
	closers = append(closers, st.Close)

	rawCfg := cfg.Clone()
	rawCfg.DBName = rawDB
	raw, err := openMySQL(rawCfg, clients)
	if err != nil {
		return nil, err
	}
	closers = append(closers, raw.Close)
	// The baseline's table is a copy of strata's, made from the live schema: the same columns
	// and indexes, so the two cannot drift apart.
	if _, err := raw.ExecContext(ctx, "CREATE TABLE events LIKE `"+strataDB+"`.events"); err != nil {
		return nil, fmt.Errorf("bench: raw baseline table: %w", err)
	}
	return &benchEnv{st: st, raw: &mysqlRaw{db: raw}, stamped: true, cleanup: cleanup,
		rawNote: "no sequencer: inserts leave position NULL and reads page by the AUTO_INCREMENT key seq"}, nil
}

// mysqlConfig turns a mysql:// URL into the driver's configuration, with the session settings
// strata's backend uses (UTC, parsed times, interpolated parameters).
func mysqlConfig(u *url.URL) (*mysqldrv.Config, error) {
	host := u.Host
	if u.Port() == "" {
		host = net.JoinHostPort(u.Hostname(), "3306")
	}
	native := "tcp(" + host + ")/" + url.PathEscape(strings.TrimPrefix(u.Path, "/"))
	if u.RawQuery != "" {
		native += "?" + u.RawQuery
	}
	cfg, err := mysqldrv.ParseDSN(native)
	if err != nil {
		return nil, invalidf("bench", "bad MySQL URL: %v", err)
	}
	if u.User != nil {
		cfg.User = u.User.Username()
		cfg.Passwd, _ = u.User.Password()
	}
	cfg.ParseTime = true
	cfg.Loc = time.UTC
	cfg.InterpolateParams = true
	cfg.Collation = "utf8mb4_bin"
	if cfg.Params == nil {
		cfg.Params = map[string]string{}
	}
	cfg.Params["time_zone"] = "'+00:00'"
	return cfg, nil
}

func openMySQL(cfg *mysqldrv.Config, conns int) (*sql.DB, error) {
	c, err := mysqldrv.NewConnector(cfg)
	if err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	db := sql.OpenDB(c)
	db.SetMaxOpenConns(conns)
	db.SetMaxIdleConns(conns)
	return db, nil
}

type mysqlRaw struct {
	db *sql.DB
}

func (m *mysqlRaw) insert(ctx context.Context, _ int, stream string, first int64, evs []rawEvent) error {
	now := time.Now().UTC()
	if len(evs) <= mysqlRawMaxRows {
		return mysqlInsertRows(ctx, m.db, stream, first, evs, now)
	}
	tx, err := m.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	for i := 0; i < len(evs); i += mysqlRawMaxRows {
		j := min(i+mysqlRawMaxRows, len(evs))
		if err := mysqlInsertRows(ctx, tx, stream, first+int64(i), evs[i:j], now); err != nil {
			return err
		}
	}
	return tx.Commit()
}

type sqlExecer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// mysqlInsertRows writes evs with one multi-row INSERT.
func mysqlInsertRows(ctx context.Context, db sqlExecer, stream string, first int64, evs []rawEvent, now time.Time) error {
	var q strings.Builder
	q.WriteString("INSERT INTO events (id, stream, version, type, schema_version, data, meta, tenant, recorded_at, occurred_at) VALUES ")
	args := make([]any, 0, 10*len(evs))
	for i, e := range evs {
		if i > 0 {
			q.WriteByte(',')
		}
		q.WriteString("(?,?,?,?,?,?,?,?,?,?)")
		args = append(args, e.id[:], stream, first+int64(i), e.typ, e.schema, e.data, e.meta, e.tenant, now, now)
	}
	_, err := db.ExecContext(ctx, q.String(), args...)
	return err
}

func (m *mysqlRaw) readAll(ctx context.Context, _ int) (int, error) {
	var (
		seq, version      int64
		schema            int
		id, data, meta    []byte
		stream, typ       string
		recorded, occured time.Time
	)
	n := 0
	for {
		rows, err := m.db.QueryContext(ctx, mysqlRawPage, seq)
		if err != nil {
			return n, err
		}
		got := 0
		for rows.Next() {
			if err := rows.Scan(&seq, &id, &stream, &version, &typ, &schema, &data, &meta, &recorded, &occured); err != nil {
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

func (m *mysqlRaw) blank(ctx context.Context, ids []uuid.UUID, data, meta []byte) (int, error) {
	return blankIn(ctx, m.db, ids, data, meta)
}
