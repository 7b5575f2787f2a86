package ledger_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/strata-events/strata"
	"github.com/strata-events/strata/inmem"
	"github.com/strata-events/strata/ledger"
)

func appendN(t testing.TB, st strata.Store, from, n int) {
	t.Helper()
	for i := from; i < from+n; i++ {
		if _, err := st.Append(context.Background(), fmt.Sprintf("certificate-%04d", i%17), strata.Any, strata.EventData{Type: "CertificateIssued", Data: fmt.Appendf(nil, `{"n":%d}`, i)}); err != nil {
			t.Fatal(err)
		}
	}
}

// TestConcurrentSealers runs several sealers on one store at once: every event gets exactly one
// leaf, in log order.
func TestConcurrentSealers(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := inmem.New()
	appendN(t, st, 0, 1000)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			s, _ := ledger.NewSealer(st, ledger.WithBatch(37))
			for {
				_, head, err := s.SealOnce(ctx)
				if errors.Is(err, strata.ErrConflict) {
					continue
				}
				if err != nil {
					t.Error(err)
					return
				}
				if head.Size == 1000 {
					return
				}
			}
		})
	}
	wg.Wait()
	rep, err := ledger.Audit(ctx, st, ledger.AuditOptions{})
	if err != nil || !rep.OK() || rep.Leaves != 1000 {
		t.Fatalf("audit: %+v, %v", rep, err)
	}
}

// TestRunFollowsTheLog seals continuously: events appended while Run runs are sealed.
func TestRunFollowsTheLog(t *testing.T) {
	t.Parallel()
	st := inmem.New()
	appendN(t, st, 0, 100)
	ctx, cancel := context.WithCancel(context.Background())
	s, _ := ledger.NewSealer(st, ledger.WithBatch(10))
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	appendN(t, st, 100, 150)
	for {
		h, err := s.Head(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if h.Size == 250 {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Run: %v", err)
	}
	rep, err := ledger.Audit(context.Background(), st, ledger.AuditOptions{})
	if err != nil || !rep.OK() || rep.Leaves != 250 {
		t.Fatalf("audit: %+v, %v", rep, err)
	}
}

func TestNoLedger(t *testing.T) {
	if _, err := ledger.NewSealer(struct{ strata.Store }{inmem.New()}); strata.ErrorCode(err) != strata.Invalid {
		t.Fatalf("a store without a ledger: %v", err)
	}
}

// TestSealerRefusesNonPositiveInterval: Run's checkpoint ticker panics on an interval of 0 or
// less (strata serve --checkpoint-every 0s crashed with a stack trace); NewSealer refuses it.
func TestSealerRefusesNonPositiveInterval(t *testing.T) {
	t.Parallel()
	for _, d := range []time.Duration{0, -time.Second} {
		_, err := ledger.NewSealer(inmem.New(), ledger.WithCheckpointInterval(d))
		if strata.ErrorCode(err) != strata.Invalid {
			t.Errorf("interval %s: %v, want an Invalid error", d, err)
		}
	}
}
