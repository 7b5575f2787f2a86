package mysql

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	mysqldrv "github.com/go-sql-driver/mysql"
	"github.com/google/uuid"

	"github.com/strata-events/strata"
	"github.com/strata-events/strata/internal/testenv"
	"github.com/strata-events/strata/storetest"
)

const defaultTestDSN = "mysql://root@127.0.0.1:3306/test"

// serverConfig returns the driver config of the test server, without a database, skipping the
// test when no server answers (failing under CI=true).
func serverConfig(t testing.TB) *mysqldrv.Config {
	t.Helper()
	dsn := testenv.Service(t, "STRATA_TEST_MYSQL", defaultTestDSN, func(ctx context.Context, dsn string) error {
		cfg, err := parseDSN(dsn)
		if err != nil {
			return err
		}
		cfg.DBName = ""
		db, err := sql.Open("mysql", cfg.FormatDSN())
		if err != nil {
			return err
		}
		defer db.Close()
		return db.PingContext(ctx)
	})
	cfg, err := parseDSN(dsn)
	if err != nil {
		t.Fatal(err)
	}
	cfg.DBName = ""
	return cfg
}

// newDatabase creates a database with a random name and returns a driver DSN for it. The
// database is dropped when the test ends.
func newDatabase(t testing.TB) string {
	t.Helper()
	cfg := serverConfig(t)
	admin, err := sql.Open("mysql", cfg.FormatDSN())
	if err != nil {
		t.Fatal(err)
	}
	var b [6]byte
	rand.Read(b[:])
	name := "strata_test_" + hex.EncodeToString(b[:])
	if _, err := admin.Exec("CREATE DATABASE " + name); err != nil {
		admin.Close()
		t.Fatalf("create database: %v", err)
	}
	t.Cleanup(func() {
		if _, err := admin.Exec("DROP DATABASE " + name); err != nil {
			t.Errorf("drop database %s: %v", name, err)
		}
		admin.Close()
	})
	cfg.DBName = name
	return cfg.FormatDSN()
}

func openStore(t testing.TB, dsn string, opts ...Option) *Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := Open(ctx, dsn, opts...)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func newStore(t testing.TB, opts ...Option) *Store { return openStore(t, newDatabase(t), opts...) }

func TestConformance(t *testing.T) {
	serverConfig(t)
	storetest.Run(t, func(t testing.TB) strata.Store { return newStore(t) }, storetest.Features{
		Reopen:       func(t testing.TB, s strata.Store) strata.Store { return openStore(t, s.(*Store).dsn) },
		Capabilities: true,
		RawContains:  rawContains,
	})
}

func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func data(v any) []byte { return fmt.Appendf(nil, "%q", fmt.Sprint(v)) }

func collect[T any](t testing.TB, seq func(func(T, error) bool)) []T {
	t.Helper()
	var out []T
	for v, err := range seq {
		if err != nil {
			t.Fatalf("read: %v", err)
		}
		out = append(out, v)
	}
	return out
}

// checkDense fails unless evs hold positions 1..len(evs) in order.
func checkDense(t testing.TB, evs []strata.Event) {
	t.Helper()
	for i, e := range evs {
		if want := uint64(i + 1); e.Position != (strata.Position{Commit: want, Event: want}) {
			t.Fatalf("event %d has position %s, want %d: the log is not dense", i, e.Position, want)
		}
	}
}

// TestOutOfOrderCommit holds writer A open after its insert while writer B commits. A reader
// that reads B and moves its cursor past it must still get A after A commits: A is sequenced
// after B, never behind the cursor.
func TestOutOfOrderCommit(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	s := newStore(t)
	held, release := make(chan struct{}), make(chan struct{})
	hold := strata.WithBeforeCommit(ctx, func(context.Context) error {
		close(held)
		<-release
		return nil
	})
	aDone := make(chan error, 1)
	go func() {
		_, err := s.Append(hold, "certificate-7F3A", strata.Any, strata.EventData{Type: "CertificateRevoked"})
		aDone <- err
	}()
	<-held
	if _, err := s.Append(ctx, "certificate-0B1C", strata.Any, strata.EventData{Type: "CertificateIssued"}); err != nil {
		t.Fatal(err)
	}
	// The sequencer must not wait for A: a pass completes while A is open.
	if err := s.sequence(ctx); err != nil {
		t.Fatalf("sequencing while a writer is open: %v", err)
	}
	first := collect(t, s.ReadAll(ctx, strata.ReadAllOptions{}))
	if len(first) != 1 || first[0].Type != "CertificateIssued" {
		t.Fatalf("while A is open the log holds %+v, want B alone", first)
	}
	cursor := first[0].Position
	close(release)
	if err := <-aDone; err != nil {
		t.Fatal(err)
	}
	rest := collect(t, s.ReadAll(ctx, strata.ReadAllOptions{After: cursor}))
	if len(rest) != 1 || rest[0].Type != "CertificateRevoked" {
		t.Fatalf("after A committed, reading after %s gave %+v: the revocation was skipped", cursor, rest)
	}
	checkDense(t, append(first, rest...))
}

// TestTwoProcesses runs two Stores on one database, as two processes would: both append and
// both sequence concurrently, while a cursor reader on each follows the log. Positions must be
// dense and unique, and no reader may miss an event.
func TestTwoProcesses(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	dsn := newDatabase(t)
	stores := []*Store{openStore(t, dsn, withSequencerBatch(7), withMaxRuns(2)), openStore(t, dsn, withSequencerBatch(7), withMaxRuns(2))}

	const writersPerStore, appends = 4, 30
	var mu sync.Mutex
	written := map[uuid.UUID]bool{}
	stop := make(chan struct{})
	type result struct {
		evs []strata.Event
		err error
	}
	readers := make([]chan result, len(stores))
	for i, s := range stores {
		readers[i] = make(chan result, 1)
		go func() {
			var seen []strata.Event
			cursor := strata.Start
			for {
				select {
				case <-stop:
					readers[i] <- result{evs: seen}
					return
				default:
				}
				for e, err := range s.ReadAll(ctx, strata.ReadAllOptions{After: cursor, Limit: 13}) {
					if err != nil {
						readers[i] <- result{err: err}
						return
					}
					seen = append(seen, e)
					cursor = e.Position
				}
			}
		}()
	}
	var wg sync.WaitGroup
	for si, s := range stores {
		for w := range writersPerStore {
			wg.Go(func() {
				for i := range appends {
					batch := make([]strata.EventData, 1+i%3)
					for j := range batch {
						batch[j] = strata.EventData{ID: uuid.Must(uuid.NewV7()), Type: "Tick", Data: data(fmt.Sprint(si, w, i, j))}
					}
					if _, err := s.Append(ctx, fmt.Sprintf("stream-%d", (w+i)%5), strata.Any, batch...); err != nil {
						t.Errorf("store %d writer %d: %v", si, w, err)
						return
					}
					mu.Lock()
					for _, e := range batch {
						written[e.ID] = true
					}
					mu.Unlock()
				}
			})
		}
	}
	wg.Wait()
	close(stop)

	full := collect(t, stores[1].ReadAll(ctx, strata.ReadAllOptions{}))
	checkDense(t, full)
	if len(full) != len(written) {
		t.Fatalf("the log holds %d events, %d were written", len(full), len(written))
	}
	for _, e := range full {
		if !written[e.ID] {
			t.Fatalf("unknown event %s in the log", e.ID)
		}
	}
	versions := map[string]int64{}
	for _, e := range full {
		if e.Version != versions[e.Stream]+1 {
			t.Fatalf("stream %s: version %d follows %d in the global log", e.Stream, e.Version, versions[e.Stream])
		}
		versions[e.Stream] = e.Version
	}
	for i, r := range readers {
		res := <-r
		if res.err != nil {
			t.Fatalf("reader %d: %v", i, res.err)
		}
		seen := res.evs
		if len(seen) > 0 {
			seen = append(seen, collect(t, stores[i].ReadAll(ctx, strata.ReadAllOptions{After: seen[len(seen)-1].Position}))...)
		} else {
			seen = full
		}
		if len(seen) != len(full) {
			t.Fatalf("reader %d saw %d events, the log holds %d", i, len(seen), len(full))
		}
		for j := range seen {
			if seen[j].ID != full[j].ID || seen[j].Position != full[j].Position {
				t.Fatalf("reader %d: event %d is %s@%s, the log has %s@%s", i, j, seen[j].ID, seen[j].Position, full[j].ID, full[j].Position)
			}
		}
	}
}

// TestReadSequencesOtherProcessesWrites: a process appends and stops before sequencing; another
// process's reads see the events at once, with positions.
func TestReadSequencesOtherProcessesWrites(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	dsn := newDatabase(t)
	writer := openStore(t, dsn)
	writer.stop() // no background sequencer: as if the process exited right after appending
	<-writer.done
	for i := range 3 {
		if _, err := writer.Append(ctx, "certificate-1", strata.Any, strata.EventData{Type: "E", Data: data(i)}); err != nil {
			t.Fatal(err)
		}
	}
	if need, err := writer.unsequenced(ctx); err != nil || !need {
		t.Fatalf("unsequenced = %v, %v; the test needs unsequenced events", need, err)
	}
	reader := openStore(t, dsn, withoutBackgroundSequencer())
	got := collect(t, reader.ReadStream(ctx, "certificate-1", strata.ReadStreamOptions{}))
	checkDense(t, got)
	all := collect(t, reader.ReadAll(ctx, strata.ReadAllOptions{}))
	if len(all) != 3 {
		t.Fatalf("another process reads %d events, want 3", len(all))
	}
	checkDense(t, all)
}

// TestReadStampsEveryRun has a read sequence committed events whose seqs are far from
// consecutive (each append that rolled back left a hole), so that stamping them takes more
// passes than one, each cut at the limit of runs: the read must run them all and return
// every event committed before it.
func TestReadStampsEveryRun(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	dsn := newDatabase(t)
	st := openStore(t, dsn, withoutBackgroundSequencer(), withMaxRuns(1))
	fail := strata.WithBeforeCommit(ctx, func(context.Context) error { return errors.New("rolled back") })
	const n = 4
	for i := range n {
		if _, err := st.Append(ctx, "certificate-1", strata.Any, strata.EventData{Type: "E", Data: data(i)}); err != nil {
			t.Fatal(err)
		}
		if _, err := st.Append(fail, "certificate-2", strata.Any, strata.EventData{Type: "E"}); err == nil {
			t.Fatal("an append whose commit hook failed succeeded")
		}
	}
	all := collect(t, st.ReadAll(ctx, strata.ReadAllOptions{}))
	if len(all) != n {
		t.Fatalf("a read after %d appends returned %d events: it stopped sequencing after the first run", n, len(all))
	}
	checkDense(t, all)
}

// TestConcurrentExactAcrossProcesses: writers in two Stores race for each version of one
// stream; exactly one wins every round.
func TestConcurrentExactAcrossProcesses(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	dsn := newDatabase(t)
	stores := []*Store{openStore(t, dsn), openStore(t, dsn)}
	for round := range 10 {
		var mu sync.Mutex
		wins := 0
		var wg sync.WaitGroup
		for w := range 8 {
			wg.Go(func() {
				_, err := stores[w%2].Append(ctx, "certificate-RACE", strata.Exact(int64(round)), strata.EventData{Type: "Attempt", Data: data(w)})
				switch {
				case err == nil:
					mu.Lock()
					wins++
					mu.Unlock()
				case strata.ErrorCode(err) != strata.Conflict:
					t.Errorf("round %d writer %d: %v", round, w, err)
				default:
					var se *strata.Error
					if errors.As(err, &se); se.Actual != int64(round)+1 {
						t.Errorf("round %d: conflict reports version %d, want %d", round, se.Actual, round+1)
					}
				}
			})
		}
		wg.Wait()
		if wins != 1 {
			t.Fatalf("round %d: %d winners", round, wins)
		}
	}
}

func TestIdempotentAppendMulti(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	dsn := newDatabase(t)
	s1, s2 := openStore(t, dsn), openStore(t, dsn)
	batch := []strata.StreamAppend{
		{Stream: "certificate-1", Expected: strata.NoStream, Events: []strata.EventData{{ID: uuid.Must(uuid.NewV7()), Type: "CertificateRevoked"}}},
		{Stream: "approval-1", Expected: strata.NoStream, Events: []strata.EventData{{ID: uuid.Must(uuid.NewV7()), Type: "ApprovalCompleted"}, {ID: uuid.Must(uuid.NewV7()), Type: "ApprovalClosed"}}},
	}
	first, err := s1.AppendMulti(ctx, batch...)
	if err != nil {
		t.Fatal(err)
	}
	again, err := s2.AppendMulti(ctx, batch...) // the retry lands on the other process
	if err != nil {
		t.Fatalf("retry: %v", err)
	}
	for i := range first {
		if !again[i].Replayed || again[i].FirstVersion != first[i].FirstVersion || again[i].LastVersion != first[i].LastVersion {
			t.Fatalf("retry result %+v, want %+v replayed", again[i], first[i])
		}
	}
	// Half the batch again, next to a fresh stream: a conflict, nothing written.
	_, err = s2.AppendMulti(ctx, batch[0], strata.StreamAppend{Stream: "fresh", Expected: strata.Any, Events: []strata.EventData{{Type: "E"}}})
	if strata.ErrorCode(err) != strata.Conflict {
		t.Fatalf("partial retry: %v, want Conflict", err)
	}
	if n := len(collect(t, s2.ReadAll(ctx, strata.ReadAllOptions{}))); n != 3 {
		t.Fatalf("log holds %d events, want 3", n)
	}
}

// TestLargeBatches writes payloads near the 8 MiB limit, including one whose escaped SQL text
// is larger than max_allowed_packet, and a batch of the most events one append may carry; all
// must round-trip byte for byte.
func TestLargeBatches(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	s := newStore(t)

	plain := []byte(`"` + strings.Repeat("a", strata.MaxDataLen-2) + `"`)
	// Backslashes and quotes double when escaped into SQL text.
	escaped := []byte(`"` + strings.Repeat(`\\\"`, (strata.MaxDataLen-2)/4) + `"`)
	unicode := []byte(`"` + strings.Repeat("é🔐'", 100_000) + `"`)
	evs := []strata.EventData{{Type: "Plain", Data: plain}, {Type: "Escaped", Data: escaped}, {Type: "Small"}, {Type: "Unicode", Data: unicode}, {Type: "Plain", Data: plain}}
	if _, err := s.Append(ctx, "blobs", strata.NoStream, evs...); err != nil {
		t.Fatalf("append of large payloads: %v", err)
	}
	check := func(what string, got []strata.Event) {
		t.Helper()
		if len(got) != len(evs) {
			t.Fatalf("%s: %d events, want %d", what, len(got), len(evs))
		}
		for i, e := range got {
			want := evs[i].Data
			if want == nil {
				want = []byte(`{}`)
			}
			if !bytes.Equal(e.Data, want) {
				t.Fatalf("%s: event %d (%s): %d bytes differ from the %d appended", what, i, e.Type, len(e.Data), len(want))
			}
		}
	}
	check("read stream", collect(t, s.ReadStream(ctx, "blobs", strata.ReadStreamOptions{})))
	check("read all", collect(t, s.ReadAll(ctx, strata.ReadAllOptions{})))

	many := make([]strata.EventData, strata.MaxEventsPerAppend)
	for i := range many {
		many[i] = strata.EventData{Type: "Tick", Data: data(i), Meta: strata.Metadata{Tenant: "acme"}}
	}
	res, err := s.Append(ctx, "ticks", strata.NoStream, many...)
	if err != nil || res.LastVersion != strata.MaxEventsPerAppend {
		t.Fatalf("append of %d events: %+v %v", len(many), res, err)
	}
	got := collect(t, s.ReadAll(ctx, strata.ReadAllOptions{Filter: strata.Filter{Tenant: "acme"}}))
	if len(got) != len(many) {
		t.Fatalf("read %d of %d events", len(got), len(many))
	}
	for i, e := range got {
		if e.Version != int64(i+1) || !bytes.Equal(e.Data, many[i].Data) {
			t.Fatalf("event %d: version %d data %s", i, e.Version, e.Data)
		}
	}
	checkDense(t, append(collect(t, s.ReadAll(ctx, strata.ReadAllOptions{Limit: len(evs)})), got...))
}

// TestByteWiseKeys: names differing only in trailing spaces or case are different streams (the
// utf8mb4_bin collation would pad spaces), and long tenants filter exactly.
func TestByteWiseKeys(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	s := newStore(t)
	for _, name := range []string{"a", "a ", "A", "a  "} {
		if _, err := s.Append(ctx, name, strata.NoStream, strata.EventData{Type: "E"}); err != nil {
			t.Fatalf("append to %q: %v", name, err)
		}
	}
	infos := collect(t, s.Streams(ctx, strata.ListStreamsOptions{Prefix: "a"}))
	if len(infos) != 3 || infos[0].Stream != "a" || infos[1].Stream != "a " || infos[2].Stream != "a  " {
		t.Fatalf("streams with prefix a: %+v", infos)
	}
	long1 := strings.Repeat("t", 300)
	long2 := strings.Repeat("t", 299) + "u"
	for _, tenant := range []string{long1, long2, long1[:200], "x "} {
		if _, err := s.Append(ctx, "tenant-"+fmt.Sprint(len(tenant)), strata.Any, strata.EventData{Type: "E", Meta: strata.Metadata{Tenant: tenant}}); err != nil {
			t.Fatal(err)
		}
	}
	for _, tenant := range []string{long1, long2, long1[:200], "x ", "x"} {
		got := collect(t, s.ReadAll(ctx, strata.ReadAllOptions{Filter: strata.Filter{Tenant: tenant}}))
		want := 1
		if tenant == "x" {
			want = 0
		}
		if len(got) != want || (want == 1 && got[0].Meta.Tenant != tenant) {
			t.Fatalf("tenant of %d bytes: %d events, want %d", len(tenant), len(got), want)
		}
	}
}

// TestConcurrentOpen migrates one database from several Stores at once.
func TestConcurrentOpen(t *testing.T) {
	t.Parallel()
	dsn := newDatabase(t)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			s, err := Open(context.Background(), dsn)
			if err != nil {
				t.Errorf("open: %v", err)
				return
			}
			s.Close()
		})
	}
	wg.Wait()
	s := openStore(t, dsn)
	ms, err := migrations()
	if err != nil {
		t.Fatal(err)
	}
	var n int
	if err := s.db.QueryRow("SELECT COUNT(*) FROM strata_migrations").Scan(&n); err != nil || n != len(ms) {
		t.Fatalf("strata_migrations holds %d rows (%v), want %d", n, err, len(ms))
	}
}

func TestOpenErrors(t *testing.T) {
	t.Parallel()
	cfg := serverConfig(t)
	ctx := testCtx(t)
	_, err := Open(ctx, "mysql://"+cfg.User+"@"+cfg.Addr+"/")
	if strata.ErrorCode(err) != strata.Invalid {
		t.Fatalf("open without a database: %v, want Invalid", err)
	}
	_, err = Open(ctx, "mysql://"+cfg.User+"@"+cfg.Addr+"/strata_no_such_db")
	if strata.ErrorCode(err) != strata.NotFound {
		t.Fatalf("open of a missing database: %v, want NotFound", err)
	}
	_, err = Open(ctx, "mysql://root@127.0.0.1:1/x?timeout=1s")
	if strata.ErrorCode(err) != strata.Unavailable {
		t.Fatalf("open of a closed port: %v, want Unavailable", err)
	}
}

func TestOpenURLAndNativeDSN(t *testing.T) {
	t.Parallel()
	native := newDatabase(t)
	cfg, err := mysqldrv.ParseDSN(native)
	if err != nil {
		t.Fatal(err)
	}
	url := "mysql://" + cfg.User + "@" + cfg.Addr + "/" + cfg.DBName + "?timeout=5s"
	ctx := testCtx(t)
	a := openStore(t, url)
	if _, err := a.Append(ctx, "s", strata.NoStream, strata.EventData{Type: "E"}); err != nil {
		t.Fatal(err)
	}
	b := openStore(t, native)
	if info, err := b.StreamInfo(ctx, "s"); err != nil || !info.Exists {
		t.Fatalf("the native DSN sees %+v %v", info, err)
	}
}

func TestParseDSN(t *testing.T) {
	for _, c := range []struct {
		dsn                      string
		user, pass, addr, dbname string
		timeout                  time.Duration
	}{
		{"mysql://root@127.0.0.1:3306/test", "root", "", "127.0.0.1:3306", "test", 0},
		{"mysql://u:p%40ss%2Fw:rd@db.example/strata?timeout=3s", "u", "p@ss/w:rd", "db.example:3306", "strata", 3 * time.Second},
		{"u:pw@tcp(localhost:3307)/events?timeout=2s", "u", "pw", "localhost:3307", "events", 2 * time.Second},
	} {
		cfg, err := parseDSN(c.dsn)
		if err != nil {
			t.Fatalf("%s: %v", c.dsn, err)
		}
		if cfg.User != c.user || cfg.Passwd != c.pass || cfg.Addr != c.addr || cfg.DBName != c.dbname || cfg.Timeout != c.timeout {
			t.Fatalf("%s: parsed %s %q %s %s %s", c.dsn, cfg.User, cfg.Passwd, cfg.Addr, cfg.DBName, cfg.Timeout)
		}
	}
}

func TestTenantKey(t *testing.T) {
	short := strings.Repeat("a", 200)
	if tenantKey(short) != short {
		t.Fatal("short tenants are stored as they are")
	}
	long := strings.Repeat("a", 201)
	if k := tenantKey(long); len(k) != 255 || k == tenantKey(long+"b") {
		t.Fatalf("long tenant key %q", k)
	}
}

// TestCloseEndsIterators: an iterator running when the store closes ends with the closed error,
// even when the loop body itself calls Close.
func TestCloseEndsIterators(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	s := newStore(t)
	evs := make([]strata.EventData, 3*pageRows)
	for i := range evs {
		evs[i] = strata.EventData{Type: "E"}
	}
	if _, err := s.Append(ctx, "s", strata.NoStream, evs...); err != nil {
		t.Fatal(err)
	}
	for name, seq := range map[string]func(func(strata.Event, error) bool){
		"read all":    s.ReadAll(ctx, strata.ReadAllOptions{}),
		"read stream": s.ReadStream(ctx, "s", strata.ReadStreamOptions{}),
	} {
		n := 0
		var last error
		for _, err := range seq {
			if err != nil {
				last = err
				break
			}
			if n++; n == 1 {
				if err := s.Close(); err != nil {
					t.Fatal(err)
				}
			}
		}
		if !errors.Is(last, strata.ErrClosed) || n >= len(evs) {
			t.Fatalf("%s: after %d events the iterator ended with %v, want the closed error", name, n, last)
		}
	}
}

// TestUpgradeFromVersion1 opens a database made before migration 0002 (the capability tables):
// Open adds them, and the events written before stay.
func TestUpgradeFromVersion1(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	dsn := newDatabase(t)
	s := openStore(t, dsn)
	if _, err := s.Append(ctx, "certificate-1", strata.NoStream, strata.EventData{Type: "CertificateIssued"}); err != nil {
		t.Fatal(err)
	}
	for _, stmt := range []string{"DROP TABLE IF EXISTS " + strings.Join(tablesSince(t, 2), ", "), "DELETE FROM strata_migrations WHERE version >= 2"} {
		if _, err := s.db.ExecContext(ctx, stmt); err != nil {
			t.Fatalf("%s: %v", stmt, err)
		}
	}
	s.Close()
	s = openStore(t, dsn)
	var n int
	if err := s.db.QueryRowContext(ctx, "SELECT COUNT(*) FROM strata_migrations").Scan(&n); err != nil || n != int(migrationCount(t)) {
		t.Fatalf("strata_migrations holds %d rows (%v) after the upgrade, want %d", n, err, migrationCount(t))
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

// TestReadAllPageShapes reads pages of the global log that the two-step read takes by a span
// of seqs (the whole log, and a tenant with most of it) and by keys (a tenant with one event
// in ten, whose seqs spread too wide), across several pages and from a cursor inside one.
// TestReadAllLargePagesOfATenant reads a tenant's large events, which fill a page's byte
// budget (pageBytes) before its row count: dense among the other tenant's events, so that the
// span read takes the page and cuts it short, and sparse, so that the keys read does; both
// must then finish the page the one-step way, in position order, with the tenant filter.
func TestReadAllLargePagesOfATenant(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	s := newStore(t)
	big := func(i int) []byte { return []byte(fmt.Sprintf(`"%d%s"`, i, strings.Repeat("b", 1_500_000))) }
	for _, c := range []struct {
		name  string
		every int // one big event in every
	}{{"dense", 2}, {"sparse", 7}} {
		tenant := "big-" + c.name
		var want [][]byte
		for b := range 3 {
			var evs []strata.EventData
			for j := range 2 * c.every {
				if j%c.every == 0 {
					d := big(len(want))
					want = append(want, d)
					evs = append(evs, strata.EventData{Type: "Big", Data: d, Meta: strata.Metadata{Tenant: tenant}})
					continue
				}
				evs = append(evs, strata.EventData{Type: "Small", Data: data(j), Meta: strata.Metadata{Tenant: "other"}})
			}
			if _, err := s.Append(ctx, fmt.Sprintf("%s-%d", c.name, b), strata.NoStream, evs...); err != nil {
				t.Fatal(err)
			}
		}
		got := collect(t, s.ReadAll(ctx, strata.ReadAllOptions{Filter: strata.Filter{Tenant: tenant}}))
		if len(got) != len(want) {
			t.Fatalf("%s: read %d events of %s, want %d", c.name, len(got), tenant, len(want))
		}
		for i, e := range got {
			if !bytes.Equal(e.Data, want[i]) || e.Meta.Tenant != tenant {
				t.Fatalf("%s: event %d holds %d bytes of tenant %q, want %d bytes (#%d) of %q", c.name, i, len(e.Data), e.Meta.Tenant, len(want[i]), i, tenant)
			}
			if i > 0 && !got[i-1].Position.Less(e.Position) {
				t.Fatalf("%s: event %d at %s after %s", c.name, i, e.Position, got[i-1].Position)
			}
		}
	}
}

func TestReadAllPageShapes(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	s := newStore(t)
	const n = 2500
	for b := range n / 100 {
		evs := make([]strata.EventData, 100)
		for j := range evs {
			i := b*100 + j
			tenant := "dense"
			if i%10 == 0 {
				tenant = "sparse"
			}
			evs[j] = strata.EventData{Type: "E", Data: data(i), Meta: strata.Metadata{Tenant: tenant}}
		}
		if _, err := s.Append(ctx, fmt.Sprintf("s-%d", b), strata.NoStream, evs...); err != nil {
			t.Fatal(err)
		}
	}
	all := collect(t, s.ReadAll(ctx, strata.ReadAllOptions{}))
	if len(all) != n {
		t.Fatalf("read %d events, want %d", len(all), n)
	}
	checkDense(t, all)
	for i, e := range all {
		if !bytes.Equal(e.Data, data(i)) {
			t.Fatalf("event at position %s holds %s, want %s", e.Position, e.Data, data(i))
		}
	}
	for _, c := range []struct {
		name   string
		opts   strata.ReadAllOptions
		wanted func(i int) bool
	}{
		{"dense tenant", strata.ReadAllOptions{Filter: strata.Filter{Tenant: "dense"}}, func(i int) bool { return i%10 != 0 }},
		{"sparse tenant", strata.ReadAllOptions{Filter: strata.Filter{Tenant: "sparse"}}, func(i int) bool { return i%10 == 0 }},
		{"from a cursor, limited", strata.ReadAllOptions{After: all[1233].Position, Limit: 1100}, func(i int) bool { return i > 1233 && i <= 2333 }},
	} {
		var want []strata.Event
		for i, e := range all {
			if c.wanted(i) {
				want = append(want, e)
			}
		}
		got := collect(t, s.ReadAll(ctx, c.opts))
		if len(got) != len(want) {
			t.Errorf("%s: read %d events, want %d", c.name, len(got), len(want))
			continue
		}
		for i := range got {
			if got[i].ID != want[i].ID || got[i].Position != want[i].Position {
				t.Errorf("%s: event %d is %s at %s, want %s at %s", c.name, i, got[i].ID, got[i].Position, want[i].ID, want[i].Position)
				break
			}
		}
	}
}

// TestReadStreamWhileAnotherProcessAppends: a stream read stamps the events it finds without a
// position and reads them again; events that another process commits meanwhile must not come
// back without a position (they are newer than the read, and left for the next). Forward and
// backward.
func TestReadStreamWhileAnotherProcessAppends(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	dsn := newDatabase(t)
	writer, reader := openStore(t, dsn), openStore(t, dsn)
	wctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		for wctx.Err() == nil {
			if _, err := writer.Append(wctx, "s", strata.Any, strata.EventData{Type: "E"}); err != nil && wctx.Err() == nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	defer func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("append: %v", err)
		}
	}()
	for i := range 60 {
		backward := i%2 == 1
		last := int64(0)
		for e, err := range reader.ReadStream(ctx, "s", strata.ReadStreamOptions{Backward: backward}) {
			if err != nil {
				t.Fatal(err)
			}
			if e.Position == (strata.Position{}) {
				t.Fatalf("read %d (backward %v): version %d has no position", i, backward, e.Version)
			}
			if last != 0 && (e.Version == last || (e.Version < last) != backward) {
				t.Fatalf("read %d (backward %v): version %d after %d", i, backward, e.Version, last)
			}
			last = e.Version
		}
	}
}
