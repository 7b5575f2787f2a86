package sqlite

import (
	"context"
	"database/sql"
	"strings"
	"time"

	"github.com/strata-events/strata"
	"github.com/strata-events/strata/internal/projstore"
)

var _ strata.ProjectionStore = (*Store)(nil)

// projections is the shared implementation of strata.ProjectionStore (migration 0004). Its
// transactions run on the write connection in their turn, as BEGIN IMMEDIATE transactions, so
// that a projection's read-model writes and its checkpoint commit together and take turns with
// appends. A handler running in such a transaction must not append through the Store (it would
// wait for its own turn): it emits through package projection instead.
func (s *Store) projections() *projstore.Store {
	return &projstore.Store{B: projBackend{s}, D: projstore.Dialect{
		Table:        func(n string) string { return n },
		InsertIgnore: " ON CONFLICT DO NOTHING",
	}}
}

type projBackend struct{ s *Store }

func (b projBackend) Closed() bool { return b.s.isClosed.Load() }

func (b projBackend) Fail(op string, err error) error {
	if err == nil {
		return nil
	}
	return b.s.failWrite(context.Background(), op, err)
}

func (b projBackend) Tx(ctx context.Context, op string, fn func(projstore.Conn) error) error {
	w := b.s.wr
	if err := w.acquire(ctx, b.s.closed); err != nil {
		return b.s.failWrite(ctx, op, err)
	}
	defer w.release()
	// BEGIN IMMEDIATE (_txlock=immediate). The transaction is begun without ctx's end:
	// database/sql rolls back a transaction whose context ends from a goroutine of its own,
	// which could run after the writer passed on and roll back the next transaction on the
	// connection, or let this one's statements commit with it. The statements still end with
	// ctx, and the rollbacks below are this goroutine's.
	tx, err := w.conn.BeginTx(context.WithoutCancel(ctx), nil)
	if err != nil {
		return b.s.failWrite(ctx, op, err)
	}
	if err := fn(sqlConn{tx}); err != nil {
		_ = tx.Rollback()
		// Whatever the rollback did (SQLite rolls back on its own after an interrupted
		// statement), the write connection must leave outside any transaction: abort makes
		// sure, or discards it, as it does for appends.
		w.abort(ctx)
		return err
	}
	if err := tx.Commit(); err != nil {
		w.abort(ctx) // a failed COMMIT may leave the transaction open on the connection
		return b.s.failWrite(ctx, op, err)
	}
	return nil
}

func (b projBackend) ReadTx(ctx context.Context, op string, fn func(tx any) error) error {
	tx, err := b.s.r.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return b.s.fail(ctx, op, err)
	}
	defer tx.Rollback()
	return fn(tx)
}

// QueryProjection implements strata.ProjectionStore; fn gets a *sql.Tx on a read-only
// connection.
func (s *Store) QueryProjection(ctx context.Context, fn func(tx any) error) error {
	return s.projections().QueryProjection(ctx, fn)
}

// sqlConn adapts a *sql.Tx to projstore.Conn.
type sqlConn struct{ tx *sql.Tx }

func (c sqlConn) Raw() any { return c.tx }

func (c sqlConn) Exec(ctx context.Context, q string, args ...any) (int64, error) {
	r, err := c.tx.ExecContext(ctx, q, args...)
	if err != nil {
		return 0, err
	}
	return r.RowsAffected()
}

func (c sqlConn) Query(ctx context.Context, q string, args ...any) (projstore.Rows, error) {
	r, err := c.tx.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	return sqlRows{r}, nil
}

type sqlRows struct{ *sql.Rows }

func (r sqlRows) Close() { r.Rows.Close() }

// InitProjection implements strata.ProjectionStore.
func (s *Store) InitProjection(ctx context.Context, in strata.ProjectionInit) error {
	return s.projections().InitProjection(ctx, in)
}

// ClaimProjection implements strata.ProjectionStore.
func (s *Store) ClaimProjection(ctx context.Context, k strata.ProjectionKey, owner string, ttl time.Duration) (strata.ProjectionState, error) {
	return s.projections().ClaimProjection(ctx, k, owner, ttl)
}

// RenewProjectionLease implements strata.ProjectionStore.
func (s *Store) RenewProjectionLease(ctx context.Context, l strata.ProjectionLease, ttl time.Duration) (strata.ProjectionState, error) {
	return s.projections().RenewProjectionLease(ctx, l, ttl)
}

// ReleaseProjectionLease implements strata.ProjectionStore.
func (s *Store) ReleaseProjectionLease(ctx context.Context, l strata.ProjectionLease) error {
	return s.projections().ReleaseProjectionLease(ctx, l)
}

// CommitProjection implements strata.ProjectionStore; apply gets a *sql.Tx.
func (s *Store) CommitProjection(ctx context.Context, c strata.ProjectionCommit, apply func(tx any) error) error {
	return s.projections().CommitProjection(ctx, c, apply)
}

// ProjectionStates implements strata.ProjectionStore.
func (s *Store) ProjectionStates(ctx context.Context, name string) ([]strata.ProjectionState, error) {
	return s.projections().ProjectionStates(ctx, name)
}

// ControlProjection implements strata.ProjectionStore.
func (s *Store) ControlProjection(ctx context.Context, name string, version int, ctl strata.ProjectionControl) error {
	return s.projections().ControlProjection(ctx, name, version, ctl)
}

// DropProjection implements strata.ProjectionStore; apply gets a *sql.Tx.
func (s *Store) DropProjection(ctx context.Context, name string, version int, apply func(tx any) error) error {
	return s.projections().DropProjection(ctx, name, version, apply)
}

// ActivateProjection implements strata.ProjectionStore.
func (s *Store) ActivateProjection(ctx context.Context, name string, version int, onlyNewer bool) (bool, error) {
	return s.projections().ActivateProjection(ctx, name, version, onlyNewer)
}

// ActiveProjection implements strata.ProjectionStore.
func (s *Store) ActiveProjection(ctx context.Context, name string) (int, error) {
	return s.projections().ActiveProjection(ctx, name)
}

// ProjectionHeartbeat implements strata.ProjectionStore.
func (s *Store) ProjectionHeartbeat(ctx context.Context, name string, version int, owner string, ttl time.Duration) ([]string, error) {
	return s.projections().ProjectionHeartbeat(ctx, name, version, owner, ttl)
}

// ProjectionLag implements strata.ProjectionStore: one count over the log after the
// checkpoint (position is the rowid: a range scan of the table).
func (s *Store) ProjectionLag(ctx context.Context, after strata.Position, f strata.Filter) (strata.ProjectionLag, error) {
	const op = "projection lag"
	if err := s.checkOpen(op); err != nil {
		return strata.ProjectionLag{}, err
	}
	var b strings.Builder
	b.WriteString("SELECT count(*), coalesce(max(position), 0) FROM events WHERE position > ?")
	args := []any{int64(after.Event)}
	if len(f.Types) > 0 {
		b.WriteString(" AND type IN (?" + strings.Repeat(", ?", len(f.Types)-1) + ")")
		for _, t := range f.Types {
			args = append(args, t)
		}
	}
	if f.StreamPrefix != "" {
		b.WriteString(" AND substr(stream, 1, ?) = ?")
		args = append(args, int64(len([]rune(f.StreamPrefix))), f.StreamPrefix)
	}
	if f.Tenant != "" {
		b.WriteString(" AND tenant = ?")
		args = append(args, f.Tenant)
	}
	var n, last int64
	if err := s.r.QueryRowContext(ctx, b.String(), args...).Scan(&n, &last); err != nil {
		return strata.ProjectionLag{}, s.fail(ctx, op, err)
	}
	lag := strata.ProjectionLag{Events: n, Last: after}
	if n > 0 {
		lag.Last = strata.Position{Commit: uint64(last), Event: uint64(last)}
	}
	return lag, nil
}
