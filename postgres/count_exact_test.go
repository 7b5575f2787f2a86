package postgres_test

import (
	"context"
	"testing"

	"github.com/strata-events/strata"
)

// TestCountEventsOddMetadata counts events by metadata values that the search's meta_text
// cannot tell apart (NUL and U+FFFD, the text \u0000) and by a stream prefix that a text value
// cannot hold: each count is the number of events QueryEvents returns, as CountEvents promises.
func TestCountEventsOddMetadata(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	s := e.open()
	ctx := context.Background()
	odd := []string{"nul\x00here", "nul\ufffdhere", `text \u0000 escape`, `text \ufffd escape`, "plain"}
	for _, v := range odd {
		mustAppend(t, s, "certificate-1", strata.Any, strata.EventData{Type: "T", Meta: strata.Metadata{Tenant: "acme", Principal: v}})
	}
	queries := []strata.EventQuery{{StreamPrefix: "certificate-\x00"}, {StreamPrefix: "certificate-1"}}
	for _, v := range odd {
		queries = append(queries, strata.EventQuery{Principal: v}, strata.EventQuery{Correlation: v})
	}
	for _, indexed := range []bool{false, true} {
		if indexed {
			if err := s.CreateQueryIndexes(ctx); err != nil {
				t.Fatal(err)
			}
		}
		for _, q := range queries {
			q.Tenant = "acme"
			var want int64
			for qq := q; ; {
				p, err := s.QueryEvents(ctx, qq)
				if err != nil {
					t.Fatal(err)
				}
				want += int64(len(p.Events))
				if p.Next == "" {
					break
				}
				qq.Cursor = p.Next
			}
			if n, err := s.CountEvents(ctx, q); err != nil || n != want {
				t.Errorf("indexes %v: count %+v: %d, %v; QueryEvents found %d", indexed, q, n, err, want)
			}
		}
	}
}
