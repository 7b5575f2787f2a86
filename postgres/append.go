package postgres

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/strata-events/strata"
)

// maxRaises bounds how often one append raises the offset and retries; one raise suffices
// unless the data keeps moving under it.
const maxRaises = 3

// maxRaces bounds how often one append retries after a concurrent append took the versions it
// was about to write. Each lost race means another append to the stream committed.
const maxRaces = 100

// errVersionTaken reports that a concurrent append committed the versions an append was about
// to write: the append wrote nothing and retries with a fresh snapshot.
var errVersionTaken = errors.New("a concurrent append took the stream's next version")

// Append implements strata.Store.
func (s *Store) Append(ctx context.Context, stream string, expected strata.ExpectedVersion, events ...strata.EventData) (strata.AppendResult, error) {
	res, err := s.append(ctx, "append", []strata.StreamAppend{{Stream: stream, Expected: expected, Events: events}})
	if err != nil {
		return strata.AppendResult{}, err
	}
	return res[0], nil
}

// AppendMulti implements strata.Store.
func (s *Store) AppendMulti(ctx context.Context, appends ...strata.StreamAppend) ([]strata.AppendResult, error) {
	return s.append(ctx, "append multi", appends)
}

func (s *Store) append(ctx context.Context, op string, appends []strata.StreamAppend) ([]strata.AppendResult, error) {
	prepared, err := strata.PrepareAppend(op, appends)
	if err != nil {
		return nil, err
	}
	for _, a := range prepared {
		for i, e := range a.Events {
			// pgx encodes a timestamptz as microseconds in 64 bits; a time beyond them would be
			// stored as another time.
			if at := e.OccurredAt; !at.IsZero() && !time.UnixMicro(at.UnixMicro()).Equal(at) {
				return nil, strata.Errorf(strata.Invalid, op, "stream %q event %d: occurred time %s is outside the range the store can hold", a.Stream, i, at.Format(time.RFC3339))
			}
		}
	}
	if s.closed.Load() {
		return nil, strata.ClosedError(op)
	}
	if len(prepared) == 1 && s.group != nil && !hasHook(ctx) {
		r, err := s.group.append(ctx, op, prepared[0])
		if err != nil {
			return nil, err
		}
		return []strata.AppendResult{r}, nil
	}
	return s.appendRetry(ctx, op, prepared)
}

// appendRetry appends prepared in one transaction of its own, raising the offset when the
// restore guard asks for it and retrying when a concurrent append took a version first.
func (s *Store) appendRetry(ctx context.Context, op string, prepared []strata.StreamAppend) ([]strata.AppendResult, error) {
	for raises, races := 0, 0; ; {
		var (
			res    []strata.AppendResult
			behind bool
			err    error
		)
		if len(prepared) == 1 {
			res, behind, err = s.appendOne(ctx, op, prepared[0])
		} else {
			res, behind, err = s.appendMany(ctx, op, prepared)
		}
		switch {
		case errors.Is(err, errVersionTaken):
			if races++; races > maxRaces {
				return nil, strata.Errorf(strata.Conflict, op, "lost the race for the stream's next version %d times to concurrent appends; retry later", maxRaces)
			}
			continue
		case !behind:
			return res, err
		}
		if raises++; raises > maxRaises {
			return nil, strata.Errorf(strata.Internal, op, "transaction IDs stay below stored positions after raising the offset %d times", maxRaises)
		}
		if err := s.raiseOffset(ctx); err != nil {
			return nil, s.fail(op, err)
		}
		s.afterWrite() // readers held below restored rows may now pass
	}
}

// versionConflict records which stream failed its expected-version check.
type versionConflict struct {
	stream   string
	expected strata.ExpectedVersion
	actual   int64
}

func (v *versionConflict) Error() string { return "version conflict on stream " + v.stream }

// bounds returns the range the stream's current version must lie in.
func bounds(e strata.ExpectedVersion) (lo, hi int64) {
	switch {
	case e.IsAny():
		return 0, math.MaxInt64
	case e.IsNoStream():
		return 0, 0
	case e.IsStreamExists():
		return 1, math.MaxInt64
	}
	v, _ := e.Version()
	return v, v
}

// eventArgs are the columns of a batch of events as arrays for unnest.
type eventArgs struct {
	ids      []pgtype.UUID
	types    []string
	schemas  []int32
	data     [][]byte
	meta     [][]byte
	tenants  [][]byte
	occurred []pgtype.Timestamptz
}

func (a *eventArgs) add(events []strata.EventData) {
	var (
		prevMeta  *strata.Metadata
		prevBytes []byte
	)
	for i, e := range events {
		a.ids = append(a.ids, pgtype.UUID{Bytes: e.ID, Valid: true})
		a.types = append(a.types, e.Type)
		a.schemas = append(a.schemas, int32(e.Schema))
		a.data = append(a.data, e.Data)
		var meta []byte
		switch {
		case e.Meta.IsZero():
		case prevMeta != nil && prevMeta.Equal(e.Meta):
			meta = prevBytes // batches often share their metadata
		default:
			meta, _ = e.Meta.MarshalJSON() // never fails
			prevMeta, prevBytes = &events[i].Meta, meta
		}
		a.meta = append(a.meta, meta)
		var tenant []byte
		if e.Meta.Tenant != "" {
			tenant = []byte(e.Meta.Tenant)
		}
		a.tenants = append(a.tenants, tenant)
		a.occurred = append(a.occurred, pgtype.Timestamptz{Time: e.OccurredAt, Valid: !e.OccurredAt.IsZero()})
	}
}

// appendOne appends to one stream with one statement. Without a BeforeCommit hook the
// statement is its own transaction: one round trip, like a bare INSERT; a failed check writes
// nothing, so committing it is harmless. With a hook, BEGIN goes in the same round trip and
// COMMIT follows the hook. behind reports that the restore guard failed: nothing was written
// and the offset must rise.
func (s *Store) appendOne(ctx context.Context, op string, a strata.StreamAppend) (_ []strata.AppendResult, behind bool, _ error) {
	var args eventArgs
	args.add(a.Events)
	lo, hi := bounds(a.Expected)
	n := int64(len(a.Events))
	var (
		sql   string
		qargs []any
	)
	if n == 1 {
		sql = s.q.appendOne1
		qargs = []any{a.Stream, lo, hi, args.ids[0], args.types[0], args.schemas[0], args.data[0], args.meta[0], args.tenants[0], args.occurred[0]}
	} else {
		sql = s.q.appendOne
		qargs = []any{a.Stream, lo, hi, args.ids, args.types, args.schemas, args.data, args.meta, args.tenants, args.occurred}
	}
	var (
		txv, cur int64
		top      pgtype.Int8
		tx       pgx.Tx
		err      error
	)
	if !hasHook(ctx) {
		err = s.pool.QueryRow(ctx, sql, qargs...).Scan(&txv, &top, &cur)
		s.afterWrite()
	} else {
		b := &pgx.Batch{}
		b.BeginTx(pgx.TxOptions{})
		b.Queue(sql, qargs...)
		br := s.pool.SendBatch(ctx, b)
		tx = br.Tx()
		if _, err = br.Exec(); err == nil {
			err = br.QueryRow().Scan(&txv, &top, &cur)
		}
		if cerr := br.Close(); err == nil {
			err = cerr
		}
	}
	switch {
	case err != nil:
	case top.Valid && txv <= top.Int64:
		s.rollback(ctx, tx)
		return nil, true, nil
	case cur < lo || cur > hi:
		err = &versionConflict{stream: a.Stream, expected: a.Expected, actual: cur}
	}
	if err == nil {
		err = s.commit(ctx, tx)
	} else {
		s.rollback(ctx, tx)
	}
	if err != nil {
		return s.appendFailed(ctx, op, []strata.StreamAppend{a}, err)
	}
	return []strata.AppendResult{{Stream: a.Stream, FirstVersion: cur + 1, LastVersion: cur + n}}, false, nil
}

// appendMany appends to several streams in one transaction and one round trip: BEGIN, the
// advisory locks of lockStreams, the appendMulti statement and, without a BeforeCommit hook,
// COMMIT (a failed statement turns it into a rollback; a failed check wrote nothing).
func (s *Store) appendMany(ctx context.Context, op string, appends []strata.StreamAppend) (_ []strata.AppendResult, behind bool, _ error) {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return nil, false, s.fail(op, err)
	}
	released := false
	release := func() {
		if !released {
			released = true
			conn.Release()
		}
	}
	defer release()
	var tx txn = &connTx{conn: conn}

	hook := hasHook(ctx)
	curs, behind, committed, err := s.sendMany(ctx, conn, s.q.appendMulti, appends, hook)
	if committed {
		tx = nil
	}
	if err == nil && behind {
		s.rollback(ctx, tx)
		return nil, true, nil
	}
	res := make([]strata.AppendResult, len(appends))
	for i := 0; err == nil && i < len(appends); i++ {
		var vc *versionConflict
		if res[i], vc = outcome(appends[i], curs[i]); vc != nil {
			err = vc
		}
	}
	if err == nil {
		err = s.commit(ctx, tx)
	} else {
		s.rollback(ctx, tx)
	}
	if err != nil {
		// Resolving a failure reads with a connection of its own: holding this one meanwhile
		// lets as many concurrent failing appends as the pool has connections starve it.
		release()
		return s.appendFailed(ctx, op, appends, err)
	}
	return res, false, nil
}

// outcome returns the result of appending a after its stream's version cur, or the conflict
// when cur is not the version a expected.
func outcome(a strata.StreamAppend, cur int64) (strata.AppendResult, *versionConflict) {
	if lo, hi := bounds(a.Expected); cur < lo || cur > hi {
		return strata.AppendResult{}, &versionConflict{stream: a.Stream, expected: a.Expected, actual: cur}
	}
	return strata.AppendResult{Stream: a.Stream, FirstVersion: cur + 1, LastVersion: cur + int64(len(a.Events))}, nil
}

// versionTaken reports whether err is the unique violation of a stream's next version that a
// concurrent append committed first (see errVersionTaken).
func versionTaken(err error) bool { return uniqueViolation(err, "events_stream_version_key") }

// idTaken reports whether err is the unique violation of an event ID the log holds already.
func idTaken(err error) bool { return uniqueViolation(err, "events_id_key") }

// uniqueViolation reports whether err is PostgreSQL's unique_violation of constraint.
func uniqueViolation(err error, constraint string) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "23505" && pgErr.ConstraintName == constraint
}

// sendMany sends, in one round trip on conn, BEGIN, the advisory locks of lockStreams for the
// appends' streams, the statement sql (appendMulti or appendGroup) and, unless hook is set,
// COMMIT. It returns the streams' versions before the statement, whether the restore guard
// failed (behind: nothing was written), and whether the transaction has ended (committed,
// or rolled back by a failed COMMIT, reported as the error); otherwise it is still open.
func (s *Store) sendMany(ctx context.Context, conn *pgxpool.Conn, sql string, appends []strata.StreamAppend, hook bool) (curs []int64, behind, ended bool, err error) {
	names := make([]string, len(appends))
	los := make([]int64, len(appends))
	his := make([]int64, len(appends))
	var (
		args       eventArgs
		index, off []int64
	)
	for i, a := range appends {
		names[i] = a.Stream
		los[i], his[i] = bounds(a.Expected)
		for j := range a.Events {
			index = append(index, int64(i+1))
			off = append(off, int64(j+1))
		}
		args.add(a.Events)
	}
	b := &pgx.Batch{}
	b.Queue("BEGIN")
	b.Queue(s.q.lockStreams, s.schema+".", names)
	b.Queue(sql, names, los, his, index, off, args.ids, args.types, args.schemas, args.data, args.meta, args.tenants, args.occurred)
	if !hook {
		b.Queue("COMMIT")
	}
	br := conn.SendBatch(ctx, b)
	var (
		txv       int64
		top       pgtype.Int8
		commitTag pgconn.CommandTag
	)
	_, err = br.Exec()
	if err == nil {
		_, err = br.Exec()
	}
	if err == nil {
		err = br.QueryRow().Scan(&txv, &top, &curs)
	}
	if err == nil && !hook {
		commitTag, err = br.Exec()
	}
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	if err == nil && !hook {
		ended = true // the batch committed or, if nothing was written, ended
		s.afterWrite()
		if commitTag.String() == "ROLLBACK" {
			err = pgx.ErrTxCommitRollback
		}
	}
	if err == nil && len(curs) != len(appends) {
		err = fmt.Errorf("%d versions came back for %d streams", len(curs), len(appends))
	}
	if err != nil {
		return nil, false, ended, err
	}
	return curs, top.Valid && txv <= top.Int64, ended, nil
}

// txn is an open append transaction: a pgx.Tx, or a connTx.
type txn interface {
	Commit(context.Context) error
	Rollback(context.Context) error
}

// connTx is a transaction begun by a BEGIN queued in a batch on conn.
type connTx struct{ conn *pgxpool.Conn }

func (t *connTx) Commit(ctx context.Context) error {
	tag, err := t.conn.Exec(ctx, "COMMIT")
	if err == nil && tag.String() == "ROLLBACK" {
		err = pgx.ErrTxCommitRollback // the transaction had failed
	}
	return err
}

func (t *connTx) Rollback(ctx context.Context) error {
	if t.conn.Conn().PgConn().TxStatus() == 'I' {
		return nil // BEGIN never ran
	}
	_, err := t.conn.Exec(ctx, "ROLLBACK")
	return err
}

// commit runs the BeforeCommit hook and commits. Its error is the hook's, unchanged, or the
// database's. A nil tx has committed already.
func (s *Store) commit(ctx context.Context, tx txn) error {
	if tx == nil {
		return nil
	}
	if err := strata.BeforeCommit(ctx); err != nil {
		s.rollback(ctx, tx)
		return hookError{err}
	}
	err := tx.Commit(ctx)
	s.afterWrite()
	return err
}

// rollback ends tx, even when ctx is done, and releases its connection. A nil tx has ended
// already.
func (s *Store) rollback(ctx context.Context, tx txn) {
	if tx == nil {
		return
	}
	rctx, cancel := cleanupContext(ctx)
	defer cancel()
	_ = tx.Rollback(rctx) // on failure the pool discards the connection
	s.afterWrite()
}

// hookError carries the BeforeCommit hook's error through appendFailed unchanged.
type hookError struct{ err error }

func (h hookError) Error() string { return h.err.Error() }

// appendFailed turns the failure of an append transaction into the result: a replay's first
// result, a Conflict, or the mapped error.
func (s *Store) appendFailed(ctx context.Context, op string, appends []strata.StreamAppend, err error) ([]strata.AppendResult, bool, error) {
	var hook hookError
	if errors.As(err, &hook) {
		return nil, false, hook.err
	}
	var vc *versionConflict
	isConflict := errors.As(err, &vc)
	isDupID := idTaken(err)
	if !isConflict && !isDupID {
		if versionTaken(err) {
			return nil, false, errVersionTaken
		}
		return nil, false, s.fail(op, err)
	}
	if s.closed.Load() {
		return nil, false, strata.ClosedError(op)
	}
	res, ok, rerr := s.resolve(ctx, op, appends)
	if rerr != nil || ok {
		return res, false, rerr
	}
	if isDupID {
		// The duplicate is gone again (deleted by hand); report what happened.
		return nil, false, &strata.Error{Code: strata.Conflict, Op: op, Msg: "an event ID of this append is already stored", Err: err}
	}
	return nil, false, strata.VersionConflict(op, vc.stream, vc.expected, vc.actual)
}

// resolve looks up the batch's event IDs: ok is true when the append was a replay of an
// earlier one, whose results it returns; err is a Conflict when IDs were reused otherwise.
func (s *Store) resolve(ctx context.Context, op string, appends []strata.StreamAppend) ([]strata.AppendResult, bool, error) {
	ids := strata.EventIDs(appends)
	pids := make([]pgtype.UUID, len(ids))
	for i, id := range ids {
		pids[i] = pgtype.UUID{Bytes: id, Valid: true}
	}
	var p page
	if err := s.fetch(ctx, op, &p, 0, nil, false, s.q.lookup, pids); err != nil {
		return nil, false, err
	}
	stored := make(map[uuid.UUID]strata.Event, len(p.events))
	for _, ev := range p.events {
		stored[ev.ID] = ev
	}
	if len(stored) == 0 {
		return nil, false, nil
	}
	res := make([]strata.AppendResult, len(appends))
	for i, a := range appends {
		r, ok, err := strata.ResolveReplay(op, a, stored)
		if err != nil {
			return nil, false, err
		}
		if !ok {
			return nil, false, strata.Errorf(strata.Conflict, op, "some events of this append were stored before and others were not; a retry must resend the same batch")
		}
		res[i] = r
	}
	return res, true, nil
}

// hookKey is the context key under which strata.WithBeforeCommit stores its hook, learned once
// by asking strata.BeforeCommit to look it up in a context that records the key and holds no
// value. It is nil if BeforeCommit ever stops looking a key up; hasHook then always says yes.
// (A strata.HasBeforeCommit in the root package would make this unnecessary.)
var hookKey = func() any {
	probe := keyProbe{Context: context.Background()}
	_ = strata.BeforeCommit(&probe)
	return probe.key
}()

type keyProbe struct {
	context.Context
	key any
}

func (p *keyProbe) Value(key any) any {
	if p.key == nil {
		p.key = key
	}
	return nil
}

// hasHook reports whether ctx may carry a BeforeCommit hook. Appends without one commit in the
// round trip that writes, instead of waiting for the hook's.
func hasHook(ctx context.Context) bool {
	return hookKey == nil || ctx.Value(hookKey) != nil
}
