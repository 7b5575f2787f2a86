package mysql

import (
	"context"
	"database/sql"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/strata-events/strata"
	"github.com/strata-events/strata/internal/projstore"
)

var _ strata.ProjectionStore = (*Store)(nil)

// projections is the shared implementation of strata.ProjectionStore (migration 0004). Each
// call is one transaction on the write pool that locks the partition's row with SELECT ... FOR
// UPDATE; CommitProjection hands apply the *sql.Tx, so that a read model in the same database
// commits with the checkpoint. A transaction that hits a deadlock or a lock wait timeout is run
// again, apply included (its writes were rolled back).
func (s *Store) projections() *projstore.Store {
	return &projstore.Store{B: projBackend{s}, D: projstore.Dialect{
		Table:        func(n string) string { return n },
		ForUpdate:    " FOR UPDATE",
		InsertIgnore: " ON DUPLICATE KEY UPDATE name = name",
	}}
}

type projBackend struct{ s *Store }

func (b projBackend) Closed() bool { return b.s.isClosed() }

func (b projBackend) Fail(op string, err error) error { return b.s.fail(op, err) }

func (b projBackend) Tx(ctx context.Context, op string, fn func(projstore.Conn) error) error {
	for attempt := 1; ; attempt++ {
		err := b.tx(ctx, op, fn)
		if err == nil || !retryable(err) || attempt >= maxAttempts {
			return err
		}
		if err := sleep(ctx, time.Duration(attempt)*time.Millisecond+rand.N(5*time.Millisecond)); err != nil {
			return b.s.fail(op, err)
		}
	}
}

func (b projBackend) tx(ctx context.Context, op string, fn func(projstore.Conn) error) error {
	tx, err := b.s.wdb.BeginTx(ctx, nil)
	if err != nil {
		return b.s.fail(op, err)
	}
	if err := fn(sqlConn{tx}); err != nil {
		_ = tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return b.s.fail(op, err)
	}
	return nil
}

func (b projBackend) ReadTx(ctx context.Context, op string, fn func(tx any) error) error {
	tx, err := b.s.db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return b.s.fail(op, err)
	}
	defer tx.Rollback()
	return fn(tx)
}

// QueryProjection implements strata.ProjectionStore; fn gets a read-only *sql.Tx.
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

// ProjectionLag implements strata.ProjectionStore: one count over the sequenced log after the
// checkpoint, after a sequencing pass when rows wait unsequenced.
func (s *Store) ProjectionLag(ctx context.Context, after strata.Position, f strata.Filter) (strata.ProjectionLag, error) {
	const op = "projection lag"
	if s.isClosed() {
		return strata.ProjectionLag{}, strata.ClosedError(op)
	}
	if err := s.sequenceIfNeeded(ctx); err != nil {
		return strata.ProjectionLag{}, s.fail(op, err)
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
		b.WriteString(" AND LEFT(stream, ?) = ?")
		args = append(args, int64(len(f.StreamPrefix)), []byte(f.StreamPrefix))
	}
	if f.Tenant != "" {
		// The tenant column holds tenantKey: exact up to 200 bytes, a SHA-256 suffix beyond.
		b.WriteString(" AND tenant = ?")
		args = append(args, tenantKey(f.Tenant))
	}
	var n, last int64
	if err := s.db.QueryRowContext(ctx, b.String(), args...).Scan(&n, &last); err != nil {
		return strata.ProjectionLag{}, s.fail(op, err)
	}
	lag := strata.ProjectionLag{Events: n, Last: after}
	if n > 0 {
		lag.Last = strata.Position{Commit: uint64(last), Event: uint64(last)}
	}
	return lag, nil
}
