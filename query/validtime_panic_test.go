package query_test

import (
	"testing"
	"time"

	"github.com/strata-events/strata"
	"github.com/strata-events/strata/internal/backends"
	"github.com/strata-events/strata/query"
)

// TestValidTimePanicIsAnError: a model's ValidTime that panics on an event makes StateAt and
// TakeSnapshots return an Internal error, as a panicking Evolve does, instead of crashing the
// process (the HTTP server's, say).
func TestValidTimePanicIsAnError(t *testing.T) {
	ctx := testCtx(t)
	st, _ := backends.Open(t, "inmem")
	mustAppend(t, st, "registry-1", strata.EventData{Type: "Set", Data: []byte(`{"a":1}`)})
	m := query.JSONModel()
	m.Name = "test.panicking-valid-time/1"
	m.ValidTime = func(e strata.Event) time.Time { panic("no valid time in " + e.Type) }
	if _, err := query.StateAt(ctx, st, m, "registry-1", query.At{Occurred: time.Now()}); strata.ErrorCode(err) != strata.Internal {
		t.Errorf("state at: %v, want an Internal error", err)
	}
	if _, err := query.TakeSnapshots(ctx, st, m, "registry-1", 1); strata.ErrorCode(err) != strata.Internal {
		t.Errorf("take snapshots: %v, want an Internal error", err)
	}
}

// TestInitialPanicIsAnError: a model's Initial that panics makes StateAt, TakeSnapshots and
// History return an Internal error instead of crashing the process.
func TestInitialPanicIsAnError(t *testing.T) {
	ctx := testCtx(t)
	st, _ := backends.Open(t, "inmem")
	mustAppend(t, st, "registry-1", strata.EventData{Type: "Set", Data: []byte(`{"a":1}`)})
	m := query.JSONModel()
	m.Name = "test.panicking-initial/1"
	m.Initial = func() map[string]any { panic("no initial state") }
	if _, err := query.StateAt(ctx, st, m, "registry-1", query.At{}); strata.ErrorCode(err) != strata.Internal {
		t.Errorf("state at: %v, want an Internal error", err)
	}
	if _, err := query.TakeSnapshots(ctx, st, m, "registry-1", 1); strata.ErrorCode(err) != strata.Internal {
		t.Errorf("take snapshots: %v, want an Internal error", err)
	}
	for _, err := range query.History(ctx, st, m, "registry-1", query.HistoryOptions{}) {
		if strata.ErrorCode(err) != strata.Internal {
			t.Errorf("history: %v, want an Internal error", err)
		}
		break
	}
}
