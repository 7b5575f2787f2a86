package postgres

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/strata-events/strata"
	"github.com/strata-events/strata/internal/testenv"
)

// TestRaiseWaitsForOpenAppends: the offset must be raised (rows restored from a cluster whose
// counter was a little ahead) while appends are in flight. Readers compute their horizon from
// the offset they see, so a raise must not commit while an append that took its tx with the
// old offset is open: a reader would put its horizon above that append's rows, and a later
// append's commit would carry its cursor past them. The raise holds the events table in SHARE
// mode until it commits, so an append that starts meanwhile waits for it and takes the new
// offset; every reader's cursor then stays below the rows of appends still open.
func TestRaiseWaitsForOpenAppends(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dsn := testenv.Postgres(t)
	schema := testenv.PostgresSchema(t, dsn)
	s, err := Open(ctx, dsn, WithSchema(schema), WithGroupCommit(0))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	qs := pgx.Identifier{schema}.Sanitize()
	ev := func() strata.EventData {
		return strata.EventData{ID: uuid.New(), Type: "E", Data: json.RawMessage(`{}`)}
	}
	xid := func() int64 {
		var x int64
		if err := s.pool.QueryRow(ctx, `SELECT pg_current_xact_id()::text::bigint`).Scan(&x); err != nil {
			t.Fatal(err)
		}
		return x
	}
	var off int64
	if err := s.pool.QueryRow(ctx, `SELECT tx_offset FROM `+qs+`.clock`).Scan(&off); err != nil {
		t.Fatal(err)
	}
	top := xid() + off + 40
	if _, err := s.pool.Exec(ctx, `INSERT INTO `+qs+`.events (tx, version, recorded_at, occurred_at, id, schema, stream, type, data)
		VALUES ($1, 1, now(), now(), $2, 1, 'restored', 'R', '{}')`, top, uuid.New()); err != nil {
		t.Fatal(err)
	}

	// A raise, not yet committed.
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	raise, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.raiseIn(ctx, raise); err != nil {
		t.Fatal(err)
	}
	for xid()+off <= top { // the counter passes the restored rows: the old offset would do
	}

	// An append held open by its hook, and a later one.
	hold, inHook := make(chan struct{}), make(chan struct{})
	late := ev()
	lateDone, earlyDone := make(chan error, 1), make(chan error, 1)
	go func() {
		hctx := strata.WithBeforeCommit(ctx, func(context.Context) error { close(inHook); <-hold; return nil })
		_, err := s.Append(hctx, "late", strata.NoStream, late)
		lateDone <- err
	}()
	defer close(hold)
	waiting := func() int {
		var n int
		if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM pg_locks WHERE relation = $1::regclass AND NOT granted`, qs+".events").Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	for waiting() == 0 {
		select {
		case <-inHook:
			t.Fatal("an append went on under a raise of the offset that had not committed")
		case <-time.After(time.Millisecond):
		}
	}
	go func() {
		_, err := s.Append(ctx, "early", strata.NoStream, ev())
		earlyDone <- err
	}()
	if err := raise.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	<-inHook
	if err := <-earlyDone; err != nil {
		t.Fatal(err)
	}

	// A reader while the late append is open.
	var cursor strata.Position
	for e, err := range s.ReadAll(ctx, strata.ReadAllOptions{}) {
		if err != nil {
			t.Fatal(err)
		}
		cursor = e.Position
	}
	hold <- struct{}{}
	if err := <-lateDone; err != nil {
		t.Fatal(err)
	}
	for e, err := range s.ReadAll(ctx, strata.ReadAllOptions{}) {
		if err != nil {
			t.Fatal(err)
		}
		if e.ID == late.ID && !cursor.Less(e.Position) {
			t.Errorf("the late append committed at %s, at or behind the cursor %s a reader reached while it was open", e.Position, cursor)
		}
	}
}
