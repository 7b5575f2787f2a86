package postgres_test

import (
	"context"
	"testing"
	"time"

	"github.com/strata-events/strata"
)

// TestQueryRangeBelowMicroseconds queries with range ends between two microseconds:
// RecordedFrom <= RecordedAt < RecordedTo holds of the exact times given, though the store
// keeps microseconds.
func TestQueryRangeBelowMicroseconds(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	s := e.open()
	ctx := context.Background()
	mustAppend(t, s, "certificate-1", strata.Any, strata.EventData{Type: "T", Meta: strata.Metadata{Tenant: "acme"}})
	p, err := s.QueryEvents(ctx, strata.EventQuery{Tenant: "acme"})
	if err != nil || len(p.Events) != 1 {
		t.Fatalf("query: %v, %v", p, err)
	}
	at := p.Events[0].RecordedAt
	for _, c := range []struct {
		name     string
		from, to time.Time
		want     int
	}{
		{"to just after", time.Time{}, at.Add(time.Nanosecond), 1},
		{"to at", time.Time{}, at, 0},
		{"from just after", at.Add(time.Nanosecond), time.Time{}, 0},
		{"from at", at, time.Time{}, 1},
		{"from just before", at.Add(-time.Nanosecond), time.Time{}, 1},
	} {
		q := strata.EventQuery{Tenant: "acme", RecordedFrom: c.from, RecordedTo: c.to}
		p, err := s.QueryEvents(ctx, q)
		if err != nil || len(p.Events) != c.want {
			t.Errorf("%s: query found %d, %v; want %d", c.name, len(p.Events), err, c.want)
		}
		if n, err := s.CountEvents(ctx, q); err != nil || n != int64(c.want) {
			t.Errorf("%s: count %d, %v; want %d", c.name, n, err, c.want)
		}
	}
}
