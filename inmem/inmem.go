// Package inmem is an in-memory strata.Store: for tests, examples and short-lived tools. It keeps
// nothing after the process ends.
//
// One mutex orders every append, so positions are dense and in commit order and the global log is
// gap-free by construction.
package inmem

import (
	"context"
	"iter"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/strata-events/strata"
	"github.com/strata-events/strata/internal/follow"
)

// pageSize bounds how many events a read copies while holding the lock.
const pageSize = 512

// Store is an in-memory event store. The zero value is not usable; call New.
type Store struct {
	mu      sync.RWMutex
	log     []strata.Event         // log[i].Position is i+1
	streams map[string]*streamInfo // by name
	ids     map[uuid.UUID]int      // event ID → index in log
	closed  bool

	snapshots   map[string]strata.Snapshot // by stream
	timers      map[uuid.UUID]strata.Timer // by ID
	checkpoints map[string]strata.Position // by name
	ledger      ledgerData                 // of ledger.go; zero value is an empty ledger
	keys        keyData                    // of keys.go; zero value holds no keys or schemas
	apiKeys     map[string]strata.APIKey   // of apikey.go, by ID; made on first write

	proj projections // projection.go; zero value ready
	tm   transmits   // transmit.go; zero value ready
	qd   queryData   // query.go; zero value ready

	signal follow.Signal
	done   chan struct{}
	now    func() time.Time
}

type streamInfo struct {
	positions []int // index in log of each version (version v at positions[v-1])
}

var _ strata.Store = (*Store)(nil)

// New returns an empty store.
func New() *Store {
	return &Store{
		streams: make(map[string]*streamInfo),
		ids:     make(map[uuid.UUID]int),
		done:    make(chan struct{}),
		now:     time.Now,

		snapshots:   make(map[string]strata.Snapshot),
		timers:      make(map[uuid.UUID]strata.Timer),
		checkpoints: make(map[string]strata.Position),
	}
}

// Close marks the store closed; its memory is released when it is no longer referenced.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.closed {
		s.closed = true
		close(s.done)
	}
	return nil
}

// isClosed reports whether Close has been called. Reads check it before each event they
// yield, so that a read under way ends with the closed error once Close has returned.
func (s *Store) isClosed() bool {
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}

// Append implements strata.Store.
func (s *Store) Append(ctx context.Context, stream string, expected strata.ExpectedVersion, events ...strata.EventData) (strata.AppendResult, error) {
	res, err := s.appendMulti(ctx, "append", []strata.StreamAppend{{Stream: stream, Expected: expected, Events: events}})
	if err != nil {
		return strata.AppendResult{}, err
	}
	return res[0], nil
}

// AppendMulti implements strata.Store.
func (s *Store) AppendMulti(ctx context.Context, appends ...strata.StreamAppend) ([]strata.AppendResult, error) {
	return s.appendMulti(ctx, "append multi", appends)
}

func (s *Store) appendMulti(ctx context.Context, op string, appends []strata.StreamAppend) ([]strata.AppendResult, error) {
	prepared, err := strata.PrepareAppend(op, appends)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, &strata.Error{Code: strata.Unavailable, Op: op, Err: err}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, strata.ClosedError(op)
	}
	if res, done, err := s.checkLocked(op, prepared); done {
		return res, err
	}

	now := strata.Timestamp(s.now())
	results := make([]strata.AppendResult, len(prepared))
	mark := len(s.log)
	for i, a := range prepared {
		info := s.streams[a.Stream]
		if info == nil {
			info = &streamInfo{}
			s.streams[a.Stream] = info
		}
		first := int64(len(info.positions)) + 1
		for j, e := range a.Events {
			occurred := e.OccurredAt
			if occurred.IsZero() {
				occurred = now
			}
			ev := strata.Event{
				ID: e.ID, Stream: a.Stream, Version: first + int64(j),
				Position: strata.Position{Commit: uint64(len(s.log) + 1), Event: uint64(len(s.log) + 1)},
				Type:     e.Type, Schema: e.Schema, Data: slices.Clone(e.Data), Meta: cloneMeta(e.Meta),
				RecordedAt: now, OccurredAt: occurred,
			}
			s.ids[e.ID] = len(s.log)
			info.positions = append(info.positions, len(s.log))
			s.log = append(s.log, ev)
		}
		results[i] = strata.AppendResult{Stream: a.Stream, FirstVersion: first, LastVersion: first + int64(len(a.Events)) - 1}
	}
	if err := strata.BeforeCommit(ctx); err != nil {
		s.rollbackLocked(mark, prepared)
		return nil, err
	}
	if err := ctx.Err(); err != nil { // as the SQL backends: a cancelled append does not commit
		s.rollbackLocked(mark, prepared)
		return nil, &strata.Error{Code: strata.Unavailable, Op: op, Err: err}
	}
	s.signal.Notify()
	return results, nil
}

// checkLocked answers the append without writing when it is a replay or fails its expected
// version; done is false when the append should go ahead.
func (s *Store) checkLocked(op string, appends []strata.StreamAppend) (res []strata.AppendResult, done bool, err error) {
	stored := make(map[uuid.UUID]strata.Event)
	for _, id := range strata.EventIDs(appends) {
		if i, ok := s.ids[id]; ok {
			stored[id] = s.log[i]
		}
	}
	if len(stored) > 0 {
		results := make([]strata.AppendResult, len(appends))
		for i, a := range appends {
			r, ok, err := strata.ResolveReplay(op, a, stored)
			if err != nil {
				return nil, true, err
			}
			if !ok {
				return nil, true, strata.Errorf(strata.Conflict, op, "some events of this append were stored before and others were not; a retry must resend the same batch")
			}
			results[i] = r
		}
		return results, true, nil
	}
	for _, a := range appends {
		current := int64(0)
		if info := s.streams[a.Stream]; info != nil {
			current = int64(len(info.positions))
		}
		if !a.Expected.Allows(current) {
			return nil, true, strata.VersionConflict(op, a.Stream, a.Expected, current)
		}
	}
	return nil, false, nil
}

func (s *Store) rollbackLocked(mark int, appends []strata.StreamAppend) {
	for _, ev := range s.log[mark:] {
		delete(s.ids, ev.ID)
		info := s.streams[ev.Stream]
		info.positions = info.positions[:len(info.positions)-1]
		if len(info.positions) == 0 {
			delete(s.streams, ev.Stream)
		}
	}
	clear(s.log[mark:])
	s.log = s.log[:mark]
}

// ReadStream implements strata.Store.
func (s *Store) ReadStream(ctx context.Context, stream string, opts strata.ReadStreamOptions) iter.Seq2[strata.Event, error] {
	const op = "read stream"
	return func(yield func(strata.Event, error) bool) {
		if err := strata.ValidateStreamName(op, stream); err != nil {
			yield(strata.Event{}, err)
			return
		}
		if opts.From < 0 || opts.Limit < 0 {
			yield(strata.Event{}, strata.Errorf(strata.Invalid, op, "negative From or Limit"))
			return
		}
		next := opts.From // next version to return; 0 means "from the natural end"
		left := opts.Limit
		for {
			page, err := s.streamPage(ctx, op, stream, next, opts.Backward, left)
			if err != nil {
				yield(strata.Event{}, err)
				return
			}
			for _, ev := range page {
				if s.isClosed() {
					yield(strata.Event{}, strata.ClosedError(op))
					return
				}
				if !yield(ev, nil) {
					return
				}
			}
			if len(page) < pageSize {
				return
			}
			last := page[len(page)-1].Version
			if opts.Backward {
				if last == 1 {
					return
				}
				next = last - 1
			} else {
				next = last + 1
			}
			if opts.Limit > 0 {
				if left -= len(page); left == 0 {
					return
				}
			}
		}
	}
}

func (s *Store) streamPage(ctx context.Context, op, stream string, from int64, backward bool, limit int) ([]strata.Event, error) {
	if err := ctx.Err(); err != nil {
		return nil, &strata.Error{Code: strata.Unavailable, Op: op, Err: err}
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil, strata.ClosedError(op)
	}
	info := s.streams[stream]
	if info == nil {
		return nil, nil
	}
	n := pageSize
	if limit > 0 && limit < n {
		n = limit
	}
	var page []strata.Event
	if backward {
		v := int64(len(info.positions))
		if from > 0 && from < v {
			v = from
		}
		for ; v >= 1 && len(page) < n; v-- {
			page = append(page, cloneEvent(&s.log[info.positions[v-1]]))
		}
		return page, nil
	}
	v := max(from, 1)
	for ; v <= int64(len(info.positions)) && len(page) < n; v++ {
		page = append(page, cloneEvent(&s.log[info.positions[v-1]]))
	}
	return page, nil
}

// ReadAll implements strata.Store.
func (s *Store) ReadAll(ctx context.Context, opts strata.ReadAllOptions) iter.Seq2[strata.Event, error] {
	const op = "read all"
	return func(yield func(strata.Event, error) bool) {
		if opts.Limit < 0 {
			yield(strata.Event{}, strata.Errorf(strata.Invalid, op, "negative Limit"))
			return
		}
		after := opts.After
		left := opts.Limit
		for {
			page, scanned, err := s.allPage(ctx, op, after, opts.Filter, left)
			if err != nil {
				yield(strata.Event{}, err)
				return
			}
			for _, ev := range page {
				if s.isClosed() {
					yield(strata.Event{}, strata.ClosedError(op))
					return
				}
				if !yield(ev, nil) {
					return
				}
			}
			if opts.Limit > 0 {
				if left -= len(page); left == 0 {
					return
				}
			}
			if scanned == after {
				return
			}
			after = scanned
		}
	}
}

// allPage returns up to a page of matching events after after, and the position it scanned to.
func (s *Store) allPage(ctx context.Context, op string, after strata.Position, f strata.Filter, limit int) ([]strata.Event, strata.Position, error) {
	if err := ctx.Err(); err != nil {
		return nil, after, &strata.Error{Code: strata.Unavailable, Op: op, Err: err}
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil, after, strata.ClosedError(op)
	}
	n := pageSize
	if limit > 0 && limit < n {
		n = limit
	}
	// Positions are dense (index i holds position i+1), so the first candidate is at index
	// Commit-1; the Less check below skips it when the cursor is on it.
	i := int(min(max(after.Commit, 1)-1, uint64(len(s.log))))
	var page []strata.Event
	scanned := after
	for ; i < len(s.log) && len(page) < n && i-int(after.Commit) < 64*pageSize; i++ {
		ev := &s.log[i]
		if !after.Less(ev.Position) {
			continue
		}
		scanned = ev.Position
		if f.Match(ev) {
			page = append(page, cloneEvent(ev))
		}
	}
	return page, scanned, nil
}

// Subscribe implements strata.Store.
func (s *Store) Subscribe(ctx context.Context, from strata.Position, filter strata.Filter) iter.Seq2[strata.Event, error] {
	return follow.Subscribe(ctx, follow.Source{ReadAll: s.ReadAll, Wake: s.signal.C, Closed: s.done}, "subscribe", from, filter)
}

// StreamInfo implements strata.Store.
func (s *Store) StreamInfo(ctx context.Context, stream string) (strata.StreamInfo, error) {
	const op = "stream info"
	if err := strata.ValidateStreamName(op, stream); err != nil {
		return strata.StreamInfo{}, err
	}
	if err := ctx.Err(); err != nil {
		return strata.StreamInfo{}, &strata.Error{Code: strata.Unavailable, Op: op, Err: err}
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return strata.StreamInfo{}, strata.ClosedError(op)
	}
	return s.infoLocked(stream), nil
}

func (s *Store) infoLocked(stream string) strata.StreamInfo {
	info := s.streams[stream]
	if info == nil {
		return strata.StreamInfo{Stream: stream}
	}
	return strata.StreamInfo{
		Stream: stream, Exists: true, Version: int64(len(info.positions)),
		FirstRecordedAt: s.log[info.positions[0]].RecordedAt,
		LastRecordedAt:  s.log[info.positions[len(info.positions)-1]].RecordedAt,
	}
}

// Streams implements strata.Store.
func (s *Store) Streams(ctx context.Context, opts strata.ListStreamsOptions) iter.Seq2[strata.StreamInfo, error] {
	const op = "list streams"
	return func(yield func(strata.StreamInfo, error) bool) {
		if opts.Limit < 0 {
			yield(strata.StreamInfo{}, strata.Errorf(strata.Invalid, op, "negative Limit"))
			return
		}
		if err := ctx.Err(); err != nil {
			yield(strata.StreamInfo{}, &strata.Error{Code: strata.Unavailable, Op: op, Err: err})
			return
		}
		s.mu.RLock()
		if s.closed {
			s.mu.RUnlock()
			yield(strata.StreamInfo{}, strata.ClosedError(op))
			return
		}
		var infos []strata.StreamInfo
		for name := range s.streams {
			if strings.HasPrefix(name, opts.Prefix) && name > opts.After {
				infos = append(infos, s.infoLocked(name))
			}
		}
		s.mu.RUnlock()
		slices.SortFunc(infos, func(a, b strata.StreamInfo) int { return strings.Compare(a.Stream, b.Stream) })
		if opts.Limit > 0 && len(infos) > opts.Limit {
			infos = infos[:opts.Limit]
		}
		for _, info := range infos {
			if !yield(info, nil) {
				return
			}
		}
	}
}

// cloneEvent returns a copy of a stored event that shares no memory with it, so that a caller
// changing what a read returned cannot change the log.
func cloneEvent(e *strata.Event) strata.Event {
	c := *e
	c.Data, c.Meta = slices.Clone(e.Data), cloneMeta(e.Meta)
	return c
}

func cloneMeta(m strata.Metadata) strata.Metadata {
	if m.Extra != nil {
		extra := make(map[string]string, len(m.Extra))
		for k, v := range m.Extra {
			extra[k] = v
		}
		m.Extra = extra
	}
	return m
}
