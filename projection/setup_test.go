package projection_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/strata-events/strata"
	"github.com/strata-events/strata/internal/backends"
	"github.com/strata-events/strata/projection"
)

// TestSetupErrorEndsRun: a Setup hook that fails (not with a retryable store error) ends Run
// with a typed error wrapping the hook's, as Run's other errors do. The worker used to drop the
// partition, claim it again and rerun Setup for ever, returning nothing and logging a warning
// only.
func TestSetupErrorEndsRun(t *testing.T) {
	for _, kind := range []string{"inmem", "sqlite"} {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			ctx := testCtx(t)
			s, _ := backends.Open(t, kind)
			appendCerts(t, ctx, s, "s", 2)
			broken := errors.New("syntax error at or near CRATE")
			m := newModel(s, 1)
			def := m.def("setup", 1, 2)
			def.Setup = func(context.Context, any) error { return broken }
			w, err := projection.NewWorker(s, def, fastOpts()...)
			if err != nil {
				t.Fatal(err)
			}
			cctx, cancel := context.WithTimeout(ctx, 20*time.Second)
			defer cancel()
			err = w.Run(cctx)
			if !errors.Is(err, broken) || strata.ErrorCode(err) != strata.Invalid {
				t.Fatalf("run: %v (its context: %v), want an Invalid error wrapping Setup's", err, cctx.Err())
			}
		})
	}
}
