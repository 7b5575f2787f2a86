package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/strata-events/strata"
	"github.com/strata-events/strata/internal/testenv"
)

// TestGroupSetsAsideStoredIDs writes one group in which one append carries an event ID that
// the log holds already (in another stream, so that it passes its version check and fails the
// group's statement): that append alone is handed back to its caller, to be resolved on its
// own, and the others are still committed together, in one transaction; a rest of one append
// is written on its own, and an empty rest not at all.
func TestGroupSetsAsideStoredIDs(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dsn := testenv.Postgres(t)
	s, err := Open(ctx, dsn, WithSchema(testenv.PostgresSchema(t, dsn)), WithGroupCommit(1))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	retried := []strata.EventData{{ID: uuid.New(), Type: "R", Data: json.RawMessage(`{}`)}}
	if _, err := s.Append(ctx, "retried", strata.NoStream, retried...); err != nil {
		t.Fatal(err)
	}
	request := func(stream string, evs ...strata.EventData) *groupReq {
		t.Helper()
		prepared, err := strata.PrepareAppend("append", []strata.StreamAppend{{Stream: stream, Expected: strata.Any, Events: evs}})
		if err != nil {
			t.Fatal(err)
		}
		return &groupReq{ctx: ctx, op: "append", a: prepared[0], done: make(chan struct{})}
	}
	// The group's rest after the appends with stored IDs: several appends, one (written on its
	// own), none.
	for c, fresh := range []int{4, 1, 0} {
		var batch []*groupReq
		for i := range fresh {
			batch = append(batch, request(fmt.Sprintf("fresh-%d-%d", c, i), strata.EventData{Type: "E", Data: json.RawMessage(`{}`)}))
		}
		batch = slices.Insert(batch, min(1, len(batch)), request(fmt.Sprintf("moved-%d", c), retried...))
		if fresh < 2 {
			batch = append(batch, request(fmt.Sprintf("moved-%d-again", c), retried...))
		}
		s.group.write(batch)

		commits := map[uint64]bool{}
		for i, r := range batch {
			<-r.done
			if strings.HasPrefix(r.a.Stream, "moved-") {
				if !r.alone {
					t.Errorf("case %d: the append with a stored ID was not handed back to be resolved alone: %+v %v %v", c, r.res, r.err, r.conflict)
				}
				continue
			}
			if r.alone || r.err != nil || r.conflict != nil || r.res.LastVersion != 1 {
				t.Errorf("case %d: append %d to %s: alone %v, %+v %v %v; want it written", c, i, r.a.Stream, r.alone, r.res, r.err, r.conflict)
			}
			for e, err := range s.ReadStream(ctx, r.a.Stream, strata.ReadStreamOptions{}) {
				if err != nil {
					t.Fatal(err)
				}
				commits[e.Position.Commit] = true
			}
		}
		if want := min(fresh, 1); len(commits) != want {
			t.Errorf("case %d: the fresh appends were committed in %d transactions, want %d", c, len(commits), want)
		}
	}
}

// TestGroupGoesOnPastAStuckAppend holds a stream's first version in an open transaction (a
// BeforeCommit hook that waits) and sends two more appends to that stream: one waits on the
// stream's lock, holding a writer, and the other waits for that writer rather than take the
// second. Appends to other streams must meanwhile go through the second writer.
func TestGroupGoesOnPastAStuckAppend(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dsn := testenv.Postgres(t)
	schema := testenv.PostgresSchema(t, dsn)
	s, err := Open(ctx, dsn, WithSchema(schema), WithGroupCommit(2))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ev := func() strata.EventData { return strata.EventData{Type: "E", Data: json.RawMessage(`{}`)} }

	hold, inHook := make(chan struct{}), make(chan struct{})
	release := sync.OnceFunc(func() { close(hold) })
	defer release() // before Close, should the test fail while the hook waits
	holder := make(chan error, 1)
	go func() {
		hctx := strata.WithBeforeCommit(ctx, func(context.Context) error { close(inHook); <-hold; return nil })
		_, err := s.Append(hctx, "held", strata.NoStream, ev())
		holder <- err
	}()
	<-inHook
	held := make(chan error, 2)
	for range 2 {
		go func() {
			_, err := s.Append(ctx, "held", strata.Any, ev())
			held <- err
		}()
	}
	// Wait until one of them waits on the lock, and the other in the queue (or, were the rule
	// broken, on the lock too).
	for {
		var waiting int
		if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity
			WHERE wait_event_type = 'Lock' AND position($1 in query) > 0`, schema).Scan(&waiting); err != nil {
			t.Fatal(err)
		}
		s.group.mu.Lock()
		queued := len(s.group.queue)
		s.group.mu.Unlock()
		if waiting >= 1 && (queued >= 1 || waiting >= 2) {
			break
		}
		runtime.Gosched()
	}

	for i := range 5 {
		actx, cancel := context.WithTimeout(ctx, 10*time.Second)
		_, err := s.Append(actx, fmt.Sprintf("free-%d", i), strata.NoStream, ev())
		cancel()
		if err != nil {
			t.Fatalf("append to another stream while one waits on its lock: %v", err)
		}
	}
	release()
	if err := <-holder; err != nil {
		t.Fatalf("the held append: %v", err)
	}
	for range 2 {
		if err := <-held; err != nil {
			t.Errorf("an append that waited for the held stream: %v", err)
		}
	}
	if info, err := s.StreamInfo(ctx, "held"); err != nil || info.Version != 3 {
		t.Errorf("held stream: %+v %v, want version 3", info, err)
	}
}

// TestGroupGivesUpWithItsCallers: another process holds stream "held" (a BeforeCommit hook).
// This store's appends to "held" and to the free stream "free" are grouped, and their callers
// give up. The group must give up with them and free its writer: an append to a third stream
// then succeeds, and Close returns, while the other process still holds its lock.
func TestGroupGivesUpWithItsCallers(t *testing.T) {
	t.Parallel()
	const writers = 1
	ctx := context.Background()
	dsn := testenv.Postgres(t)
	schema := testenv.PostgresSchema(t, dsn)
	other, err := Open(ctx, dsn, WithSchema(schema), WithGroupCommit(0)) // "another process"
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	s, err := Open(ctx, dsn, WithSchema(schema), WithGroupCommit(writers))
	if err != nil {
		t.Fatal(err)
	}
	ev := func() strata.EventData { return strata.EventData{Type: "E", Data: json.RawMessage(`{}`)} }

	hold, inHook := make(chan struct{}), make(chan struct{})
	release := sync.OnceFunc(func() { close(hold) })
	defer release()
	holder := make(chan error, 1)
	go func() {
		hctx := strata.WithBeforeCommit(ctx, func(context.Context) error { close(inHook); <-hold; return nil })
		_, err := other.Append(hctx, "held", strata.Any, ev())
		holder <- err
	}()
	<-inHook

	// An append alone takes the only writer and waits on the lock, until its caller gives up.
	ctx0, cancel0 := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancel0()
	go s.Append(ctx0, "held", strata.Any, ev())
	for {
		s.group.mu.Lock()
		busy := s.group.busy
		s.group.mu.Unlock()
		if busy == 1 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	// Two queued appends, one of them to the free stream; they become a group once the direct
	// writer gives up.
	errs := make(chan error, 2)
	for _, stream := range []string{"free", "held"} {
		go func() {
			c, cancel := context.WithTimeout(ctx, time.Second)
			defer cancel()
			_, err := s.Append(c, stream, strata.Any, ev())
			errs <- err
		}()
	}
	for range 2 {
		<-errs // the held stream's append times out, and so may the free one's, grouped with it
	}

	// Every caller has given up. An append to a third, unrelated stream:
	c, cancel := context.WithTimeout(ctx, 2*time.Second)
	_, err = s.Append(c, "unrelated", strata.Any, ev())
	cancel()
	if err != nil {
		t.Errorf("append to an unrelated stream after all callers of the held stream gave up: %v", err)
	}

	closed := make(chan struct{})
	go func() { s.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(3 * time.Second):
		t.Errorf("Close blocks while a group whose callers all gave up waits on another process's lock")
	}
	release()
	<-holder
	<-closed
}
