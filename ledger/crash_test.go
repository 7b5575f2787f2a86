package ledger

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/strata-events/strata"
	"github.com/strata-events/strata/sqlite"
)

const crashEnv = "STRATA_LEDGER_CRASH_DB"

// TestSealerCrashResume seals in a child process that SIGKILLs itself in the middle of its
// fourth batch (events read and hashed, tiles built, nothing committed), then resumes in this
// process: nothing is sealed twice or skipped, and the audit finds nothing.
func TestSealerCrashResume(t *testing.T) {
	if path := os.Getenv(crashEnv); path != "" {
		crashChild(path)
		return
	}
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "crash.db")
	st, err := sqlite.Open(ctx, path)
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
	cmd.Env = append(os.Environ(), crashEnv+"="+path)
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("the child was not killed: %v\n%s", err, out)
	}
	head, err := st.LedgerHead(ctx)
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

func crashChild(path string) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, path)
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
