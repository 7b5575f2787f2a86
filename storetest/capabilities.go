package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/strata-events/strata"
)

// RunSnapshots runs the section of the suite for [strata.SnapshotStore]: save, load and replace,
// no rollback by an older snapshot, NotFound, delete, restarts, bad input and use after close.
// [Run] calls it; a store that does not implement the interface skips it, or fails it when
// f.Capabilities is set.
func RunSnapshots(t *testing.T, newStore NewStore, f Features) {
	suite{newStore: newStore, f: f}.runSnapshots(t)
}

// RunTimers runs the section of the suite for [strata.TimerStore]: scheduling, idempotent
// rescheduling, due order, owners, limits, deletion, restarts, bad input and use after close.
// [Run] calls it; a store that does not implement the interface skips it, or fails it when
// f.Capabilities is set.
func RunTimers(t *testing.T, newStore NewStore, f Features) {
	suite{newStore: newStore, f: f}.runTimers(t)
}

// RunCheckpoints runs the section of the suite for [strata.CheckpointStore]: the default Start,
// save and overwrite, restarts, bad input and use after close. [Run] calls it; a store that does
// not implement the interface skips it, or fails it when f.Capabilities is set.
func RunCheckpoints(t *testing.T, newStore NewStore, f Features) {
	suite{newStore: newStore, f: f}.runCheckpoints(t)
}

func (s suite) runSnapshots(t *testing.T) {
	runParallel(t, []subtest{
		{"SaveLoadReplace", s.testSnapshotSaveLoad},
		{"OlderNeverOverwritesNewer", s.testSnapshotNoRollback},
		{"NotFoundAndDelete", s.testSnapshotNotFoundDelete},
		{"StreamsAreDistinct", s.testSnapshotStreamsDistinct},
		{"SurviveReopen", s.testSnapshotReopen},
		{"BadInputRejected", s.testSnapshotBadInput},
		{"ContextCancellation", s.testSnapshotCancel},
		{"UseAfterClose", s.testSnapshotAfterClose},
	})
}

func (s suite) runTimers(t *testing.T) {
	runParallel(t, []subtest{
		{"ScheduleAndDue", s.testTimerScheduleDue},
		{"IdempotentSchedule", s.testTimerIdempotent},
		{"DueOrderAndTies", s.testTimerOrder},
		{"OwnersAreSeparate", s.testTimerOwners},
		{"Limit", s.testTimerLimit},
		{"ExtremeTimes", s.testTimerExtremeTimes},
		{"Delete", s.testTimerDelete},
		{"SurviveReopen", s.testTimerReopen},
		{"BadInputRejected", s.testTimerBadInput},
		{"ContextCancellation", s.testTimerCancel},
		{"UseAfterClose", s.testTimerAfterClose},
	})
}

func (s suite) runCheckpoints(t *testing.T) {
	runParallel(t, []subtest{
		{"DefaultStart", s.testCheckpointDefault},
		{"SaveAndOverwrite", s.testCheckpointSave},
		{"SurviveReopen", s.testCheckpointReopen},
		{"BadInputRejected", s.testCheckpointBadInput},
		{"ContextCancellation", s.testCheckpointCancel},
		{"UseAfterClose", s.testCheckpointAfterClose},
	})
}

type subtest struct {
	name string
	fn   func(t *testing.T)
}

func runParallel(t *testing.T, tests []subtest) {
	for _, c := range tests {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			c.fn(t)
		})
	}
}

// capability makes a fresh store and returns it as a T, skipping the test when the store is not
// one, or failing it when Features.Capabilities says it must be.
func capability[T any](t *testing.T, s suite) (strata.Store, T) {
	t.Helper()
	st := s.newStore(t)
	c, ok := st.(T)
	if !ok {
		name := fmt.Sprintf("%T", (*T)(nil))[1:]
		if s.f.Capabilities {
			t.Fatalf("%T does not implement %s, but Features.Capabilities says it must", st, name)
		}
		t.Skipf("%T does not implement %s", st, name)
	}
	return st, c
}

// reopen restarts st as another process would, skipping the test for a backend that keeps
// nothing. It checks that the reopened store implements T.
func reopen[T any](t *testing.T, s suite, st strata.Store) T {
	t.Helper()
	if err := st.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	st2 := s.f.Reopen(t, st)
	c, ok := st2.(T)
	if !ok {
		t.Fatalf("the reopened %T does not implement %s", st2, fmt.Sprintf("%T", (*T)(nil))[1:])
	}
	return c
}

func skipWithoutReopen(t *testing.T, s suite) {
	if s.f.Reopen == nil {
		t.Skip("the backend keeps nothing across restarts (Features.Reopen is nil)")
	}
}

// cancelled returns a context that is already cancelled.
func cancelled(ctx context.Context) context.Context {
	ctx, cancel := context.WithCancel(ctx)
	cancel()
	return ctx
}

func wantCanceled(t testing.TB, err error, what string) {
	t.Helper()
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("%s with a cancelled context: %v, want an error wrapping context.Canceled", what, err)
	}
}

func wantClosed(t testing.TB, err error, what string) {
	t.Helper()
	if !errors.Is(err, strata.ErrClosed) || strata.ErrorCode(err) != strata.Unavailable {
		t.Fatalf("%s after close: %v, want Unavailable wrapping ErrClosed", what, err)
	}
}

// binary is data that is neither UTF-8 nor NUL-free: stores must keep bytes, not text.
var binary = []byte{0, 1, 2, 0xff, 0xfe, 0, 'x', 0x80}

// --- snapshots ---

func mustLoadSnapshot(t testing.TB, ctx context.Context, ss strata.SnapshotStore, stream string) strata.Snapshot {
	t.Helper()
	snap, err := ss.LoadSnapshot(ctx, stream)
	if err != nil {
		t.Fatalf("load snapshot of %q: %v", stream, err)
	}
	return snap
}

func mustSaveSnapshot(t testing.TB, ctx context.Context, ss strata.SnapshotStore, snap strata.Snapshot) {
	t.Helper()
	if err := ss.SaveSnapshot(ctx, snap); err != nil {
		t.Fatalf("save snapshot of %q at version %d: %v", snap.Stream, snap.Version, err)
	}
}

func wantSnapshot(t testing.TB, got strata.Snapshot, stream string, version int64, schema int, data []byte) {
	t.Helper()
	if got.Stream != stream || got.Version != version || got.Schema != schema || !bytes.Equal(got.Data, data) {
		t.Fatalf("snapshot is {%q v%d schema %d data %s}, want {%q v%d schema %d data %s}",
			got.Stream, got.Version, got.Schema, brief(got.Data), stream, version, schema, brief(data))
	}
}

// brief quotes short data and summarizes long data, so that a failure prints no megabytes.
func brief(b []byte) string {
	if len(b) <= 64 {
		return fmt.Sprintf("%q", b)
	}
	return fmt.Sprintf("%q... (%d bytes)", b[:32], len(b))
}

func wantNoSnapshot(t testing.TB, ctx context.Context, ss strata.SnapshotStore, stream string) {
	t.Helper()
	_, err := ss.LoadSnapshot(ctx, stream)
	wantCode(t, err, strata.NotFound, fmt.Sprintf("load snapshot of %q", stream))
	if !errors.Is(err, strata.ErrNotFound) {
		t.Fatalf("load snapshot of %q: %v does not match ErrNotFound", stream, err)
	}
}

func (s suite) testSnapshotSaveLoad(t *testing.T) {
	ctx := testContext(t)
	_, ss := capability[strata.SnapshotStore](t, s)
	const stream = "certificate-7F3A"
	before := time.Now().Add(-time.Minute)
	data := slices.Clone(binary)
	mustSaveSnapshot(t, ctx, ss, strata.Snapshot{Stream: stream, Version: 3, Schema: 1, Data: data,
		TakenAt: time.Date(2001, 1, 1, 0, 0, 0, 0, time.UTC)})
	data[0] = 'X' // the store keeps its own copy
	got := mustLoadSnapshot(t, ctx, ss, stream)
	wantSnapshot(t, got, stream, 3, 1, binary)
	if got.TakenAt.Before(before) || got.TakenAt.After(time.Now().Add(time.Minute)) ||
		got.TakenAt.Location() != time.UTC || got.TakenAt.Nanosecond()%1000 != 0 {
		t.Fatalf("takenAt %v: want the store's clock now, in UTC with microsecond precision", got.TakenAt)
	}
	got.Data[0] = 'Y' // and hands out copies
	wantSnapshot(t, mustLoadSnapshot(t, ctx, ss, stream), stream, 3, 1, binary)

	// A newer snapshot replaces it, with another schema.
	mustSaveSnapshot(t, ctx, ss, strata.Snapshot{Stream: stream, Version: 5, Schema: 2, Data: []byte(`{"status":"revoked"}`)})
	wantSnapshot(t, mustLoadSnapshot(t, ctx, ss, stream), stream, 5, 2, []byte(`{"status":"revoked"}`))
	// So does one at the same version (a loader that re-encoded the state under a new schema).
	mustSaveSnapshot(t, ctx, ss, strata.Snapshot{Stream: stream, Version: 5, Schema: 3, Data: []byte(`{"s":"r"}`)})
	wantSnapshot(t, mustLoadSnapshot(t, ctx, ss, stream), stream, 5, 3, []byte(`{"s":"r"}`))
	// Empty data and schema 0 are valid.
	mustSaveSnapshot(t, ctx, ss, strata.Snapshot{Stream: stream, Version: 6})
	wantSnapshot(t, mustLoadSnapshot(t, ctx, ss, stream), stream, 6, 0, nil)
	// The largest allowed state round-trips byte for byte.
	huge := bytes.Repeat([]byte{0xff, 0, 'a', 0x80}, strata.MaxDataLen/4)
	mustSaveSnapshot(t, ctx, ss, strata.Snapshot{Stream: stream, Version: 7, Schema: 1, Data: huge})
	wantSnapshot(t, mustLoadSnapshot(t, ctx, ss, stream), stream, 7, 1, huge)
	// The longest stream name is accepted.
	long := strings.Repeat("é", strata.MaxStreamNameLen/2)
	mustSaveSnapshot(t, ctx, ss, strata.Snapshot{Stream: long, Version: 1, Data: []byte("s")})
	wantSnapshot(t, mustLoadSnapshot(t, ctx, ss, long), long, 1, 0, []byte("s"))
}

func (s suite) testSnapshotNoRollback(t *testing.T) {
	ctx := testContext(t)
	_, ss := capability[strata.SnapshotStore](t, s)
	const stream = "certificate-1"
	mustSaveSnapshot(t, ctx, ss, strata.Snapshot{Stream: stream, Version: 5, Schema: 1, Data: []byte("v5")})
	first := mustLoadSnapshot(t, ctx, ss, stream)
	// A slow writer's older snapshot is accepted without error and changes nothing.
	mustSaveSnapshot(t, ctx, ss, strata.Snapshot{Stream: stream, Version: 4, Schema: 2, Data: []byte("v4")})
	got := mustLoadSnapshot(t, ctx, ss, stream)
	wantSnapshot(t, got, stream, 5, 1, []byte("v5"))
	if !got.TakenAt.Equal(first.TakenAt) {
		t.Fatalf("an ignored snapshot changed TakenAt from %v to %v", first.TakenAt, got.TakenAt)
	}

	// Racing writers: whatever the order of commits, the highest version wins.
	const writers = 16
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for v := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- ss.SaveSnapshot(ctx, strata.Snapshot{Stream: "certificate-2", Version: int64(writers - v), Data: fmt.Appendf(nil, "v%d", writers-v)})
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("concurrent save snapshot: %v", err)
		}
	}
	wantSnapshot(t, mustLoadSnapshot(t, ctx, ss, "certificate-2"), "certificate-2", writers, 0, fmt.Appendf(nil, "v%d", writers))
}

func (s suite) testSnapshotNotFoundDelete(t *testing.T) {
	ctx := testContext(t)
	st, ss := capability[strata.SnapshotStore](t, s)
	wantNoSnapshot(t, ctx, ss, "certificate-1")
	// A stream with events but no snapshot has none either.
	mustAppend(t, ctx, st, "certificate-1", strata.NoStream, ev("CertificateIssued", nil))
	wantNoSnapshot(t, ctx, ss, "certificate-1")
	// Deleting what is not there is not an error.
	if err := ss.DeleteSnapshot(ctx, "certificate-1"); err != nil {
		t.Fatalf("delete a missing snapshot: %v", err)
	}
	mustSaveSnapshot(t, ctx, ss, strata.Snapshot{Stream: "certificate-1", Version: 9, Data: []byte("s")})
	mustSaveSnapshot(t, ctx, ss, strata.Snapshot{Stream: "certificate-2", Version: 1, Data: []byte("t")})
	if err := ss.DeleteSnapshot(ctx, "certificate-1"); err != nil {
		t.Fatalf("delete snapshot: %v", err)
	}
	wantNoSnapshot(t, ctx, ss, "certificate-1")
	wantSnapshot(t, mustLoadSnapshot(t, ctx, ss, "certificate-2"), "certificate-2", 1, 0, []byte("t"))
	if err := ss.DeleteSnapshot(ctx, "certificate-1"); err != nil {
		t.Fatalf("delete a deleted snapshot: %v", err)
	}
	// After a delete any version may be saved again, e.g. once the stream was rebuilt.
	mustSaveSnapshot(t, ctx, ss, strata.Snapshot{Stream: "certificate-1", Version: 2, Data: []byte("u")})
	wantSnapshot(t, mustLoadSnapshot(t, ctx, ss, "certificate-1"), "certificate-1", 2, 0, []byte("u"))
	// Deleting a snapshot leaves the stream's events alone.
	if info, err := st.StreamInfo(ctx, "certificate-1"); err != nil || info.Version != 1 {
		t.Fatalf("stream info after deleting its snapshot: %+v, %v", info, err)
	}
}

func (s suite) testSnapshotStreamsDistinct(t *testing.T) {
	ctx := testContext(t)
	_, ss := capability[strata.SnapshotStore](t, s)
	// Names that a case-insensitive, accent-insensitive or space-padding comparison would
	// confuse are distinct streams.
	names := []string{"certificate-a", "Certificate-A", "certificate-a ", "certificate-á", "证书-1"}
	for i, name := range names {
		mustSaveSnapshot(t, ctx, ss, strata.Snapshot{Stream: name, Version: int64(10 - i), Data: []byte(name)})
	}
	for i, name := range names {
		wantSnapshot(t, mustLoadSnapshot(t, ctx, ss, name), name, int64(10-i), 0, []byte(name))
	}
}

func (s suite) testSnapshotReopen(t *testing.T) {
	skipWithoutReopen(t, s)
	ctx := testContext(t)
	st, ss := capability[strata.SnapshotStore](t, s)
	mustSaveSnapshot(t, ctx, ss, strata.Snapshot{Stream: "certificate-1", Version: 4, Schema: 2, Data: binary})
	mustSaveSnapshot(t, ctx, ss, strata.Snapshot{Stream: "certificate-2", Version: 1, Schema: 1, Data: nil})
	taken := mustLoadSnapshot(t, ctx, ss, "certificate-1").TakenAt
	ss2 := reopen[strata.SnapshotStore](t, s, st)
	got := mustLoadSnapshot(t, ctx, ss2, "certificate-1")
	wantSnapshot(t, got, "certificate-1", 4, 2, binary)
	if !got.TakenAt.Equal(taken) {
		t.Fatalf("after a restart takenAt is %v, want %v", got.TakenAt, taken)
	}
	wantSnapshot(t, mustLoadSnapshot(t, ctx, ss2, "certificate-2"), "certificate-2", 1, 1, nil)
	wantNoSnapshot(t, ctx, ss2, "certificate-3")
}

func (s suite) testSnapshotBadInput(t *testing.T) {
	ctx := testContext(t)
	_, ss := capability[strata.SnapshotStore](t, s)
	huge := make([]byte, strata.MaxDataLen+1)
	cases := []struct {
		name string
		snap strata.Snapshot
	}{
		{"empty stream name", strata.Snapshot{Version: 1}},
		{"oversized stream name", strata.Snapshot{Stream: strings.Repeat("s", strata.MaxStreamNameLen+1), Version: 1}},
		{"stream name not UTF-8", strata.Snapshot{Stream: "cert-\xff", Version: 1}},
		{"stream name with a control character", strata.Snapshot{Stream: "cert\n1", Version: 1}},
		{"version zero", strata.Snapshot{Stream: "s", Version: 0}},
		{"negative version", strata.Snapshot{Stream: "s", Version: -1}},
		{"negative schema", strata.Snapshot{Stream: "s", Version: 1, Schema: -1}},
		{"oversized data", strata.Snapshot{Stream: "s", Version: 1, Data: huge}},
	}
	for _, c := range cases {
		wantCode(t, ss.SaveSnapshot(ctx, c.snap), strata.Invalid, c.name)
		if c.snap.Stream != "" && strata.ValidateStreamName("", c.snap.Stream) == nil {
			wantNoSnapshot(t, ctx, ss, c.snap.Stream)
		}
	}
	_, err := ss.LoadSnapshot(ctx, "")
	wantCode(t, err, strata.Invalid, "load the snapshot of an empty stream name")
	_, err = ss.LoadSnapshot(ctx, strings.Repeat("s", strata.MaxStreamNameLen+1))
	wantCode(t, err, strata.Invalid, "load the snapshot of an oversized stream name")
	wantCode(t, ss.DeleteSnapshot(ctx, ""), strata.Invalid, "delete the snapshot of an empty stream name")
	wantCode(t, ss.DeleteSnapshot(ctx, "cert\x00"), strata.Invalid, "delete the snapshot of a stream name with NUL")
	// A bad snapshot leaves a stored one alone, and the store still works.
	mustSaveSnapshot(t, ctx, ss, strata.Snapshot{Stream: "s", Version: 1, Data: []byte("ok")})
	wantCode(t, ss.SaveSnapshot(ctx, strata.Snapshot{Stream: "s", Version: 2, Data: huge}), strata.Invalid, "oversized data over a stored snapshot")
	wantSnapshot(t, mustLoadSnapshot(t, ctx, ss, "s"), "s", 1, 0, []byte("ok"))
}

func (s suite) testSnapshotCancel(t *testing.T) {
	ctx := testContext(t)
	_, ss := capability[strata.SnapshotStore](t, s)
	mustSaveSnapshot(t, ctx, ss, strata.Snapshot{Stream: "s", Version: 1, Data: []byte("1")})
	done := cancelled(ctx)
	wantCanceled(t, ss.SaveSnapshot(done, strata.Snapshot{Stream: "s", Version: 2, Data: []byte("2")}), "save snapshot")
	_, err := ss.LoadSnapshot(done, "s")
	wantCanceled(t, err, "load snapshot")
	wantCanceled(t, ss.DeleteSnapshot(done, "s"), "delete snapshot")
	wantSnapshot(t, mustLoadSnapshot(t, ctx, ss, "s"), "s", 1, 0, []byte("1"))
}

func (s suite) testSnapshotAfterClose(t *testing.T) {
	ctx := testContext(t)
	st, ss := capability[strata.SnapshotStore](t, s)
	mustSaveSnapshot(t, ctx, ss, strata.Snapshot{Stream: "s", Version: 1})
	if err := st.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	wantClosed(t, ss.SaveSnapshot(ctx, strata.Snapshot{Stream: "s", Version: 2}), "save snapshot")
	_, err := ss.LoadSnapshot(ctx, "s")
	wantClosed(t, err, "load snapshot")
	wantClosed(t, ss.DeleteSnapshot(ctx, "s"), "delete snapshot")
}

// --- timers ---

// timerBase is a fixed time for due times: DueTimers takes "now" from the caller, so timer tests
// need no clock.
var timerBase = time.Date(2023, 3, 14, 9, 0, 0, 0, time.UTC)

func newTimer(owner string, dueIn time.Duration, name string) strata.Timer {
	return strata.Timer{
		ID: uuid.Must(uuid.NewV7()), Owner: owner, Key: "certificate-7F3A", Name: name,
		DueAt: timerBase.Add(dueIn), Data: []byte(name),
	}
}

func mustSchedule(t testing.TB, ctx context.Context, ts strata.TimerStore, timers ...strata.Timer) {
	t.Helper()
	for _, tm := range timers {
		if err := ts.ScheduleTimer(ctx, tm); err != nil {
			t.Fatalf("schedule timer %s %q: %v", tm.ID, tm.Name, err)
		}
	}
}

func mustDue(t testing.TB, ctx context.Context, ts strata.TimerStore, owner string, now time.Time, limit int) []strata.Timer {
	t.Helper()
	due, err := ts.DueTimers(ctx, owner, now, limit)
	if err != nil {
		t.Fatalf("due timers of %q at %v: %v", owner, now, err)
	}
	return due
}

// wantTimers checks that got holds want in order, field for field (DueAt as stored: UTC, µs).
func wantTimers(t testing.TB, got []strata.Timer, want ...strata.Timer) {
	t.Helper()
	describe := func(ts []strata.Timer) string {
		var b strings.Builder
		for _, tm := range ts {
			fmt.Fprintf(&b, "\n\t%s owner=%q key=%q name=%q due=%s data=%s", tm.ID, tm.Owner, tm.Key, tm.Name, tm.DueAt.Format(time.RFC3339Nano), brief(tm.Data))
		}
		return b.String()
	}
	same := len(got) == len(want)
	for i := 0; same && i < len(got); i++ {
		g, w := got[i], want[i]
		same = g.ID == w.ID && g.Owner == w.Owner && g.Key == w.Key && g.Name == w.Name &&
			g.DueAt.Equal(strata.Timestamp(w.DueAt)) && g.DueAt.Location() == time.UTC && bytes.Equal(g.Data, w.Data)
	}
	if !same {
		t.Fatalf("due timers:%s\nwant:%s", describe(got), describe(want))
	}
}

func (s suite) testTimerScheduleDue(t *testing.T) {
	ctx := testContext(t)
	_, ts := capability[strata.TimerStore](t, s)
	const owner = "revocation-saga"
	a := newTimer(owner, time.Second, "approval-deadline")
	b := newTimer(owner, 2*time.Second, "reminder")
	c := newTimer(owner, time.Hour, "expiry")
	// Nanoseconds are dropped and any zone is stored as UTC.
	b.DueAt = b.DueAt.Add(1500 * time.Nanosecond).In(time.FixedZone("CET", 3600))
	c.Data = slices.Clone(binary)
	d := newTimer(owner, 3*time.Second, "no data")
	d.Key, d.Name, d.Data = "", "", nil
	mustSchedule(t, ctx, ts, c, b, a, d)
	c.Data[0] = 'X' // the store keeps its own copy
	c.Data = binary

	if due := mustDue(t, ctx, ts, owner, timerBase, 0); len(due) != 0 {
		t.Fatalf("%d timers due before the first one", len(due))
	}
	wantTimers(t, mustDue(t, ctx, ts, owner, timerBase.Add(time.Second), 0), a) // due at now is due
	wantTimers(t, mustDue(t, ctx, ts, owner, timerBase.Add(2*time.Second), 0), a)
	wantTimers(t, mustDue(t, ctx, ts, owner, strata.Timestamp(b.DueAt).In(time.Local), 0), a, b)
	wantTimers(t, mustDue(t, ctx, ts, owner, timerBase.Add(time.Minute), 0), a, b, d)
	due := mustDue(t, ctx, ts, owner, timerBase.Add(24*time.Hour), 0)
	wantTimers(t, due, a, b, d, c)
	// Due timers stay until deleted, and the caller may change what it got.
	due[3].Data[0] = 'Y'
	wantTimers(t, mustDue(t, ctx, ts, owner, timerBase.Add(24*time.Hour), 0), a, b, d, c)
}

func (s suite) testTimerIdempotent(t *testing.T) {
	ctx := testContext(t)
	_, ts := capability[strata.TimerStore](t, s)
	a := newTimer("saga", time.Minute, "deadline")
	mustSchedule(t, ctx, ts, a)
	// A worker that crashed after scheduling schedules again: nothing changes, even when it
	// computed another due time or data the second time.
	again := a
	again.DueAt = timerBase.Add(-time.Hour)
	again.Data = []byte("other")
	again.Name = "other"
	mustSchedule(t, ctx, ts, a, again, a)
	wantTimers(t, mustDue(t, ctx, ts, "saga", timerBase.Add(time.Hour), 0), a)
	if due := mustDue(t, ctx, ts, "saga", timerBase, 0); len(due) != 0 {
		t.Fatalf("rescheduling moved the timer: %d due", len(due))
	}

	// Concurrent schedulers of one ID all succeed and store it once.
	b := newTimer("saga", 2*time.Minute, "second")
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- ts.ScheduleTimer(ctx, b)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("concurrent schedule: %v", err)
		}
	}
	wantTimers(t, mustDue(t, ctx, ts, "saga", timerBase.Add(time.Hour), 0), a, b)
}

func (s suite) testTimerOrder(t *testing.T) {
	ctx := testContext(t)
	_, ts := capability[strata.TimerStore](t, s)
	// Timers due at the same instant come in ID order (bytes of the UUID); random IDs so that
	// insertion order does not give the answer away.
	var want []strata.Timer
	for i := range 12 {
		tm := newTimer("saga", time.Duration(i%3)*time.Second, fmt.Sprintf("t%d", i))
		tm.ID = uuid.New()
		want = append(want, tm)
	}
	mustSchedule(t, ctx, ts, want...)
	slices.SortFunc(want, func(a, b strata.Timer) int {
		if c := a.DueAt.Compare(b.DueAt); c != 0 {
			return c
		}
		return bytes.Compare(a.ID[:], b.ID[:])
	})
	wantTimers(t, mustDue(t, ctx, ts, "saga", timerBase.Add(time.Minute), 0), want...)
	// Microseconds order too: one due a microsecond earlier comes first.
	early := newTimer("saga", -time.Microsecond, "early")
	mustSchedule(t, ctx, ts, early)
	wantTimers(t, mustDue(t, ctx, ts, "saga", timerBase.Add(time.Minute), 0), append([]strata.Timer{early}, want...)...)
}

func (s suite) testTimerOwners(t *testing.T) {
	ctx := testContext(t)
	_, ts := capability[strata.TimerStore](t, s)
	// Owners that a case-insensitive or space-padding comparison would confuse are distinct.
	owners := []string{"revocation-saga", "Revocation-Saga", "revocation-saga ", "renewal-saga"}
	byOwner := map[string][]strata.Timer{}
	for i, o := range owners {
		for j := range 2 {
			tm := newTimer(o, time.Duration(j*10+i)*time.Second, fmt.Sprintf("%s-%d", o, j))
			byOwner[o] = append(byOwner[o], tm)
			mustSchedule(t, ctx, ts, tm)
		}
	}
	for _, o := range owners {
		wantTimers(t, mustDue(t, ctx, ts, o, timerBase.Add(time.Hour), 0), byOwner[o]...)
	}
	if due := mustDue(t, ctx, ts, "nobody", timerBase.Add(time.Hour), 0); len(due) != 0 {
		t.Fatalf("an owner without timers has %d due", len(due))
	}
}

func (s suite) testTimerLimit(t *testing.T) {
	ctx := testContext(t)
	_, ts := capability[strata.TimerStore](t, s)
	var all []strata.Timer
	for i := range 5 {
		all = append(all, newTimer("saga", time.Duration(i)*time.Second, fmt.Sprintf("t%d", i)))
	}
	mustSchedule(t, ctx, ts, all...)
	later := timerBase.Add(time.Hour)
	for _, c := range []struct {
		limit int
		want  []strata.Timer
	}{
		{1, all[:1]},
		{2, all[:2]},
		{5, all},
		{100, all},
		{0, all},
		{-1, all},
	} {
		wantTimers(t, mustDue(t, ctx, ts, "saga", later, c.limit), c.want...)
	}
	// The limit applies to due timers only.
	wantTimers(t, mustDue(t, ctx, ts, "saga", timerBase.Add(2*time.Second), 10), all[:3]...)
}

func (s suite) testTimerExtremeTimes(t *testing.T) {
	ctx := testContext(t)
	_, ts := capability[strata.TimerStore](t, s)
	first := newTimer("saga", 0, "first")
	first.DueAt = time.Date(strata.MinTimerYear, 1, 1, 0, 0, 0, 0, time.UTC)
	last := newTimer("saga", 0, "last")
	last.DueAt = time.Date(strata.MaxTimerYear, 12, 31, 23, 59, 59, 999_999_000, time.UTC)
	mustSchedule(t, ctx, ts, last, first)
	// Any "now" is a valid question, even one no backend could store.
	for _, c := range []struct {
		what string
		now  time.Time
		want []strata.Timer
	}{
		{"the zero time", time.Time{}, nil},
		{"the year 1", time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC), nil},
		{"the first due time", first.DueAt, []strata.Timer{first}},
		{"now", time.Now(), []strata.Timer{first}},
		{"the last due time", last.DueAt, []strata.Timer{first, last}},
		{"the year 20000", time.Date(20000, 1, 1, 0, 0, 0, 0, time.UTC), []strata.Timer{first, last}},
	} {
		due, err := ts.DueTimers(ctx, "saga", c.now, 0)
		if err != nil {
			t.Fatalf("due timers at %s: %v", c.what, err)
		}
		wantTimers(t, due, c.want...)
	}
}

func (s suite) testTimerDelete(t *testing.T) {
	ctx := testContext(t)
	_, ts := capability[strata.TimerStore](t, s)
	a := newTimer("saga", time.Second, "a")
	b := newTimer("saga", 2*time.Second, "b")
	c := newTimer("other", time.Second, "c")
	mustSchedule(t, ctx, ts, a, b, c)
	later := timerBase.Add(time.Hour)
	if err := ts.DeleteTimer(ctx, a.ID); err != nil {
		t.Fatalf("delete timer: %v", err)
	}
	wantTimers(t, mustDue(t, ctx, ts, "saga", later, 0), b)
	wantTimers(t, mustDue(t, ctx, ts, "other", later, 0), c)
	for _, id := range []uuid.UUID{a.ID, uuid.New(), uuid.Nil} {
		if err := ts.DeleteTimer(ctx, id); err != nil {
			t.Fatalf("delete an unknown timer %s: %v", id, err)
		}
	}
	wantTimers(t, mustDue(t, ctx, ts, "saga", later, 0), b)
	// A deleted ID is free again.
	mustSchedule(t, ctx, ts, a)
	wantTimers(t, mustDue(t, ctx, ts, "saga", later, 0), a, b)
}

func (s suite) testTimerReopen(t *testing.T) {
	skipWithoutReopen(t, s)
	ctx := testContext(t)
	st, ts := capability[strata.TimerStore](t, s)
	a := newTimer("saga", time.Second, "a")
	a.Data = binary
	b := newTimer("saga", 2*time.Second, "b")
	c := newTimer("saga", 3*time.Second, "c")
	mustSchedule(t, ctx, ts, a, b, c)
	if err := ts.DeleteTimer(ctx, b.ID); err != nil {
		t.Fatalf("delete timer: %v", err)
	}
	ts2 := reopen[strata.TimerStore](t, s, st)
	wantTimers(t, mustDue(t, ctx, ts2, "saga", timerBase.Add(time.Hour), 0), a, c)
	mustSchedule(t, ctx, ts2, a) // still idempotent after the restart
	wantTimers(t, mustDue(t, ctx, ts2, "saga", timerBase.Add(time.Hour), 0), a, c)
}

func (s suite) testTimerBadInput(t *testing.T) {
	ctx := testContext(t)
	_, ts := capability[strata.TimerStore](t, s)
	good := func(change func(*strata.Timer)) strata.Timer {
		tm := newTimer("saga", time.Second, "deadline")
		change(&tm)
		return tm
	}
	long := strings.Repeat("x", strata.MaxTimerFieldLen+1)
	cases := []struct {
		name  string
		timer strata.Timer
	}{
		{"zero ID", good(func(tm *strata.Timer) { tm.ID = uuid.Nil })},
		{"empty owner", good(func(tm *strata.Timer) { tm.Owner = "" })},
		{"oversized owner", good(func(tm *strata.Timer) { tm.Owner = long })},
		{"owner not UTF-8", good(func(tm *strata.Timer) { tm.Owner = "saga-\xff" })},
		{"owner with a control character", good(func(tm *strata.Timer) { tm.Owner = "saga\t1" })},
		{"oversized key", good(func(tm *strata.Timer) { tm.Key = long })},
		{"key not UTF-8", good(func(tm *strata.Timer) { tm.Key = "k\xff" })},
		{"oversized name", good(func(tm *strata.Timer) { tm.Name = long })},
		{"zero due time", good(func(tm *strata.Timer) { tm.DueAt = time.Time{} })},
		{"due time before the year 1000", good(func(tm *strata.Timer) { tm.DueAt = time.Date(999, 12, 31, 23, 0, 0, 0, time.UTC) })},
		{"due time after the year 9999", good(func(tm *strata.Timer) { tm.DueAt = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC) })},
		{"oversized data", good(func(tm *strata.Timer) { tm.Data = make([]byte, strata.MaxDataLen+1) })},
	}
	for _, c := range cases {
		wantCode(t, ts.ScheduleTimer(ctx, c.timer), strata.Invalid, c.name)
	}
	if due := mustDue(t, ctx, ts, "saga", timerBase.Add(time.Hour), 0); len(due) != 0 {
		t.Fatalf("bad input scheduled %d timers", len(due))
	}
	_, err := ts.DueTimers(ctx, "", timerBase, 0)
	wantCode(t, err, strata.Invalid, "due timers of an empty owner")
	_, err = ts.DueTimers(ctx, long, timerBase, 0)
	wantCode(t, err, strata.Invalid, "due timers of an oversized owner")
	// The longest fields are accepted, and the store still works.
	ok := good(func(tm *strata.Timer) {
		tm.Owner = strings.Repeat("ö", strata.MaxTimerFieldLen/2)
		tm.Key = strings.Repeat("k", strata.MaxTimerFieldLen)
		tm.Name = strings.Repeat("n", strata.MaxTimerFieldLen)
	})
	mustSchedule(t, ctx, ts, ok)
	wantTimers(t, mustDue(t, ctx, ts, ok.Owner, timerBase.Add(time.Hour), 0), ok)
}

func (s suite) testTimerCancel(t *testing.T) {
	ctx := testContext(t)
	_, ts := capability[strata.TimerStore](t, s)
	a := newTimer("saga", time.Second, "a")
	mustSchedule(t, ctx, ts, a)
	done := cancelled(ctx)
	wantCanceled(t, ts.ScheduleTimer(done, newTimer("saga", time.Second, "b")), "schedule timer")
	_, err := ts.DueTimers(done, "saga", timerBase.Add(time.Hour), 0)
	wantCanceled(t, err, "due timers")
	wantCanceled(t, ts.DeleteTimer(done, a.ID), "delete timer")
	wantTimers(t, mustDue(t, ctx, ts, "saga", timerBase.Add(time.Hour), 0), a)
}

func (s suite) testTimerAfterClose(t *testing.T) {
	ctx := testContext(t)
	st, ts := capability[strata.TimerStore](t, s)
	a := newTimer("saga", time.Second, "a")
	mustSchedule(t, ctx, ts, a)
	if err := st.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	wantClosed(t, ts.ScheduleTimer(ctx, newTimer("saga", time.Second, "b")), "schedule timer")
	_, err := ts.DueTimers(ctx, "saga", timerBase.Add(time.Hour), 0)
	wantClosed(t, err, "due timers")
	wantClosed(t, ts.DeleteTimer(ctx, a.ID), "delete timer")
}

// --- checkpoints ---

func mustSaveCheckpoint(t testing.TB, ctx context.Context, cs strata.CheckpointStore, name string, pos strata.Position) {
	t.Helper()
	if err := cs.SaveCheckpoint(ctx, name, pos); err != nil {
		t.Fatalf("save checkpoint %q at %s: %v", name, pos, err)
	}
}

func wantCheckpoint(t testing.TB, ctx context.Context, cs strata.CheckpointStore, name string, want strata.Position) {
	t.Helper()
	got, err := cs.LoadCheckpoint(ctx, name)
	if err != nil {
		t.Fatalf("load checkpoint %q: %v", name, err)
	}
	if got != want {
		t.Fatalf("checkpoint %q is %s, want %s", name, got, want)
	}
}

func (s suite) testCheckpointDefault(t *testing.T) {
	ctx := testContext(t)
	_, cs := capability[strata.CheckpointStore](t, s)
	wantCheckpoint(t, ctx, cs, "certificate_status", strata.Start)
	wantCheckpoint(t, ctx, cs, strings.Repeat("c", strata.MaxCheckpointNameLen), strata.Start)
}

func (s suite) testCheckpointSave(t *testing.T) {
	ctx := testContext(t)
	st, cs := capability[strata.CheckpointStore](t, s)
	mustAppend(t, ctx, st, "certificate-1", strata.NoStream, ev("CertificateIssued", nil), ev("CertificateRevoked", nil))
	evs := allEvents(t, ctx, st)
	// A real position of this backend round-trips.
	mustSaveCheckpoint(t, ctx, cs, "certificate_status", evs[0].Position)
	wantCheckpoint(t, ctx, cs, "certificate_status", evs[0].Position)
	mustSaveCheckpoint(t, ctx, cs, "certificate_status", evs[1].Position)
	wantCheckpoint(t, ctx, cs, "certificate_status", evs[1].Position)
	// Saving replaces, even with a lower position (a projection being rebuilt).
	mustSaveCheckpoint(t, ctx, cs, "certificate_status", strata.Start)
	wantCheckpoint(t, ctx, cs, "certificate_status", strata.Start)
	// Both parts keep all 64 bits, and names that a case-insensitive or space-padding comparison
	// would confuse are distinct.
	cases := []struct {
		name string
		pos  strata.Position
	}{
		{"crl", strata.Position{Commit: math.MaxUint64, Event: math.MaxUint64}},
		{"CRL", strata.Position{Commit: 1 << 63, Event: 1<<63 - 1}},
		{"crl ", strata.Position{Commit: 1017, Event: 42}},
		{"ocsp", strata.Position{Commit: 0, Event: math.MaxUint64}},
		{strings.Repeat("ü", strata.MaxCheckpointNameLen/2), strata.Position{Commit: 7, Event: 7}},
	}
	for _, c := range cases {
		mustSaveCheckpoint(t, ctx, cs, c.name, c.pos)
	}
	for _, c := range cases {
		wantCheckpoint(t, ctx, cs, c.name, c.pos)
	}
	wantCheckpoint(t, ctx, cs, "certificate_status", strata.Start)

	// Concurrent savers of one name all succeed and one of them wins.
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- cs.SaveCheckpoint(ctx, "racy", strata.Position{Commit: uint64(i + 1), Event: uint64(i + 1)})
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("concurrent save checkpoint: %v", err)
		}
	}
	if got, err := cs.LoadCheckpoint(ctx, "racy"); err != nil || got.Commit < 1 || got.Commit > 8 || got.Event != got.Commit {
		t.Fatalf("checkpoint after concurrent saves: %s, %v", got, err)
	}
}

func (s suite) testCheckpointReopen(t *testing.T) {
	skipWithoutReopen(t, s)
	ctx := testContext(t)
	st, cs := capability[strata.CheckpointStore](t, s)
	mustAppend(t, ctx, st, "certificate-1", strata.NoStream, ev("CertificateIssued", nil))
	pos := allEvents(t, ctx, st)[0].Position
	mustSaveCheckpoint(t, ctx, cs, "certificate_status", pos)
	mustSaveCheckpoint(t, ctx, cs, "crl", strata.Position{Commit: math.MaxUint64, Event: 1})
	cs2 := reopen[strata.CheckpointStore](t, s, st)
	wantCheckpoint(t, ctx, cs2, "certificate_status", pos)
	wantCheckpoint(t, ctx, cs2, "crl", strata.Position{Commit: math.MaxUint64, Event: 1})
	wantCheckpoint(t, ctx, cs2, "ocsp", strata.Start)
}

func (s suite) testCheckpointBadInput(t *testing.T) {
	ctx := testContext(t)
	_, cs := capability[strata.CheckpointStore](t, s)
	pos := strata.Position{Commit: 5, Event: 5}
	for _, c := range []struct{ what, name string }{
		{"empty name", ""},
		{"oversized name", strings.Repeat("c", strata.MaxCheckpointNameLen+1)},
		{"oversized multibyte name", strings.Repeat("ü", strata.MaxCheckpointNameLen/2+1)},
		{"name not UTF-8", "crl-\xff"},
		{"name with a control character", "crl\x00"},
	} {
		wantCode(t, cs.SaveCheckpoint(ctx, c.name, pos), strata.Invalid, "save checkpoint with "+c.what)
		_, err := cs.LoadCheckpoint(ctx, c.name)
		wantCode(t, err, strata.Invalid, "load checkpoint with "+c.what)
	}
	// Nothing was written under a name close to a rejected one, and the store still works.
	wantCheckpoint(t, ctx, cs, "crl-", strata.Start)
	wantCheckpoint(t, ctx, cs, strings.Repeat("c", strata.MaxCheckpointNameLen), strata.Start)
	mustSaveCheckpoint(t, ctx, cs, "crl", pos)
	wantCheckpoint(t, ctx, cs, "crl", pos)
}

func (s suite) testCheckpointCancel(t *testing.T) {
	ctx := testContext(t)
	_, cs := capability[strata.CheckpointStore](t, s)
	pos := strata.Position{Commit: 1, Event: 1}
	mustSaveCheckpoint(t, ctx, cs, "crl", pos)
	done := cancelled(ctx)
	wantCanceled(t, cs.SaveCheckpoint(done, "crl", strata.Position{Commit: 2, Event: 2}), "save checkpoint")
	_, err := cs.LoadCheckpoint(done, "crl")
	wantCanceled(t, err, "load checkpoint")
	wantCheckpoint(t, ctx, cs, "crl", pos)
}

func (s suite) testCheckpointAfterClose(t *testing.T) {
	ctx := testContext(t)
	st, cs := capability[strata.CheckpointStore](t, s)
	mustSaveCheckpoint(t, ctx, cs, "crl", strata.Position{Commit: 1, Event: 1})
	if err := st.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	wantClosed(t, cs.SaveCheckpoint(ctx, "crl", strata.Position{Commit: 2, Event: 2}), "save checkpoint")
	_, err := cs.LoadCheckpoint(ctx, "crl")
	wantClosed(t, err, "load checkpoint")
}
