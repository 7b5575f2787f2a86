package projection_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/strata-events/strata"
	"github.com/strata-events/strata/internal/backends"
	"github.com/strata-events/strata/projection"
)

// TestPanicInClearOrPartitionKeyFails: a panic in the projection's Clear hook or its
// PartitionKey, which run in the batch like the handlers, fails the partition like a handler's
// panic does (a FailedError after the retries) instead of crashing the process.
func TestPanicInClearOrPartitionKeyFails(t *testing.T) {
	for _, hook := range []string{"clear", "partition key"} {
		for _, kind := range []string{"inmem", "sqlite"} {
			t.Run(hook+"/"+kind, func(t *testing.T) {
				t.Parallel()
				ctx := testCtx(t)
				s, _ := backends.Open(t, kind)
				appendCerts(t, ctx, s, "p", 3)
				m := newModel(s, 1)
				def := m.def("panicky", 1, 2)
				switch hook {
				case "clear":
					def.Clear = func(context.Context, any, strata.ProjectionKey) error { panic("clear exploded") }
				default:
					def.PartitionKey = func(*strata.Event) string { panic("partition key exploded") }
				}
				w, err := projection.NewWorker(s, def, fastOpts()...)
				if err != nil {
					t.Fatal(err)
				}
				err = w.Run(ctx)
				var fe *projection.FailedError
				if !errors.As(err, &fe) || !strings.Contains(fe.Failure.Error, "exploded") {
					t.Fatalf("run: %v, want a FailedError for the panic", err)
				}
			})
		}
	}
}
