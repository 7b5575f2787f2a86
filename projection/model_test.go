package projection_test

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/strata-events/strata"
	"github.com/strata-events/strata/postgres"
	"github.com/strata-events/strata/projection"
)

// model is a test read model: one row per applied event, in the store's database for the SQL
// backends (so a second apply of an event fails on the primary key) and in memory for inmem.
// Each apply checks that the stream's previous version was applied first.
type model struct {
	table string
	mu    sync.Mutex
	mem   map[string]row // inmem: event ID → row
	owner string
}

type row struct {
	Stream  string
	Version int64
	Owner   string
	Part    int
}

func newModel(store strata.Store, version int) *model {
	m := &model{table: "applied_v" + strconv.Itoa(version), mem: map[string]row{}}
	if pg, ok := store.(*postgres.Store); ok {
		m.table = pgx.Identifier{pg.Schema(), m.table}.Sanitize()
	}
	return m
}

// exec runs a statement with ? placeholders on tx.
func execSQL(ctx context.Context, tx any, q string, args ...any) error {
	switch tx := tx.(type) {
	case *sql.Tx:
		_, err := tx.ExecContext(ctx, q, args...)
		return err
	case pgx.Tx:
		_, err := tx.Exec(ctx, rebind(q), args...)
		return err
	}
	return fmt.Errorf("unexpected transaction %T", tx)
}

func queryInt(ctx context.Context, tx any, q string, args ...any) (int64, error) {
	var n sql.NullInt64
	var err error
	switch tx := tx.(type) {
	case *sql.Tx:
		err = tx.QueryRowContext(ctx, q, args...).Scan(&n)
	case pgx.Tx:
		err = tx.QueryRow(ctx, rebind(q), args...).Scan(&n)
	default:
		err = fmt.Errorf("unexpected transaction %T", tx)
	}
	return n.Int64, err
}

func rebind(q string) string {
	var b strings.Builder
	n := 0
	for _, r := range q {
		if r == '?' {
			n++
			b.WriteString("$" + strconv.Itoa(n))
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

func (m *model) setup(ctx context.Context, tx any) error {
	if tx == nil {
		return nil
	}
	return execSQL(ctx, tx, "CREATE TABLE IF NOT EXISTS "+m.table+" (event_id VARCHAR(36) NOT NULL UNIQUE, stream VARCHAR(200) NOT NULL, version BIGINT NOT NULL, owner VARCHAR(200) NOT NULL, part BIGINT NOT NULL, PRIMARY KEY (stream, version))")
}

func (m *model) clear(ctx context.Context, tx any, k strata.ProjectionKey) error {
	if tx == nil {
		m.mu.Lock()
		defer m.mu.Unlock()
		for id, r := range m.mem {
			if r.Part == k.Partition {
				delete(m.mem, id)
			}
		}
		return nil
	}
	return execSQL(ctx, tx, "DELETE FROM "+m.table+" WHERE part = ?", int64(k.Partition))
}

func (m *model) drop(ctx context.Context, tx any) error {
	if tx == nil {
		return nil
	}
	return execSQL(ctx, tx, "DROP TABLE "+m.table)
}

func (m *model) apply(ctx context.Context, c *projection.Context, e strata.Event) error {
	if c.Tx == nil {
		m.mu.Lock()
		defer m.mu.Unlock()
		if _, dup := m.mem[e.ID.String()]; dup {
			return nil // memory is not rolled back with a failed batch: apply idempotently
		}
		var last int64
		for _, r := range m.mem {
			if r.Stream == e.Stream {
				last = max(last, r.Version)
			}
		}
		if last >= e.Version {
			return fmt.Errorf("stream %s: version %d after %d", e.Stream, e.Version, last)
		}
		m.mem[e.ID.String()] = row{e.Stream, e.Version, m.owner, c.Key.Partition}
		return nil
	}
	last, err := queryInt(ctx, c.Tx, "SELECT max(version) FROM "+m.table+" WHERE stream = ?", e.Stream)
	if err != nil {
		return err
	}
	if last >= e.Version {
		return fmt.Errorf("stream %s: version %d after %d", e.Stream, e.Version, last)
	}
	return execSQL(ctx, c.Tx, "INSERT INTO "+m.table+" (event_id, stream, version, owner, part) VALUES (?, ?, ?, ?, ?)", e.ID.String(), e.Stream, e.Version, m.owner, int64(c.Key.Partition))
}

// rows returns the read model: event ID → row.
func (m *model) rows(t testing.TB, ctx context.Context, store strata.Store) map[string]row {
	t.Helper()
	out := map[string]row{}
	err := store.(strata.ProjectionStore).QueryProjection(ctx, func(tx any) error {
		q := "SELECT event_id, stream, version, owner FROM " + m.table
		switch tx := tx.(type) {
		case nil:
			m.mu.Lock()
			defer m.mu.Unlock()
			for k, v := range m.mem {
				out[k] = v
			}
			return nil
		case *sql.Tx:
			rs, err := tx.QueryContext(ctx, q)
			if err != nil {
				return err
			}
			defer rs.Close()
			for rs.Next() {
				var id string
				var r row
				if err := rs.Scan(&id, &r.Stream, &r.Version, &r.Owner); err != nil {
					return err
				}
				out[id] = r
			}
			return rs.Err()
		case pgx.Tx:
			rs, err := tx.Query(ctx, q)
			if err != nil {
				return err
			}
			defer rs.Close()
			for rs.Next() {
				var id string
				var r row
				if err := rs.Scan(&id, &r.Stream, &r.Version, &r.Owner); err != nil {
					return err
				}
				out[id] = r
			}
			return rs.Err()
		}
		return fmt.Errorf("unexpected %T", tx)
	})
	if err != nil {
		return map[string]row{} // not set up yet
	}
	return out
}

// def returns a projection over the model, reading the given types.
func (m *model) def(name string, version, partitions int, types ...string) projection.Projection {
	if len(types) == 0 {
		types = []string{"CertificateIssued", "CertificateRevoked"}
	}
	h := map[string]projection.Handler{}
	for _, t := range types {
		h[t] = m.apply
	}
	return projection.Projection{Name: name, Version: version, Partitions: partitions, Handlers: h,
		Setup: m.setup, Clear: m.clear, Drop: m.drop}
}
