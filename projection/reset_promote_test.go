package projection_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/strata-events/strata"
	"github.com/strata-events/strata/internal/backends"
	"github.com/strata-events/strata/projection"
)

// TestResetOfFailedVersionNotPromotedEarly: a new version whose build WithEmitHistory failed
// midway is fixed and reset. Its rebuild target after the reset is the failed partition's checkpoint (so that the
// events after it are emitted); that must not make the version "caught up" for promotion there:
// readers must not switch to a read model that replayed only the history before the failure.
func TestResetOfFailedVersionNotPromotedEarly(t *testing.T) {
	for _, kind := range backends.All {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			ctx := testCtx(t)
			s, _ := backends.Open(t, kind)
			n := appendCerts(t, ctx, s, "f", 30)
			m1, m2 := newModel(s, 1), newModel(s, 2)
			w1, _ := projection.NewWorker(s, m1.def("certificate_status", 1, 1), fastOpts()...)
			if err := w1.Catchup(ctx); err != nil {
				t.Fatal(err)
			}
			// Version 2, built WithEmitHistory, fails on its 5th event.
			var seen atomic.Int32
			broken := m2.def("certificate_status", 2, 1)
			for typ, h := range broken.Handlers {
				broken.Handlers[typ] = func(ctx context.Context, c *projection.Context, e strata.Event) error {
					if seen.Add(1) >= 5 {
						return errors.New("bug")
					}
					return h(ctx, c, e)
				}
			}
			wb, _ := projection.NewWorker(s, broken, fastOpts(projection.WithEmitHistory(), projection.WithBatchSize(1))...)
			if err := wb.Catchup(ctx); !errors.Is(err, projection.ErrFailed) {
				t.Fatalf("broken v2: %v", err)
			}
			if err := projection.Reset(ctx, s, "certificate_status", 2); err != nil {
				t.Fatal(err)
			}
			// The fixed version 2 is held after its 10th batch, well past the failure and short of
			// the end of the log.
			var batches atomic.Int32
			gate := make(chan struct{})
			w2, _ := projection.NewWorker(s, m2.def("certificate_status", 2, 1), fastOpts(projection.WithBatchSize(1), projection.WithBatchHook(func(strata.ProjectionKey, int) {
				if batches.Add(1) == 10 {
					<-gate
				}
			}))...)
			stop2 := start(t, ctx, w2)
			waitFor(t, "v2 rebuilding past its failure", func() bool { return batches.Load() >= 10 })
			time.Sleep(time.Second) // several balance rounds
			v, _ := projection.Active(ctx, s, "certificate_status")
			close(gate)
			if v != 1 {
				t.Fatalf("version %d active while version 2 has replayed 10 of %d events", v, n)
			}
			waitFor(t, "v2 caught up and active", func() bool {
				v, _ := projection.Active(ctx, s, "certificate_status")
				return v == 2 && len(m2.rows(t, ctx, s)) == len(m1.rows(t, ctx, s))
			})
			stop2()
		})
	}
}
