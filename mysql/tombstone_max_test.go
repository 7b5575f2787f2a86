package mysql

import (
	"bytes"
	"testing"

	"github.com/google/uuid"

	"github.com/strata-events/strata"
)

// TestTombstoneMaxBatch removes strata.MaxTombstoneBatch events of mixed tenants in one call:
// two parts of derived tables of 5,000 rows, within MySQL's placeholders and the server's
// packet size, each taking the path for tenants not plain too.
func TestTombstoneMaxBatch(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	s := newStore(t)
	ids := appendTenants(t, s, strata.MaxTombstoneBatch, mixedTenant)
	run := uuid.New()
	var ts []strata.Tombstone
	for _, id := range ids {
		ts = append(ts, strata.Tombstone{EventID: id, LeafHash: bytes.Repeat([]byte{9}, 32), Run: run})
	}
	if n, err := s.TombstoneEvents(ctx, ts); err != nil || n != len(ts) {
		t.Fatalf("TombstoneEvents of %d: %d, %v", len(ts), n, err)
	}
	wantRemoved(t, s, ids)
}
