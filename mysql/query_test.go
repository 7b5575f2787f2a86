package mysql

import (
	"testing"
	"time"

	"github.com/strata-events/strata"
)

// TestCountEventsMetaFilterExact: an extra metadata key that ends in a quote and a well-known
// key's name, such as `a"principal`, holds the bytes "principal":"v" in the canonical JSON
// (`"a\"principal":"v"`). CountEvents counts only the events QueryEvents returns.
func TestCountEventsMetaFilterExact(t *testing.T) {
	t.Parallel()
	s := openStore(t, newDatabase(t))
	defer s.Close()
	ctx := t.Context()
	for i, m := range []strata.Metadata{
		{Tenant: "acme", Principal: "v"},
		{Tenant: "acme", Extra: map[string]string{`a"principal`: "v"}},
		{Tenant: "acme", Extra: map[string]string{`a"correlation`: "c"}},
	} {
		if _, err := s.Append(ctx, "s-"+string(rune('a'+i)), strata.NoStream, strata.EventData{Type: "T", Meta: m}); err != nil {
			t.Fatal(err)
		}
	}
	for _, q := range []strata.EventQuery{{Tenant: "acme", Principal: "v"}, {Tenant: "acme", Correlation: "c"}} {
		p, err := s.QueryEvents(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		n, err := s.CountEvents(ctx, q)
		if err != nil || n != int64(len(p.Events)) {
			t.Errorf("query %+v: count %d, %v; QueryEvents returned %d events", q, n, err, len(p.Events))
		}
	}
}

// TestQueryRecordedToEndOfTime: RecordedTo in the last microsecond of year 9999, which
// PrepareEventQuery rounds up into year 10000, bounds nothing that DATETIME holds.
func TestQueryRecordedToEndOfTime(t *testing.T) {
	t.Parallel()
	s := openStore(t, newDatabase(t))
	defer s.Close()
	ctx := t.Context()
	if _, err := s.Append(ctx, "s-1", strata.NoStream, strata.EventData{Type: "T", Meta: strata.Metadata{Tenant: "acme"}}); err != nil {
		t.Fatal(err)
	}
	q := strata.EventQuery{Tenant: "acme", RecordedTo: time.Date(9999, 12, 31, 23, 59, 59, 999_999_999, time.UTC)}
	p, err := s.QueryEvents(ctx, q)
	if err != nil || len(p.Events) != 1 {
		t.Errorf("query: %d events, %v; want 1", len(p.Events), err)
	}
	if n, err := s.CountEvents(ctx, q); err != nil || n != 1 {
		t.Errorf("count: %d, %v; want 1", n, err)
	}
	q = strata.EventQuery{Tenant: "acme", RecordedFrom: q.RecordedTo}
	if p, err := s.QueryEvents(ctx, q); err != nil || len(p.Events) != 0 {
		t.Errorf("query from the end of time: %d events, %v; want none", len(p.Events), err)
	}
}

// TestTemporalSnapshotAtAfterYear9999: times after every DATETIME find the latest snapshot,
// as on the other backends, instead of failing in the driver.
func TestTemporalSnapshotAtAfterYear9999(t *testing.T) {
	t.Parallel()
	s := openStore(t, newDatabase(t))
	defer s.Close()
	ctx := t.Context()
	at := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	if err := s.SaveTemporalSnapshot(ctx, strata.TemporalSnapshot{Stream: "s-1", Model: "m/1", Version: 1, RecordedUpTo: at, OccurredUpTo: at, Data: []byte(`{}`)}); err != nil {
		t.Fatal(err)
	}
	far := time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, c := range []struct{ rec, occ time.Time }{{far, time.Time{}}, {far, far}, {at, far}} {
		if got, err := s.TemporalSnapshotAt(ctx, "s-1", "m/1", c.rec, c.occ); err != nil || got.Version != 1 {
			t.Errorf("snapshot at %v, %v: %+v, %v", c.rec, c.occ, got, err)
		}
	}
}
