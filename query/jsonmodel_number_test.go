package query_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/strata-events/strata"
	"github.com/strata-events/strata/internal/backends"
	"github.com/strata-events/strata/query"
)

// TestJSONModelKeepsLargeNumbers: the JSON model's state and history diffs keep a number's
// text, such as an integer beyond 2^53, with and without a snapshot.
func TestJSONModelKeepsLargeNumbers(t *testing.T) {
	ctx := testCtx(t)
	st, _ := backends.Open(t, "inmem")
	mustAppend(t, st, "ledger-1",
		strata.EventData{Type: "Set", Data: []byte(`{"amount":9007199254740993}`)},
		strata.EventData{Type: "Set", Data: []byte(`{"amount":9007199254740992}`)})
	m := query.JSONModel()
	var diffs [][]query.Change
	for en, err := range query.History(ctx, st, m, "ledger-1", query.HistoryOptions{}) {
		if err != nil {
			t.Fatal(err)
		}
		diffs = append(diffs, en.Diff)
	}
	if len(diffs) != 2 || len(diffs[0]) != 1 || string(diffs[0][0].New) != "9007199254740993" || len(diffs[1]) != 1 {
		t.Fatalf("diffs: %+v", diffs)
	}
	s, err := query.StateAt(ctx, st, m, "ledger-1", query.At{Recorded: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(s.State)
	if string(b) != `{"amount":9007199254740992}` {
		t.Fatalf("state: %s", b)
	}
	mustAppend(t, st, "ledger-1", strata.EventData{Type: "Set", Data: []byte(`{"amount":12345678901234567891}`)})
	if _, err := query.TakeSnapshots(ctx, st, m, "ledger-1", 1); err != nil {
		t.Fatal(err)
	}
	s, err = query.StateAt(ctx, st, m, "ledger-1", query.At{})
	if err != nil || s.FromSnapshot != 3 {
		t.Fatalf("state from snapshot: %+v, %v", s, err)
	}
	if b, _ := json.Marshal(s.State); string(b) != `{"amount":12345678901234567891}` {
		t.Fatalf("state from a snapshot: %s", b)
	}
}
