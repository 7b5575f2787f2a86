package query_test

import (
	"errors"
	"testing"
	"time"

	"github.com/strata-events/strata"
	"github.com/strata-events/strata/internal/backends"
	"github.com/strata-events/strata/query"
)

// TestRetentionCountsTheSameOnEveryBackend: an event whose payload is null and whose metadata
// is its tenant alone holds nothing to remove. PostgreSQL and SQLite never return it as a
// candidate (their index of live events leaves it out); the plan and the run count and
// tombstone only the event that holds something on every backend, not that one too on
// MySQL and in memory.
func TestRetentionCountsTheSameOnEveryBackend(t *testing.T) {
	for _, kind := range backends.All {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			ctx := testCtx(t)
			st, _ := backends.Open(t, kind)
			mustAppend(t, st, "certificate-1", strata.EventData{Type: "T", Data: []byte(`null`), Meta: strata.Metadata{Tenant: "acme"}})
			mustAppend(t, st, "certificate-2", strata.EventData{Type: "T", Data: []byte(`null`)})
			mustAppend(t, st, "certificate-3", strata.EventData{Type: "T", Data: []byte(`null`), Meta: strata.Metadata{Tenant: "acme", Principal: "alice"}})
			r := &query.Retention{AllowUnsealed: true, Now: func() time.Time { return time.Now().Add(100 * 24 * time.Hour) }}
			plan, err := r.Plan(ctx, st)
			if err != nil || plan.Removed != 1 {
				t.Fatalf("plan: %d events, %v; want 1", plan.Removed, err)
			}
			rep, err := r.Run(ctx, st)
			if err != nil || rep.Removed != 1 {
				t.Fatalf("run: %d events, %v; want 1", rep.Removed, err)
			}
			rs := st.(strata.RetentionStore)
			for _, stream := range []string{"certificate-1", "certificate-2"} {
				e := lastEvent(t, st, stream)
				if _, err := rs.Tombstone(ctx, e.ID); !errors.Is(err, strata.ErrNotFound) {
					t.Errorf("%s, which held nothing to remove, has a tombstone: %v", stream, err)
				}
			}
		})
	}
}
