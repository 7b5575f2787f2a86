package postgres_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/strata-events/strata"
	"github.com/strata-events/strata/postgres"
	"github.com/strata-events/strata/storetest"
)

func TestConformance(t *testing.T) {
	dsn := testDSN(t)
	open := func(t testing.TB, schema string) strata.Store {
		s, err := postgres.Open(context.Background(), dsn, postgres.WithSchema(schema))
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	storetest.Run(t, func(t testing.TB) strata.Store {
		return open(t, freshSchema(t, dsn))
	}, storetest.Features{
		Reopen: func(t testing.TB, s strata.Store) strata.Store {
			return open(t, s.(*postgres.Store).Schema())
		},
		Capabilities: true,
		RawContains:  rawContains,
	})
}

// TestForeignTransactionDoesNotHoldReaders holds a transaction with an ID open outside any
// store: the cluster-wide xmin stays behind it, yet readers of the store see its commits.
func TestForeignTransactionDoesNotHoldReaders(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	s := e.open(postgres.WithPoll(0))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	conn, err := pgx.Connect(ctx, e.dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(context.Background())
	if _, err := tx.Exec(ctx, "SELECT pg_current_xact_id()"); err != nil {
		t.Fatal(err)
	}

	got := make(chan strata.Event, 1)
	go func() {
		for ev, err := range s.Subscribe(ctx, strata.Start, strata.Filter{}) {
			if err != nil {
				return
			}
			got <- ev
		}
	}()
	mustAppend(t, s, "while-held", strata.NoStream, event("E", `{}`))
	if evs := readAll(t, s, strata.ReadAllOptions{}); len(evs) != 1 {
		t.Fatalf("ReadAll held back by a foreign transaction: %d events", len(evs))
	}
	select {
	case ev := <-got:
		if ev.Stream != "while-held" {
			t.Fatalf("got %s", ev.Stream)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("subscriber held back by a foreign transaction")
	}
}

func event(typ, data string) strata.EventData {
	return strata.EventData{Type: typ, Data: json.RawMessage(data)}
}

func mustAppend(t testing.TB, s strata.Store, stream string, exp strata.ExpectedVersion, evs ...strata.EventData) strata.AppendResult {
	t.Helper()
	res, err := s.Append(context.Background(), stream, exp, evs...)
	if err != nil {
		t.Fatalf("Append %s: %v", stream, err)
	}
	return res
}

func readAll(t testing.TB, s strata.Store, opts strata.ReadAllOptions) []strata.Event {
	t.Helper()
	var out []strata.Event
	for ev, err := range s.ReadAll(context.Background(), opts) {
		if err != nil {
			t.Fatalf("ReadAll: %v", err)
		}
		out = append(out, ev)
	}
	return out
}

func streamsOf(evs []strata.Event) []string {
	var out []string
	for _, e := range evs {
		out = append(out, fmt.Sprintf("%s@%d", e.Stream, e.Version))
	}
	return out
}

func TestRoundTrip(t *testing.T) {
	t.Parallel()
	s := newEnv(t).open()
	ctx := context.Background()
	occurred := time.Date(2023, 3, 14, 9, 0, 0, 123456789, time.FixedZone("CET", 3600))
	in := []strata.EventData{
		{Type: "CertificateIssued", Schema: 2, Data: json.RawMessage(`{ "serial" : "7F3A",  "n": 1.50, "s":"\u00e9\n" }`),
			Meta:       strata.Metadata{Tenant: "acme", Principal: "alice", Extra: map[string]string{"ticket": "T-9", "nul": "a\x00b"}},
			OccurredAt: occurred},
		{Type: "CertificateRevoked", Data: nil, Meta: strata.Metadata{Tenant: "t\x00nul"}},
		{Type: "Noted", Data: json.RawMessage(`[1,2,3]`)},
	}
	before := time.Now().Add(-time.Minute)
	res := mustAppend(t, s, "certificate-7F3A", strata.NoStream, in...)
	if res != (strata.AppendResult{Stream: "certificate-7F3A", FirstVersion: 1, LastVersion: 3}) {
		t.Fatalf("result %+v", res)
	}
	var got []strata.Event
	for ev, err := range s.ReadStream(ctx, "certificate-7F3A", strata.ReadStreamOptions{}) {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, ev)
	}
	if len(got) != 3 {
		t.Fatalf("got %d events", len(got))
	}
	if string(got[0].Data) != string(in[0].Data) || string(got[1].Data) != `{}` || string(got[2].Data) != `[1,2,3]` {
		t.Errorf("data not byte-exact: %q %q %q", got[0].Data, got[1].Data, got[2].Data)
	}
	if !got[0].Meta.Equal(in[0].Meta) || !got[1].Meta.Equal(in[1].Meta) || !got[2].Meta.IsZero() {
		t.Errorf("meta: %+v %+v %+v", got[0].Meta, got[1].Meta, got[2].Meta)
	}
	if got[0].Schema != 2 || got[1].Schema != 1 {
		t.Errorf("schema %d %d", got[0].Schema, got[1].Schema)
	}
	if !got[0].OccurredAt.Equal(strata.Timestamp(occurred)) || got[0].OccurredAt.Location() != time.UTC {
		t.Errorf("occurred %v", got[0].OccurredAt)
	}
	rec := got[0].RecordedAt
	if rec.Location() != time.UTC || rec.Before(before) || rec != strata.Timestamp(rec) {
		t.Errorf("recorded %v", rec)
	}
	for _, e := range got[1:] {
		if !e.RecordedAt.Equal(rec) || !e.OccurredAt.Equal(rec) {
			t.Errorf("event %d: recorded %v occurred %v, want both %v", e.Version, e.RecordedAt, e.OccurredAt, rec)
		}
	}
	all := readAll(t, s, strata.ReadAllOptions{})
	if len(all) != 3 || !slices.IsSortedFunc(all, func(a, b strata.Event) int { return a.Position.Compare(b.Position) }) {
		t.Fatalf("ReadAll: %v", all)
	}
	for i := range all {
		if all[i].ID != got[i].ID || all[i].Position != got[i].Position {
			t.Errorf("ReadAll[%d] differs from ReadStream", i)
		}
	}
	if ten := readAll(t, s, strata.ReadAllOptions{Filter: strata.Filter{Tenant: "t\x00nul"}}); len(ten) != 1 || ten[0].Version != 2 {
		t.Errorf("tenant with NUL: %v", streamsOf(ten))
	}
	info, err := s.StreamInfo(ctx, "certificate-7F3A")
	if err != nil || !info.Exists || info.Version != 3 || !info.FirstRecordedAt.Equal(rec) || !info.LastRecordedAt.Equal(rec) {
		t.Errorf("StreamInfo %+v %v", info, err)
	}
}

// TestOutOfOrderCommit makes the transaction with the lower position commit last: no read may
// pass it while it is open, and a cursor taken meanwhile must still find it.
func TestOutOfOrderCommit(t *testing.T) {
	t.Parallel()
	s := newEnv(t).open()
	ctx := context.Background()
	mustAppend(t, s, "start", strata.NoStream, event("Started", `{}`))
	cursor := readAll(t, s, strata.ReadAllOptions{})[0].Position

	subCtx, stopSub := context.WithCancel(ctx)
	defer stopSub()
	subbed := make(chan strata.Event, 10)
	subDone := make(chan error, 1)
	go func() {
		for ev, err := range s.Subscribe(subCtx, cursor, strata.Filter{}) {
			if err != nil {
				subDone <- err
				return
			}
			subbed <- ev
		}
	}()

	inserted, release := make(chan struct{}), make(chan struct{})
	var releaseOnce sync.Once
	defer releaseOnce.Do(func() { close(release) }) // a failure below must not leave the store's Close waiting on the hook
	aDone := make(chan error, 1)
	go func() {
		hold := strata.WithBeforeCommit(ctx, func(context.Context) error {
			close(inserted)
			<-release
			return nil
		})
		_, err := s.Append(hold, "revocation", strata.NoStream, event("CertificateRevoked", `{}`))
		aDone <- err
	}()
	<-inserted
	mustAppend(t, s, "issue", strata.NoStream, event("CertificateIssued", `{}`))

	if evs := readAll(t, s, strata.ReadAllOptions{After: cursor}); len(evs) != 0 {
		t.Fatalf("read passed an open transaction: %v", streamsOf(evs))
	}
	select {
	case ev := <-subbed:
		t.Fatalf("subscriber got %s@%d while an earlier transaction was open", ev.Stream, ev.Version)
	case <-time.After(200 * time.Millisecond):
	}

	releaseOnce.Do(func() { close(release) })
	if err := <-aDone; err != nil {
		t.Fatal(err)
	}
	evs := readAll(t, s, strata.ReadAllOptions{After: cursor})
	if got := streamsOf(evs); !slices.Equal(got, []string{"revocation@1", "issue@1"}) {
		t.Fatalf("after commit: %v", got)
	}
	for i, want := range []string{"revocation", "issue"} {
		select {
		case ev := <-subbed:
			if ev.Stream != want {
				t.Errorf("subscriber event %d: %s, want %s", i, ev.Stream, want)
			}
		case err := <-subDone:
			t.Fatal(err)
		case <-time.After(30 * time.Second):
			t.Fatalf("subscriber did not get %s", want)
		}
	}
}

// shiftTx simulates pg_dump and restore into a cluster whose transaction counter is far below
// the one that wrote the data. A consumer's stored cursor moves with the data.
func shiftTx(e *env, by int64, cursor strata.Position) strata.Position {
	e.exec("UPDATE events SET tx = tx + $1", by)
	cursor.Commit += uint64(by)
	return cursor
}

func TestRestoreOffset(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	s := e.open()
	ctx := context.Background()
	for i := range 3 {
		mustAppend(t, s, "old", strata.Exact(int64(i)), event("Old", `{}`))
	}

	// check appends through writer after a restore and reads through reader: every old event
	// is still there in its order, the new ones sort last, and cursors resume exactly.
	check := func(t *testing.T, reader, writer strata.Store, shift int64, stream string) {
		t.Helper()
		old := readAll(t, reader, strata.ReadAllOptions{})
		oldCursor := old[len(old)-1].Position
		cursor := shiftTx(e, shift, oldCursor)
		if e.queryInt("SELECT (SELECT max(tx) FROM events) - (pg_current_xact_id()::text::bigint + (SELECT tx_offset FROM clock))") <= 0 {
			t.Fatal("the simulated restore left stored positions below new ones")
		}
		mustAppend(t, writer, stream, strata.Any, event("New", `{"n":1}`), event("New", `{"n":2}`))
		all := readAll(t, reader, strata.ReadAllOptions{})
		if len(all) != len(old)+2 {
			t.Fatalf("read %d events, want %d", len(all), len(old)+2)
		}
		for i := range old {
			if all[i].ID != old[i].ID || all[i].Position.Commit != old[i].Position.Commit+uint64(shift) {
				t.Fatalf("event %d moved: %v", i, streamsOf(all))
			}
		}
		if got := streamsOf(all[len(old):]); got[0] != stream+"@1" || got[1] != stream+"@2" {
			t.Fatalf("new events do not sort last: %v", streamsOf(all))
		}
		resumed := readAll(t, reader, strata.ReadAllOptions{After: cursor})
		if len(resumed) != 2 || resumed[0].ID != all[len(old)].ID || resumed[1].ID != all[len(old)+1].ID {
			t.Fatalf("resumed from %v: %v", cursor, streamsOf(resumed))
		}
	}

	t.Run("append on open store", func(t *testing.T) {
		check(t, s, s, 1_000_000_000_000, "append-open")
	})
	t.Run("reopen", func(t *testing.T) {
		old := readAll(t, s, strata.ReadAllOptions{})
		cursor := shiftTx(e, 2_000_000_000_000, old[len(old)-1].Position)
		s2 := e.open()
		resumed := readAll(t, s2, strata.ReadAllOptions{After: cursor})
		if len(resumed) != 0 {
			t.Fatalf("resumed after restore: %v", streamsOf(resumed))
		}
		mustAppend(t, s2, "reopened", strata.NoStream, event("New", `{}`))
		resumed = readAll(t, s2, strata.ReadAllOptions{After: cursor})
		if got := streamsOf(resumed); !slices.Equal(got, []string{"reopened@1"}) {
			t.Fatalf("resumed after restore and append: %v", got)
		}
		// The first store cached nothing and sees the same.
		if got := streamsOf(readAll(t, s, strata.ReadAllOptions{After: cursor})); !slices.Equal(got, []string{"reopened@1"}) {
			t.Fatalf("first store resumed: %v", got)
		}
	})
	t.Run("read on open store", func(t *testing.T) {
		old := readAll(t, s, strata.ReadAllOptions{})
		shiftTx(e, 3_000_000_000_000, strata.Start)
		// Restored rows lie above the horizon until the offset rises; a reader raises it.
		if got := readAll(t, s, strata.ReadAllOptions{}); len(got) != len(old) {
			t.Fatalf("read %d events after restore, want %d", len(got), len(old))
		}
	})
	t.Run("multi", func(t *testing.T) {
		old := readAll(t, s, strata.ReadAllOptions{})
		cursor := shiftTx(e, 4_000_000_000_000, old[len(old)-1].Position)
		if _, err := s.AppendMulti(ctx,
			strata.StreamAppend{Stream: "m-b", Expected: strata.NoStream, Events: []strata.EventData{event("New", `{}`)}},
			strata.StreamAppend{Stream: "m-a", Expected: strata.NoStream, Events: []strata.EventData{event("New", `{}`)}},
		); err != nil {
			t.Fatal(err)
		}
		resumed := readAll(t, s, strata.ReadAllOptions{After: cursor})
		if got := streamsOf(resumed); !slices.Equal(got, []string{"m-b@1", "m-a@1"}) {
			t.Fatalf("after multi: %v", got)
		}
	})
	t.Run("other store appends", func(t *testing.T) {
		s3 := e.open()
		check(t, s3, s, 5_000_000_000_000, "append-other")
	})
}

func TestConcurrentExactAppends(t *testing.T) {
	t.Parallel()
	s := newEnv(t).open(postgres.WithPoll(0))
	ctx := context.Background()
	const writers, rounds = 6, 15
	for v := range int64(rounds) {
		var wins, conflicts atomic.Int32
		var wg sync.WaitGroup
		for range writers {
			wg.Go(func() {
				_, err := s.Append(ctx, "contended", strata.Exact(v), event("Tick", `{}`))
				var se *strata.Error
				switch {
				case err == nil:
					wins.Add(1)
				case errors.As(err, &se) && se.Code == strata.Conflict && se.Actual == v+1 && se.Stream == "contended":
					conflicts.Add(1)
				default:
					t.Errorf("version %d: %v", v, err)
				}
			})
		}
		wg.Wait()
		if wins.Load() != 1 || conflicts.Load() != writers-1 {
			t.Fatalf("version %d: %d wins, %d conflicts", v, wins.Load(), conflicts.Load())
		}
	}
	info, err := s.StreamInfo(ctx, "contended")
	if err != nil || info.Version != rounds {
		t.Fatalf("info %+v %v", info, err)
	}
}

func TestConcurrentAnyAppends(t *testing.T) {
	t.Parallel()
	s := newEnv(t).open()
	ctx := context.Background()
	const writers, each = 6, 20
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				evs := make([]strata.EventData, 1+(w+i)%3)
				for j := range evs {
					evs[j] = event("Tick", fmt.Sprintf(`{"w":%d,"i":%d}`, w, i))
				}
				res, err := s.Append(ctx, "busy", strata.Any, evs...)
				if err != nil || res.LastVersion-res.FirstVersion+1 != int64(len(evs)) {
					t.Errorf("append: %+v %v", res, err)
					return
				}
			}
		})
	}
	wg.Wait()
	var n int64
	for ev, err := range s.ReadStream(ctx, "busy", strata.ReadStreamOptions{}) {
		if err != nil {
			t.Fatal(err)
		}
		n++
		if ev.Version != n {
			t.Fatalf("version %d at place %d", ev.Version, n)
		}
	}
	all := readAll(t, s, strata.ReadAllOptions{})
	if int64(len(all)) != n {
		t.Fatalf("ReadAll %d events, ReadStream %d", len(all), n)
	}
	// Within one stream the global order agrees with versions.
	for i := 1; i < len(all); i++ {
		if all[i].Version <= all[i-1].Version {
			t.Fatalf("global order disagrees with versions at %d", i)
		}
	}
}

func TestIdempotentRetries(t *testing.T) {
	t.Parallel()
	s := newEnv(t).open()
	ctx := context.Background()
	id1, id2 := uuid.New(), uuid.New()
	batch := []strata.EventData{
		{ID: id1, Type: "A", Data: json.RawMessage(`{"x":1}`)},
		{ID: id2, Type: "B", Data: json.RawMessage(`{"x":2}`)},
	}
	mustAppend(t, s, "idem", strata.NoStream, event("Zero", `{}`))
	first := mustAppend(t, s, "idem", strata.Exact(1), batch...)
	want := strata.AppendResult{Stream: "idem", FirstVersion: 2, LastVersion: 3, Replayed: true}
	for _, exp := range []strata.ExpectedVersion{strata.Exact(1), strata.Any, strata.NoStream, strata.StreamExists, strata.Exact(3)} {
		res, err := s.Append(ctx, "idem", exp, batch...)
		if err != nil || res != want {
			t.Errorf("retry with %s: %+v %v (first %+v)", exp, res, err, first)
		}
	}
	mustAppend(t, s, "idem", strata.Any, event("Later", `{}`))
	if res, err := s.Append(ctx, "idem", strata.Exact(1), batch...); err != nil || res != want {
		t.Errorf("retry after later appends: %+v %v", res, err)
	}

	conflicts := map[string]func() error{
		"other data": func() error {
			_, err := s.Append(ctx, "idem", strata.Any, strata.EventData{ID: id1, Type: "A", Data: json.RawMessage(`{"x":9}`)}, batch[1])
			return err
		},
		"other stream": func() error {
			_, err := s.Append(ctx, "elsewhere", strata.Any, batch...)
			return err
		},
		"batch plus new": func() error {
			_, err := s.Append(ctx, "idem", strata.Any, batch[0], batch[1], event("C", `{}`))
			return err
		},
		"multi": func() error {
			_, err := s.AppendMulti(ctx,
				strata.StreamAppend{Stream: "fresh", Expected: strata.NoStream, Events: []strata.EventData{event("C", `{}`)}},
				strata.StreamAppend{Stream: "other", Expected: strata.Any, Events: []strata.EventData{batch[0]}})
			return err
		},
	}
	for name, f := range conflicts {
		if err := f(); !errors.Is(err, strata.ErrConflict) {
			t.Errorf("%s: %v, want conflict", name, err)
		}
	}
	if info, _ := s.StreamInfo(ctx, "fresh"); info.Exists {
		t.Errorf("failed AppendMulti wrote stream fresh")
	}

	multi := []strata.StreamAppend{
		{Stream: "m2", Expected: strata.NoStream, Events: []strata.EventData{{ID: uuid.New(), Type: "M"}}},
		{Stream: "m1", Expected: strata.NoStream, Events: []strata.EventData{{ID: uuid.New(), Type: "M"}, {ID: uuid.New(), Type: "M"}}},
	}
	r1, err := s.AppendMulti(ctx, multi...)
	if err != nil {
		t.Fatal(err)
	}
	r2, err := s.AppendMulti(ctx, multi...)
	if err != nil || len(r2) != 2 || !r2[0].Replayed || !r2[1].Replayed || r2[0].LastVersion != r1[0].LastVersion || r2[1].LastVersion != 2 {
		t.Errorf("multi replay: %+v %v", r2, err)
	}
}

// TestDuplicateIDRace sends one event ID from two appends at once: the unique violation of
// the loser must become a replay or a conflict, never an internal error.
func TestDuplicateIDRace(t *testing.T) {
	t.Parallel()
	s := newEnv(t).open()
	ctx := context.Background()
	for round := range 10 {
		id := uuid.New()
		same := strata.EventData{ID: id, Type: "Same", Data: json.RawMessage(`{}`)}
		var wg sync.WaitGroup
		results := make([]error, 4)
		replayed := make([]bool, 4)
		for i := range results {
			wg.Go(func() {
				stream := "dup"
				if i%2 == 1 {
					stream = fmt.Sprintf("dup-other-%d", round)
				}
				res, err := s.Append(ctx, stream, strata.Any, same)
				results[i], replayed[i] = err, res.Replayed
			})
		}
		wg.Wait()
		ok := 0
		for i, err := range results {
			switch {
			case err == nil && !replayed[i]:
				ok++
			case err == nil, errors.Is(err, strata.ErrConflict):
			default:
				t.Errorf("round %d: %v", round, err)
			}
		}
		if ok != 1 {
			t.Errorf("round %d: %d appends wrote the event", round, ok)
		}
	}
}

func TestCloseEndsEverything(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	s := e.open()
	ctx := context.Background()
	for i := range 5 {
		mustAppend(t, s, fmt.Sprintf("s-%d", i), strata.NoStream, event("E", `{}`))
	}
	subErr := make(chan error, 1)
	go func() {
		for _, err := range s.Subscribe(ctx, strata.Start, strata.Filter{}) {
			if err != nil {
				subErr <- err
				return
			}
		}
		subErr <- nil
	}()
	n := 0
	var iterErr error
	for _, err := range s.ReadAll(ctx, strata.ReadAllOptions{}) {
		if err != nil {
			iterErr = err
			break
		}
		if n++; n == 2 {
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
		}
	}
	if !errors.Is(iterErr, strata.ErrClosed) || !errors.Is(iterErr, strata.ErrUnavailable) {
		t.Errorf("running ReadAll ended with %v", iterErr)
	}
	if err := <-subErr; !errors.Is(err, strata.ErrClosed) {
		t.Errorf("Subscribe ended with %v", err)
	}
	if _, err := s.Append(ctx, "x", strata.Any, event("E", `{}`)); !errors.Is(err, strata.ErrClosed) {
		t.Errorf("Append after Close: %v", err)
	}
	if _, err := s.StreamInfo(ctx, "x"); !errors.Is(err, strata.ErrClosed) {
		t.Errorf("StreamInfo after Close: %v", err)
	}
	for _, err := range s.Streams(ctx, strata.ListStreamsOptions{}) {
		if !errors.Is(err, strata.ErrClosed) {
			t.Errorf("Streams after Close: %v", err)
		}
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestOpenConcurrently(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() { e.open() })
	}
	wg.Wait()
	if n := e.queryInt("SELECT count(*) FROM schema_migrations"); n != migrationCount(t) {
		t.Errorf("%d migrations recorded", n)
	}
}

// TestUpgradeFromVersion1 opens a schema made before migration 0002 (the capability tables):
// Open adds them, and the events written before stay.
func TestUpgradeFromVersion1(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t)
	s := e.open()
	if _, err := s.Append(ctx, "certificate-1", strata.NoStream, strata.EventData{Type: "CertificateIssued"}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	e.exec("DROP TABLE snapshots, timers, checkpoints; DELETE FROM schema_migrations WHERE version = 2")
	s = e.open()
	if n, want := e.queryInt("SELECT count(*) FROM schema_migrations"), migrationCount(t); n != want {
		t.Errorf("%d migrations recorded after the upgrade, want %d", n, want)
	}
	if err := s.SaveSnapshot(ctx, strata.Snapshot{Stream: "certificate-1", Version: 1, Data: []byte("s")}); err != nil {
		t.Fatalf("save snapshot after the upgrade: %v", err)
	}
	if err := s.SaveCheckpoint(ctx, "crl", strata.Position{Commit: 1, Event: 1}); err != nil {
		t.Fatalf("save checkpoint after the upgrade: %v", err)
	}
	if info, err := s.StreamInfo(ctx, "certificate-1"); err != nil || info.Version != 1 {
		t.Fatalf("stream after the upgrade: %+v, %v", info, err)
	}
}

func TestOpenErrors(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	if _, err := postgres.Open(ctx, "postgres://postgres@127.0.0.1:1/postgres?sslmode=disable&connect_timeout=5"); strata.ErrorCode(err) != strata.Unavailable {
		t.Errorf("unreachable: %v", err)
	} else if se := (*strata.Error)(nil); !errors.As(err, &se) || !se.Retryable() || se.Err == nil {
		t.Errorf("unreachable: not retryable or no cause: %v", err)
	}
	if _, err := postgres.Open(ctx, "postgres://%zz"); strata.ErrorCode(err) != strata.Invalid {
		t.Errorf("bad DSN: %v", err)
	}
	if _, err := postgres.Open(ctx, defaultDSN, postgres.WithSchema("")); strata.ErrorCode(err) != strata.Invalid {
		t.Errorf("empty schema: %v", err)
	}
}

// TestNotifyAcrossStores checks that a commit in one process wakes a subscriber in another,
// with polling off, also after the subscriber's listening connection was killed.
func TestNotifyAcrossStores(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	reader := e.open(postgres.WithPoll(0))
	writer := e.open()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	got := make(chan strata.Event)
	go func() {
		for ev, err := range reader.Subscribe(ctx, strata.Start, strata.Filter{}) {
			if err != nil {
				return
			}
			got <- ev
		}
	}()
	expect := func(stream string) {
		t.Helper()
		select {
		case ev := <-got:
			if ev.Stream != stream {
				t.Fatalf("got %s, want %s", ev.Stream, stream)
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("no event from %s", stream)
		}
	}
	mustAppend(t, writer, "one", strata.NoStream, event("E", `{}`))
	expect("one")

	channel := "strata." + e.schema
	e.exec("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query = $1", `LISTEN "`+channel+`"`)
	mustAppend(t, writer, "two", strata.NoStream, event("E", `{}`))
	expect("two")
	// After the reconnect, notifications flow again.
	for e.queryInt("SELECT count(*) FROM pg_stat_activity WHERE query = $1", `LISTEN "`+channel+`"`) == 0 {
		time.Sleep(10 * time.Millisecond)
	}
	mustAppend(t, writer, "three", strata.NoStream, event("E", `{}`))
	expect("three")
}

func TestFiltersAndPaging(t *testing.T) {
	t.Parallel()
	s := newEnv(t).open()
	ctx := context.Background()
	var all []strata.EventData
	for i := range 2500 {
		e := event([]string{"Issued", "Revoked", "Renewed"}[i%3], fmt.Sprintf(`{"i":%d}`, i))
		e.Meta.Tenant = []string{"", "acme", "globex"}[i%3/2+i%2]
		all = append(all, e)
	}
	streams := []string{"cert-a", "cert-b", "certificate", "cert-é", "cert-\U0010FFFF", "key-1"}
	for i := 0; i < len(all); i += 100 {
		mustAppend(t, s, streams[i/100%len(streams)], strata.Any, all[i:i+100]...)
	}
	everything := readAll(t, s, strata.ReadAllOptions{})
	if len(everything) != 2500 {
		t.Fatalf("read %d events", len(everything))
	}
	cases := []strata.Filter{
		{Types: []string{"Revoked"}},
		{Types: []string{"Revoked", "Issued"}},
		{StreamPrefix: "cert-"},
		{StreamPrefix: "cert-\U0010FFFF"},
		{StreamPrefix: "cert-\xc3"},
		{StreamPrefix: "certi"},
		{Tenant: "acme"},
		{Tenant: "acme", Types: []string{"Renewed"}, StreamPrefix: "cert"},
		{Types: []string{"No\x00pe"}},
	}
	for _, f := range cases {
		var want []strata.Event
		for _, e := range everything {
			if f.Match(&e) {
				want = append(want, e)
			}
		}
		for _, limit := range []int{0, 7, 1500} {
			got := readAll(t, s, strata.ReadAllOptions{Filter: f, Limit: limit})
			w := want
			if limit > 0 && len(w) > limit {
				w = w[:limit]
			}
			if len(got) != len(w) {
				t.Errorf("filter %+v limit %d: %d events, want %d", f, limit, len(got), len(w))
				continue
			}
			for i := range got {
				if got[i].ID != w[i].ID {
					t.Errorf("filter %+v limit %d: event %d differs", f, limit, i)
					break
				}
			}
		}
		if len(want) > 10 {
			rest := readAll(t, s, strata.ReadAllOptions{Filter: f, After: want[9].Position})
			if len(rest) != len(want)-10 || rest[0].ID != want[10].ID {
				t.Errorf("filter %+v after cursor: %d events", f, len(rest))
			}
		}
	}

	var names []string
	for info, err := range s.Streams(ctx, strata.ListStreamsOptions{Prefix: "cert-"}) {
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, info.Stream)
	}
	if want := []string{"cert-a", "cert-b", "cert-é", "cert-\U0010FFFF"}; !slices.Equal(names, want) {
		t.Errorf("Streams prefix: %q, want %q", names, want)
	}
	names = names[:0]
	for info, err := range s.Streams(ctx, strata.ListStreamsOptions{After: "cert-b", Limit: 2}) {
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, info.Stream)
	}
	if want := []string{"cert-é", "cert-\U0010FFFF"}; !slices.Equal(names, want) {
		t.Errorf("Streams after: %q, want %q", names, want)
	}

	var back []int64
	for ev, err := range s.ReadStream(ctx, "cert-a", strata.ReadStreamOptions{Backward: true, From: 250, Limit: 1200}) {
		if err != nil {
			t.Fatal(err)
		}
		back = append(back, ev.Version)
	}
	if len(back) != 250 || back[0] != 250 || back[249] != 1 {
		t.Errorf("backward read: %d events from %d", len(back), back[0])
	}
	var fwd int
	for ev, err := range s.ReadStream(ctx, "cert-a", strata.ReadStreamOptions{From: 2}) {
		if err != nil {
			t.Fatal(err)
		}
		if ev.Version != int64(fwd+2) {
			t.Fatalf("forward read: version %d at %d", ev.Version, fwd)
		}
		fwd++
	}
	if fwd != 499 {
		t.Errorf("forward read: %d events", fwd)
	}
}

// TestRollbackWakesSubscriber checks that an aborted append that held back the horizon is
// followed by a wake-up, so that a commit it hid reaches a subscriber without polling.
func TestRollbackWakesSubscriber(t *testing.T) {
	t.Parallel()
	s := newEnv(t).open(postgres.WithPoll(0))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	got := make(chan strata.Event, 1)
	go func() {
		for ev, err := range s.Subscribe(ctx, strata.Start, strata.Filter{}) {
			if err != nil {
				return
			}
			got <- ev
		}
	}()
	inserted, release := make(chan struct{}), make(chan struct{})
	aDone := make(chan error, 1)
	go func() {
		hold := strata.WithBeforeCommit(ctx, func(context.Context) error {
			close(inserted)
			<-release
			return errors.New("abort")
		})
		_, err := s.Append(hold, "aborted", strata.NoStream, event("E", `{}`))
		aDone <- err
	}()
	<-inserted
	mustAppend(t, s, "kept", strata.NoStream, event("E", `{}`))
	close(release)
	if err := <-aDone; err == nil || err.Error() != "abort" {
		t.Fatalf("hook error not returned as is: %v", err)
	}
	select {
	case ev := <-got:
		if ev.Stream != "kept" {
			t.Fatalf("got %s", ev.Stream)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("subscriber not woken after rollback")
	}
}
