// Package projstore implements strata.ProjectionStore once over SQL, for the SQLite, MySQL and
// PostgreSQL backends: each gives it a way to run a transaction, a dialect, and a way to
// classify its driver's errors.
//
// Every write runs in one transaction that first locks the partition's row (SELECT ... FOR
// UPDATE where the database has it; SQLite's BEGIN IMMEDIATE locks the whole file), so that
// claims, renewals, commits and resets of one partition are serialized and a lease's epoch is
// checked under the same lock that writes the checkpoint. Times are the caller's clock, stored
// as Unix microseconds, so that every backend compares leases the same way.
package projstore

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"time"

	"github.com/strata-events/strata"
)

// Conn is one open transaction.
type Conn interface {
	Exec(ctx context.Context, query string, args ...any) (int64, error)
	Query(ctx context.Context, query string, args ...any) (Rows, error)
	// Raw is the driver's transaction handed to apply functions.
	Raw() any
}

// Rows is a result set.
type Rows interface {
	Next() bool
	Scan(dest ...any) error
	Err() error
	Close()
}

// Backend is what a store gives this package.
type Backend interface {
	// Tx runs fn in a transaction and commits when it returns nil; it returns fn's error as it is.
	Tx(ctx context.Context, op string, fn func(Conn) error) error
	// ReadTx runs fn in a read-only transaction, handing it the driver's transaction.
	ReadTx(ctx context.Context, op string, fn func(tx any) error) error
	// Fail turns a driver error into a *strata.Error of op (passing *strata.Error through).
	Fail(op string, err error) error
	// Closed reports whether the store is closed.
	Closed() bool
}

// Dialect holds what differs between databases.
type Dialect struct {
	// Table returns the qualified name of a table.
	Table func(name string) string
	// Rebind rewrites ? placeholders, e.g. to $1, $2...; nil leaves them.
	Rebind func(q string) string
	// ForUpdate is appended to row-locking SELECTs ("" on SQLite).
	ForUpdate string
	// InsertIgnore is appended to an INSERT to make a duplicate key a no-op.
	InsertIgnore string
}

// Store implements strata.ProjectionStore's state methods (all but ProjectionLag).
type Store struct {
	B   Backend
	D   Dialect
	Now func() time.Time
}

const cols = "name, version, part, parts, filter, pos_commit, pos_event, processed, rebuilding, target_commit, target_event, paused, failure, pending, owner, epoch, lease_until, updated_at"

func (s *Store) q(query string) string {
	query = strings.NewReplacer("{p}", s.D.Table("projections"), "{a}", s.D.Table("projection_active"), "{w}", s.D.Table("projection_workers")).Replace(query)
	if s.D.Rebind != nil {
		query = s.D.Rebind(query)
	}
	return query
}

func (s *Store) now() int64 {
	if s.Now != nil {
		return s.Now().UnixMicro()
	}
	return time.Now().UnixMicro()
}

func b2i(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

func (s *Store) check(op string) error {
	if s.B.Closed() {
		return strata.ClosedError(op)
	}
	return nil
}

func (s *Store) tx(ctx context.Context, op string, fn func(Conn) error) error {
	if err := s.check(op); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return &strata.Error{Code: strata.Unavailable, Op: op, Err: err}
	}
	err := s.B.Tx(ctx, op, fn)
	var ae applyError
	if errors.As(err, &ae) {
		return ae.err
	}
	if err != nil {
		return s.B.Fail(op, err)
	}
	return nil
}

// applyError marks an error of an apply function, which is returned as it is.
type applyError struct{ err error }

func (e applyError) Error() string { return e.err.Error() }
func (e applyError) Unwrap() error { return e.err }

func scanState(r Rows) (strata.ProjectionState, error) {
	var st strata.ProjectionState
	var version, part, parts, pc, pe, tc, te, rebuilding, paused, until, updated int64
	var failure, pending, filter []byte
	if err := r.Scan(&st.Key.Name, &version, &part, &parts, &filter, &pc, &pe, &st.Processed, &rebuilding, &tc, &te, &paused,
		&failure, &pending, &st.Owner, &st.Epoch, &until, &updated); err != nil {
		return st, err
	}
	st.Key.Version, st.Key.Partition, st.Partitions = int(version), int(part), int(parts)
	st.Position = strata.Position{Commit: uint64(pc), Event: uint64(pe)}
	st.RebuildTarget = strata.Position{Commit: uint64(tc), Event: uint64(te)}
	st.Rebuilding, st.Paused = rebuilding != 0, paused != 0
	if len(filter) > 0 {
		if err := json.Unmarshal(filter, &st.Filter); err != nil {
			return st, err
		}
	}
	if len(failure) > 0 {
		var f strata.ProjectionFailure
		if err := json.Unmarshal(failure, &f); err != nil {
			return st, err
		}
		st.Failure = &f
	}
	if len(pending) > 0 {
		st.Pending = pending
	}
	if until > 0 {
		st.LeaseUntil = time.UnixMicro(until).UTC()
	}
	st.UpdatedAt = time.UnixMicro(updated).UTC()
	return st, nil
}

func (s *Store) query(ctx context.Context, c Conn, op, query string, args ...any) ([]strata.ProjectionState, error) {
	rows, err := c.Query(ctx, s.q(query), args...)
	if err != nil {
		return nil, s.B.Fail(op, err)
	}
	defer rows.Close()
	var out []strata.ProjectionState
	for rows.Next() {
		st, err := scanState(rows)
		if err != nil {
			return nil, s.B.Fail(op, err)
		}
		out = append(out, st)
	}
	if err := rows.Err(); err != nil {
		return nil, s.B.Fail(op, err)
	}
	return out, nil
}

func (s *Store) exec(ctx context.Context, c Conn, op, query string, args ...any) (int64, error) {
	n, err := c.Exec(ctx, s.q(query), args...)
	if err != nil {
		return 0, s.B.Fail(op, err)
	}
	return n, nil
}

// lock reads and locks one partition's row; NotFound when it does not exist.
func (s *Store) lock(ctx context.Context, c Conn, op string, k strata.ProjectionKey) (strata.ProjectionState, error) {
	sts, err := s.query(ctx, c, op, "SELECT "+cols+" FROM {p} WHERE name = ? AND version = ? AND part = ?"+s.D.ForUpdate,
		k.Name, int64(k.Version), int64(k.Partition))
	if err != nil {
		return strata.ProjectionState{}, err
	}
	if len(sts) == 0 {
		return strata.ProjectionState{}, strata.Errorf(strata.NotFound, op, "projection %q version %d has no partition %d", k.Name, k.Version, k.Partition)
	}
	return sts[0], nil
}

// InitProjection implements strata.ProjectionStore.
func (s *Store) InitProjection(ctx context.Context, in strata.ProjectionInit) error {
	const op = "init projection"
	if err := strata.ValidateProjectionInit(op, in); err != nil {
		return err
	}
	return s.tx(ctx, op, func(c Conn) error {
		rows, err := c.Query(ctx, s.q("SELECT parts, count(*) FROM {p} WHERE name = ? AND version = ? GROUP BY parts"), in.Name, int64(in.Version))
		if err != nil {
			return s.B.Fail(op, err)
		}
		var have []int64
		var count int64
		for rows.Next() {
			var parts, n int64
			if err := rows.Scan(&parts, &n); err != nil {
				rows.Close()
				return s.B.Fail(op, err)
			}
			have = append(have, parts)
			count += n
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return s.B.Fail(op, err)
		}
		for _, p := range have {
			if p != int64(in.Partitions) {
				return strata.Errorf(strata.Conflict, op, "projection %q version %d has %d partitions, not %d: build a new version to change the partitioning", in.Name, in.Version, p, in.Partitions)
			}
		}
		if count == int64(in.Partitions) {
			return nil
		}
		now := s.now()
		filter, err := json.Marshal(in.Filter)
		if err != nil {
			return strata.Errorf(strata.Invalid, op, "projection %q: filter: %w", in.Name, err)
		}
		for p := range in.Partitions {
			if _, err := s.exec(ctx, c, op, "INSERT INTO {p} ("+cols+") VALUES (?, ?, ?, ?, ?, 0, 0, 0, ?, ?, ?, 0, NULL, NULL, '', 0, 0, ?)"+s.D.InsertIgnore,
				in.Name, int64(in.Version), int64(p), int64(in.Partitions), filter, b2i(in.Rebuilding),
				int64(in.RebuildTarget.Commit), int64(in.RebuildTarget.Event), now); err != nil {
				return err
			}
		}
		return nil
	})
}

// ClaimProjection implements strata.ProjectionStore.
func (s *Store) ClaimProjection(ctx context.Context, k strata.ProjectionKey, owner string, ttl time.Duration) (strata.ProjectionState, error) {
	const op = "claim projection"
	if err := strata.ValidateProjectionKey(op, k); err != nil {
		return strata.ProjectionState{}, err
	}
	if err := strata.ValidateProjectionOwner(op, owner); err != nil {
		return strata.ProjectionState{}, err
	}
	if err := strata.ValidateLeaseTTL(op, ttl); err != nil {
		return strata.ProjectionState{}, err
	}
	var st strata.ProjectionState
	err := s.tx(ctx, op, func(c Conn) error {
		var err error
		if st, err = s.lock(ctx, c, op, k); err != nil {
			return err
		}
		now := s.now()
		if st.Owner != "" && st.Owner != owner && st.LeaseUntil.UnixMicro() > now {
			return strata.Errorf(strata.Conflict, op, "projection %q version %d partition %d is held by %q until %s", k.Name, k.Version, k.Partition, st.Owner, st.LeaseUntil.Format(time.RFC3339Nano))
		}
		until := now + ttl.Microseconds()
		if _, err := s.exec(ctx, c, op, "UPDATE {p} SET owner = ?, epoch = epoch + 1, lease_until = ?, updated_at = ? WHERE name = ? AND version = ? AND part = ?",
			owner, until, now, k.Name, int64(k.Version), int64(k.Partition)); err != nil {
			return err
		}
		st.Owner, st.Epoch, st.LeaseUntil = owner, st.Epoch+1, time.UnixMicro(until).UTC()
		return nil
	})
	return st, err
}

func checkLease(op string, st strata.ProjectionState, l strata.ProjectionLease) error {
	if st.Epoch != l.Epoch || st.Owner != l.Owner {
		return strata.ProjectionLeaseLost(op, l.Key)
	}
	return nil
}

// RenewProjectionLease implements strata.ProjectionStore.
func (s *Store) RenewProjectionLease(ctx context.Context, l strata.ProjectionLease, ttl time.Duration) (strata.ProjectionState, error) {
	const op = "renew projection lease"
	if err := strata.ValidateProjectionKey(op, l.Key); err != nil {
		return strata.ProjectionState{}, err
	}
	if err := strata.ValidateLeaseTTL(op, ttl); err != nil {
		return strata.ProjectionState{}, err
	}
	var st strata.ProjectionState
	err := s.tx(ctx, op, func(c Conn) error {
		var err error
		if st, err = s.lock(ctx, c, op, l.Key); err != nil {
			return err
		}
		if err := checkLease(op, st, l); err != nil {
			return err
		}
		now := s.now()
		until := now + ttl.Microseconds()
		if _, err := s.exec(ctx, c, op, "UPDATE {p} SET lease_until = ? WHERE name = ? AND version = ? AND part = ?",
			until, l.Key.Name, int64(l.Key.Version), int64(l.Key.Partition)); err != nil {
			return err
		}
		st.LeaseUntil = time.UnixMicro(until).UTC()
		return nil
	})
	return st, err
}

// ReleaseProjectionLease implements strata.ProjectionStore.
func (s *Store) ReleaseProjectionLease(ctx context.Context, l strata.ProjectionLease) error {
	const op = "release projection lease"
	if err := strata.ValidateProjectionKey(op, l.Key); err != nil {
		return err
	}
	return s.tx(ctx, op, func(c Conn) error {
		_, err := s.exec(ctx, c, op, "UPDATE {p} SET owner = '', lease_until = 0 WHERE name = ? AND version = ? AND part = ? AND epoch = ? AND owner = ?",
			l.Key.Name, int64(l.Key.Version), int64(l.Key.Partition), l.Epoch, l.Owner)
		return err
	})
}

// CommitProjection implements strata.ProjectionStore.
func (s *Store) CommitProjection(ctx context.Context, cm strata.ProjectionCommit, apply func(tx any) error) error {
	const op = "commit projection"
	k := cm.Lease.Key
	if err := strata.ValidateProjectionKey(op, k); err != nil {
		return err
	}
	if cm.To.Less(cm.From) {
		return strata.Errorf(strata.Invalid, op, "projection %q: checkpoint would move back from %s to %s", k.Name, cm.From, cm.To)
	}
	var failure []byte
	if cm.Failure != nil {
		f := *cm.Failure
		f.Error = strata.TruncateProjectionError(f.Error)
		var err error
		if failure, err = json.Marshal(f); err != nil {
			return strata.Errorf(strata.Invalid, op, "projection %q: failure record: %w", k.Name, err)
		}
	}
	var pending []byte
	if len(cm.Pending) > 0 {
		if len(cm.Pending) > strata.MaxDataLen {
			return strata.Errorf(strata.Invalid, op, "projection %q: %d bytes of pending events, more than %d", k.Name, len(cm.Pending), strata.MaxDataLen)
		}
		pending = cm.Pending
	}
	return s.tx(ctx, op, func(c Conn) error {
		st, err := s.lock(ctx, c, op, k)
		if err != nil {
			return err
		}
		if err := checkLease(op, st, cm.Lease); err != nil {
			return err
		}
		if st.Position != cm.From {
			return strata.Errorf(strata.Conflict, op, "projection %q version %d partition %d is at %s, not %s", k.Name, k.Version, k.Partition, st.Position, cm.From)
		}
		if apply != nil {
			if err := apply(c.Raw()); err != nil {
				return applyError{err}
			}
		}
		if cm.Emitted != nil {
			if pending, err = cm.Emitted(); err != nil {
				return applyError{err}
			}
			if len(pending) > strata.MaxDataLen {
				return strata.Errorf(strata.Invalid, op, "projection %q: %d bytes of pending events, more than %d", k.Name, len(pending), strata.MaxDataLen)
			}
			if len(pending) == 0 {
				pending = nil
			}
		}
		_, err = s.exec(ctx, c, op, "UPDATE {p} SET pos_commit = ?, pos_event = ?, processed = ?, rebuilding = ?, failure = ?, pending = ?, updated_at = ? WHERE name = ? AND version = ? AND part = ?",
			int64(cm.To.Commit), int64(cm.To.Event), cm.Processed, b2i(cm.Rebuilding), failure, pending, s.now(),
			k.Name, int64(k.Version), int64(k.Partition))
		return err
	})
}

// ProjectionStates implements strata.ProjectionStore.
func (s *Store) ProjectionStates(ctx context.Context, name string) ([]strata.ProjectionState, error) {
	const op = "projection states"
	if name != "" {
		if err := strata.ValidateProjectionName(op, name); err != nil {
			return nil, err
		}
	}
	var out []strata.ProjectionState
	err := s.tx(ctx, op, func(c Conn) error {
		var err error
		if name == "" {
			out, err = s.query(ctx, c, op, "SELECT "+cols+" FROM {p} ORDER BY name, version, part")
		} else {
			out, err = s.query(ctx, c, op, "SELECT "+cols+" FROM {p} WHERE name = ? ORDER BY version, part", name)
		}
		return err
	})
	return out, err
}

func (s *Store) count(ctx context.Context, c Conn, op, name string, version int) (int64, error) {
	rows, err := c.Query(ctx, s.q("SELECT count(*) FROM {p} WHERE name = ? AND version = ?"), name, int64(version))
	if err != nil {
		return 0, s.B.Fail(op, err)
	}
	defer rows.Close()
	var n int64
	if rows.Next() {
		if err := rows.Scan(&n); err != nil {
			return 0, s.B.Fail(op, err)
		}
	}
	return n, s.B.Fail(op, rows.Err())
}

// ControlProjection implements strata.ProjectionStore.
func (s *Store) ControlProjection(ctx context.Context, name string, version int, ctl strata.ProjectionControl) error {
	const op = "control projection"
	if err := strata.ValidateProjectionKey(op, strata.ProjectionKey{Name: name, Version: version}); err != nil {
		return err
	}
	return s.tx(ctx, op, func(c Conn) error {
		n, err := s.count(ctx, c, op, name, version)
		if err != nil {
			return err
		}
		if n == 0 {
			return strata.ProjectionNotFound(op, name, version)
		}
		now := s.now()
		if ctl.Pause != nil {
			if _, err := s.exec(ctx, c, op, "UPDATE {p} SET paused = ?, updated_at = ? WHERE name = ? AND version = ?", b2i(*ctl.Pause), now, name, int64(version)); err != nil {
				return err
			}
		}
		if ctl.Reset {
			if _, err := s.exec(ctx, c, op, "UPDATE {p} SET pos_commit = 0, pos_event = 0, processed = 0, rebuilding = ?, target_commit = ?, target_event = ?, failure = NULL, owner = '', lease_until = 0, epoch = epoch + 1, updated_at = ? WHERE name = ? AND version = ?",
				b2i(!ctl.RebuildTarget.IsZero()), int64(ctl.RebuildTarget.Commit), int64(ctl.RebuildTarget.Event), now, name, int64(version)); err != nil {
				return err
			}
		}
		return nil
	})
}

// DropProjection implements strata.ProjectionStore.
func (s *Store) DropProjection(ctx context.Context, name string, version int, apply func(tx any) error) error {
	const op = "drop projection"
	if err := strata.ValidateProjectionKey(op, strata.ProjectionKey{Name: name, Version: version}); err != nil {
		return err
	}
	return s.tx(ctx, op, func(c Conn) error {
		active, err := s.active(ctx, c, op, name, "")
		if err != nil {
			return err
		}
		if active == version {
			return strata.Errorf(strata.Conflict, op, "projection %q version %d is the active version: activate another before dropping it", name, version)
		}
		if apply != nil {
			if err := apply(c.Raw()); err != nil {
				return applyError{err}
			}
		}
		if _, err := s.exec(ctx, c, op, "DELETE FROM {p} WHERE name = ? AND version = ?", name, int64(version)); err != nil {
			return err
		}
		_, err = s.exec(ctx, c, op, "DELETE FROM {w} WHERE name = ? AND version = ?", name, int64(version))
		return err
	})
}

func (s *Store) active(ctx context.Context, c Conn, op, name, lock string) (int, error) {
	rows, err := c.Query(ctx, s.q("SELECT version FROM {a} WHERE name = ?"+lock), name)
	if err != nil {
		return 0, s.B.Fail(op, err)
	}
	defer rows.Close()
	var v int64
	if rows.Next() {
		if err := rows.Scan(&v); err != nil {
			return 0, s.B.Fail(op, err)
		}
	}
	return int(v), s.B.Fail(op, rows.Err())
}

// ActivateProjection implements strata.ProjectionStore.
func (s *Store) ActivateProjection(ctx context.Context, name string, version int, onlyNewer bool) (bool, error) {
	const op = "activate projection"
	if err := strata.ValidateProjectionKey(op, strata.ProjectionKey{Name: name, Version: version}); err != nil {
		return false, err
	}
	changed := false
	err := s.tx(ctx, op, func(c Conn) error {
		n, err := s.count(ctx, c, op, name, version)
		if err != nil {
			return err
		}
		if n == 0 {
			return strata.ProjectionNotFound(op, name, version)
		}
		if _, err := s.exec(ctx, c, op, "INSERT INTO {a} (name, version) VALUES (?, 0)"+s.D.InsertIgnore, name); err != nil {
			return err
		}
		cur, err := s.active(ctx, c, op, name, s.D.ForUpdate)
		if err != nil {
			return err
		}
		if cur == version || (onlyNewer && cur > version) {
			return nil
		}
		if _, err := s.exec(ctx, c, op, "UPDATE {a} SET version = ? WHERE name = ?", int64(version), name); err != nil {
			return err
		}
		changed = true
		return nil
	})
	return changed, err
}

// ActiveProjection implements strata.ProjectionStore.
func (s *Store) ActiveProjection(ctx context.Context, name string) (int, error) {
	const op = "active projection"
	if err := strata.ValidateProjectionName(op, name); err != nil {
		return 0, err
	}
	var v int
	err := s.tx(ctx, op, func(c Conn) error {
		var err error
		v, err = s.active(ctx, c, op, name, "")
		return err
	})
	return v, err
}

// ProjectionHeartbeat implements strata.ProjectionStore.
func (s *Store) ProjectionHeartbeat(ctx context.Context, name string, version int, owner string, ttl time.Duration) ([]string, error) {
	const op = "projection heartbeat"
	if err := strata.ValidateProjectionKey(op, strata.ProjectionKey{Name: name, Version: version}); err != nil {
		return nil, err
	}
	if err := strata.ValidateProjectionOwner(op, owner); err != nil {
		return nil, err
	}
	if err := strata.ValidateLeaseTTL(op, ttl); err != nil {
		return nil, err
	}
	var live []string
	err := s.tx(ctx, op, func(c Conn) error {
		now := s.now()
		until := now + ttl.Microseconds()
		if _, err := s.exec(ctx, c, op, "INSERT INTO {w} (name, version, owner, expires_at) VALUES (?, ?, ?, ?)"+s.D.InsertIgnore, name, int64(version), owner, until); err != nil {
			return err
		}
		if _, err := s.exec(ctx, c, op, "UPDATE {w} SET expires_at = ? WHERE name = ? AND version = ? AND owner = ?", until, name, int64(version), owner); err != nil {
			return err
		}
		if _, err := s.exec(ctx, c, op, "DELETE FROM {w} WHERE name = ? AND version = ? AND expires_at < ?", name, int64(version), now); err != nil {
			return err
		}
		rows, err := c.Query(ctx, s.q("SELECT owner FROM {w} WHERE name = ? AND version = ? ORDER BY owner"), name, int64(version))
		if err != nil {
			return s.B.Fail(op, err)
		}
		defer rows.Close()
		for rows.Next() {
			var o string
			if err := rows.Scan(&o); err != nil {
				return s.B.Fail(op, err)
			}
			live = append(live, o)
		}
		return s.B.Fail(op, rows.Err())
	})
	return live, err
}

// QueryProjection implements strata.ProjectionStore.
func (s *Store) QueryProjection(ctx context.Context, fn func(tx any) error) error {
	const op = "query projection"
	if fn == nil {
		return strata.Errorf(strata.Invalid, op, "no function to run")
	}
	if err := s.check(op); err != nil {
		return err
	}
	err := s.B.ReadTx(ctx, op, func(tx any) error {
		if err := fn(tx); err != nil {
			return applyError{err}
		}
		return nil
	})
	var ae applyError
	if errors.As(err, &ae) {
		return ae.err
	}
	if err != nil {
		return s.B.Fail(op, err)
	}
	return nil
}
