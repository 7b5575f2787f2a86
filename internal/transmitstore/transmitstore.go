// Package transmitstore implements strata.TransmitStore once over SQL (migration 0007, and the
// leases of transmit_leases: 0009 on SQLite and MySQL, 0010 on PostgreSQL), for the SQLite,
// MySQL and PostgreSQL backends. Each gives it the transaction runner it gives
// internal/projstore and a dialect; every call is one transaction on the write path, so that a
// batch's delivery records and the transmitter's checkpoint commit together.
//
// A fenced commit, a claim and a renewal first lock the transmitter's lease row (SELECT ... FOR
// UPDATE where the database has it; SQLite's BEGIN IMMEDIATE locks the whole file), so that the
// epoch a commit is checked against cannot change before the commit's writes are done. Lease
// times are the caller's clock, as in internal/projstore.
package transmitstore

import (
	"context"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/strata-events/strata"
	"github.com/strata-events/strata/internal/projstore"
)

// Dialect holds what differs between databases.
type Dialect struct {
	// Table returns the qualified name of a table.
	Table func(name string) string
	// Rebind rewrites ? placeholders, e.g. to $1, $2...; nil leaves them.
	Rebind func(q string) string
	// Upsert returns the clause appended to a multi-row INSERT that replaces the row with the
	// same key columns by the inserted values of cols.
	Upsert func(key, cols []string) string
	// InsertIgnore is appended to an INSERT to make a duplicate key a no-op.
	InsertIgnore string
	// ForUpdate is appended to row-locking SELECTs ("" on SQLite).
	ForUpdate string
	// ID turns an event ID into the driver's argument for the event_id column.
	ID func(uuid.UUID) any
	// Bulk, when set, stores a transmitter's records in one statement its own way (PostgreSQL:
	// arrays and unnest, several times faster than a long VALUES list). table is the qualified
	// deliveries table; the rows must replace stored ones with the same key.
	Bulk func(ctx context.Context, conn projstore.Conn, table, transmitter string, ds []strata.Delivery) error
}

// Store implements strata.TransmitStore.
type Store struct {
	B   projstore.Backend
	D   Dialect
	Now func() time.Time
}

// chunk is the most rows one INSERT or IN list carries: 13 columns × 500 rows stays well below
// every database's placeholder limit.
const chunk = 500

var deliveryCols = []string{"transmitter", "event_id", "pos_commit", "pos_event", "stream", "version", "type",
	"status", "attempts", "last_error", "first_attempt_at", "last_attempt_at", "sent_at"}

const selectCols = "event_id, pos_commit, pos_event, stream, version, type, status, attempts, last_error, first_attempt_at, last_attempt_at, sent_at"

func (s *Store) q(query string) string {
	query = strings.NewReplacer("{s}", s.D.Table("transmit_state"), "{d}", s.D.Table("transmit_deliveries"),
		"{l}", s.D.Table("transmit_leases")).Replace(query)
	if s.D.Rebind != nil {
		query = s.D.Rebind(query)
	}
	return query
}

func (s *Store) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// micros stores a time as Unix microseconds, the zero time as 0.
func micros(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMicro()
}

func fromMicros(m int64) time.Time {
	if m == 0 {
		return time.Time{}
	}
	return time.UnixMicro(m).UTC()
}

func (s *Store) tx(ctx context.Context, op string, fn func(projstore.Conn) error) error {
	if s.B.Closed() {
		return strata.ClosedError(op)
	}
	if err := ctx.Err(); err != nil {
		return &strata.Error{Code: strata.Unavailable, Op: op, Err: err}
	}
	if err := s.B.Tx(ctx, op, fn); err != nil {
		return s.B.Fail(op, err)
	}
	return nil
}

// CommitDeliveries implements strata.TransmitStore.
func (s *Store) CommitDeliveries(ctx context.Context, c strata.DeliveryCommit) error {
	const op = "commit deliveries"
	c, err := strata.PrepareDeliveryCommit(op, c)
	if err != nil {
		return err
	}
	now := micros(strata.Timestamp(s.now()))
	return s.tx(ctx, op, func(conn projstore.Conn) error {
		if c.Lease != nil {
			cur, found, err := s.lockLease(ctx, conn, c.Transmitter)
			if err != nil {
				return err
			}
			if !found || cur.Owner != c.Lease.Owner || cur.Epoch != c.Lease.Epoch {
				return strata.TransmitLeaseLost(op, *c.Lease)
			}
		}
		if c.Checkpoint != nil {
			q := "INSERT INTO {s} (name, pos_commit, pos_event, updated_at) VALUES (?, ?, ?, ?)" +
				s.D.Upsert([]string{"name"}, []string{"pos_commit", "pos_event", "updated_at"})
			if _, err := conn.Exec(ctx, s.q(q), c.Transmitter, int64(c.Checkpoint.Commit), int64(c.Checkpoint.Event), now); err != nil {
				return err
			}
		} else {
			if _, err := conn.Exec(ctx, s.q("INSERT INTO {s} (name, pos_commit, pos_event, updated_at) VALUES (?, 0, 0, ?)"+s.D.InsertIgnore), c.Transmitter, now); err != nil {
				return err
			}
			if _, err := conn.Exec(ctx, s.q("UPDATE {s} SET updated_at = ? WHERE name = ?"), now, c.Transmitter); err != nil {
				return err
			}
		}
		if s.D.Bulk != nil {
			if len(c.Deliveries) == 0 {
				return nil
			}
			return s.D.Bulk(ctx, conn, s.D.Table("transmit_deliveries"), c.Transmitter, c.Deliveries)
		}
		upsert := s.D.Upsert([]string{"transmitter", "event_id"}, deliveryCols[2:])
		row := "(" + strings.TrimSuffix(strings.Repeat("?, ", len(deliveryCols)), ", ") + ")"
		for start := 0; start < len(c.Deliveries); start += chunk {
			part := c.Deliveries[start:min(start+chunk, len(c.Deliveries))]
			var b strings.Builder
			b.WriteString("INSERT INTO {d} (" + strings.Join(deliveryCols, ", ") + ") VALUES ")
			args := make([]any, 0, len(part)*len(deliveryCols))
			for i, d := range part {
				if i > 0 {
					b.WriteString(", ")
				}
				b.WriteString(row)
				args = append(args, c.Transmitter, s.D.ID(d.EventID), int64(d.Position.Commit), int64(d.Position.Event),
					d.Stream, d.Version, d.Type, string(d.Status), int64(d.Attempts), d.LastError,
					micros(d.FirstAttemptAt), micros(d.LastAttemptAt), micros(d.SentAt))
			}
			b.WriteString(upsert)
			if _, err := conn.Exec(ctx, s.q(b.String()), args...); err != nil {
				return err
			}
		}
		return nil
	})
}

// TransmitCheckpoint implements strata.TransmitStore.
func (s *Store) TransmitCheckpoint(ctx context.Context, transmitter string) (strata.Position, error) {
	const op = "transmit checkpoint"
	if err := strata.ValidateTransmitterName(op, transmitter); err != nil {
		return strata.Start, err
	}
	var pos strata.Position
	err := s.tx(ctx, op, func(conn projstore.Conn) error {
		rows, err := conn.Query(ctx, s.q("SELECT pos_commit, pos_event FROM {s} WHERE name = ?"), transmitter)
		if err != nil {
			return err
		}
		defer rows.Close()
		if rows.Next() {
			var c, e int64
			if err := rows.Scan(&c, &e); err != nil {
				return err
			}
			pos = strata.Position{Commit: uint64(c), Event: uint64(e)}
		}
		return rows.Err()
	})
	return pos, err
}

// Deliveries implements strata.TransmitStore.
func (s *Store) Deliveries(ctx context.Context, q strata.DeliveryQuery) ([]strata.Delivery, error) {
	const op = "deliveries"
	q, err := strata.PrepareDeliveryQuery(op, q)
	if err != nil {
		return nil, err
	}
	query := "SELECT " + selectCols + " FROM {d} WHERE transmitter = ?"
	args := []any{q.Transmitter}
	if q.Status != "" {
		query += " AND status = ?"
		args = append(args, string(q.Status))
	}
	query += " AND (pos_commit > ? OR (pos_commit = ? AND pos_event > ?)) ORDER BY pos_commit, pos_event LIMIT ?"
	args = append(args, int64(q.After.Commit), int64(q.After.Commit), int64(q.After.Event), int64(q.Limit))
	var out []strata.Delivery
	err = s.tx(ctx, op, func(conn projstore.Conn) error {
		out = out[:0]
		rows, err := conn.Query(ctx, s.q(query), args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var d strata.Delivery
			var pc, pe, attempts, first, last, sent int64
			var status string
			if err := rows.Scan(&d.EventID, &pc, &pe, &d.Stream, &d.Version, &d.Type, &status, &attempts, &d.LastError, &first, &last, &sent); err != nil {
				return err
			}
			d.Position = strata.Position{Commit: uint64(pc), Event: uint64(pe)}
			d.Status = strata.DeliveryStatus(status)
			d.Attempts = int(attempts)
			d.FirstAttemptAt, d.LastAttemptAt, d.SentAt = fromMicros(first), fromMicros(last), fromMicros(sent)
			out = append(out, d)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// RequeueDeliveries implements strata.TransmitStore.
func (s *Store) RequeueDeliveries(ctx context.Context, transmitter string, ids []uuid.UUID) (int64, error) {
	const op = "requeue deliveries"
	if err := strata.PrepareRequeue(op, transmitter, ids); err != nil {
		return 0, err
	}
	if len(ids) == 0 {
		return 0, nil
	}
	var n int64
	err := s.tx(ctx, op, func(conn projstore.Conn) error {
		n = 0
		for start := 0; start < len(ids); start += chunk {
			part := ids[start:min(start+chunk, len(ids))]
			args := []any{transmitter}
			for _, id := range part {
				args = append(args, s.D.ID(id))
			}
			q := "UPDATE {d} SET status = 'pending' WHERE transmitter = ? AND status = 'dead' AND event_id IN (" +
				strings.TrimSuffix(strings.Repeat("?, ", len(part)), ", ") + ")"
			k, err := conn.Exec(ctx, s.q(q), args...)
			if err != nil {
				return err
			}
			n += k
		}
		return nil
	})
	return n, err
}

// statesQuery reads every transmitter's state row, lease row and record counts in one
// statement, and so in one snapshot: under READ COMMITTED (PostgreSQL's default, and the
// isolation the MySQL backend sets) each statement of a transaction sees the commits done when
// it starts, so that three statements could pair a checkpoint from before a batch's commit with
// the counts from after it. kind tells the rows apart: 0 a state (pos_commit, pos_event,
// updated_at), 1 a lease (epoch, lease_until; txt the owner), 2 a count (n; txt the status).
const statesQuery = `SELECT 0, name, pos_commit, pos_event, updated_at, '' FROM {s}
UNION ALL SELECT 1, name, epoch, lease_until, 0, owner FROM {l}
UNION ALL SELECT 2, transmitter, COUNT(*), 0, 0, status FROM {d} GROUP BY transmitter, status`

// TransmitterStates implements strata.TransmitStore. Each state is one snapshot (see
// statesQuery): its checkpoint, counts and lease are those of the same commits.
func (s *Store) TransmitterStates(ctx context.Context) ([]strata.TransmitterState, error) {
	const op = "transmitter states"
	var out []strata.TransmitterState
	err := s.tx(ctx, op, func(conn projstore.Conn) error {
		out = out[:0]
		states := map[string]*strata.TransmitterState{}
		get := func(name string) *strata.TransmitterState {
			st := states[name]
			if st == nil {
				st = &strata.TransmitterState{Name: name}
				states[name] = st
			}
			return st
		}
		type count struct {
			name, status string
			n            int64
		}
		var counts []count
		rows, err := conn.Query(ctx, s.q(statesQuery))
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var kind int64
			var name, txt string
			var a, b, c int64
			if err := rows.Scan(&kind, &name, &a, &b, &c, &txt); err != nil {
				return err
			}
			switch kind {
			case 0:
				st := get(name)
				st.Checkpoint = strata.Position{Commit: uint64(a), Event: uint64(b)}
				st.UpdatedAt = fromMicros(c)
			case 1:
				st := get(name)
				st.Owner, st.Epoch, st.LeaseUntil = txt, a, fromMicros(b)
			case 2:
				counts = append(counts, count{name, txt, a})
			}
		}
		if err := rows.Err(); err != nil {
			return err
		}
		// Records count only for a transmitter that committed or claimed its lease.
		for _, c := range counts {
			st := states[c.name]
			if st == nil {
				continue
			}
			switch strata.DeliveryStatus(c.status) {
			case strata.DeliveryPending:
				st.Pending = c.n
			case strata.DeliverySent:
				st.Sent = c.n
			case strata.DeliveryFailed:
				st.Failed = c.n
			case strata.DeliveryDead:
				st.Dead = c.n
			}
		}
		for _, st := range states {
			out = append(out, *st)
		}
		// Names compare as bytes on every backend; Go's string order is byte order.
		slices.SortFunc(out, func(a, b strata.TransmitterState) int { return strings.Compare(a.Name, b.Name) })
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// PruneDeliveryRecords implements strata.TransmitStore.
func (s *Store) PruneDeliveryRecords(ctx context.Context, p strata.DeliveryPrune) (strata.PrunedDeliveries, error) {
	const op = "prune delivery records"
	p, err := strata.PrepareDeliveryPrune(op, p)
	if err != nil {
		return strata.PrunedDeliveries{}, err
	}
	type part struct {
		status string
		col    string
		before time.Time
		n      *int64
	}
	var out strata.PrunedDeliveries
	parts := []part{{"sent", "sent_at", p.SentBefore, &out.Sent}, {"dead", "last_attempt_at", p.DeadBefore, &out.Dead}}
	err = s.tx(ctx, op, func(conn projstore.Conn) error {
		out = strata.PrunedDeliveries{}
		for _, pt := range parts {
			if pt.before.IsZero() {
				continue
			}
			where := " FROM {d} WHERE transmitter = ? AND status = '" + pt.status + "' AND " + pt.col + " < ?"
			args := []any{p.Transmitter, micros(pt.before)}
			if !p.DryRun {
				n, err := conn.Exec(ctx, s.q("DELETE"+where), args...)
				if err != nil {
					return err
				}
				*pt.n = n
				continue
			}
			rows, err := conn.Query(ctx, s.q("SELECT COUNT(*)"+where), args...)
			if err != nil {
				return err
			}
			for rows.Next() {
				if err := rows.Scan(pt.n); err != nil {
					rows.Close()
					return err
				}
			}
			rows.Close()
			if err := rows.Err(); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return strata.PrunedDeliveries{}, err
	}
	return out, nil
}

// lockLease reads and locks the transmitter's lease row; found is false when it has none.
func (s *Store) lockLease(ctx context.Context, conn projstore.Conn, name string) (l strata.TransmitLease, found bool, err error) {
	rows, err := conn.Query(ctx, s.q("SELECT owner, epoch, lease_until FROM {l} WHERE name = ?"+s.D.ForUpdate), name)
	if err != nil {
		return l, false, err
	}
	defer rows.Close()
	l.Transmitter = name
	if rows.Next() {
		var until int64
		if err := rows.Scan(&l.Owner, &l.Epoch, &until); err != nil {
			return l, false, err
		}
		l.Until, found = fromMicros(until), true
	}
	return l, found, rows.Err()
}

// ClaimTransmitter implements strata.TransmitStore.
func (s *Store) ClaimTransmitter(ctx context.Context, transmitter, owner string, ttl time.Duration) (strata.TransmitLease, error) {
	const op = "claim transmitter"
	if err := strata.ValidateTransmitClaim(op, transmitter, owner, ttl); err != nil {
		return strata.TransmitLease{}, err
	}
	var l strata.TransmitLease
	err := s.tx(ctx, op, func(conn projstore.Conn) error {
		if _, err := conn.Exec(ctx, s.q("INSERT INTO {l} (name, owner, epoch, lease_until) VALUES (?, '', 0, 0)"+s.D.InsertIgnore), transmitter); err != nil {
			return err
		}
		cur, _, err := s.lockLease(ctx, conn, transmitter)
		if err != nil {
			return err
		}
		now := strata.Timestamp(s.now())
		if cur.Owner != "" && cur.Owner != owner && cur.Until.After(now) {
			l = cur
			return strata.TransmitterHeld(op, cur)
		}
		until := strata.Timestamp(now.Add(ttl))
		if _, err := conn.Exec(ctx, s.q("UPDATE {l} SET owner = ?, epoch = ?, lease_until = ? WHERE name = ?"), owner, cur.Epoch+1, micros(until), transmitter); err != nil {
			return err
		}
		l = strata.TransmitLease{Transmitter: transmitter, Owner: owner, Epoch: cur.Epoch + 1, Until: until}
		return nil
	})
	if err != nil && strata.ErrorCode(err) != strata.Conflict {
		l = strata.TransmitLease{}
	}
	return l, err
}

// RenewTransmitLease implements strata.TransmitStore.
func (s *Store) RenewTransmitLease(ctx context.Context, l strata.TransmitLease, ttl time.Duration) (strata.TransmitLease, error) {
	const op = "renew transmit lease"
	if err := strata.ValidateTransmitLease(op, l); err != nil {
		return strata.TransmitLease{}, err
	}
	if err := strata.ValidateLeaseTTL(op, ttl); err != nil {
		return strata.TransmitLease{}, err
	}
	var out strata.TransmitLease
	err := s.tx(ctx, op, func(conn projstore.Conn) error {
		cur, found, err := s.lockLease(ctx, conn, l.Transmitter)
		if err != nil {
			return err
		}
		if !found || cur.Owner != l.Owner || cur.Epoch != l.Epoch {
			return strata.TransmitLeaseLost(op, l)
		}
		until := strata.Timestamp(s.now().Add(ttl))
		if _, err := conn.Exec(ctx, s.q("UPDATE {l} SET lease_until = ? WHERE name = ?"), micros(until), l.Transmitter); err != nil {
			return err
		}
		out = strata.TransmitLease{Transmitter: l.Transmitter, Owner: l.Owner, Epoch: l.Epoch, Until: until}
		return nil
	})
	if err != nil {
		return strata.TransmitLease{}, err
	}
	return out, nil
}

// ReleaseTransmitLease implements strata.TransmitStore.
func (s *Store) ReleaseTransmitLease(ctx context.Context, l strata.TransmitLease) error {
	const op = "release transmit lease"
	if err := strata.ValidateTransmitLease(op, l); err != nil {
		return err
	}
	return s.tx(ctx, op, func(conn projstore.Conn) error {
		_, err := conn.Exec(ctx, s.q("UPDATE {l} SET owner = '', lease_until = 0 WHERE name = ? AND owner = ? AND epoch = ?"), l.Transmitter, l.Owner, l.Epoch)
		return err
	})
}

// DeliveryColumns are the columns of a delivery row, in the order the rows are written: the
// transmitter, then the record's fields.
func DeliveryColumns() []string { return append([]string(nil), deliveryCols...) }

// Micros is how times are stored: Unix microseconds, 0 for the zero time.
func Micros(t time.Time) int64 { return micros(t) }

// ConflictUpsert is the Upsert of PostgreSQL and SQLite.
func ConflictUpsert(key, cols []string) string {
	set := make([]string, len(cols))
	for i, c := range cols {
		set[i] = c + " = excluded." + c
	}
	return " ON CONFLICT (" + strings.Join(key, ", ") + ") DO UPDATE SET " + strings.Join(set, ", ")
}

// DuplicateKeyUpsert is the Upsert of MySQL and MariaDB.
func DuplicateKeyUpsert(_, cols []string) string {
	set := make([]string, len(cols))
	for i, c := range cols {
		set[i] = c + " = VALUES(" + c + ")"
	}
	return " ON DUPLICATE KEY UPDATE " + strings.Join(set, ", ")
}
