package mysql

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
)

// poke wakes the background sequencer. Pokes that arrive while it is busy coalesce into one
// more round.
func (s *Store) poke() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// runSequencer stamps positions after local appends until ctx ends. Passes start at least
// s.passGap apart: a pass costs a commit of its own, and under a stream of appends waiting a
// little lets one pass stamp many of them. After a quiet spell a pass starts at once.
func (s *Store) runSequencer(ctx context.Context) {
	defer close(s.done)
	var last time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.wake:
		}
		if d := s.passGap - time.Since(last); d > 0 {
			if sleep(ctx, d) != nil {
				return
			}
		}
		last = time.Now()
		if err := s.sequence(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("strata/mysql: sequencing failed; retrying", "err", err)
			select {
			case <-ctx.Done():
				return
			case <-time.After(100 * time.Millisecond):
			}
			s.poke()
		}
	}
}

// unsequenced reports whether committed events wait for a position. It takes no lock.
func (s *Store) unsequenced(ctx context.Context) (bool, error) {
	var one int
	err := s.db.QueryRowContext(ctx, "SELECT 1 FROM events WHERE position IS NULL LIMIT 1").Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	return err == nil, err
}

// sequence runs passes until every event committed before it was called has a position.
func (s *Store) sequence(ctx context.Context) error {
	select {
	case s.seqSem <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-s.seqSem }()
	for {
		n, more, err := s.pass(ctx)
		for attempt := 0; err != nil && retryable(err) && attempt < 10; attempt++ {
			n, more, err = s.pass(ctx)
		}
		if err != nil {
			return err
		}
		if n > 0 {
			s.signal.Notify()
		}
		if !more {
			return nil
		}
	}
}

// pass is one sequencing transaction. It gives the next positions to up to seqBatch committed
// events that have none, in the order they were inserted, and commits. Passes in every process
// serialize on the log_head row, and each one's stamps become visible at once, so a reader
// never sees position p+1 without p.
//
// The events are found with a plain (consistent, non-locking) read, which under READ COMMITTED
// sees committed rows only and never waits; the UPDATE then touches exactly those rows by
// primary key. An insert still in flight is neither read nor waited for: it gets its position
// in a later pass, after it commits.
func (s *Store) pass(ctx context.Context) (stamped int, more bool, err error) {
	err = s.inTx(ctx, func(c *sql.Conn) error {
		var head int64
		if err := c.QueryRowContext(ctx, "SELECT position FROM log_head WHERE id = 1 FOR UPDATE").Scan(&head); err != nil {
			return err
		}
		rows, err := c.QueryContext(ctx, "SELECT seq FROM events WHERE position IS NULL ORDER BY seq LIMIT ?", s.seqBatch)
		if err != nil {
			return err
		}
		var seqs []int64
		for rows.Next() {
			var q int64
			if err := rows.Scan(&q); err != nil {
				rows.Close()
				return err
			}
			seqs = append(seqs, q)
		}
		rows.Close()
		if err := rows.Err(); err != nil || len(seqs) == 0 {
			return err
		}
		more = len(seqs) == s.seqBatch

		// One statement stamps the events, numbered in seq order, and moves the head. The
		// events are touched by primary key only (the IN list): the statement never reads,
		// locks or waits for a row outside the list. Consecutive seqs form runs, and a run
		// starting at seq a takes the positions from p on: position = seq + (p - a).
		type run struct{ first, last, delta int64 }
		var runs []run
		for i, q := range seqs {
			if len(runs) > 0 && q == runs[len(runs)-1].last+1 {
				runs[len(runs)-1].last = q
				continue
			}
			if len(runs) == s.maxRuns {
				seqs, more = seqs[:i], true // the rest in the next pass
				break
			}
			runs = append(runs, run{first: q, last: q, delta: head + int64(i) + 1 - q})
		}
		var q strings.Builder
		args := make([]any, 0, 3*len(runs)+len(seqs)+1)
		q.WriteString("UPDATE events AS e JOIN log_head AS h ON h.id = 1 SET e.position = CASE")
		for _, r := range runs {
			q.WriteString(" WHEN e.seq BETWEEN ? AND ? THEN e.seq + ?")
			args = append(args, r.first, r.last, r.delta)
		}
		q.WriteString(" END, h.position = ? WHERE e.seq IN (")
		args = append(args, head+int64(len(seqs)))
		for i, v := range seqs {
			if i > 0 {
				q.WriteByte(',')
			}
			q.WriteByte('?')
			args = append(args, v)
		}
		q.WriteByte(')')
		res, err := c.ExecContext(ctx, q.String(), args...)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n != int64(len(seqs))+1 {
			return fmt.Errorf("sequencer: a pass changed %d rows, expected %d events and the head", n, len(seqs))
		}
		stamped = len(seqs)
		return nil
	})
	if err != nil {
		return 0, false, err
	}
	return stamped, more, nil
}

// sequenceIfNeeded runs a pass when committed events wait for positions, so that a read sees
// every event committed before it started, whoever wrote it.
func (s *Store) sequenceIfNeeded(ctx context.Context) error {
	need, err := s.unsequenced(ctx)
	if err != nil || !need {
		return err
	}
	return s.sequence(ctx)
}
