package query_test

import (
	"testing"
	"time"

	"github.com/strata-events/strata"
	"github.com/strata-events/strata/internal/backends"
	"github.com/strata-events/strata/query"
)

// TestParseTimeKeepsItsPrecision: a time written with more than microseconds (as Go's
// RFC3339Nano formats one) bounds a search or a history where it says, between two stored
// microseconds. ParseTime truncated it to the microsecond, so --from T (or from=T over HTTP)
// a half microsecond after an event's recording still found the event, and --to T missed it,
// though the search rounds its bounds up to the microsecond exactly for that case.
func TestParseTimeKeepsItsPrecision(t *testing.T) {
	ctx := testCtx(t)
	st, _ := backends.Open(t, "inmem")
	mustAppend(t, st, "registry-1", strata.EventData{Type: "Set", Data: []byte(`{"a":1}`), Meta: strata.Metadata{Tenant: "acme"}})
	e := lastEvent(t, st, "registry-1")
	s := e.RecordedAt.Add(500 * time.Nanosecond).Format(time.RFC3339Nano)
	bound, err := query.ParseTime(s, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if want := e.RecordedAt.Add(500 * time.Nanosecond); !bound.Equal(want) {
		t.Errorf("ParseTime(%q) = %s, want %s", s, bound, want)
	}
	for _, c := range []struct {
		name string
		q    strata.EventQuery
		h    query.HistoryOptions
		want int
	}{
		{"from", strata.EventQuery{Tenant: "acme", RecordedFrom: bound}, query.HistoryOptions{From: bound}, 0},
		{"to", strata.EventQuery{Tenant: "acme", RecordedTo: bound}, query.HistoryOptions{To: bound}, 1},
	} {
		p, err := query.Page(ctx, st, c.q)
		if err != nil || len(p.Events) != c.want {
			t.Errorf("search --%s %s: %d events, %v; want %d (the event was recorded at %s)", c.name, s, len(p.Events), err, c.want, e.RecordedAt.Format(time.RFC3339Nano))
		}
		n := 0
		for _, err := range query.History(ctx, st, query.JSONModel(), "registry-1", c.h) {
			if err != nil {
				t.Fatal(err)
			}
			n++
		}
		if n != c.want {
			t.Errorf("history --%s %s: %d entries, want %d", c.name, s, n, c.want)
		}
	}
}
