package mysql

import (
	"cmp"
	"context"
	"database/sql"
	"fmt"
	"iter"
	"math"
	"slices"
	"strings"

	"github.com/strata-events/strata"
	"github.com/strata-events/strata/internal/follow"
	"github.com/strata-events/strata/internal/metadec"
)

// Reads fetch pages of at most pageRows rows, and stop a page early once it holds pageBytes of
// payload. A page is read completely and its rows closed before any of it is yielded: no
// connection or transaction is held while the caller's loop body runs.
const (
	pageRows  = 1000
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

// readEvents runs a query for events that asks for limit rows, appending them to into[:0]
// (the previous page's slice, whose events the caller has yielded by value). It stops early,
// abandoning the rest of the result, once the page holds pageBytes.
//
// Decoding is on the hot path of every global read, so it allocates only what the events keep:
// the payload and, once per run of equal values, the stream name, the type name and the
// decoded metadata (consecutive events of a log mostly share all three). The other columns
// are scanned into destinations reused for every row.
func (s *Store) readEvents(ctx context.Context, into []strata.Event, limit int, query string, args ...any) (page, error) {
	return s.readPage(ctx, into, limit, nil, query, args)
}

// readPrepared is readEvents by a prepared statement (see Store.prepared).
func (s *Store) readPrepared(ctx context.Context, into []strata.Event, limit int, query string, args ...any) (page, error) {
	st, err := s.prepared(ctx, query)
	if err != nil {
		return page{}, err
	}
	return s.readPage(ctx, into, limit, st, query, args)
}

// prepared returns the prepared statement of query, preparing it on first use. The binary
// protocol of prepared statements sends integers and times as such, sparing their parsing
// from text: 5–10% more events/s through the span read of readBySpan. Only statements whose
// text depends on a filter's shape alone are prepared, so their number stays small.
func (s *Store) prepared(ctx context.Context, query string) (*sql.Stmt, error) {
	if st, ok := s.stmts.Load(query); ok {
		return st.(*sql.Stmt), nil
	}
	st, err := s.db.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	if prev, loaded := s.stmts.LoadOrStore(query, st); loaded {
		st.Close()
		return prev.(*sql.Stmt), nil
	}
	if s.isClosed() { // Close may have closed the cache's statements before this one joined
		st.Close()
		return nil, strata.ClosedError("read")
	}
	return st, nil
}

// readPage is readEvents by st when it is set, else by query.
func (s *Store) readPage(ctx context.Context, into []strata.Event, limit int, st *sql.Stmt, query string, args []any) (page, error) {
	qctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		rows *sql.Rows
		err  error
	)
	if st != nil {
		rows, err = st.QueryContext(qctx, args...)
	} else {
		rows, err = s.db.QueryContext(qctx, query, args...)
	}
	if err != nil {
		return page{}, err
	}
	defer rows.Close()
	p := page{evs: into[:0]}
	if cap(p.evs) < limit {
		p.evs = make([]strata.Event, 0, min(limit, pageRows))
	}
	var (
		e                     strata.Event
		pos                   sql.NullInt64
		id, stream, typ, meta sql.RawBytes
		data                  []byte // Scan stores a fresh copy for every row
		dec                   rowDecoder
	)
	dest := []any{&pos, &id, &stream, &e.Version, &typ, &e.Schema, &data, &meta, &e.RecordedAt, &e.OccurredAt}
	for rows.Next() {
		if err := rows.Scan(dest...); err != nil {
			return page{}, err
		}
		if len(id) != len(e.ID) {
			return page{}, fmt.Errorf("event ID of %d bytes", len(id))
		}
		copy(e.ID[:], id)
		if err := dec.meta.Decode(&e.Meta, meta); err != nil {
			return page{}, err
		}
		if pos.Valid {
			e.Position = strata.Position{Commit: uint64(pos.Int64), Event: uint64(pos.Int64)}
		} else {
			e.Position = strata.Position{}
			p.unsequenced = true
		}
		e.Stream, e.Type, e.Data = dec.stream.get(stream), dec.typ.get(typ), data
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

// rowDecoder turns the byte columns of consecutive rows into values, decoding a value only
// when it differs from the previous row's.
type rowDecoder struct {
	stream, typ lastString
	meta        metadec.Decoder
}

// lastString converts bytes to a string, allocating only when they differ from the last call's.
type lastString struct {
	s  string
	ok bool
}

func (l *lastString) get(b []byte) string {
	if !l.ok || l.s != string(b) { // the comparison does not allocate
		l.s, l.ok = string(b), true
	}
	return l.s
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
		var buf []strata.Event // the last page's slice, reused once its events are yielded
		for {
			if s.isClosed() {
				yield(strata.Event{}, strata.ClosedError(op))
				return
			}
			n := pageSize(opts.Limit, read, rowBytes)
			p, err := s.readEvents(ctx, buf, n, query, stream, from, n)
			if err == nil && p.unsequenced {
				// Committed events that the sequencer has not reached yet: stamp them and
				// read the page again, so that every event carries its position.
				if err = s.sequence(ctx); err == nil {
					p, err = s.readEvents(ctx, p.evs, n, query, stream, from, n)
				}
				if err == nil && p.unsequenced {
					if oldest := dropUnstamped(&p, opts.Backward); len(p.evs) == 0 && opts.Backward && oldest > 1 {
						from = oldest - 1 // a backward page of events all newer than the pass
						continue
					}
				}
			}
			if err != nil {
				yield(strata.Event{}, s.fail(op, err))
				return
			}
			if len(p.evs) == 0 {
				return
			}
			for _, e := range p.evs {
				if s.isClosed() {
					yield(strata.Event{}, strata.ClosedError(op))
					return
				}
				if !yield(e, nil) {
					return
				}
			}
			buf = p.evs
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

// dropUnstamped removes from a page of one stream the events that committed after the
// sequencing pass before its read, and so have no position yet. A stream's versions commit,
// and are stamped, in order, so they are the stream's newest: the end of a forward page, which
// the read then ends with, or the start of a backward one. The read returns the stream as that
// pass left it. It returns the lowest version it dropped.
func dropUnstamped(p *page, backward bool) (oldest int64) {
	kept := p.evs[:0]
	for _, e := range p.evs {
		if e.Position != (strata.Position{}) {
			kept = append(kept, e)
		} else if oldest == 0 || e.Version < oldest {
			oldest = e.Version
		}
	}
	if !backward && len(kept) < len(p.evs) {
		p.more = false
	}
	clear(p.evs[len(kept):])
	p.evs, p.unsequenced = kept, false
	return oldest
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
		// Without a type or prefix filter, an index holds everything a page's keys need.
		q := pageQueries{query: query}
		if f := opts.Filter; len(f.Types) == 0 && f.StreamPrefix == "" {
			q.keys = "SELECT seq FROM events WHERE position > ?" + where.String() + " ORDER BY position LIMIT ?"
			q.span = "SELECT COUNT(*), COALESCE(MIN(seq), 0), COALESCE(MAX(seq), 0), COALESCE(MAX(position), 0) FROM (" +
				"SELECT seq, position FROM events WHERE position > ?" + where.String() + " ORDER BY position LIMIT ?) AS page"
			// The primary key's range is the point; with a tenant filter MariaDB may otherwise
			// pick events_tenant_position and a sort.
			q.rows = "SELECT " + eventColumns + " FROM events FORCE INDEX (PRIMARY) WHERE seq BETWEEN ? AND ? AND position > ? AND position <= ?" +
				where.String() + " ORDER BY seq"
		}
		// byKeys is set once a page was too sparse for its span: the read's later pages, of the
		// same filter, go to readByKeys at once rather than ask for their span first.
		byKeys := false
		read, rowBytes := 0, 0
		var buf []strata.Event // the last page's slice, reused once its events are yielded
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
			var (
				p   page
				err error
			)
			switch args := append(append([]any{int64(after)}, fargs...), n); {
			case q.keys != "" && byKeys:
				p, err = s.readByKeys(ctx, buf, n, q.keys, q.query, args)
			case q.keys != "":
				p, byKeys, err = s.readBySpan(ctx, buf, n, q, args)
			default:
				p, err = s.readEvents(ctx, buf, n, query, args...)
			}
			if err != nil {
				yield(strata.Event{}, s.fail(op, err))
				return
			}
			for _, e := range p.evs {
				if s.isClosed() {
					yield(strata.Event{}, strata.ClosedError(op))
					return
				}
				if !yield(e, nil) {
					return
				}
			}
			buf = p.evs
			read += len(p.evs)
			rowBytes = avgRow(p, rowBytes)
			if !p.more || (opts.Limit > 0 && read >= opts.Limit) {
				return
			}
			after = p.evs[len(p.evs)-1].Position.Commit
		}
	}
}

// pageQueries are the statements of one global read's pages (see readBySpan).
type pageQueries struct {
	span  string // the page's size, its least and greatest seq, and its last position
	rows  string // the events with seq in a range and position in a range, in seq order
	keys  string // the page's seqs in position order (readByKeys)
	query string // the one-step read (readEvents)
}

// maxSpanWaste bounds the rows a span read may pass over for each row of its page: a page
// whose seqs spread wider (a tenant's events among many others', or a commit far out of
// insertion order) is read by its keys instead.
const maxSpanWaste = 2

// readBySpan reads a page of the global log in two steps, like readByKeys, but its first step
// returns one row instead of one per event: the page's size, its seq range and its last
// position. The page is exactly the events whose position lies after the cursor and at most
// at that last position, so the second step reads them by one range of the clustered index,
// passing over only the events of other pages (or other tenants) whose seqs fall inside it.
// The two statements see the same events although they run apart: sequencing passes take
// turns on log_head and each numbers on from the positions the one before committed, so once
// a position is visible every lower one is, a later pass stamps only higher ones, and a
// position never changes once stamped (retention rewrites payloads, never positions).
//
// args are the one-step query's (the cursor, the filter's values, the page size). Where the
// span would pass over more than maxSpanWaste events per event of the page, it reads the page
// by its keys and reports sparse. Measured with `strata bench read` on MariaDB (4 clients,
// 100k events, the two in alternate runs): 0.77–0.79x the raw baseline against 0.67–0.70x by
// keys; with both steps prepared, 0.84–0.93x against 0.74–0.85x unprepared.
func (s *Store) readBySpan(ctx context.Context, into []strata.Event, limit int, q pageQueries, args []any) (p page, sparse bool, err error) {
	var count, lo, hi, last int64
	st, err := s.prepared(ctx, q.span)
	if err != nil {
		return page{}, false, err
	}
	if err := st.QueryRowContext(ctx, args...).Scan(&count, &lo, &hi, &last); err != nil {
		return page{}, false, err
	}
	if count == 0 {
		return page{evs: into[:0]}, false, nil
	}
	if hi-lo+1 > (maxSpanWaste+1)*count {
		p, err := s.readByKeys(ctx, into, limit, q.keys, q.query, args)
		return p, true, err
	}
	// The rows statement takes the span, then the cursor and the filter's values.
	rargs := append([]any{lo, hi, args[0], last}, args[1:len(args)-1]...)
	if p, err = s.readPrepared(ctx, into, int(count), q.rows, rargs...); err != nil {
		return page{}, false, err
	}
	if int64(len(p.evs)) != count {
		if p.bytes < pageBytes {
			return page{}, false, fmt.Errorf("global read: the span of a page of %d events holds %d", count, len(p.evs))
		}
		// A page of large events, cut short in seq order: read it the one-step way, which
		// cuts it in position order.
		p, err = s.readEvents(ctx, p.evs, limit, q.query, args...)
		return p, false, err
	}
	slices.SortFunc(p.evs, func(a, b strata.Event) int { return cmp.Compare(a.Position.Commit, b.Position.Commit) })
	p.more = count == int64(limit)
	return p, false, nil
}

// readByKeys reads a page of the global log in two steps, which is cheaper than the one of
// readEvents by far. The page's order lives in a secondary index (events_position, or
// events_tenant_position with a tenant filter), and reading the rows in that order costs a
// descent of the clustered index per row. So keys, an index-only query, first finds the
// page's primary keys in position order; the rows then come by ranges of the clustered index,
// a descent per run of consecutive keys (the sequencer stamps most of the log in runs), and are
// put back in position order. A position never changes once stamped and events are never
// deleted, so the rows of the second step are exactly the rows the first found. query and args
// are the one-step read of readEvents, used when a page holds pageBytes before its end.
func (s *Store) readByKeys(ctx context.Context, into []strata.Event, limit int, keys, query string, args []any) (page, error) {
	rows, err := s.db.QueryContext(ctx, keys, args...)
	if err != nil {
		return page{}, err
	}
	var seqs []int64
	for rows.Next() {
		var q int64
		if err := rows.Scan(&q); err != nil {
			rows.Close()
			return page{}, err
		}
		seqs = append(seqs, q)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return page{}, err
	}
	if len(seqs) == 0 {
		return page{evs: into[:0]}, nil
	}
	slices.Sort(seqs)
	var b strings.Builder
	b.WriteString("SELECT " + eventColumns + " FROM events WHERE")
	rargs := make([]any, 0, 8)
	for i := 0; i < len(seqs); {
		j := i + 1
		for j < len(seqs) && seqs[j] == seqs[j-1]+1 {
			j++
		}
		if i > 0 {
			b.WriteString(" OR")
		}
		b.WriteString(" seq BETWEEN ? AND ?")
		rargs = append(rargs, seqs[i], seqs[j-1])
		i = j
	}
	b.WriteString(" ORDER BY seq")
	p, err := s.readEvents(ctx, into, len(seqs), b.String(), rargs...)
	if err != nil {
		return page{}, err
	}
	if len(p.evs) != len(seqs) {
		if p.bytes < pageBytes {
			return page{}, fmt.Errorf("global read: the keys of a page of %d events found %d", len(seqs), len(p.evs))
		}
		// A page of large events, cut short in key order: read it the one-step way, which
		// cuts it in position order.
		return s.readEvents(ctx, p.evs, limit, query, args...)
	}
	slices.SortFunc(p.evs, func(a, b strata.Event) int { return cmp.Compare(a.Position.Commit, b.Position.Commit) })
	p.more = len(seqs) == limit
	return p, nil
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
