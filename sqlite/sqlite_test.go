package sqlite_test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/strata-events/strata"
	"github.com/strata-events/strata/sqlite"
	"github.com/strata-events/strata/storetest"
)

// open opens a store on a new file in t's temporary directory and closes it with the test.
func open(t testing.TB, opts ...sqlite.Option) *sqlite.Store {
	t.Helper()
	return openPath(t, filepath.Join(t.TempDir(), "strata.db"), opts...)
}

// openPath opens a store on path and closes it with the test.
func openPath(t testing.TB, path string, opts ...sqlite.Option) *sqlite.Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := sqlite.Open(ctx, path, opts...)
	if err != nil {
		t.Fatalf("open %s: %v", path, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t testing.TB) strata.Store { return open(t) }, storetest.Features{
		SerialWriters: true,
		Capabilities:  true,
		Reopen: func(t testing.TB, s strata.Store) strata.Store {
			return openPath(t, s.(*sqlite.Store).Path())
		},
		RawContains: rawContains,
	})
}

func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func collect[T any](t testing.TB, seq iter.Seq2[T, error]) []T {
	t.Helper()
	out, err := storetest.Collect(seq)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	return out
}

func event(typ string, data string) strata.EventData {
	return strata.EventData{Type: typ, Data: json.RawMessage(data)}
}

func wantCode(t testing.TB, err error, code strata.Code, what string) {
	t.Helper()
	if got := strata.ErrorCode(err); got != code {
		t.Fatalf("%s: error %v (code %q), want code %q", what, err, got, code)
	}
}

// TestTwoProcessesOneFile runs two stores on one file, as the CLI and a server would: both append
// at once, nothing is lost, the global log stays dense and in order, and a follower on one store
// sees the other's events through polling.
func TestTwoProcessesOneFile(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	path := filepath.Join(t.TempDir(), "strata.db")
	a := openPath(t, path, sqlite.WithPollInterval(20*time.Millisecond))
	b := openPath(t, path, sqlite.WithPollInterval(20*time.Millisecond))

	// A follower on a, started before anything is written.
	type seen struct {
		e   strata.Event
		err error
	}
	followed := make(chan seen, 1<<12)
	fctx, stop := context.WithCancel(ctx)
	defer stop()
	go func() {
		for e, err := range a.Subscribe(fctx, strata.Start, strata.Filter{}) {
			followed <- seen{e, err}
			if err != nil {
				return
			}
		}
	}()

	const writers, appends = 3, 40
	var wg sync.WaitGroup
	for _, st := range []*sqlite.Store{a, b} {
		for w := range writers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range appends {
					stream := fmt.Sprintf("certificate-%d", (w+i)%4)
					if _, err := st.Append(ctx, stream, strata.Any, event("CertificateRenewed", fmt.Sprintf(`{"w":%d,"i":%d}`, w, i))); err != nil {
						t.Errorf("append: %v", err)
						return
					}
				}
			}()
		}
	}
	wg.Wait()
	const total = 2 * writers * appends

	for _, st := range []*sqlite.Store{a, b} {
		all := collect(t, st.ReadAll(ctx, strata.ReadAllOptions{}))
		if len(all) != total {
			t.Fatalf("the log holds %d events, want %d", len(all), total)
		}
		versions := map[string]int64{}
		for i, e := range all {
			if e.Position != (strata.Position{Commit: uint64(i + 1), Event: uint64(i + 1)}) {
				t.Fatalf("event %d has position %s: the log is not dense and in order", i, e.Position)
			}
			if versions[e.Stream]++; e.Version != versions[e.Stream] {
				t.Fatalf("%s: version %d follows %d", e.Stream, e.Version, versions[e.Stream]-1)
			}
		}
	}
	// b's last event reaches the follower on a.
	last := event("Sentinel", `{}`)
	last.ID = uuid.Must(uuid.NewV7())
	if _, err := b.Append(ctx, "end", strata.NoStream, last); err != nil {
		t.Fatal(err)
	}
	n := 0
	for {
		select {
		case s := <-followed:
			if s.err != nil {
				t.Fatalf("follower: %v", s.err)
			}
			if n++; s.e.Position.Commit != uint64(n) {
				t.Fatalf("follower saw %s as event %d", s.e.Position, n)
			}
			if s.e.ID == last.ID {
				if n != total+1 {
					t.Fatalf("follower saw %d events, want %d", n, total+1)
				}
				return
			}
		case <-ctx.Done():
			t.Fatalf("the follower on one store saw %d events and not the other store's last one", n)
		}
	}
}

// TestReopen checks that everything survives closing and opening the file again, byte for byte.
func TestReopen(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	path := filepath.Join(t.TempDir(), "strata.db")
	st := openPath(t, path)
	occurred := time.Date(2023, 3, 14, 9, 0, 0, 123456789, time.UTC)
	in := []strata.EventData{
		{ID: uuid.Must(uuid.NewV7()), Type: "CertificateIssued", Schema: 3, OccurredAt: occurred,
			Data: json.RawMessage("{ \"dn\" : \"CN=J\\u00fcrgen\",\n\t\"n\": 1.50e+3, \"s\":\"<&>\"}"),
			Meta: strata.Metadata{Tenant: "acme", Principal: "ca-op", Session: "s", Correlation: "c<1>", Causation: "k",
				Subsystem: "pki", Category: "cert", Extra: map[string]string{"ticket": "T-9", "note": "é\u2028\"x\""}}},
		{Type: "CertificateRevoked", Data: json.RawMessage(`{"reason":"keyCompromise"}`)},
		{Type: "Pinged"},
	}
	if _, err := st.Append(ctx, "certificate-7F3A", strata.NoStream, in...); err != nil {
		t.Fatal(err)
	}
	before := collect(t, st.ReadAll(ctx, strata.ReadAllOptions{}))
	info, err := st.StreamInfo(ctx, "certificate-7F3A")
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}

	st = openPath(t, path)
	after := collect(t, st.ReadAll(ctx, strata.ReadAllOptions{}))
	if len(after) != len(before) {
		t.Fatalf("%d events after reopening, want %d", len(after), len(before))
	}
	for i := range after {
		x, y := before[i], after[i]
		if x.ID != y.ID || x.Stream != y.Stream || x.Version != y.Version || x.Position != y.Position ||
			x.Type != y.Type || x.Schema != y.Schema || !bytes.Equal(x.Data, y.Data) || !x.Meta.Equal(y.Meta) ||
			!x.RecordedAt.Equal(y.RecordedAt) || !x.OccurredAt.Equal(y.OccurredAt) {
			t.Fatalf("event %d changed across reopening:\n%+v\n%+v", i, x, y)
		}
	}
	if !bytes.Equal(after[0].Data, in[0].Data) || !after[0].Meta.Equal(in[0].Meta) || after[0].Schema != 3 ||
		!after[0].OccurredAt.Equal(strata.Timestamp(occurred)) || string(after[2].Data) != "{}" {
		t.Fatalf("first event read back as %+v", after[0])
	}
	info2, err := st.StreamInfo(ctx, "certificate-7F3A")
	if err != nil || info2 != info || !info.Exists || info.Version != 3 {
		t.Fatalf("stream info %+v, %v; before reopening %+v", info2, err, info)
	}
	res, err := st.Append(ctx, "certificate-7F3A", strata.Exact(3), event("CertificateRenewed", `{}`))
	if err != nil || res.FirstVersion != 4 {
		t.Fatalf("append after reopening: %+v, %v", res, err)
	}
	if all := collect(t, st.ReadAll(ctx, strata.ReadAllOptions{})); all[3].Position.Commit != 4 {
		t.Fatalf("position after reopening %s, want 4", all[3].Position)
	}
}

// TestIdempotentRetries retries appends, through the same store and through a second one on the
// same file, and reuses IDs with other content.
func TestIdempotentRetries(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	a := open(t)
	b := openPath(t, a.Path())
	withID := func(typ, data string) strata.EventData {
		e := event(typ, data)
		e.ID = uuid.Must(uuid.NewV7())
		return e
	}
	issued, renewed := withID("CertificateIssued", `{"n":1}`), withID("CertificateRenewed", `{"n":2}`)
	first, err := a.Append(ctx, "certificate-1", strata.NoStream, issued, renewed)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		st   *sqlite.Store
		exp  strata.ExpectedVersion
	}{
		{"same store, no stream", a, strata.NoStream},
		{"same store, any", a, strata.Any},
		{"other store, exact", b, strata.Exact(0)},
		{"other store, stream exists", b, strata.StreamExists},
	} {
		res, err := c.st.Append(ctx, "certificate-1", c.exp, issued, renewed)
		if err != nil || !res.Replayed || res.FirstVersion != first.FirstVersion || res.LastVersion != first.LastVersion {
			t.Fatalf("%s: retry returned %+v, %v; want %+v replayed", c.name, res, err, first)
		}
	}
	// A multi-stream append and its retry.
	x, y := withID("CertificateIssued", `{"n":3}`), withID("CertificateIssued", `{"n":4}`)
	multi := []strata.StreamAppend{
		{Stream: "certificate-2", Expected: strata.NoStream, Events: []strata.EventData{x}},
		{Stream: "certificate-3", Expected: strata.NoStream, Events: []strata.EventData{y}},
	}
	if _, err := a.AppendMulti(ctx, multi...); err != nil {
		t.Fatal(err)
	}
	rs, err := b.AppendMulti(ctx, multi...)
	if err != nil || len(rs) != 2 || !rs[0].Replayed || !rs[1].Replayed || rs[1].Stream != "certificate-3" {
		t.Fatalf("multi retry: %+v, %v", rs, err)
	}

	changed := issued
	changed.Data = json.RawMessage(`{"n":99}`)
	_, err = a.Append(ctx, "certificate-1", strata.Any, changed, renewed)
	wantCode(t, err, strata.Conflict, "same IDs, other content")
	_, err = a.Append(ctx, "certificate-9", strata.Any, issued)
	wantCode(t, err, strata.Conflict, "same ID, other stream")
	_, err = a.Append(ctx, "certificate-1", strata.Any, issued, withID("CertificateRevoked", `{}`))
	wantCode(t, err, strata.Conflict, "a batch that is partly stored")
	_, err = a.AppendMulti(ctx, multi[0], strata.StreamAppend{Stream: "certificate-4", Expected: strata.NoStream, Events: []strata.EventData{withID("E", `{}`)}})
	wantCode(t, err, strata.Conflict, "a multi-append whose first stream is stored")
	_, err = a.Append(ctx, "certificate-1", strata.Exact(1), withID("CertificateRevoked", `{}`))
	var e *strata.Error
	if !errors.As(err, &e) || e.Code != strata.Conflict || e.Stream != "certificate-1" || e.Actual != 2 {
		t.Fatalf("a genuine version conflict returned %v", err)
	}
	if all := collect(t, b.ReadAll(ctx, strata.ReadAllOptions{})); len(all) != 4 {
		t.Fatalf("the log holds %d events, want 4: a retry or a conflict wrote something", len(all))
	}
}

// TestConcurrentExactAppenders runs optimistic writers on one stream from two stores: every
// version has exactly one winner.
func TestConcurrentExactAppenders(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	a := open(t)
	b := openPath(t, a.Path())
	const writers, wins = 6, 15
	var wg sync.WaitGroup
	var conflicts atomic.Int64
	for w := range writers {
		st := []*sqlite.Store{a, b}[w%2]
		wg.Add(1)
		go func() {
			defer wg.Done()
			for won := 0; won < wins; {
				info, err := st.StreamInfo(ctx, "certificate-hot")
				if err != nil {
					t.Errorf("stream info: %v", err)
					return
				}
				_, err = st.Append(ctx, "certificate-hot", strata.Exact(info.Version), event("Touched", fmt.Sprintf(`{"w":%d}`, w)))
				switch strata.ErrorCode(err) {
				case "":
					won++
				case strata.Conflict:
					conflicts.Add(1)
				default:
					t.Errorf("append: %v", err)
					return
				}
			}
		}()
	}
	wg.Wait()
	evs := collect(t, a.ReadStream(ctx, "certificate-hot", strata.ReadStreamOptions{}))
	if len(evs) != writers*wins {
		t.Fatalf("%d events, want %d", len(evs), writers*wins)
	}
	perWriter := map[string]int{}
	for i, e := range evs {
		if e.Version != int64(i+1) {
			t.Fatalf("event %d has version %d", i, e.Version)
		}
		perWriter[string(e.Data)]++
	}
	for w, n := range perWriter {
		if n != wins {
			t.Fatalf("writer %s won %d times, want %d", w, n, wins)
		}
	}
	t.Logf("%d conflicts", conflicts.Load())
}

// TestConcurrentOpen opens a new file from several stores at once, as processes starting together
// would: one creates the schema, none fails.
func TestConcurrentOpen(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	path := filepath.Join(t.TempDir(), "strata.db")
	const n = 8
	stores := make([]*sqlite.Store, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			stores[i], errs[i] = sqlite.Open(ctx, path)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("open %d: %v", i, err)
		}
		t.Cleanup(func() { stores[i].Close() })
	}
	for i, st := range stores {
		if _, err := st.Append(ctx, "certificate-1", strata.Any, event("Opened", fmt.Sprintf(`{"i":%d}`, i))); err != nil {
			t.Fatalf("append through store %d: %v", i, err)
		}
	}
	if evs := collect(t, stores[0].ReadStream(ctx, "certificate-1", strata.ReadStreamOptions{})); len(evs) != n {
		t.Fatalf("%d events, want %d", len(evs), n)
	}
	db := rawConn(t, path)
	var version int
	if err := db.QueryRow("PRAGMA user_version").Scan(&version); err != nil || version != len(migrationFiles(t)) {
		t.Fatalf("schema version %d, %v", version, err)
	}
}

func rawConn(t testing.TB, path string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	db.SetMaxOpenConns(1)
	t.Cleanup(func() { db.Close() })
	return db
}

// TestLockedIsUnavailable holds the write lock from another connection: an append gives up after
// the busy timeout with a retryable Unavailable error, and succeeds once the lock is free.
func TestLockedIsUnavailable(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	st := open(t, sqlite.WithBusyTimeout(50*time.Millisecond))
	db := rawConn(t, st.Path())
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		t.Fatal(err)
	}
	_, err = st.Append(ctx, "certificate-1", strata.Any, event("E", `{}`))
	wantCode(t, err, strata.Unavailable, "append while another process holds the write lock")
	var e *strata.Error
	if !errors.As(err, &e) || !e.Retryable() {
		t.Fatalf("%v: want a retryable error", err)
	}
	// Reads go on while the writer holds the lock.
	if _, err := storetest.Collect(st.ReadAll(ctx, strata.ReadAllOptions{})); err != nil {
		t.Fatalf("read while locked: %v", err)
	}
	if _, err := conn.ExecContext(ctx, "ROLLBACK"); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Append(ctx, "certificate-1", strata.Any, event("E", `{}`)); err != nil {
		t.Fatalf("append after the lock was released: %v", err)
	}
}

// TestContextCancelledWhileWaiting cancels an append that waits for the write lock.
func TestContextCancelledWhileWaiting(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	st := open(t)
	hold, release := make(chan struct{}), make(chan struct{})
	done := make(chan error, 1)
	go func() {
		_, err := st.Append(strata.WithBeforeCommit(ctx, func(context.Context) error {
			close(hold)
			<-release
			return nil
		}), "certificate-1", strata.Any, event("E", `{}`))
		done <- err
	}()
	<-hold
	cctx, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	_, err := st.Append(cctx, "certificate-2", strata.Any, event("E", `{}`))
	wantCode(t, err, strata.Unavailable, "append cancelled while waiting for the writer")
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("%v: want it to wrap context.DeadlineExceeded", err)
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	// A context cancelled in the middle of the transaction rolls it back, and the store goes on.
	cctx, cancel = context.WithCancel(ctx)
	_, err = st.Append(strata.WithBeforeCommit(cctx, func(context.Context) error { cancel(); return nil }), "certificate-3", strata.Any, event("E", `{}`))
	wantCode(t, err, strata.Unavailable, "append cancelled before commit")
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("%v: want it to wrap context.Canceled", err)
	}
	if info, _ := st.StreamInfo(ctx, "certificate-3"); info.Exists {
		t.Fatalf("the cancelled append was committed")
	}
	if _, err := st.Append(ctx, "certificate-2", strata.NoStream, event("E", `{}`)); err != nil {
		t.Fatalf("append after a cancelled one: %v", err)
	}
	// The hook's error rolls the append back.
	boom := errors.New("boom")
	_, err = st.Append(strata.WithBeforeCommit(ctx, func(context.Context) error { return boom }), "certificate-3", strata.Any, event("E", `{}`))
	if !errors.Is(err, boom) {
		t.Fatalf("append with a failing hook: %v", err)
	}
	if info, _ := st.StreamInfo(ctx, "certificate-3"); info.Exists {
		t.Fatalf("the append whose hook failed was committed")
	}
}

func TestOpenRejects(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	dir := t.TempDir()
	for _, path := range []string{"", ":memory:", "file:x.db?mode=memory"} {
		_, err := sqlite.Open(ctx, path)
		wantCode(t, err, strata.Invalid, fmt.Sprintf("open %q", path))
	}
	// A database of some other application.
	other := filepath.Join(dir, "other.db")
	db := rawConn(t, other)
	if _, err := db.Exec("CREATE TABLE accounts (id INTEGER PRIMARY KEY)"); err != nil {
		t.Fatal(err)
	}
	_, err := sqlite.Open(ctx, other)
	wantCode(t, err, strata.Invalid, "open a file with foreign tables")
	// A schema newer than this code.
	newer := open(t).Path()
	db = rawConn(t, newer)
	if _, err := db.Exec("PRAGMA user_version = 99"); err != nil {
		t.Fatal(err)
	}
	_, err = sqlite.Open(ctx, newer)
	wantCode(t, err, strata.Internal, "open a newer schema")
	// A directory that does not exist.
	_, err = sqlite.Open(ctx, filepath.Join(dir, "missing", "strata.db"))
	wantCode(t, err, strata.Unavailable, "open in a missing directory")
}

// TestPrefixesAreByteWise checks that stream prefixes compare bytes: no case folding (as LIKE
// would do) and correct bounds for multi-byte UTF-8.
func TestPrefixesAreByteWise(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	st := open(t)
	names := []string{"Cert-2", "cert-1", "cert_x", "certé", "certf", "cerT", "cert%", "zertifikat-ä", "zertifikat-äb", "zertifikat-å"}
	for _, n := range names {
		if _, err := st.Append(ctx, n, strata.NoStream, event("E", `{}`)); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []struct {
		prefix, after string
		want          []string
	}{
		{"cert", "", []string{"cert%", "cert-1", "cert_x", "certf", "certé"}},
		{"cert", "cert-1", []string{"cert_x", "certf", "certé"}},
		{"cert", "a", []string{"cert%", "cert-1", "cert_x", "certf", "certé"}},
		{"cert", "d", nil},
		{"cert%", "", []string{"cert%"}},
		{"zertifikat-ä", "", []string{"zertifikat-ä", "zertifikat-äb"}},
		{"", "certf", []string{"certé", "zertifikat-ä", "zertifikat-äb", "zertifikat-å"}},
	} {
		var got []string
		for _, info := range collect(t, st.Streams(ctx, strata.ListStreamsOptions{Prefix: c.prefix, After: c.after})) {
			got = append(got, info.Stream)
		}
		if !slices.Equal(got, c.want) {
			t.Errorf("streams with prefix %q after %q: %q, want %q", c.prefix, c.after, got, c.want)
		}
		if c.after != "" {
			continue
		}
		got = nil
		for _, e := range collect(t, st.ReadAll(ctx, strata.ReadAllOptions{Filter: strata.Filter{StreamPrefix: c.prefix}})) {
			got = append(got, e.Stream)
		}
		slices.Sort(got)
		if !slices.Equal(got, c.want) {
			t.Errorf("read all with stream prefix %q: %q, want %q", c.prefix, got, c.want)
		}
	}
	// Listing in pages of 2 returns the same as one listing.
	var paged []string
	after := ""
	for {
		page := collect(t, st.Streams(ctx, strata.ListStreamsOptions{After: after, Limit: 2}))
		for _, p := range page {
			paged = append(paged, p.Stream)
		}
		if len(page) < 2 {
			break
		}
		after = page[len(page)-1].Stream
	}
	sorted := slices.Clone(names)
	slices.Sort(sorted)
	if !slices.Equal(paged, sorted) {
		t.Fatalf("paged listing %q, want %q", paged, sorted)
	}
}

// TestCloseEndsReads closes the store while a read is between pages.
func TestCloseEndsReads(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	st := open(t)
	batch := make([]strata.EventData, 1500)
	for i := range batch {
		batch[i] = event("E", `{}`)
	}
	if _, err := st.Append(ctx, "certificate-1", strata.NoStream, batch...); err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, err := range st.ReadAll(ctx, strata.ReadAllOptions{}) {
		if err != nil {
			if !errors.Is(err, strata.ErrClosed) || n != 1 {
				t.Fatalf("after %d events: %v, want the closed error after 1", n, err)
			}
			return
		}
		if n++; n == 1 {
			st.Close()
		}
	}
	t.Fatalf("the read went on for %d events after Close", n)
}

// helperEnv names the file that TestHelperAppender appends to when the test binary runs as a
// child process of TestTwoOSProcesses.
const helperEnv = "STRATA_SQLITE_HELPER_DB"

// TestHelperAppender is the child process of TestTwoOSProcesses; it does nothing otherwise.
func TestHelperAppender(t *testing.T) {
	path := os.Getenv(helperEnv)
	if path == "" {
		t.Skip("runs only as the child of TestTwoOSProcesses")
	}
	ctx := testCtx(t)
	st := openPath(t, path)
	for i := range 150 {
		if _, err := st.Append(ctx, fmt.Sprintf("child-%d", i%3), strata.Any, event("FromChild", fmt.Sprintf(`{"i":%d}`, i))); err != nil {
			t.Fatalf("child append %d: %v", i, err)
		}
	}
}

// TestTwoOSProcesses appends from this process and from a child process at once, as the CLI does
// while a server runs: nothing is lost, the log stays dense, and a subscriber here sees the
// child's events.
func TestTwoOSProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a process")
	}
	t.Parallel()
	ctx := testCtx(t)
	st := open(t, sqlite.WithPollInterval(20*time.Millisecond))
	sub := make(chan strata.Event, 1024)
	sctx, stop := context.WithCancel(ctx)
	defer stop()
	go func() {
		for e, err := range st.Subscribe(sctx, strata.Start, strata.Filter{Types: []string{"FromChild"}}) {
			if err != nil {
				close(sub)
				return
			}
			sub <- e
		}
	}()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestHelperAppender$", "-test.count=1")
	cmd.Env = append(os.Environ(), helperEnv+"="+st.Path())
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	for i := range 150 {
		if _, err := st.Append(ctx, fmt.Sprintf("parent-%d", i%3), strata.Any, event("FromParent", fmt.Sprintf(`{"i":%d}`, i))); err != nil {
			t.Fatalf("parent append %d: %v", i, err)
		}
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("child: %v\n%s", err, out.String())
	}
	all := collect(t, st.ReadAll(ctx, strata.ReadAllOptions{}))
	if len(all) != 300 {
		t.Fatalf("the log holds %d events, want 300\nchild output:\n%s", len(all), out.String())
	}
	for i, e := range all {
		if e.Position.Commit != uint64(i+1) {
			t.Fatalf("event %d at position %s: the log is not dense", i, e.Position)
		}
	}
	for i := range 150 {
		select {
		case e, ok := <-sub:
			if !ok {
				t.Fatalf("the subscription ended after %d of the child's events", i)
			}
			if e.Type != "FromChild" || string(e.Data) != fmt.Sprintf(`{"i":%d}`, i) {
				t.Fatalf("child event %d seen as %s %s", i, e.Type, e.Data)
			}
		case <-ctx.Done():
			t.Fatalf("the subscriber saw %d of the child's 150 events", i)
		}
	}
}

// TestUpgradeFromVersion1 opens a file made before migration 0002 (the capability tables): Open
// adds them, and the events written before stay.
func TestUpgradeFromVersion1(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	st := open(t)
	path := st.Path()
	if _, err := st.Append(ctx, "certificate-1", strata.NoStream, event("CertificateIssued", `{}`)); err != nil {
		t.Fatal(err)
	}
	st.Close()
	db := rawConn(t, path)
	revertTombstonesInEvents(t, db) // the columns it adds to events stay when its table goes
	drop := ""
	for _, table := range tablesSince(t, 2) {
		drop += "DROP TABLE " + table + "; "
	}
	for _, index := range eventIndexesSince(t, 2) {
		drop += "DROP INDEX " + index + "; "
	}
	if _, err := db.Exec(drop + "PRAGMA user_version = 1"); err != nil {
		t.Fatal(err)
	}
	db.Close()
	st = openPath(t, path)
	var version int
	if err := rawConn(t, path).QueryRow("PRAGMA user_version").Scan(&version); err != nil || version != len(migrationFiles(t)) {
		t.Fatalf("schema version after the upgrade: %d, %v", version, err)
	}
	if err := st.SaveSnapshot(ctx, strata.Snapshot{Stream: "certificate-1", Version: 1, Data: []byte("s")}); err != nil {
		t.Fatalf("save snapshot after the upgrade: %v", err)
	}
	if err := st.SaveCheckpoint(ctx, "crl", strata.Position{Commit: 1, Event: 1}); err != nil {
		t.Fatalf("save checkpoint after the upgrade: %v", err)
	}
	if evs := collect(t, st.ReadStream(ctx, "certificate-1", strata.ReadStreamOptions{})); len(evs) != 1 {
		t.Fatalf("%d events after the upgrade, want 1", len(evs))
	}
}

// TestOccurredAtOutOfRange appends events whose domain time lies beyond what the file can hold
// (Unix microseconds in 64 bits): the append is Invalid and writes nothing, instead of storing
// another time.
func TestOccurredAtOutOfRange(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	st := open(t)
	for _, at := range []time.Time{
		time.Date(300000, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(-300000, 1, 1, 0, 0, 0, 0, time.UTC),
	} {
		e := event("CertificateRevoked", `{}`)
		e.OccurredAt = at
		_, err := st.Append(ctx, "certificate-1", strata.Any, e)
		wantCode(t, err, strata.Invalid, fmt.Sprintf("append occurred at %v", at))
	}
	if evs := collect(t, st.ReadAll(ctx, strata.ReadAllOptions{})); len(evs) != 0 {
		t.Fatalf("the log holds %v", evs[0].OccurredAt)
	}
	// The ends of the range still round-trip.
	e := event("CertificateRevoked", `{}`)
	e.OccurredAt = time.Date(9999, 12, 31, 23, 59, 59, 999999000, time.UTC)
	if _, err := st.Append(ctx, "certificate-1", strata.NoStream, e); err != nil {
		t.Fatal(err)
	}
	if evs := collect(t, st.ReadAll(ctx, strata.ReadAllOptions{})); !evs[0].OccurredAt.Equal(e.OccurredAt) {
		t.Fatalf("occurred at %v read back as %v", e.OccurredAt, evs[0].OccurredAt)
	}
}
