package projection_test

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/strata-events/strata"
	"github.com/strata-events/strata/internal/testenv"
	"github.com/strata-events/strata/postgres"
	"github.com/strata-events/strata/projection"
	"github.com/strata-events/strata/sqlite"
)

// The worker process: the test binary run again with STRATA_PROJECTION_WORKER set to a SQLite
// file. It runs the "crash" projection over the model with a slow handler, in catch-up mode
// (exit 0 when done) or until killed.
const (
	envWorker = "STRATA_PROJECTION_WORKER"
	envMode   = "STRATA_PROJECTION_MODE"
	envOwner  = "STRATA_PROJECTION_OWNER"
	envParts  = "STRATA_PROJECTION_PARTS"
	envSchema = "STRATA_PROJECTION_PG_SCHEMA" // set: STRATA_PROJECTION_WORKER is a PostgreSQL DSN
)

func TestMain(m *testing.M) {
	if path := os.Getenv(envWorker); path != "" {
		if err := workerMain(path); err != nil {
			fmt.Fprintln(os.Stderr, "worker:", err)
			os.Exit(3)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func workerDef(s strata.Store, owner string, parts int, delay time.Duration) projection.Projection {
	m := newModel(s, 1)
	m.owner = owner
	d := m.def("crash", 1, parts)
	for typ, h := range d.Handlers {
		d.Handlers[typ] = func(ctx context.Context, c *projection.Context, e strata.Event) error {
			time.Sleep(delay)
			return h(ctx, c, e)
		}
	}
	return d
}

func workerMain(path string) error {
	ctx := context.Background()
	var s strata.Store
	var err error
	if schema := os.Getenv(envSchema); schema != "" {
		s, err = postgres.Open(ctx, path, postgres.WithSchema(schema), postgres.WithPoll(100*time.Millisecond))
	} else {
		s, err = sqlite.Open(ctx, path, sqlite.WithSynchronous(sqlite.SyncNormal), sqlite.WithPollInterval(50*time.Millisecond))
	}
	if err != nil {
		return err
	}
	defer s.Close()
	parts, _ := strconv.Atoi(os.Getenv(envParts))
	owner := os.Getenv(envOwner)
	delay := time.Millisecond
	if parts > 1 {
		delay = 3 * time.Millisecond // the shared work must outlast a rebalance
	}
	w, err := projection.NewWorker(s, workerDef(s, owner, max(parts, 1), delay), projection.WithOwner(owner),
		projection.WithBatchSize(10), projection.WithLease(600*time.Millisecond), projection.WithLogger(slog.New(slog.NewTextHandler(os.Stderr, nil))), projection.WithRetry(3, 5*time.Millisecond, 20*time.Millisecond))
	if err != nil {
		return err
	}
	if os.Getenv(envMode) == "catchup" {
		return w.Catchup(ctx)
	}
	return w.Run(ctx)
}

func spawn(t *testing.T, path, mode, owner string, parts int, env ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), envWorker+"="+path, envMode+"="+mode, envOwner+"="+owner, envParts+"="+strconv.Itoa(parts))
	cmd.Env = append(cmd.Env, env...)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	return cmd
}

func openSQLite(t *testing.T, path string) *sqlite.Store {
	t.Helper()
	s, err := sqlite.Open(context.Background(), path, sqlite.WithSynchronous(sqlite.SyncNormal), sqlite.WithPollInterval(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// TestCrashMidBatch kills a worker process at random points, restarts it, and checks that the
// read model ends equal to a fresh rebuild with no event applied twice (the model's primary key
// and version check would fail the projection).
func TestCrashMidBatch(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns processes")
	}
	ctx := testCtx(t)
	path := filepath.Join(t.TempDir(), "crash.db")
	s := openSQLite(t, path)
	n := appendCerts(t, ctx, s, "c", 600)
	seed := time.Now().UnixNano()
	t.Logf("kill points seeded with %d", seed)
	rng := rand.New(rand.NewPCG(uint64(seed), 0))
	m := newModel(s, 1)
	const kills = 20
	for i := range kills {
		cmd := spawn(t, path, "catchup", "crash-worker", 1)
		time.Sleep(time.Duration(20+rng.IntN(100)) * time.Millisecond)
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		cmd.Wait()
		if i%5 == 4 {
			t.Logf("after %d kills: %d of %d events applied", i+1, len(m.rows(t, ctx, s)), n)
		}
	}
	cmd := spawn(t, path, "catchup", "crash-worker", 1)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("final run: %v", err)
	}
	got := m.rows(t, ctx, s)
	if len(got) != n {
		t.Fatalf("read model has %d rows, want %d", len(got), n)
	}
	// A fresh rebuild of the same projection (version 2) in this process must equal it.
	m2 := newModel(s, 2)
	def := m2.def("crash", 2, 1)
	w, err := projection.NewWorker(s, def, fastOpts()...)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Catchup(ctx); err != nil {
		t.Fatal(err)
	}
	want := m2.rows(t, ctx, s)
	if len(want) != len(got) {
		t.Fatalf("rebuild has %d rows, crashed model %d", len(want), len(got))
	}
	for id, r := range want {
		if g, ok := got[id]; !ok || g.Stream != r.Stream || g.Version != r.Version {
			t.Fatalf("event %s: crashed model %+v, rebuild %+v", id, g, r)
		}
	}
	sts, _ := projection.Statuses(ctx, s, "crash")
	if sts[0].Processed != int64(n) || sts[0].LagEvents != 0 {
		t.Fatalf("status after the crashes: %+v", sts[0])
	}
}

// TestTwoWorkerProcesses: two worker processes share four partitions on PostgreSQL; one is
// killed and the other takes its partitions over from their checkpoints; nothing is lost or
// applied twice. (On one SQLite file a process that writes back to back can starve another's
// BEGIN IMMEDIATE, which waits by polling: share partitions across processes on a server
// database.)
func TestTwoWorkerProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns processes")
	}
	ctx := testCtx(t)
	path := testenv.Postgres(t)
	schema := testenv.PostgresSchema(t, path)
	s, err := postgres.Open(ctx, path, postgres.WithSchema(schema), postgres.WithPoll(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	pg := envSchema + "=" + schema
	n := appendCerts(t, ctx, s, "w", 600)
	m := newModel(s, 1)
	applied := func() map[string]int {
		owners := map[string]int{}
		for _, r := range m.rows(t, ctx, s) {
			owners[r.Owner]++
		}
		return owners
	}
	// w1 starts alone and takes every partition; w2 joins while most of the work is left and
	// gets its share.
	w1 := spawn(t, path, "run", "w1", 4, pg)
	waitFor(t, "w1 at work", func() bool { return applied()["w1"] >= 30 })
	w2 := spawn(t, path, "run", "w2", 4, pg)
	waitFor(t, "both workers holding two partitions", func() bool {
		owners := map[string]int{}
		sts, _ := projection.Statuses(ctx, s, "crash")
		for _, st := range sts {
			owners[st.Owner]++
		}
		return owners["w1"] == 2 && owners["w2"] == 2
	})
	waitFor(t, "w2 applying events", func() bool {
		return applied()["w2"] >= 20
	})
	if err := w1.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	w1.Wait()
	n += appendCerts(t, ctx, s, "x", 30)
	waitFor(t, "w2 has taken over and finished", func() bool { return len(m.rows(t, ctx, s)) == n })
	waitFor(t, "w2 holding every partition", func() bool {
		sts, _ := projection.Statuses(ctx, s, "crash")
		for _, st := range sts {
			if st.Owner != "w2" {
				return false
			}
		}
		return len(sts) == 4
	})
	owners := map[string]int{}
	for _, r := range m.rows(t, ctx, s) {
		owners[r.Owner]++
	}
	t.Logf("events applied by worker: %v", owners)
	if owners["w1"] == 0 || owners["w2"] == 0 {
		t.Fatalf("the workers did not share the work: %v", owners)
	}
	w2.Process.Signal(syscall.SIGKILL)
	w2.Wait()
}
