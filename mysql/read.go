package mysql

import (
	"context"
	"database/sql"
	"iter"
	"math"
	"strings"

	"github.com/google/uuid"

	"github.com/strata-events/strata"
	"github.com/strata-events/strata/internal/follow"
)

// Reads fetch pages of at most pageRows rows, and stop a page early once it holds pageBytes of
// payload. A page is read completely and its rows closed before any of it is yielded: no
// connection or transaction is held while the caller's loop body runs.
const (
	pageRows  = 500
	pageBytes = 4 << 20
)

const eventColumns = "position, id, stream, version, type, schema_version, data, meta, recorded_at, COALESCE(occurred_at, recorded_at)"

// page is one page of events.
type page struct {
	evs         []strata.Event
	more        bool // the query may have had more rows
	unsequenced bool // some event has no position yet
	bytes       int  // payload and metadata bytes read
}

// readEvents runs a query for events that asks for limit rows. It stops early, abandoning the
// rest of the result, once the page holds pageBytes.
func (s *Store) readEvents(ctx context.Context, limit int, query string, args ...any) (page, error) {
	qctx, cancel := context.WithCancel(ctx)
	defer cancel()
	rows, err := s.db.QueryContext(qctx, query, args...)
	if err != nil {
		return page{}, err
	}
	defer rows.Close()
	var p page
	for rows.Next() {
		var (
			e                     strata.Event
			pos                   sql.NullInt64
			id, stream, typ, meta []byte
			data                  []byte
		)
		if err := rows.Scan(&pos, &id, &stream, &e.Version, &typ, &e.Schema, &data, &meta, &e.RecordedAt, &e.OccurredAt); err != nil {
			return page{}, err
		}
		if e.ID, err = uuid.FromBytes(id); err != nil {
			return page{}, err
		}
		if err := e.Meta.UnmarshalJSON(meta); err != nil {
			return page{}, err
		}
		if pos.Valid {
			e.Position = strata.Position{Commit: uint64(pos.Int64), Event: uint64(pos.Int64)}
		} else {
			p.unsequenced = true
		}
		e.Stream, e.Type, e.Data = string(stream), string(typ), data
		e.RecordedAt, e.OccurredAt = e.RecordedAt.UTC(), e.OccurredAt.UTC()
		p.evs = append(p.evs, e)
		p.bytes += len(data) + len(meta)
		if p.bytes >= pageBytes && len(p.evs) < limit {
			// A page of large events. Cancelling drops the connection rather than reading
			// the rows left in the result only to discard them.
			cancel()
			p.more = true
			return p, nil
		}
	}
	if err := rows.Err(); err != nil {
		return page{}, err
	}
	p.more = len(p.evs) == limit
	return p, nil
}

// pageSize is the rows to ask for when limit (0: none) allows limit-read more and the last
// page averaged rowBytes per row (0: no page yet).
func pageSize(limit, read, rowBytes int) int {
	n := pageRows
	if rowBytes > 0 {
		n = max(1, min(n, pageBytes/rowBytes))
	}
	if limit > 0 {
		n = min(n, limit-read)
	}
	return n
}

// avgRow is the average row size of p, or the previous average if p is empty.
func avgRow(p page, prev int) int {
	if len(p.evs) == 0 {
		return prev
	}
	return max(1, p.bytes/len(p.evs))
}

// ReadStream reads one stream in version order; see strata.Store.
func (s *Store) ReadStream(ctx context.Context, stream string, opts strata.ReadStreamOptions) iter.Seq2[strata.Event, error] {
	return func(yield func(strata.Event, error) bool) {
		const op = "read stream"
		if err := strata.ValidateStreamName(op, stream); err != nil {
			yield(strata.Event{}, err)
			return
		}
		if opts.From < 0 || opts.Limit < 0 {
			yield(strata.Event{}, strata.Errorf(strata.Invalid, op, "negative From or Limit"))
			return
		}
		query := "SELECT " + eventColumns + " FROM events WHERE stream = ? AND version >= ? ORDER BY version LIMIT ?"
		from := max(opts.From, 1)
		if opts.Backward {
			query = "SELECT " + eventColumns + " FROM events WHERE stream = ? AND version <= ? ORDER BY version DESC LIMIT ?"
			from = opts.From
			if from == 0 {
				from = math.MaxInt64
			}
		}
		read, rowBytes := 0, 0
		for {
			if s.isClosed() {
				yield(strata.Event{}, strata.ClosedError(op))
				return
			}
			n := pageSize(opts.Limit, read, rowBytes)
			p, err := s.readEvents(ctx, n, query, stream, from, n)
			if err == nil && p.unsequenced {
				// Committed events that the sequencer has not reached yet: stamp them and
				// read the page again, so that every event carries its position.
				if err = s.sequence(ctx); err == nil {
					p, err = s.readEvents(ctx, n, query, stream, from, n)
				}
			}
			if err != nil {
				yield(strata.Event{}, s.fail(op, err))
				return
			}
			for _, e := range p.evs {
				if !yield(e, nil) {
					return
				}
			}
			read += len(p.evs)
			rowBytes = avgRow(p, rowBytes)
			if !p.more || (opts.Limit > 0 && read >= opts.Limit) {
				return
			}
			if last := p.evs[len(p.evs)-1].Version; opts.Backward {
				from = last - 1
			} else {
				from = last + 1
			}
		}
	}
}

// ReadAll reads the global log in position order; see strata.Store. Before its first page it
// stamps positions on events committed but not yet sequenced, by any process, so that it
// returns every event committed before it was called.
func (s *Store) ReadAll(ctx context.Context, opts strata.ReadAllOptions) iter.Seq2[strata.Event, error] {
	return func(yield func(strata.Event, error) bool) {
		const op = "read all"
		if opts.Limit < 0 {
			yield(strata.Event{}, strata.Errorf(strata.Invalid, op, "negative Limit"))
			return
		}
		// Events here have Position{p, p}. One is after the cursor {C, E} if p > C, or p == C
		// and p > E.
		after := opts.After.Commit
		if opts.After.Event < opts.After.Commit {
			after--
		}
		if after >= math.MaxInt64 {
			return
		}
		var where strings.Builder
		var fargs []any
		if f := opts.Filter; !f.IsZero() {
			if len(f.Types) > 0 {
				where.WriteString(" AND type IN (")
				for i, t := range f.Types {
					if i > 0 {
						where.WriteByte(',')
					}
					where.WriteByte('?')
					fargs = append(fargs, t)
				}
				where.WriteByte(')')
			}
			if f.StreamPrefix != "" {
				where.WriteString(" AND stream LIKE ? ESCAPE '!'")
				fargs = append(fargs, likePrefix(f.StreamPrefix))
			}
			if f.Tenant != "" {
				where.WriteString(" AND tenant = ?")
				fargs = append(fargs, tenantKey(f.Tenant))
			}
		}
		query := "SELECT " + eventColumns + " FROM events WHERE position > ?" + where.String() + " ORDER BY position LIMIT ?"
		read, rowBytes := 0, 0
		for {
			if s.isClosed() {
				yield(strata.Event{}, strata.ClosedError(op))
				return
			}
			if read == 0 {
				if err := s.sequenceIfNeeded(ctx); err != nil {
					yield(strata.Event{}, s.fail(op, err))
					return
				}
			}
			n := pageSize(opts.Limit, read, rowBytes)
			args := append(append([]any{int64(after)}, fargs...), n)
			p, err := s.readEvents(ctx, n, query, args...)
			if err != nil {
				yield(strata.Event{}, s.fail(op, err))
				return
			}
			for _, e := range p.evs {
				if !yield(e, nil) {
					return
				}
			}
			read += len(p.evs)
			rowBytes = avgRow(p, rowBytes)
			if !p.more || (opts.Limit > 0 && read >= opts.Limit) {
				return
			}
			after = p.evs[len(p.evs)-1].Position.Commit
		}
	}
}

// likePrefix returns a LIKE pattern, with ! as the escape character, that matches strings
// starting with p.
func likePrefix(p string) string {
	return strings.NewReplacer("!", "!!", "%", "!%", "_", "!_").Replace(p) + "%"
}

// Subscribe follows the global log; see strata.Store. Appends through this Store wake it at
// once; it notices other processes' appends by polling (WithPollInterval).
func (s *Store) Subscribe(ctx context.Context, from strata.Position, filter strata.Filter) iter.Seq2[strata.Event, error] {
	return follow.Subscribe(ctx, follow.Source{
		ReadAll: s.ReadAll,
		Wake:    s.signal.C,
		Poll:    s.poll,
		Closed:  s.closedCh,
	}, "subscribe", from, filter)
}

// StreamInfo describes one stream; see strata.Store.
func (s *Store) StreamInfo(ctx context.Context, stream string) (strata.StreamInfo, error) {
	const op = "stream info"
	if s.isClosed() {
		return strata.StreamInfo{}, strata.ClosedError(op)
	}
	if err := strata.ValidateStreamName(op, stream); err != nil {
		return strata.StreamInfo{}, err
	}
	info := strata.StreamInfo{Stream: stream}
	err := s.db.QueryRowContext(ctx, "SELECT version, first_recorded_at, last_recorded_at FROM streams WHERE name = ?", stream).
		Scan(&info.Version, &info.FirstRecordedAt, &info.LastRecordedAt)
	switch {
	case err == sql.ErrNoRows:
		return strata.StreamInfo{Stream: stream}, nil
	case err != nil:
		return strata.StreamInfo{}, s.fail(op, err)
	}
	info.Exists = true
	info.FirstRecordedAt, info.LastRecordedAt = info.FirstRecordedAt.UTC(), info.LastRecordedAt.UTC()
	return info, nil
}

// Streams lists streams in byte order of their names; see strata.Store.
func (s *Store) Streams(ctx context.Context, opts strata.ListStreamsOptions) iter.Seq2[strata.StreamInfo, error] {
	return func(yield func(strata.StreamInfo, error) bool) {
		const op = "list streams"
		if opts.Limit < 0 {
			yield(strata.StreamInfo{}, strata.Errorf(strata.Invalid, op, "negative Limit"))
			return
		}
		query := "SELECT name, version, first_recorded_at, last_recorded_at FROM streams WHERE name > ?"
		var pargs []any
		if opts.Prefix != "" {
			query += " AND name LIKE ? ESCAPE '!'"
			pargs = append(pargs, likePrefix(opts.Prefix))
		}
		query += " ORDER BY name LIMIT ?"
		after := opts.After
		read := 0
		for {
			if s.isClosed() {
				yield(strata.StreamInfo{}, strata.ClosedError(op))
				return
			}
			n := pageSize(opts.Limit, read, 0)
			page, err := s.readStreams(ctx, query, append(append([]any{after}, pargs...), n)...)
			if err != nil {
				yield(strata.StreamInfo{}, s.fail(op, err))
				return
			}
			for _, info := range page {
				if !yield(info, nil) {
					return
				}
			}
			read += len(page)
			if len(page) < n || (opts.Limit > 0 && read >= opts.Limit) {
				return
			}
			after = page[len(page)-1].Stream
		}
	}
}

func (s *Store) readStreams(ctx context.Context, query string, args ...any) ([]strata.StreamInfo, error) {
	rows, err := s.db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var page []strata.StreamInfo
	for rows.Next() {
		var name []byte
		info := strata.StreamInfo{Exists: true}
		if err := rows.Scan(&name, &info.Version, &info.FirstRecordedAt, &info.LastRecordedAt); err != nil {
			return nil, err
		}
		info.Stream = string(name)
		info.FirstRecordedAt, info.LastRecordedAt = info.FirstRecordedAt.UTC(), info.LastRecordedAt.UTC()
		page = append(page, info)
	}
	return page, rows.Err()
}
