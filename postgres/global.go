package postgres

import (
	"context"
	"iter"
	"math"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/strata-events/strata"
	"github.com/strata-events/strata/internal/follow"
)

// slowEvery is how often one subscription may look for the writers of its table when
// something holds its horizon back; ReadAll may once per call.
const slowEvery = 20 * time.Millisecond

// ReadAll implements strata.Store.
//
// A page returns rows below the horizon, xmin + offset (see the package documentation). The
// snapshot's xmin is cluster-wide: any transaction with an ID, in any database of the cluster,
// holds it back, even one that never touches this store. When a page comes back short while
// committed rows lie above the horizon, ReadAll looks once for a tighter horizon from the
// transactions that hold a lock on this store's events table (see writersHorizon), so that
// only this store's writers can hold its readers back.
func (s *Store) ReadAll(ctx context.Context, opts strata.ReadAllOptions) iter.Seq2[strata.Event, error] {
	return s.readAll(ctx, "read all", opts, nil)
}

// readAll is ReadAll for op. slow, if not nil, rations the search for a tighter horizon.
func (s *Store) readAll(ctx context.Context, op string, opts strata.ReadAllOptions, slow func() bool) iter.Seq2[strata.Event, error] {
	return func(yield func(strata.Event, error) bool) {
		if opts.Limit < 0 {
			yield(strata.Event{}, strata.Errorf(strata.Invalid, op, "negative Limit"))
			return
		}
		sql, fargs, keep, none := s.readAllQuery(opts.Filter)
		if none {
			return
		}
		after := opts.After
		if after.Commit > math.MaxInt64 {
			return // nothing lies after it
		}
		left := opts.Limit
		args := make([]any, 4, 4+len(fargs))
		args = append(args, fargs...)
		var (
			p                 page
			hint              *int64 // a horizon found by writersHorizon
			tightened, raised bool
		)
		// A horizon once found stays valid, and a read must not fall back below it: the
		// writers of a horizon found later may include a transaction that held an ID before
		// and only now holds a lock on the events table (one that read it), which would put
		// a read behind what an earlier one returned, and the hub's handover trusts that a
		// read reaches every event it has dispatched.
		if f := s.floor.Load(); f > 0 {
			hint = &f
		}
		for {
			n := pageSize
			if left > 0 && left < n {
				n = left
			}
			args[0], args[1], args[2], args[3] = int64(after.Commit), int64(min(after.Event, math.MaxInt64)), n, hint
			if err := s.fetch(ctx, op, &p, n, keep, true, sql, args...); err != nil {
				yield(strata.Event{}, err)
				return
			}
			if !s.yieldAll(op, p.events, yield) {
				return
			}
			if !p.last.IsZero() {
				after = p.last
			}
			if left > 0 {
				if left -= len(p.events); left <= 0 {
					return
				}
			}
			if p.full {
				continue
			}
			// A short page: the log ends here, or committed rows wait above the horizon.
			switch {
			case !p.top.Valid || p.top.Int64 < p.horizon:
				return
			case p.top.Int64 >= p.ceiling && !raised:
				// Rows no transaction of this cluster can have written: restored from a
				// cluster with a higher counter. Lift the offset over them and read on.
				raised = true
				if err := s.raiseOffset(ctx); err != nil {
					return // a read-only connection: wait for a writer to raise it
				}
			case !tightened && (slow == nil || slow()):
				tightened = true
				h, err := s.writersHorizon(ctx)
				if err != nil {
					yield(strata.Event{}, s.fail(op, err))
					return
				}
				if h <= p.horizon {
					return // this store's own writers hold the horizon
				}
				for f := s.floor.Load(); f < h && !s.floor.CompareAndSwap(f, h); f = s.floor.Load() {
				}
				hint = &h
			default:
				return
			}
		}
	}
}

// writersHorizon returns a horizon that only this store's writers hold back: every row below
// it is final. It reads, in one statement, the snapshot's xmax N and the IDs W of transactions
// that hold a lock on the events table, and returns min(W ∪ {N}) + offset.
//
// Why that is safe for any later snapshot: an append locks the events table before it takes
// its transaction ID (the lock comes with the statement that assigns the ID) and keeps the lock
// until it ends. A writer with an ID below N had it before the statement began; if it was still
// running when pg_locks was read, it is in W and the horizon stays at or below its rows. If it
// had ended, a later snapshot sees its rows. A writer that takes its ID later gets one of at
// least N.
func (s *Store) writersHorizon(ctx context.Context) (int64, error) {
	var (
		n, offset int64
		xids      []int64
	)
	if err := s.pool.QueryRow(ctx, s.q.writers, s.eventsOID).Scan(&n, &offset, &xids); err != nil {
		return 0, err
	}
	h := n
	for _, x := range xids {
		h = min(h, widenXID(x, n))
	}
	return h + offset, nil
}

// widenXID returns the 64-bit transaction ID whose low 32 bits are x32 (as pg_locks shows
// it), taking the one nearest to ref, a 64-bit ID from the same moment. Running transactions
// lie within 2^31 of every current ID.
func widenXID(x32, ref int64) int64 {
	d := int64(int32(uint32(x32) - uint32(ref)))
	return ref + d
}

// readAllQuery completes the global read with the filter's conditions. Parameters $1 and $2
// are the cursor, $3 the limit, $4 a horizon hint. keep, if not nil, must also pass; none
// reports a filter that no stored event can match.
func (s *Store) readAllQuery(f strata.Filter) (sql string, args []any, keep func(*strata.Event) bool, none bool) {
	var b strings.Builder
	param := func() string { return "$" + strconv.Itoa(5+len(args)) }
	if len(f.Types) > 0 {
		types := make([]string, 0, len(f.Types))
		for _, t := range f.Types {
			if storableText(t) {
				types = append(types, t)
			}
		}
		if len(types) == 0 {
			return "", nil, nil, true
		}
		if len(types) == 1 {
			b.WriteString(" AND type = " + param())
			args = append(args, types[0])
		} else {
			b.WriteString(" AND type = ANY(" + param() + "::text[])")
			args = append(args, types)
		}
	}
	if f.StreamPrefix != "" {
		p := storablePrefix(f.StreamPrefix)
		if p != f.StreamPrefix {
			keep = f.Match
		}
		if p != "" {
			b.WriteString(" AND stream >= " + param())
			args = append(args, p)
			if end, ok := prefixEnd(p); ok {
				b.WriteString(" AND stream < " + param())
				args = append(args, end)
			}
		}
	}
	if f.Tenant != "" {
		b.WriteString(" AND tenant = " + param())
		args = append(args, []byte(f.Tenant))
	}
	return strings.Replace(s.q.readAll, "{filter}", b.String(), 1), args, keep, false
}

// Subscribe implements strata.Store.
func (s *Store) Subscribe(ctx context.Context, from strata.Position, filter strata.Filter) iter.Seq2[strata.Event, error] {
	const op = "subscribe"
	lim := &slowLimiter{wake: s.sig.Notify}
	src := follow.Source{
		ReadAll: func(ctx context.Context, opts strata.ReadAllOptions) iter.Seq2[strata.Event, error] {
			return s.readAll(ctx, op, opts, lim.allow)
		},
		Wake:   s.sig.C,
		Poll:   s.poll,
		Closed: s.done,
	}
	inner := follow.Subscribe(ctx, src, op, from, filter)
	return func(yield func(strata.Event, error) bool) {
		if s.closed.Load() {
			yield(strata.Event{}, strata.ClosedError(op))
			return
		}
		s.startListener(ctx)
		inner(yield)
		lim.stop()
	}
}

// slowLimiter lets a subscription look for its writers at most every slowEvery. When it says
// no, it wakes the subscription once the time has come, so that a horizon held back by another
// store's or application's transaction delays it by slowEvery at most.
type slowLimiter struct {
	mu    sync.Mutex
	last  time.Time
	timer *time.Timer
	wake  func()
}

func (l *slowLimiter) allow() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := time.Now()
	if wait := slowEvery - now.Sub(l.last); wait > 0 {
		if l.timer == nil {
			l.timer = time.AfterFunc(wait, func() {
				l.mu.Lock()
				l.timer = nil
				l.mu.Unlock()
				l.wake()
			})
		}
		return false
	}
	l.last = now
	return true
}

func (l *slowLimiter) stop() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.timer != nil {
		l.timer.Stop()
		l.timer = nil
	}
}
