package projection_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/strata-events/strata"
	"github.com/strata-events/strata/internal/backends"
	"github.com/strata-events/strata/projection"
)

// TestExternalFailureDoesNotRedeliverEarlierEvents: when an External projection's handler fails
// on an event in the middle of a batch, the events before it, which its handlers have already
// applied, are committed as they are: delivered once, as docs/PROJECTIONS.md promises short of a
// crash, and what they emitted is appended. They used to be handed to the handlers again.
func TestExternalFailureDoesNotRedeliverEarlierEvents(t *testing.T) {
	for _, kind := range []string{"inmem", "sqlite"} {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			ctx := testCtx(t)
			s, _ := backends.Open(t, kind)
			for range 6 {
				if _, err := s.Append(ctx, "certificate-x", strata.Any, strata.EventData{Type: "CertificateIssued"}); err != nil {
					t.Fatal(err)
				}
			}
			var (
				mu      sync.Mutex
				handled = map[int64]int{}
				failed  atomic.Bool
			)
			def := projection.Projection{Name: "external", External: true, Handlers: map[string]projection.Handler{
				"CertificateIssued": func(ctx context.Context, c *projection.Context, e strata.Event) error {
					if c.Tx != nil {
						return errors.New("an External handler got a transaction")
					}
					if e.Version == 4 && !failed.Swap(true) {
						return errors.New("the index is down for a moment")
					}
					mu.Lock()
					handled[int64(e.Version)]++
					mu.Unlock()
					c.Emit("indexed", strata.EventData{Type: "Indexed"})
					return nil
				},
			}}
			w, err := projection.NewWorker(s, def, fastOpts(projection.WithEmitHistory())...)
			if err != nil {
				t.Fatal(err)
			}
			stop := start(t, ctx, w)
			emitted := func() int {
				n := 0
				for _, err := range s.ReadStream(ctx, "indexed", strata.ReadStreamOptions{}) {
					if err != nil {
						return n
					}
					n++
				}
				return n
			}
			waitFor(t, "an event emitted for each of the six", func() bool { return emitted() == 6 })
			if err := stop(); err != nil {
				t.Fatal(err)
			}
			mu.Lock()
			defer mu.Unlock()
			if len(handled) != 6 {
				t.Fatalf("handled %v, want the six events", handled)
			}
			for pos, n := range handled {
				if n != 1 {
					t.Errorf("the event of version %d was delivered %d times: %v", pos, n, handled)
				}
			}
		})
	}
}
