package query_test

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/strata-events/strata"
	"github.com/strata-events/strata/internal/backends"
	"github.com/strata-events/strata/query"
)

// draft is a state whose initial value is not its zero value, and whose JSON leaves out an
// empty status.
type draft struct {
	Status string `json:"status,omitempty"`
	N      int    `json:"n"`
}

// stateJSON is StateAt's state as JSON and the snapshot it started from.
func stateJSON[S any](t *testing.T, store strata.Store, m query.Model[S], stream string) (string, int64) {
	t.Helper()
	s, err := query.StateAt(testCtx(t), store, m, stream, query.At{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(s.State)
	if err != nil {
		t.Fatal(err)
	}
	return string(b), s.FromSnapshot
}

// TestSnapshotOfAStateUnlikeItsInitialOne: a state read back from a temporal snapshot is the
// state that was saved, not the saved JSON laid over the model's initial state. Both models
// start with a status of "draft" that the first event clears; the JSON of the cleared state
// has no status (a map without the key, a struct field left out as empty), so decoding it over
// the initial state brought "draft" back: StateAt answered from a snapshot what a replay did
// not, and TakeSnapshots, going on from its last snapshot, saved the wrong state after it.
func TestSnapshotOfAStateUnlikeItsInitialOne(t *testing.T) {
	ctx := testCtx(t)
	jm := query.JSONModel()
	jm.Name = "test.json-draft/1"
	jm.Initial = func() map[string]any { return map[string]any{"status": "draft"} }
	sm := query.Model[draft]{
		Name:    "test.draft/1",
		Initial: func() draft { return draft{Status: "draft"} },
		Evolve: func(_ context.Context, s draft, e strata.Event) (draft, error) {
			if e.Type == "Cleared" {
				s.Status = ""
			} else {
				s.N++
			}
			return s, nil
		},
	}
	st, _ := backends.Open(t, "sqlite")
	for i, take := range []func(stream string) (int, error){
		func(stream string) (int, error) { return query.TakeSnapshots(ctx, st, jm, stream, 1) },
		func(stream string) (int, error) { return query.TakeSnapshots(ctx, st, sm, stream, 1) },
	} {
		stream := []string{"doc-json", "doc-struct"}[i]
		state := func(store strata.Store) (string, int64) {
			if i == 0 {
				return stateJSON(t, store, jm, stream)
			}
			return stateJSON(t, store, sm, stream)
		}
		mustAppend(t, st, stream, strata.EventData{Type: "Cleared", Data: []byte(`{"status":null}`)})
		if n, err := take(stream); err != nil || n != 1 {
			t.Fatalf("%s: take snapshots: %d, %v", stream, n, err)
		}
		mustAppend(t, st, stream, strata.EventData{Type: "Counted", Data: []byte(`{"n":1}`)})
		if n, err := take(stream); err != nil || n != 1 {
			t.Fatalf("%s: take snapshots again: %d, %v", stream, n, err)
		}
		want, from := state(snapshotless{st})
		if want != `{"n":1}` || from != 0 {
			t.Fatalf("%s: replayed state %s (from snapshot %d)", stream, want, from)
		}
		if got, from := state(st); got != want || from != 2 {
			t.Errorf("%s: state from snapshot %d: %s; replayed: %s", stream, from, got, want)
		}
	}
}
