// Package transmitstore implements strata.TransmitStore once over SQL (migration 0007), for the
// SQLite, MySQL and PostgreSQL backends. Each gives it the transaction runner it gives
// internal/projstore and a dialect; every call is one transaction on the write path, so that a
// batch's delivery records and the transmitter's checkpoint commit together.
package transmitstore

import (
	"context"
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
	query = strings.NewReplacer("{s}", s.D.Table("transmit_state"), "{d}", s.D.Table("transmit_deliveries")).Replace(query)
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

// TransmitterStates implements strata.TransmitStore.
func (s *Store) TransmitterStates(ctx context.Context) ([]strata.TransmitterState, error) {
	const op = "transmitter states"
	var out []strata.TransmitterState
	err := s.tx(ctx, op, func(conn projstore.Conn) error {
		out = out[:0]
		rows, err := conn.Query(ctx, s.q("SELECT name, pos_commit, pos_event, updated_at FROM {s} ORDER BY name"))
		if err != nil {
			return err
		}
		idx := map[string]int{}
		for rows.Next() {
			var st strata.TransmitterState
			var c, e, at int64
			if err := rows.Scan(&st.Name, &c, &e, &at); err != nil {
				rows.Close()
				return err
			}
			st.Checkpoint = strata.Position{Commit: uint64(c), Event: uint64(e)}
			st.UpdatedAt = fromMicros(at)
			idx[st.Name] = len(out)
			out = append(out, st)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		rows, err = conn.Query(ctx, s.q("SELECT transmitter, status, COUNT(*) FROM {d} GROUP BY transmitter, status"))
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var name, status string
			var n int64
			if err := rows.Scan(&name, &status, &n); err != nil {
				return err
			}
			i, ok := idx[name]
			if !ok {
				continue
			}
			switch strata.DeliveryStatus(status) {
			case strata.DeliveryPending:
				out[i].Pending = n
			case strata.DeliverySent:
				out[i].Sent = n
			case strata.DeliveryFailed:
				out[i].Failed = n
			case strata.DeliveryDead:
				out[i].Dead = n
			}
		}
		return rows.Err()
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// PruneDeliveries implements strata.TransmitStore.
func (s *Store) PruneDeliveries(ctx context.Context, transmitter string, before time.Time) (int64, error) {
	const op = "prune deliveries"
	if err := strata.ValidateTransmitterName(op, transmitter); err != nil {
		return 0, err
	}
	var n int64
	err := s.tx(ctx, op, func(conn projstore.Conn) error {
		var err error
		n, err = conn.Exec(ctx, s.q("DELETE FROM {d} WHERE transmitter = ? AND status = 'sent' AND sent_at < ?"), transmitter, micros(strata.Timestamp(before)))
		return err
	})
	return n, err
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
