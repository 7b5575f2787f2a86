package mysql

import (
	"testing"

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
