package projection_test

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/strata-events/strata"
	"github.com/strata-events/strata/internal/backends"
	"github.com/strata-events/strata/projection"
)

// projectionStore is a store with projections, as the worker needs.
type projectionStore interface {
	strata.Store
	strata.ProjectionStore
}

// crashOnEmit stands for a process that dies between a batch's commit and the append of what
// its handlers emitted: the first append to an "out-" stream fails, and records the size of
// the outbox the store then holds for the partition.
type crashOnEmit struct {
	projectionStore
	failing atomic.Bool // the first emit has begun to fail
	failed  atomic.Bool // and outbox holds what the store then kept
	outbox  atomic.Int64
}

func (s *crashOnEmit) Append(ctx context.Context, stream string, exp strata.ExpectedVersion, evs ...strata.EventData) (strata.AppendResult, error) {
	if strings.HasPrefix(stream, "out-") && s.failing.CompareAndSwap(false, true) {
		defer s.failed.Store(true)
		sts, err := s.ProjectionStates(ctx, "emitter")
		if err != nil {
			return strata.AppendResult{}, err
		}
		for _, st := range sts {
			s.outbox.Add(int64(len(st.Pending)))
		}
		return strata.AppendResult{}, &strata.Error{Code: strata.Unavailable, Op: "append", Msg: "process killed"}
	}
	return s.projectionStore.Append(ctx, stream, exp, evs...)
}

// TestOutboxIsDurable: what a handler emits is stored in the commit that moves the checkpoint
// past its event, so that a crash before it is appended loses none of it: the worker appends
// it when it runs again.
func TestOutboxIsDurable(t *testing.T) {
	t.Parallel()
	for _, kind := range backends.All {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			ctx := testCtx(t)
			base, _ := backends.Open(t, kind)
			s := &crashOnEmit{projectionStore: base.(projectionStore)}
			def := projection.Projection{Name: "emitter", Handlers: map[string]projection.Handler{
				"OrderPlaced": func(ctx context.Context, c *projection.Context, e strata.Event) error {
					c.Emit("out-"+e.Stream, strata.EventData{Type: "OrderSeen", Data: []byte(`{}`)})
					return nil
				},
			}}
			w, err := projection.NewWorker(s, def, fastOpts(projection.WithEmitHistory())...)
			if err != nil {
				t.Fatal(err)
			}
			stop := start(t, ctx, w)
			defer stop()
			if _, err := s.Append(ctx, "order-1", strata.Any, strata.EventData{Type: "OrderPlaced", Data: []byte(`{}`)}); err != nil {
				t.Fatal(err)
			}
			waitFor(t, "the emit attempt", func() bool { return s.failed.Load() })
			if s.outbox.Load() == 0 {
				t.Errorf("the checkpoint was committed past the event with an empty outbox")
			}
			waitFor(t, "the emitted event, appended after the failure", func() bool {
				n := 0
				for _, err := range s.ReadAll(ctx, strata.ReadAllOptions{Filter: strata.Filter{Types: []string{"OrderSeen"}}}) {
					if err != nil {
						t.Fatal(err)
					}
					n++
				}
				return n == 1
			})
		})
	}
}
