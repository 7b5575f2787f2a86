package postgres

import (
	"context"
	"errors"
	"slices"
	"sync"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/strata-events/strata"
)

// DefaultGroupWriters is how many small append transactions of one store run at once before
// further small single-stream appends wait and are committed together (see WithGroupCommit).
//
// Two rather than one: an append that waits on a lock (its stream's other writer holds a
// transaction open, say in a BeforeCommit hook) keeps its writer busy, and with one writer
// every small append of every stream would wait behind it, while with two the other writer's
// groups grow to carry the other streams. Measured with `strata bench append`
// (2 cores, PostgreSQL on the same machine, writers in alternate runs), one writer is a little
// faster where nothing blocks: 8 clients of single events 0.94–1.04x the raw baseline against
// 0.80–0.94x with 2 and 0.70–0.73x with 4; 32 clients 1.6–1.9x with 1 to 3.
const DefaultGroupWriters = 2

// maxGroupedEvents is the largest append that is grouped. A larger one runs its own
// transaction at once, outside the writers' count: its commit is amortized over its events
// already, and groups of large appends leave the inserting to too few server processes
// (8 clients of 100 events fell to 0.65x the baseline with one writer).
const maxGroupedEvents = 32

// Bounds of one group commit: the appends it takes, and the events of all of them (a group
// that would exceed it leaves the rest for the next, but always takes one append).
const (
	maxGroupAppends = 256
	maxGroupEvents  = 2000
)

// groupCommit coalesces concurrent single-stream appends into shared transactions: group
// commit, as databases do for their log. While fewer than writers append transactions of the
// store are running, an append runs its own, exactly as without grouping, so an idle store
// adds no latency. Appends that arrive while all of them are busy wait in a queue, and the
// next writer to finish (or to be free) takes the queue's appends (to distinct streams that
// no writer is writing, up to the bounds) as one group: one transaction of one round trip,
// in which each append keeps its own expected version check and its own outcome. An append
// that fails its check does not fail the others; it is resolved (a replay, or a Conflict) in
// its caller's goroutine. When the group's statement fails as a whole on an event ID stored
// before (which an idempotent retry sends), the appends carrying stored IDs are resolved the
// same way and the others written again as a group; on any other failure, its appends are
// retried one by one, each with its own outcome.
//
// Nothing waits on a timer: under light load groups have one append, under heavy load they
// grow, and throughput rises with the load while each append still costs one statement's
// latency plus the wait for a writer.
type groupCommit struct {
	s       *Store
	writers int

	mu    sync.Mutex
	busy  int // writers running, direct or leading a group
	queue []*groupReq
	// writing counts the appends being written, by stream. A queued append whose stream is
	// being written waits for that writer, so that an append stuck on its stream's lock holds
	// one writer, never two, and the others go on with the other streams.
	writing map[string]int
}

// groupReq is one append waiting for, or taken into, a group.
type groupReq struct {
	ctx context.Context
	op  string
	a   strata.StreamAppend

	done chan struct{} // closed when the outcome below is set
	res  strata.AppendResult
	err  error
	// conflict is set when the append failed its version check in the group; its caller
	// resolves it (a replay of an earlier append, or a Conflict).
	conflict *versionConflict
	// alone is set when the group could not decide the append's outcome: its caller appends
	// it in a transaction of its own.
	alone bool
}

// append appends a (prepared, single-stream, without a BeforeCommit hook).
func (g *groupCommit) append(ctx context.Context, op string, a strata.StreamAppend) (strata.AppendResult, error) {
	if len(a.Events) > maxGroupedEvents {
		return first(g.s.appendRetry(ctx, op, []strata.StreamAppend{a}))
	}
	g.mu.Lock()
	if g.busy < g.writers && len(g.queue) == 0 && g.writing[a.Stream] == 0 {
		g.busy++
		g.mark(a.Stream)
		g.mu.Unlock()
		res, err := g.s.appendRetry(ctx, op, []strata.StreamAppend{a})
		g.mu.Lock()
		g.unmark(a.Stream)
		g.release()
		g.mu.Unlock()
		return first(res, err)
	}
	r := &groupReq{ctx: ctx, op: op, a: a, done: make(chan struct{})}
	g.queue = append(g.queue, r)
	if g.busy < g.writers { // a writer is free while the queue's other appends wait for theirs
		g.busy++
		go g.lead()
	}
	g.mu.Unlock()

	select {
	case <-r.done:
	case <-ctx.Done():
		select {
		case <-r.done: // decided meanwhile: report what happened
		default:
			// Still queued (a leader drops it) or being written: as with any append whose
			// context ends before it returns, the caller cannot know whether it committed.
			return strata.AppendResult{}, g.s.fail(op, ctx.Err())
		}
	}
	switch {
	case r.alone:
		return first(g.s.appendRetry(ctx, op, []strata.StreamAppend{a}))
	case r.conflict != nil:
		res, _, err := g.s.appendFailed(ctx, op, []strata.StreamAppend{a}, r.conflict)
		return first(res, err)
	}
	return r.res, r.err
}

// first returns the only result of a single-stream append.
func first(res []strata.AppendResult, err error) (strata.AppendResult, error) {
	if err != nil {
		return strata.AppendResult{}, err
	}
	return res[0], nil
}

// mark and unmark count an append of stream in and out of writing. g.mu is held.
func (g *groupCommit) mark(stream string) {
	if g.writing == nil {
		g.writing = make(map[string]int)
	}
	g.writing[stream]++
}

func (g *groupCommit) unmark(stream string) {
	if g.writing[stream]--; g.writing[stream] <= 0 {
		delete(g.writing, stream)
	}
}

// release ends a direct writer's turn: it leads the queue's appends in a new goroutine if any
// wait. g.mu is held.
func (g *groupCommit) release() {
	if len(g.queue) == 0 {
		g.busy--
		return
	}
	go g.lead() // keeps the writer's slot
}

// lead writes groups from the queue until it holds none it can take, then frees its writer's
// slot.
func (g *groupCommit) lead() {
	var batch []*groupReq
	for {
		g.mu.Lock()
		for _, r := range batch {
			g.unmark(r.a.Stream)
		}
		batch = g.take()
		if len(batch) == 0 {
			g.busy--
			g.mu.Unlock()
			return
		}
		g.mu.Unlock()
		g.write(batch)
	}
}

// take removes the next group from the queue: appends to distinct streams that no writer is
// writing, in the order they came, within the bounds, and counts them as writing. Appends
// whose context has ended are dropped. g.mu is held.
func (g *groupCommit) take() []*groupReq {
	var (
		batch   []*groupReq
		events  int
		streams = make(map[string]struct{})
	)
	rest := g.queue[:0]
	for _, r := range g.queue {
		_, dup := streams[r.a.Stream]
		switch {
		case r.ctx.Err() != nil:
			r.err = g.s.fail(r.op, r.ctx.Err())
			close(r.done)
		case dup || g.writing[r.a.Stream] > 0 || len(batch) == maxGroupAppends || (len(batch) > 0 && events+len(r.a.Events) > maxGroupEvents):
			rest = append(rest, r)
		default:
			streams[r.a.Stream] = struct{}{}
			batch = append(batch, r)
			events += len(r.a.Events)
		}
	}
	for _, r := range batch {
		g.mark(r.a.Stream)
	}
	clear(g.queue[len(rest):])
	g.queue = rest
	return batch
}

// write commits one group and hands each append its outcome.
func (g *groupCommit) write(batch []*groupReq) {
	s := g.s
	switch len(batch) {
	case 0:
		return
	case 1:
		r := batch[0]
		r.res, r.err = first(s.appendRetry(r.ctx, r.op, []strata.StreamAppend{r.a}))
		close(r.done)
		return
	}
	// The group outlives any one caller's context (each stops waiting on its own), but not all
	// of them, nor the store: once every caller has given up, or Close is called, its
	// transaction is cancelled, so that a group stuck on a stream another transaction holds
	// does not keep its writer, and the appends behind it, until that transaction ends.
	ctx, cancel := context.WithCancel(context.WithoutCancel(batch[0].ctx))
	defer cancel()
	defer context.AfterFunc(s.bg, cancel)()
	go func() {
		for _, r := range batch {
			select {
			case <-r.ctx.Done():
			case <-ctx.Done():
				return
			}
		}
		cancel()
	}()
	appends := make([]strata.StreamAppend, len(batch))
	for i, r := range batch {
		appends[i] = r.a
	}
	var err error
retry:
	for raises, races := 0, 0; ; {
		var curs []int64
		var behind bool
		curs, behind, err = s.appendGroupOnce(ctx, appends)
		switch {
		case err == nil && !behind:
			for i, r := range batch {
				r.res, r.conflict = outcome(r.a, curs[i])
				close(r.done)
			}
			return
		case behind && raises < maxRaises:
			raises++
			if err := s.raiseOffset(ctx); err == nil {
				s.afterWrite()
				continue
			}
		case err != nil && retryable(err) && races < maxRaces:
			races++
			continue
		}
		break retry
	}
	// The group as a whole failed. An event ID stored before (a retry of an append that
	// committed) fails only the appends that carry one: they are resolved on their own and
	// the others are written as a group again. For anything else (bad data, a lost
	// connection, an ID twice in the group), each caller appends on its own and learns its
	// own outcome.
	if idTaken(err) {
		if rest, ok := g.setAsideStored(ctx, batch); ok {
			g.write(rest)
			return
		}
	}
	for _, r := range batch {
		r.alone = true
		close(r.done)
	}
}

// setAsideStored hands the appends of batch that carry an event ID the log holds to their
// callers, to be resolved alone (a replay of the first append, or a Conflict), and returns
// the others. ok is false if it found none, or could not look.
func (g *groupCommit) setAsideStored(ctx context.Context, batch []*groupReq) (rest []*groupReq, ok bool) {
	var ids [][16]byte
	for _, r := range batch {
		for _, e := range r.a.Events {
			ids = append(ids, e.ID)
		}
	}
	rows, _ := g.s.pool.Query(ctx, g.s.q.storedIDs, ids)
	found, err := pgx.CollectRows(rows, pgx.RowTo[[16]byte])
	if err != nil || len(found) == 0 {
		return nil, false
	}
	stored := make(map[[16]byte]bool, len(found))
	for _, id := range found {
		stored[id] = true
	}
	for _, r := range batch {
		if slices.ContainsFunc(r.a.Events, func(e strata.EventData) bool { return stored[e.ID] }) {
			r.alone = true
			close(r.done)
		} else {
			rest = append(rest, r)
		}
	}
	return rest, true
}

// retryable reports whether a group's statement failed because of a concurrent append, so
// that the same group, retried with a fresh snapshot, will get further.
func retryable(err error) bool {
	if versionTaken(err) {
		return true
	}
	// deadlock_detected: cannot happen with the advisory locks, but is safe to retry.
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "40P01"
}

// appendGroupOnce runs one group's transaction: BEGIN, the advisory locks of its streams,
// appendGroup and COMMIT, in one round trip. It returns each stream's version before the
// statement; behind reports that the restore guard failed and nothing was written.
func (s *Store) appendGroupOnce(ctx context.Context, appends []strata.StreamAppend) (curs []int64, behind bool, err error) {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return nil, false, err
	}
	defer conn.Release()
	curs, behind, ended, err := s.sendMany(ctx, conn, s.q.appendGroup, appends, false)
	if !ended {
		s.rollback(ctx, &connTx{conn: conn})
	}
	return curs, behind, err
}
