package ledger

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/strata-events/strata"
	"github.com/strata-events/strata/internal/testenv"
	"github.com/strata-events/strata/mysql"
	"github.com/strata-events/strata/postgres"
	"github.com/strata-events/strata/sqlite"
)

// crashEnv carries the child's backend and DSN ("sqlite:PATH", "postgres:SCHEMA:DSN",
// "mysql:DSN"): set, the test binary is the sealer that kills itself.
const crashEnv = "STRATA_LEDGER_CRASH_DB"

// TestSealerCrashResume seals in a child process that SIGKILLs itself in the middle of its
// fourth batch (events read and hashed, tiles built, nothing committed), then resumes in this
// process: nothing is sealed twice or skipped, and the audit finds nothing. It runs on every
// SQL backend.
func TestSealerCrashResume(t *testing.T) {
	if db := os.Getenv(crashEnv); db != "" {
		crashChild(db)
		return
	}
	t.Parallel()
	for _, kind := range []string{"sqlite", "postgres", "mysql"} {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			var db string
			switch kind {
			case "sqlite":
				db = "sqlite:" + filepath.Join(t.TempDir(), "crash.db")
			case "postgres":
				dsn := testenv.Postgres(t)
				db = "postgres:" + testenv.PostgresSchema(t, dsn) + ":" + dsn
			case "mysql":
				db = "mysql:" + testenv.MySQLDatabase(t)
			}
			testCrashResume(t, db)
		})
	}
}

// openCrashDB opens the store a crashEnv value names.
func openCrashDB(ctx context.Context, db string) (strata.Store, error) {
	kind, rest, _ := strings.Cut(db, ":")
	switch kind {
	case "sqlite":
		return sqlite.Open(ctx, rest)
	case "postgres":
		schema, dsn, _ := strings.Cut(rest, ":")
		return postgres.Open(ctx, dsn, postgres.WithSchema(schema))
	case "mysql":
		return mysql.Open(ctx, rest)
	}
	return nil, fmt.Errorf("unknown backend in %q", db)
}

func testCrashResume(t *testing.T, db string) {
	ctx := context.Background()
	st, err := openCrashDB(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for i := range 50 {
		var evs []strata.EventData
		for j := range 10 {
			evs = append(evs, strata.EventData{Type: "CertificateIssued", Data: fmt.Appendf(nil, `{"n":%d}`, i*10+j)})
		}
		if _, err := st.Append(ctx, fmt.Sprintf("certificate-%03d", i), strata.NoStream, evs...); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestSealerCrashResume$")
	cmd.Env = append(os.Environ(), crashEnv+"="+db)
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("the child was not killed: %v\n%s", err, out)
	}
	ls := st.(strata.LedgerStore)
	head, err := ls.LedgerHead(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if head.Size != 3*64 {
		t.Fatalf("after the crash the head is at %d leaves, want the 3 committed batches (%d)", head.Size, 3*64)
	}
	s, err := NewSealer(st, WithBatch(64))
	if err != nil {
		t.Fatal(err)
	}
	n, head, err := s.SealOnce(ctx)
	if err != nil || n != 500-3*64 || head.Size != 500 {
		t.Fatalf("resume: sealed %d, head %+v, %v", n, head, err)
	}
	rep, err := Audit(ctx, st, AuditOptions{})
	if err != nil || !rep.OK() || rep.Leaves != 500 || rep.Events != 500 {
		t.Fatalf("audit after resume: %+v, %v", rep, err)
	}
}

func crashChild(db string) {
	ctx := context.Background()
	st, err := openCrashDB(ctx, db)
	if err != nil {
		fmt.Println(err)
		os.Exit(1)
	}
	batches := 0
	s, err := NewSealer(st, WithBatch(64))
	if err != nil {
		fmt.Println(err)
		os.Exit(1)
	}
	s.cfg.beforeAppend = func(int) {
		if batches++; batches == 4 {
			syscall.Kill(os.Getpid(), syscall.SIGKILL)
			select {}
		}
	}
	_, _, err = s.SealOnce(ctx)
	fmt.Println("not killed:", err)
	os.Exit(1)
}
