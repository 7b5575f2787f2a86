package mysql

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/strata-events/strata"
)

// maxAttempts bounds how often an append is run again after a deadlock or a lock wait timeout.
const maxAttempts = 8

// maxRowsPerInsert bounds the rows of one INSERT statement (10 placeholders each, far below the
// 65,535 a statement may have).
const maxRowsPerInsert = 1000

// smallAppend is the most events of a single-stream append whose events read the recording
// time with a subquery instead of a round trip of its own.
const smallAppend = 4

// Append appends events to one stream; see strata.Store.
func (s *Store) Append(ctx context.Context, stream string, expected strata.ExpectedVersion, events ...strata.EventData) (strata.AppendResult, error) {
	res, err := s.appendAll(ctx, "append", []strata.StreamAppend{{Stream: stream, Expected: expected, Events: events}})
	if err != nil {
		return strata.AppendResult{}, err
	}
	return res[0], nil
}

// AppendMulti appends to several streams in one transaction; see strata.Store.
func (s *Store) AppendMulti(ctx context.Context, appends ...strata.StreamAppend) ([]strata.AppendResult, error) {
	return s.appendAll(ctx, "append multi", appends)
}

// row is one event ready for INSERT.
type row struct {
	stream   string
	version  int64 // set per attempt
	ev       strata.EventData
	meta     []byte
	tenant   string
	occurred time.Time // zero: the recording time
}

// versionMismatch says that an expected version did not hold.
type versionMismatch struct {
	stream   string
	expected strata.ExpectedVersion
	actual   int64
}

func (v *versionMismatch) Error() string { return "version mismatch on " + v.stream }

// hookError carries the error of the BeforeCommit hook, which ends the append without a retry.
type hookError struct{ err error }

func (h *hookError) Error() string { return h.err.Error() }

func (s *Store) appendAll(ctx context.Context, op string, appends []strata.StreamAppend) ([]strata.AppendResult, error) {
	if s.isClosed() {
		return nil, strata.ClosedError(op)
	}
	appends, err := strata.PrepareAppend(op, appends)
	if err != nil {
		return nil, err
	}
	var rows []row
	for _, a := range appends {
		for i, e := range a.Events {
			if !e.OccurredAt.IsZero() && (e.OccurredAt.Year() < 1000 || e.OccurredAt.Year() > 9999) {
				return nil, strata.Errorf(strata.Invalid, op, "stream %q event %d: occurred time %s is outside the years 1000-9999 MySQL can store", a.Stream, i, e.OccurredAt.Format(time.RFC3339))
			}
			meta, err := e.Meta.MarshalJSON()
			if err != nil {
				return nil, strata.Errorf(strata.Invalid, op, "stream %q event %d: %w", a.Stream, i, err)
			}
			rows = append(rows, row{stream: a.Stream, ev: e, meta: meta, tenant: tenantKey(e.Meta.Tenant), occurred: e.OccurredAt})
		}
	}

	for attempt := 1; ; attempt++ {
		results, err := s.tryAppend(ctx, appends, rows)
		if err == nil {
			s.poke()
			return results, nil
		}
		var hook *hookError
		var mismatch *versionMismatch
		switch {
		case errors.As(err, &hook):
			return nil, s.fail(op, hook.err)
		case errors.As(err, &mismatch), isMySQLError(err, errDupEntry):
			results, resolved, rerr := s.resolveReplay(ctx, op, appends)
			if rerr != nil {
				return nil, rerr
			}
			if resolved {
				return results, nil
			}
			if mismatch != nil {
				return nil, strata.VersionConflict(op, mismatch.stream, mismatch.expected, mismatch.actual)
			}
			// A duplicate key although none of the IDs is stored and the streams' rows were
			// locked: the streams table disagrees with the events.
			return nil, &strata.Error{Code: strata.Internal, Op: op, Msg: "duplicate stream version although the stream's row was locked; the streams table disagrees with the events", Err: err}
		case retryable(err):
		default:
			return nil, s.fail(op, err)
		}
		if attempt >= maxAttempts {
			return nil, &strata.Error{Code: strata.Unavailable, Op: op, Msg: "gave up after repeated deadlocks or lock wait timeouts; retry later", Err: err}
		}
		if err := sleep(ctx, time.Duration(attempt)*time.Millisecond+rand.N(5*time.Millisecond)); err != nil {
			return nil, s.fail(op, err)
		}
	}
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// tryAppend runs one append transaction: move each stream's version, in name order, checking
// its expected version; insert the events with no position; run the BeforeCommit hook; commit.
// Positions are stamped later by the sequencer.
func (s *Store) tryAppend(ctx context.Context, appends []strata.StreamAppend, rows []row) ([]strata.AppendResult, error) {
	results := make([]strata.AppendResult, len(appends))
	err := s.inTx(ctx, func(c *sql.Conn) error {
		// The recording time is the database's clock, one value for the whole transaction.
		// A small single-stream append lets the upsert take it and has each event read it
		// from the stream's row; otherwise one more round trip reads it first, which is
		// cheaper than a subquery per event.
		now, nowArg := "UTC_TIMESTAMP(6)", []any(nil)
		if len(appends) > 1 || len(rows) > smallAppend {
			var t time.Time
			if err := c.QueryRowContext(ctx, "SELECT UTC_TIMESTAMP(6)").Scan(&t); err != nil {
				return err
			}
			now, nowArg = "?", []any{t}
		}
		// Creating or moving a stream's row locks it until commit, which serializes the
		// stream's writers; taking the locks in name order keeps AppendMulti calls from
		// deadlocking. LAST_INSERT_ID(expr) hands the new version back in the same round trip.
		upsert := "INSERT INTO streams (name, version, first_recorded_at, last_recorded_at) VALUES (?, LAST_INSERT_ID(?), " + now + ", " + now +
			") ON DUPLICATE KEY UPDATE version = LAST_INSERT_ID(version + ?), last_recorded_at = " + now
		order := make([]int, len(appends))
		for i := range order {
			order[i] = i
		}
		slices.SortFunc(order, func(i, j int) int { return strings.Compare(appends[i].Stream, appends[j].Stream) })
		for _, i := range order {
			a := appends[i]
			k := int64(len(a.Events))
			args := slices.Concat([]any{a.Stream, k}, nowArg, nowArg, []any{k}, nowArg)
			res, err := c.ExecContext(ctx, upsert, args...)
			if err != nil {
				return err
			}
			last, err := res.LastInsertId()
			if err != nil {
				return err
			}
			if cur := last - k; !a.Expected.Allows(cur) {
				return &versionMismatch{stream: a.Stream, expected: a.Expected, actual: cur}
			}
			results[i] = strata.AppendResult{Stream: a.Stream, FirstVersion: last - k + 1, LastVersion: last}
		}

		next := make(map[string]int64, len(appends))
		for _, r := range results {
			next[r.Stream] = r.FirstVersion
		}
		for i := range rows {
			rows[i].version = next[rows[i].stream]
			next[rows[i].stream]++
		}
		for start := 0; start < len(rows); {
			end, size := start, 0
			for end < len(rows) && end-start < maxRowsPerInsert {
				sz := len(rows[end].ev.Data) + len(rows[end].meta) + 3*strata.MaxStreamNameLen + 128
				if end > start && size+sz > s.chunkSize {
					break
				}
				size += sz
				end++
			}
			if err := insertEvents(ctx, c, rows[start:end], nowArg); err != nil {
				return err
			}
			start = end
		}

		if err := strata.BeforeCommit(ctx); err != nil {
			return &hookError{err: err}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return results, nil
}

// insertEvents writes rows with one multi-row INSERT. The recording time is now[0], or when now
// is empty it is read from each event's stream row, which the transaction has just written. The
// text of a statement too large for max_allowed_packet makes the driver fall back to a prepared
// statement, which sends large payloads in pieces.
func insertEvents(ctx context.Context, c *sql.Conn, rows []row, now []any) error {
	var q strings.Builder
	q.Grow(160 + 90*len(rows))
	q.WriteString("INSERT INTO events (id, stream, version, type, schema_version, data, meta, tenant, recorded_at, occurred_at) VALUES ")
	args := make([]any, 0, 11*len(rows))
	for i, r := range rows {
		if i > 0 {
			q.WriteByte(',')
		}
		var recorded any = r.stream
		if len(now) > 0 {
			q.WriteString("(?,?,?,?,?,?,?,?,?,?)")
			recorded = now[0]
		} else {
			q.WriteString("(?,?,?,?,?,?,?,?,(SELECT last_recorded_at FROM streams WHERE name = ?),?)")
		}
		var occurred any // NULL: the same as recorded_at
		if !r.occurred.IsZero() {
			occurred = r.occurred
		}
		id := r.ev.ID
		args = append(args, id[:], r.stream, r.version, r.ev.Type, r.ev.Schema, []byte(r.ev.Data), r.meta, r.tenant, recorded, occurred)
	}
	_, err := c.ExecContext(ctx, q.String(), args...)
	return err
}

// tenantKey is the indexed form of a tenant: the tenant itself when it is at most 200 bytes,
// and otherwise its first 191 bytes followed by the hex SHA-256 of all of it (255 bytes, so it
// never equals a short tenant).
func tenantKey(t string) string {
	if len(t) <= 200 {
		return t
	}
	sum := sha256.Sum256([]byte(t))
	return t[:191] + hex.EncodeToString(sum[:])
}

// resolveReplay looks up the batch's event IDs after a failed append and asks
// strata.ResolveReplay what the append was. resolved is false when none of the IDs is stored.
func (s *Store) resolveReplay(ctx context.Context, op string, appends []strata.StreamAppend) ([]strata.AppendResult, bool, error) {
	stored, err := s.lookupIDs(ctx, strata.EventIDs(appends))
	if err != nil {
		return nil, false, s.fail(op, err)
	}
	if len(stored) == 0 {
		return nil, false, nil
	}
	results := make([]strata.AppendResult, len(appends))
	var replayed, fresh []string
	for i, a := range appends {
		mine := make(map[uuid.UUID]strata.Event, len(a.Events))
		for _, e := range a.Events {
			if ev, ok := stored[e.ID]; ok {
				mine[e.ID] = ev
			}
		}
		res, ok, err := strata.ResolveReplay(op, a, mine)
		if err != nil {
			return nil, false, err
		}
		if ok {
			replayed = append(replayed, a.Stream)
		} else {
			fresh = append(fresh, a.Stream)
		}
		results[i] = res
	}
	if len(fresh) > 0 {
		return nil, false, strata.Errorf(strata.Conflict, op, "the events for stream %q were stored before, but not those for stream %q; a retry must resend the same batch: %w", replayed[0], fresh[0], strata.ErrEventIDReused)
	}
	return results, true, nil
}

// lookupIDs returns the stored events among ids, with the fields ResolveReplay compares.
func (s *Store) lookupIDs(ctx context.Context, ids []uuid.UUID) (map[uuid.UUID]strata.Event, error) {
	stored := make(map[uuid.UUID]strata.Event)
	for chunk := range slices.Chunk(ids, 500) {
		var q strings.Builder
		q.WriteString("SELECT id, stream, version, type, schema_version, data FROM events WHERE id IN (")
		args := make([]any, len(chunk))
		for i, id := range chunk {
			if i > 0 {
				q.WriteByte(',')
			}
			q.WriteByte('?')
			args[i] = id[:]
		}
		q.WriteByte(')')
		rows, err := s.db.QueryContext(ctx, q.String(), args...)
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			var id, stream, typ, data []byte
			var e strata.Event
			if err := rows.Scan(&id, &stream, &e.Version, &typ, &e.Schema, &data); err != nil {
				rows.Close()
				return nil, err
			}
			e.ID, err = uuid.FromBytes(id)
			if err != nil {
				rows.Close()
				return nil, err
			}
			e.Stream, e.Type, e.Data = string(stream), string(typ), data
			stored[e.ID] = e
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
	}
	return stored, nil
}
