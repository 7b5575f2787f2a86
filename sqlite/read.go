package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"iter"
	"math"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/strata-events/strata"
	"github.com/strata-events/strata/internal/follow"
	"github.com/strata-events/strata/internal/metadec"
)

const (
	// pageSize is the most rows one query of a read fetches.
	pageSize = 1000
	// pageBytes ends a page early once its payloads and metadata reach this size, so that a page
	// of large events stays bounded in memory.
	pageBytes = 16 << 20
	// lookupChunk is how many event IDs one lookup query binds.
	lookupChunk = 500
)

const eventCols = `position, id, stream, version, type, schema, data, meta, recorded_at, occurred_at`

// A read fetches one page per query into a buffer, closes the rows and only then yields the
// page's events. No read transaction stays open across pages or while the caller handles an
// event: WAL checkpoints are never starved, and a caller may read or append inside the loop.

// rowScanner scans rows of eventCols into Events. The stream, type and metadata columns are
// scanned into buffers it reuses: a row of the same stream and type as the row before shares
// their strings, and the metadata decoder makes the one copy it keeps.
type rowScanner struct {
	pos, version, schema, recorded, occurred int64
	id, rawStream, rawType, meta             sql.RawBytes
	stream, typ                              string
	data                                     []byte
	dest                                     []any
	metas                                    metadec.Decoder
}

func newRowScanner() *rowScanner {
	r := &rowScanner{}
	r.dest = []any{&r.pos, &r.id, &r.rawStream, &r.version, &r.rawType, &r.schema, &r.data, &r.meta, &r.recorded, &r.occurred}
	return r
}

func (r *rowScanner) scan(rows *sql.Rows, e *strata.Event) error {
	r.data = nil
	if err := rows.Scan(r.dest...); err != nil {
		return err
	}
	if len(r.id) != len(uuid.UUID{}) {
		return fmt.Errorf("event at position %d has an ID of %d bytes", r.pos, len(r.id))
	}
	if string(r.rawStream) != r.stream {
		r.stream = string(r.rawStream)
	}
	if string(r.rawType) != r.typ {
		r.typ = string(r.rawType)
	}
	*e = strata.Event{
		Stream:     r.stream,
		Version:    r.version,
		Position:   strata.Position{Commit: uint64(r.pos), Event: uint64(r.pos)},
		Type:       r.typ,
		Schema:     int(r.schema),
		Data:       r.data,
		RecordedAt: time.UnixMicro(r.recorded).UTC(),
		OccurredAt: time.UnixMicro(r.occurred).UTC(),
	}
	copy(e.ID[:], r.id)
	if e.Data == nil {
		e.Data = []byte{}
	}
	if err := r.metas.Decode(&e.Meta, r.meta); err != nil {
		return fmt.Errorf("event at position %d: %w", r.pos, err)
	}
	return nil
}

// page runs a query of eventCols that ends in LIMIT limit and appends its events to buf. more
// reports whether rows may follow: the page was full, or cut short at pageBytes.
func (s *Store) page(ctx context.Context, op string, buf []strata.Event, limit int, query string, args ...any) (_ []strata.Event, more bool, err error) {
	rows, err := s.r.QueryContext(ctx, query, args...)
	if err != nil {
		return buf, false, s.fail(ctx, op, err)
	}
	defer rows.Close()
	sc := newRowScanner()
	size, n := 0, 0
	for rows.Next() {
		buf = append(buf, strata.Event{})
		if err := sc.scan(rows, &buf[len(buf)-1]); err != nil {
			return buf[:len(buf)-1], false, s.fail(ctx, op, err)
		}
		n++
		if size += len(sc.data) + len(sc.meta); size >= pageBytes {
			return buf, true, nil
		}
	}
	if err := rows.Err(); err != nil {
		return buf, false, s.fail(ctx, op, err)
	}
	return buf, n == limit, nil
}

// ReadStream implements strata.Store.
func (s *Store) ReadStream(ctx context.Context, stream string, opts strata.ReadStreamOptions) iter.Seq2[strata.Event, error] {
	const op = "read stream"
	return func(yield func(strata.Event, error) bool) {
		if err := s.checkOpen(op); err != nil {
			yield(strata.Event{}, err)
			return
		}
		if err := strata.ValidateStreamName(op, stream); err != nil {
			yield(strata.Event{}, err)
			return
		}
		if opts.From < 0 || opts.Limit < 0 {
			yield(strata.Event{}, invalidf(op, "negative From (%d) or Limit (%d)", opts.From, opts.Limit))
			return
		}
		query := `SELECT ` + eventCols + ` FROM events WHERE stream = ? AND version >= ? ORDER BY version LIMIT ?`
		from := max(opts.From, 1)
		if opts.Backward {
			query = `SELECT ` + eventCols + ` FROM events WHERE stream = ? AND version <= ? ORDER BY version DESC LIMIT ?`
			if from = opts.From; from == 0 {
				from = math.MaxInt64
			}
		}
		remaining := opts.Limit
		var buf []strata.Event
		for {
			n := pageSize
			if remaining > 0 {
				n = min(n, remaining)
			}
			var more bool
			var err error
			buf, more, err = s.page(ctx, op, buf[:0], n, query, stream, from, n)
			if !s.yieldPage(op, buf, err, yield) || !more || len(buf) == 0 {
				return
			}
			if remaining > 0 {
				if remaining -= len(buf); remaining == 0 {
					return
				}
			}
			last := buf[len(buf)-1].Version
			if from = last + 1; opts.Backward {
				if from = last - 1; from < 1 {
					return
				}
			}
		}
	}
}

// yieldPage yields buf and then err, if any, and reports whether the read should go on. It ends
// the read with the closed error once the store is closed.
func (s *Store) yieldPage(op string, buf []strata.Event, err error, yield func(strata.Event, error) bool) bool {
	for i := range buf {
		if s.isClosed.Load() {
			yield(strata.Event{}, strata.ClosedError(op))
			return false
		}
		if !yield(buf[i], nil) {
			return false
		}
	}
	if err == nil && s.isClosed.Load() {
		err = strata.ClosedError(op)
	}
	if err != nil {
		yield(strata.Event{}, err)
		return false
	}
	return true
}

// readAllQuery builds the query of a page of the global log for f. Its arguments are those
// returned followed by the position to read after, the last position to read and the limit.
func readAllQuery(f strata.Filter) (string, []any) {
	var b strings.Builder
	var args []any
	b.WriteString(`SELECT ` + eventCols + ` FROM events WHERE `)
	if f.Tenant != "" {
		b.WriteString(`tenant = ? AND `) // with position, the range of index events_tenant
		args = append(args, f.Tenant)
	}
	if f.StreamPrefix != "" {
		// A range, not LIKE (case-insensitive). The unary + keeps the planner on the position order
		// instead of sorting every matching row of the stream index on each page.
		if end, ok := prefixEnd(f.StreamPrefix); ok {
			b.WriteString(`+stream >= ? AND +stream < ? AND `)
			args = append(args, f.StreamPrefix, end)
		} else {
			b.WriteString(`+stream >= ? AND `)
			args = append(args, f.StreamPrefix)
		}
	}
	if len(f.Types) > 0 {
		b.WriteString(`type IN (?` + strings.Repeat(`, ?`, len(f.Types)-1) + `) AND `)
		for _, t := range f.Types {
			args = append(args, t)
		}
	}
	b.WriteString(`position > ? AND position <= ? ORDER BY position LIMIT ?`)
	return b.String(), args
}

// prefixEnd returns the least string greater than every string that starts with p, in byte order.
func prefixEnd(p string) (string, bool) {
	b := []byte(p)
	for i := len(b) - 1; i >= 0; i-- {
		if b[i] < 0xff {
			b[i]++
			return string(b[:i+1]), true
		}
	}
	return "", false
}

// afterPosition returns the position that a read after p starts strictly after. Every event of
// this store has Position{N, N}; p may come from elsewhere. ok is false when nothing can follow p.
func afterPosition(p strata.Position) (after int64, ok bool) {
	if p.Commit > math.MaxInt64 {
		return 0, false
	}
	c := int64(p.Commit)
	if p.Event < p.Commit {
		return c - 1, true // {c, c} itself sorts after p
	}
	return c, true
}

// ReadAll implements strata.Store. Writers commit one at a time and take the next position when
// they write, so positions are in commit order: a committed event never appears below a position
// a reader has already seen, and reading in position order is gap-free.
func (s *Store) ReadAll(ctx context.Context, opts strata.ReadAllOptions) iter.Seq2[strata.Event, error] {
	const op = "read all"
	return func(yield func(strata.Event, error) bool) {
		if err := s.checkOpen(op); err != nil {
			yield(strata.Event{}, err)
			return
		}
		if opts.Limit < 0 {
			yield(strata.Event{}, invalidf(op, "negative Limit %d", opts.Limit))
			return
		}
		after, ok := afterPosition(opts.After)
		if !ok {
			return
		}
		query, fargs := readAllQuery(opts.Filter)
		args := append(fargs, after, int64(math.MaxInt64), 0)
		iAfter, iHead, iLimit := len(fargs), len(fargs)+1, len(fargs)+2
		remaining := opts.Limit
		var buf []strata.Event
		for first := true; ; first = false {
			n := pageSize
			if remaining > 0 {
				n = min(n, remaining)
			}
			args[iAfter], args[iLimit] = after, n
			var more bool
			var err error
			buf, more, err = s.page(ctx, op, buf[:0], n, query, args...)
			if !s.yieldPage(op, buf, err, yield) || !more || len(buf) == 0 {
				return
			}
			if remaining > 0 {
				if remaining -= len(buf); remaining == 0 {
					return
				}
			}
			after = int64(buf[len(buf)-1].Position.Commit)
			if first {
				// More than a page: read up to what is committed now, not for ever while writers
				// keep appending.
				var head sql.NullInt64
				if err := s.r.QueryRowContext(ctx, `SELECT max(position) FROM events`).Scan(&head); err != nil {
					yield(strata.Event{}, s.fail(ctx, op, err))
					return
				}
				args[iHead] = head.Int64
			}
		}
	}
}

// Subscribe implements strata.Store. Appends through this Store wake subscribers at once; commits
// by other processes on the same file are found by polling (see WithPollInterval).
func (s *Store) Subscribe(ctx context.Context, from strata.Position, filter strata.Filter) iter.Seq2[strata.Event, error] {
	return follow.Subscribe(ctx, follow.Source{
		ReadAll: s.ReadAll,
		Wake:    s.signal.C,
		Poll:    s.poll,
		Closed:  s.closed,
	}, "subscribe", from, filter)
}

// StreamInfo implements strata.Store.
func (s *Store) StreamInfo(ctx context.Context, stream string) (strata.StreamInfo, error) {
	const op = "stream info"
	if err := s.checkOpen(op); err != nil {
		return strata.StreamInfo{}, err
	}
	if err := strata.ValidateStreamName(op, stream); err != nil {
		return strata.StreamInfo{}, err
	}
	info := strata.StreamInfo{Stream: stream}
	var first, last int64
	err := s.r.QueryRowContext(ctx, `SELECT version, recorded_at,
			(SELECT recorded_at FROM events WHERE stream = ?1 ORDER BY version LIMIT 1)
		FROM events WHERE stream = ?1 ORDER BY version DESC LIMIT 1`, stream).Scan(&info.Version, &last, &first)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return info, nil
	case err != nil:
		return strata.StreamInfo{}, s.fail(ctx, op, err)
	}
	info.Exists = true
	info.FirstRecordedAt = time.UnixMicro(first).UTC()
	info.LastRecordedAt = time.UnixMicro(last).UTC()
	return info, nil
}

// streamsQuery lists up to ?2 streams by walking the distinct names of index UNIQUE (stream,
// version), one probe per name (a skip scan): from the name ?1 on (including it when inclusive,
// after it otherwise), and, when bounded, up to before ?3.
func streamsQuery(inclusive, bounded bool) string {
	lo, hi := ">", ""
	if inclusive {
		lo = ">="
	}
	if bounded {
		hi = " AND stream < ?3"
	}
	return `WITH RECURSIVE names(name) AS (
			SELECT (SELECT min(stream) FROM events WHERE stream ` + lo + ` ?1` + hi + `)
			UNION ALL
			SELECT (SELECT min(stream) FROM events WHERE stream > names.name` + hi + `)
			FROM names WHERE names.name IS NOT NULL
			LIMIT ?2
		)
		SELECT name,
			(SELECT version FROM events WHERE stream = names.name ORDER BY version DESC LIMIT 1),
			(SELECT recorded_at FROM events WHERE stream = names.name ORDER BY version LIMIT 1),
			(SELECT recorded_at FROM events WHERE stream = names.name ORDER BY version DESC LIMIT 1)
		FROM names WHERE name IS NOT NULL`
}

// Streams implements strata.Store.
func (s *Store) Streams(ctx context.Context, opts strata.ListStreamsOptions) iter.Seq2[strata.StreamInfo, error] {
	const op = "list streams"
	return func(yield func(strata.StreamInfo, error) bool) {
		if err := s.checkOpen(op); err != nil {
			yield(strata.StreamInfo{}, err)
			return
		}
		if opts.Limit < 0 {
			yield(strata.StreamInfo{}, invalidf(op, "negative Limit %d", opts.Limit))
			return
		}
		// One lower bound, so that the index range starts at the first candidate: names with the
		// prefix are >= it.
		from, inclusive := opts.After, false
		if opts.Prefix != "" && opts.After < opts.Prefix {
			from, inclusive = opts.Prefix, true
		}
		end, bounded := prefixEnd(opts.Prefix)
		bounded = bounded && opts.Prefix != ""
		args := []any{from, 0}
		if bounded {
			args = append(args, end)
		}
		remaining := opts.Limit
		buf := make([]strata.StreamInfo, 0, 64)
		for {
			n := pageSize
			if remaining > 0 {
				n = min(n, remaining)
			}
			args[1] = n
			var err error
			buf, err = s.streamsPage(ctx, op, buf[:0], streamsQuery(inclusive, bounded), args...)
			for i := range buf {
				if s.isClosed.Load() {
					yield(strata.StreamInfo{}, strata.ClosedError(op))
					return
				}
				if !yield(buf[i], nil) {
					return
				}
			}
			if err != nil {
				yield(strata.StreamInfo{}, err)
				return
			}
			if len(buf) < n {
				return
			}
			if remaining > 0 {
				if remaining -= len(buf); remaining == 0 {
					return
				}
			}
			args[0], inclusive = buf[len(buf)-1].Stream, false
		}
	}
}

func (s *Store) streamsPage(ctx context.Context, op string, buf []strata.StreamInfo, query string, args ...any) ([]strata.StreamInfo, error) {
	rows, err := s.r.QueryContext(ctx, query, args...)
	if err != nil {
		return buf, s.fail(ctx, op, err)
	}
	defer rows.Close()
	for rows.Next() {
		info := strata.StreamInfo{Exists: true}
		var first, last int64
		if err := rows.Scan(&info.Stream, &info.Version, &first, &last); err != nil {
			return buf, s.fail(ctx, op, err)
		}
		info.FirstRecordedAt = time.UnixMicro(first).UTC()
		info.LastRecordedAt = time.UnixMicro(last).UTC()
		buf = append(buf, info)
	}
	if err := rows.Err(); err != nil {
		return buf, s.fail(ctx, op, err)
	}
	return buf, nil
}

// lookupIDs returns the stored events among ids.
func (s *Store) lookupIDs(ctx context.Context, op string, ids []uuid.UUID) (map[uuid.UUID]strata.Event, error) {
	found := make(map[uuid.UUID]strata.Event)
	for len(ids) > 0 {
		chunk := ids[:min(len(ids), lookupChunk)]
		ids = ids[len(chunk):]
		args := make([]any, len(chunk))
		for i, id := range chunk {
			args[i] = id[:]
		}
		query := `SELECT ` + eventCols + ` FROM events WHERE id IN (?` + strings.Repeat(`, ?`, len(chunk)-1) + `) LIMIT ?`
		evs, more, err := s.page(ctx, op, nil, len(chunk), query, append(args, len(chunk))...)
		if err != nil {
			return nil, err
		}
		for _, e := range evs {
			found[e.ID] = e
		}
		if more && len(evs) < len(chunk) { // cut short at pageBytes: look up the rest again
			var rest []uuid.UUID
			for _, id := range chunk {
				if _, ok := found[id]; !ok {
					rest = append(rest, id)
				}
			}
			ids = append(rest, ids...)
		}
	}
	return found, nil
}
