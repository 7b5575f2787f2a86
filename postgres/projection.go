package postgres

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/strata-events/strata"
	"github.com/strata-events/strata/internal/projstore"
)

var _ strata.ProjectionStore = (*Store)(nil)

// projections is the shared implementation of strata.ProjectionStore (migration 0004). Each
// call is one transaction on the pool that locks the partition's row with SELECT ... FOR
// UPDATE; CommitProjection hands apply the pgx.Tx, so that a read model in the same database
// commits with the checkpoint.
func (s *Store) projections() *projstore.Store {
	schema := pgx.Identifier{s.schema}.Sanitize()
	return &projstore.Store{B: projBackend{s}, D: projstore.Dialect{
		Table:        func(n string) string { return schema + "." + n },
		Rebind:       rebind,
		ForUpdate:    " FOR UPDATE",
		InsertIgnore: " ON CONFLICT DO NOTHING",
	}}
}

// rebind turns ? placeholders into $1, $2...; the statements of projstore hold no ? otherwise.
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

type projBackend struct{ s *Store }

func (b projBackend) Closed() bool { return b.s.closed.Load() }

func (b projBackend) Fail(op string, err error) error { return b.s.fail(op, err) }

func (b projBackend) Tx(ctx context.Context, op string, fn func(projstore.Conn) error) error {
	// The transaction holds an ID, and so the readers' horizon, until it ends: wake the
	// subscriptions then, as appends do, instead of leaving them to their rationed re-reads.
	defer b.s.afterWrite()
	tx, err := b.s.pool.Begin(ctx)
	if err != nil {
		return b.s.fail(op, err)
	}
	if err := fn(pgConn{tx}); err != nil {
		rctx, cancel := cleanupContext(ctx)
		defer cancel()
		_ = tx.Rollback(rctx)
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return b.s.fail(op, err)
	}
	return nil
}

func (b projBackend) ReadTx(ctx context.Context, op string, fn func(tx any) error) error {
	tx, err := b.s.pool.BeginTx(ctx, pgx.TxOptions{AccessMode: pgx.ReadOnly})
	if err != nil {
		return b.s.fail(op, err)
	}
	defer func() {
		rctx, cancel := cleanupContext(ctx)
		defer cancel()
		_ = tx.Rollback(rctx)
	}()
	return fn(tx)
}

// QueryProjection implements strata.ProjectionStore; fn gets a read-only pgx.Tx.
func (s *Store) QueryProjection(ctx context.Context, fn func(tx any) error) error {
	return s.projections().QueryProjection(ctx, fn)
}

// pgConn adapts a pgx.Tx to projstore.Conn.
type pgConn struct{ tx pgx.Tx }

func (c pgConn) Raw() any { return c.tx }

func (c pgConn) Exec(ctx context.Context, q string, args ...any) (int64, error) {
	tag, err := c.tx.Exec(ctx, q, args...)
	if err != nil {
		return 0, err
	}
	return tag.RowsAffected(), nil
}

func (c pgConn) Query(ctx context.Context, q string, args ...any) (projstore.Rows, error) {
	r, err := c.tx.Query(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	return r, nil
}

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

// CommitProjection implements strata.ProjectionStore; apply gets a pgx.Tx.
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

// DropProjection implements strata.ProjectionStore; apply gets a pgx.Tx.
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

// ProjectionLag implements strata.ProjectionStore. It counts committed rows after the
// checkpoint in (tx, seq) order; rows above the readers' horizon count too, so the figure may
// run ahead of what a reader can see yet by the events of transactions still finishing.
func (s *Store) ProjectionLag(ctx context.Context, after strata.Position, f strata.Filter) (strata.ProjectionLag, error) {
	const op = "projection lag"
	if s.closed.Load() {
		return strata.ProjectionLag{}, strata.ClosedError(op)
	}
	schema := pgx.Identifier{s.schema}.Sanitize()
	var b strings.Builder
	b.WriteString(" FROM " + schema + ".events WHERE (tx, seq) > ($1, $2)")
	args := []any{int64(after.Commit), int64(after.Event)}
	if len(f.Types) > 0 {
		args = append(args, f.Types)
		b.WriteString(" AND type = ANY($" + strconv.Itoa(len(args)) + "::text[])")
	}
	if p := storablePrefix(f.StreamPrefix); p != "" {
		args = append(args, p)
		b.WriteString(" AND starts_with(stream, $" + strconv.Itoa(len(args)) + ")")
	}
	if f.Tenant != "" {
		args = append(args, []byte(f.Tenant))
		b.WriteString(" AND tenant = $" + strconv.Itoa(len(args)))
	}
	lag := strata.ProjectionLag{Last: after}
	if err := s.pool.QueryRow(ctx, "SELECT count(*)"+b.String(), args...).Scan(&lag.Events); err != nil {
		return strata.ProjectionLag{}, s.fail(op, err)
	}
	if lag.Events == 0 {
		return lag, nil
	}
	var tx, seq int64
	err := s.pool.QueryRow(ctx, "SELECT tx, seq"+b.String()+" ORDER BY tx DESC, seq DESC LIMIT 1", args...).Scan(&tx, &seq)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
	case err != nil:
		return strata.ProjectionLag{}, s.fail(op, err)
	default:
		lag.Last = strata.Position{Commit: uint64(tx), Event: uint64(seq)}
	}
	return lag, nil
}
