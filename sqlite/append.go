package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"slices"
	"time"

	"github.com/google/uuid"
	"github.com/strata-events/strata"
)

// Append implements strata.Store.
func (s *Store) Append(ctx context.Context, stream string, expected strata.ExpectedVersion, events ...strata.EventData) (strata.AppendResult, error) {
	const op = "append"
	if err := s.checkOpen(op); err != nil {
		return strata.AppendResult{}, err
	}
	apps, err := strata.PrepareAppend(op, []strata.StreamAppend{{Stream: stream, Expected: expected, Events: events}})
	if err != nil {
		return strata.AppendResult{}, err
	}
	res, err := s.append(ctx, op, apps)
	if err != nil {
		return strata.AppendResult{}, err
	}
	return res[0], nil
}

// AppendMulti implements strata.Store.
func (s *Store) AppendMulti(ctx context.Context, appends ...strata.StreamAppend) ([]strata.AppendResult, error) {
	const op = "append multi"
	if err := s.checkOpen(op); err != nil {
		return nil, err
	}
	apps, err := strata.PrepareAppend(op, appends)
	if err != nil {
		return nil, err
	}
	return s.append(ctx, op, apps)
}

// append writes prepared appends in one transaction. On a failed version check or a reused event
// ID it rolls back and asks resolve whether the call was a retry of an append that committed.
func (s *Store) append(ctx context.Context, op string, apps []strata.StreamAppend) ([]strata.AppendResult, error) {
	// Encode the metadata before taking the write lock, to hold it for as short a time as possible.
	n := 0
	for _, a := range apps {
		n += len(a.Events)
	}
	metas := make([]string, 0, n)
	for _, a := range apps {
		for i := range a.Events {
			// occurred_at holds Unix microseconds in 64 bits; a time beyond them would be stored
			// as another time.
			if at := a.Events[i].OccurredAt; !at.IsZero() && !time.UnixMicro(at.UnixMicro()).Equal(at) {
				return nil, invalidf(op, "stream %q event %d: occurred time %s is outside the range the store can hold", a.Stream, i, at.Format(time.RFC3339))
			}
			metas = append(metas, encodeMeta(&a.Events[i].Meta))
		}
	}

	w := s.wr
	if err := w.acquire(ctx, s.closed); err != nil {
		return nil, s.failWrite(ctx, op, err)
	}
	defer w.release()
	if _, err := w.begin.ExecContext(ctx); err != nil { // waits for other processes' writes
		return nil, s.failWrite(ctx, op, err)
	}
	// RecordedAt is taken with the write lock held, so that it grows with the position as long as
	// the clock does.
	now := strata.Timestamp(time.Now()).UnixMicro()
	results := make([]strata.AppendResult, len(apps))
	args := make([]any, 0, insertCols*min(n, insertRows[0]))
	k := 0
	for i, a := range apps {
		var actual int64
		if err := w.version.QueryRowContext(ctx, a.Stream).Scan(&actual); err != nil && !errors.Is(err, sql.ErrNoRows) {
			w.abort(ctx)
			return nil, s.failWrite(ctx, op, err)
		}
		if !a.Expected.Allows(actual) {
			w.abort(ctx)
			return s.resolve(ctx, op, apps, strata.VersionConflict(op, a.Stream, a.Expected, actual))
		}
		for j := 0; j < len(a.Events); {
			size := 0
			for len(a.Events)-j < insertRows[size] {
				size++
			}
			args = args[:0]
			for end := j + insertRows[size]; j < end; j, k = j+1, k+1 {
				e := &a.Events[j] // a copy made by PrepareAppend: ID[:] may point into it
				occurred := now
				if !e.OccurredAt.IsZero() {
					occurred = e.OccurredAt.UnixMicro()
				}
				args = append(args, e.ID[:], a.Stream, actual+int64(j)+1, e.Type, int64(e.Schema),
					[]byte(e.Data), metas[k], e.Meta.Tenant, now, occurred)
			}
			if _, err := w.insert[size].ExecContext(ctx, args...); err != nil {
				w.abort(ctx)
				if isConstraint(err) {
					// The version check passed, so this is the unique event ID.
					return s.resolve(ctx, op, apps, err)
				}
				return nil, s.failWrite(ctx, op, err)
			}
		}
		results[i] = strata.AppendResult{Stream: a.Stream, FirstVersion: actual + 1, LastVersion: actual + int64(len(a.Events))}
	}
	if err := strata.BeforeCommit(ctx); err != nil {
		w.abort(ctx)
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		w.abort(ctx)
		return nil, s.failWrite(ctx, op, err)
	}
	// Once committing, finish: a commit cut short by the context could succeed and still report
	// an error.
	if _, err := w.commit.ExecContext(context.WithoutCancel(ctx)); err != nil {
		w.abort(ctx)
		return nil, s.failWrite(ctx, op, err)
	}
	s.signal.Notify()
	return results, nil
}

// resolve decides what a failed append was, after its transaction rolled back: a retry of an
// append that committed (the first results, Replayed), a reuse of event IDs with other content
// (Conflict), or the failure itself (cause).
func (s *Store) resolve(ctx context.Context, op string, apps []strata.StreamAppend, cause error) ([]strata.AppendResult, error) {
	var ce *strata.Error // the version conflict, if that is what failed
	if !errors.As(cause, &ce) || ce.Code != strata.Conflict {
		ce = nil
	}
	stored, err := s.lookupIDs(ctx, op, strata.EventIDs(apps))
	if err != nil {
		return nil, err
	}
	results := make([]strata.AppendResult, len(apps))
	replayed := 0
	var notStored []string
	for i, a := range apps {
		mine := make(map[uuid.UUID]strata.Event, len(a.Events))
		for _, e := range a.Events {
			if ev, ok := stored[e.ID]; ok {
				mine[e.ID] = ev
			}
		}
		res, ok, err := strata.ResolveReplay(op, a, mine)
		if err != nil {
			return nil, err
		}
		if ok {
			results[i] = res
			replayed++
		} else {
			notStored = append(notStored, a.Stream)
		}
	}
	switch {
	case replayed == len(apps):
		return results, nil
	case ce != nil && slices.Contains(notStored, ce.Stream):
		return nil, ce // a genuine version conflict
	case replayed > 0:
		return nil, strata.Errorf(strata.Conflict, op, "the events of some streams of this append were stored before, but not those of stream %q; a retry must resend the same batch: %w", notStored[0], strata.ErrEventIDReused)
	case ce != nil:
		return nil, ce
	}
	// A uniqueness violation, yet none of the IDs is stored: the database disagrees with itself.
	return nil, strata.Errorf(strata.Internal, op, "unexpected constraint violation: %w", cause)
}
