package projection_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/strata-events/strata"
	"github.com/strata-events/strata/internal/backends"
	"github.com/strata-events/strata/projection"
)

// TestUnstorableOutboxFails: an event whose handler emits more than a partition's outbox can
// hold (strata.MaxDataLen), or an event whose Data is not JSON, fails the partition with a
// FailedError naming the event, as a handler error does. The store refused such a commit (or
// it did not encode), which the worker took for a store error: it dropped the partition,
// claimed it again and ran into the same refusal for ever, with nothing but a warning in the
// log.
func TestUnstorableOutboxFails(t *testing.T) {
	chunk := append(append([]byte(`"`), bytes.Repeat([]byte("x"), 1<<20)...), '"') // a JSON string of 1 MiB
	for _, c := range []struct {
		name string
		data []byte
		n    int
	}{{"oversized", chunk, 10}, {"not JSON", []byte("not json"), 1}} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			ctx := testCtx(t)
			s, _ := backends.Open(t, "inmem")
			if _, err := s.Append(ctx, "certificate-big", strata.NoStream, strata.EventData{Type: "CertificateIssued"}); err != nil {
				t.Fatal(err)
			}
			def := projection.Projection{Name: "fanout", Handlers: map[string]projection.Handler{
				"CertificateIssued": func(ctx context.Context, pc *projection.Context, e strata.Event) error {
					for range c.n {
						pc.Emit("copies", strata.EventData{Type: "Copy", Data: c.data})
					}
					return nil
				},
			}}
			w, err := projection.NewWorker(s, def, fastOpts(projection.WithEmitHistory())...)
			if err != nil {
				t.Fatal(err)
			}
			cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			defer cancel()
			err = w.Catchup(cctx)
			var fe *projection.FailedError
			if !errors.As(err, &fe) || fe.Failure.Stream != "certificate-big" || !strings.Contains(fe.Failure.Error, "outbox") {
				t.Fatalf("catch-up: %v (its context: %v), want a FailedError for the outbox", err, cctx.Err())
			}
		})
	}
}
