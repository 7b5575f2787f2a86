package main

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/strata-events/strata/postgres"
)

const postgresRawPage = `SELECT seq, tx, version, recorded_at, occurred_at, id, schema, stream, type, meta, data
	FROM events WHERE (tx, seq) > ($1, $2) ORDER BY tx, seq LIMIT 1000`

// postgresRawMaxRows bounds the rows of one INSERT (10 parameters each, 65535 at most).
const postgresRawMaxRows = 5000

// setupPostgresBench creates two scratch schemas, one for strata and one for the baseline, and
// drops both in cleanup. Each baseline client has its own connection; strata's pool gets as many.
func setupPostgresBench(ctx context.Context, d dsn, clients int) (env *benchEnv, err error) {
	admin, err := pgx.Connect(ctx, d.target)
	if err != nil {
		return nil, fmt.Errorf("bench: connect: %w", err)
	}
	name := scratchName()
	strataSchema, rawSchema := name, name+"_raw"
	var (
		dropped bool
		conns   []*pgx.Conn
		closers []func() error
	)
	cleanup := func() error {
		var errs []error
		for _, c := range closers {
			errs = append(errs, c())
		}
		for _, c := range conns {
			errs = append(errs, c.Close(context.Background()))
		}
		if !dropped {
			dropped = true
			// The command's context may be cancelled (^C): drop with a fresh one.
			dctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			for _, s := range []string{strataSchema, rawSchema} {
				if _, err := admin.Exec(dctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{s}.Sanitize()+" CASCADE"); err != nil {
					errs = append(errs, fmt.Errorf("bench: drop scratch schema %s: %w", s, err))
				}
			}
			errs = append(errs, admin.Close(dctx))
		}
		return errors.Join(errs...)
	}
	defer func() {
		if err != nil {
			cleanup()
		}
	}()

	// The DSN's own schema, if any, is replaced by the scratch one; its group_commit is kept.
	st, err := postgres.Open(ctx, withPoolSize(d.target, clients+2), append(d.postgresOptions(), postgres.WithSchema(strataSchema))...)
	if err != nil {
		return nil, err
	}
	closers = append(closers, st.Close)

	if _, err := admin.Exec(ctx, "CREATE SCHEMA "+pgx.Identifier{rawSchema}.Sanitize()); err != nil {
		return nil, fmt.Errorf("bench: create scratch schema: %w", err)
	}
	// The baseline's table is a copy of strata's, made from the live schema: the same columns,
	// constraints and indexes (the retention index too), so the two cannot drift apart.
	if _, err := admin.Exec(ctx, "CREATE TABLE "+pgx.Identifier{rawSchema, "events"}.Sanitize()+
		" (LIKE "+pgx.Identifier{strataSchema, "events"}.Sanitize()+" INCLUDING ALL)"); err != nil {
		return nil, fmt.Errorf("bench: raw baseline table: %w", err)
	}
	cfg, err := pgx.ParseConfig(d.target)
	if err != nil {
		return nil, err
	}
	cfg.RuntimeParams["search_path"] = rawSchema
	for range clients {
		c, err := pgx.ConnectConfig(ctx, cfg)
		if err != nil {
			return nil, fmt.Errorf("bench: raw baseline: connect: %w", err)
		}
		conns = append(conns, c)
	}
	grouping := "strata: group commit off (group_commit=0)"
	if n := d.groupWriters(); n > 0 {
		grouping = fmt.Sprintf("strata: group commit on, %d writers; add ?group_commit=0 to the DSN to measure without", n)
	}
	return &benchEnv{st: st, raw: &postgresRaw{conns: conns}, cleanup: cleanup,
		rawNote: "no commit-order column: inserts write tx = 0; reads page by the same (tx, seq) key",
		note:    grouping}, nil
}

// withPoolSize sets pgxpool's pool_max_conns in a URL connection string unless it is set.
func withPoolSize(connString string, n int) string {
	u, err := url.Parse(connString)
	if err != nil || u.Scheme == "" {
		if strings.Contains(connString, "pool_max_conns") {
			return connString
		}
		return connString + " pool_max_conns=" + strconv.Itoa(n)
	}
	q := u.Query()
	if !q.Has("pool_max_conns") {
		q.Set("pool_max_conns", strconv.Itoa(n))
		u.RawQuery = q.Encode()
	}
	return u.String()
}

type postgresRaw struct {
	conns []*pgx.Conn // one per client
}

func (p *postgresRaw) insert(ctx context.Context, client int, stream string, first int64, evs []rawEvent) error {
	conn := p.conns[client]
	now := time.Now()
	// One multi-row INSERT is one statement and so one transaction; larger batches take several
	// statements in an explicit transaction.
	if len(evs) <= postgresRawMaxRows {
		return pgInsertRows(ctx, conn, stream, first, evs, now)
	}
	tx, err := conn.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(ctx)
	for i := 0; i < len(evs); i += postgresRawMaxRows {
		j := min(i+postgresRawMaxRows, len(evs))
		if err := pgInsertRows(ctx, tx, stream, first+int64(i), evs[i:j], now); err != nil {
			return err
		}
	}
	return tx.Commit(ctx)
}

// pgExecer is a connection or a transaction.
type pgExecer interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

// pgInsertRows writes evs with one multi-row INSERT.
func pgInsertRows(ctx context.Context, db pgExecer, stream string, first int64, evs []rawEvent, now time.Time) error {
	var q strings.Builder
	q.WriteString("INSERT INTO events (tx, version, recorded_at, occurred_at, id, schema, stream, type, tenant, meta, data) VALUES ")
	args := make([]any, 0, 10*len(evs))
	for i, e := range evs {
		if i > 0 {
			q.WriteByte(',')
		}
		b := len(args)
		fmt.Fprintf(&q, "(0,$%d,$%d,$%d,$%d,$%d,$%d,$%d,$%d,$%d,$%d)", b+1, b+2, b+3, b+4, b+5, b+6, b+7, b+8, b+9, b+10)
		var tenant []byte // NULL without a tenant, as strata writes it
		if e.tenant != "" {
			tenant = []byte(e.tenant)
		}
		args = append(args, first+int64(i), now, now, [16]byte(e.id), int32(e.schema), stream, e.typ, tenant, e.meta, e.data)
	}
	_, err := db.Exec(ctx, q.String(), args...)
	return err
}

func (p *postgresRaw) readAll(ctx context.Context, client int) (int, error) {
	conn := p.conns[client]
	var (
		seq, tx, version int64
		rec, occ         time.Time
		id               [16]byte
		schema           int32
		stream, typ      string
		meta, data       []byte
	)
	n := 0
	for {
		rows, err := conn.Query(ctx, postgresRawPage, tx, seq)
		if err != nil {
			return n, err
		}
		got := 0
		for rows.Next() {
			if err := rows.Scan(&seq, &tx, &version, &rec, &occ, &id, &schema, &stream, &typ, &meta, &data); err != nil {
				rows.Close()
				return n, err
			}
			got++
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return n, err
		}
		n += got
		if got < 1000 {
			return n, nil
		}
	}
}

func (p *postgresRaw) blank(ctx context.Context, ids []uuid.UUID, data, meta []byte) (int, error) {
	keys := make([][16]byte, len(ids)) // as uuid[], in the binary format
	for i, id := range ids {
		keys[i] = id
	}
	tag, err := p.conns[0].Exec(ctx, `UPDATE events e SET data = $2, meta = $3 FROM unnest($1::uuid[]) AS t(id) WHERE e.id = t.id`, keys, data, meta)
	return int(tag.RowsAffected()), err
}
