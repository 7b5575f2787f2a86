package mysql

import (
	"context"
	"testing"
)

// TestQueryIndexMadeMeanwhile: an index that another process added between the check and the
// ALTER (two CreateQueryIndexes at once) counts as made, not as an Internal error.
func TestQueryIndexMadeMeanwhile(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newStore(t)
	if _, err := s.db.ExecContext(ctx, "ALTER TABLE events ADD INDEX events_q_time (tenant, recorded_at, position)"); err != nil {
		t.Fatal(err)
	}
	if err := s.addQueryIndex(ctx, "events_q_time", "tenant, recorded_at, position"); err != nil {
		t.Fatalf("adding an index that exists: %v", err)
	}
	if err := s.CreateQueryIndexes(ctx); err != nil {
		t.Fatal(err)
	}
}
