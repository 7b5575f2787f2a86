package query_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"testing"

	"github.com/strata-events/strata"
	"github.com/strata-events/strata/internal/backends"
	"github.com/strata-events/strata/query"
)

// TestRevealingModel: a revealing model folds the events reveal opened, never reads the
// snapshots of its model (which hold what the store holds) and refuses to take any.
func TestRevealingModel(t *testing.T) {
	ctx := testCtx(t)
	st, _ := backends.Open(t, "inmem")
	mustAppend(t, st, "person-1",
		strata.EventData{Type: "Named", Data: []byte(`{"name":"SEALED"}`)},
		strata.EventData{Type: "Aged", Data: []byte(`{"age":40}`)})
	m := query.JSONModel()
	if _, err := query.TakeSnapshots(ctx, st, m, "person-1", 1); err != nil {
		t.Fatal(err)
	}
	reveal := func(_ context.Context, e *strata.Event) error {
		e.Data = bytes.ReplaceAll(e.Data, []byte("SEALED"), []byte("Ada"))
		return nil
	}
	rm := query.Revealing(m, reveal)
	s, err := query.StateAt(ctx, st, rm, "person-1", query.At{})
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := json.Marshal(s.State); string(b) != `{"age":40,"name":"Ada"}` || s.FromSnapshot != 0 || s.Events != 2 {
		t.Fatalf("revealed state %s from snapshot %d after %d events, want Ada folded from the start", b, s.FromSnapshot, s.Events)
	}
	if s, err := query.StateAt(ctx, st, m, "person-1", query.At{}); err != nil || s.FromSnapshot != 2 {
		t.Fatalf("the model itself: %+v, %v, want its snapshot", s, err)
	}
	if _, err := query.TakeSnapshots(ctx, st, rm, "person-1", 1); strata.ErrorCode(err) != strata.Invalid {
		t.Fatalf("snapshots of a revealing model: %v, want Invalid", err)
	}
	boom := errors.New("wrong key")
	failing := query.Revealing(m, func(context.Context, *strata.Event) error { return boom })
	if _, err := query.StateAt(ctx, st, failing, "person-1", query.At{}); !errors.Is(err, boom) {
		t.Fatalf("a reveal that fails: %v", err)
	}
	for en, err := range query.History(ctx, st, rm, "person-1", query.HistoryOptions{}) {
		if err != nil {
			t.Fatal(err)
		}
		if en.Version == 1 && (len(en.Diff) != 1 || string(en.Diff[0].New) != `"Ada"`) {
			t.Fatalf("revealed history diff: %+v", en.Diff)
		}
	}
}
