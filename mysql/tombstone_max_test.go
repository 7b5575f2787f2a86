package mysql

import (
	"bytes"
	"testing"

	"github.com/google/uuid"

	"github.com/strata-events/strata"
)

// TestTombstoneMaxBatch removes strata.MaxTombstoneBatch events in one call: two parts of
// derived tables of 5,000 rows, within MySQL's placeholders and the server's packet size.
func TestTombstoneMaxBatch(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	s := newStore(t)
	var ts []strata.Tombstone
	run := uuid.New()
	for i := 0; i < strata.MaxTombstoneBatch; i += 500 {
		evs := make([]strata.EventData, 500)
		for j := range evs {
			id := uuid.Must(uuid.NewV7())
			evs[j] = strata.EventData{ID: id, Type: "T", Data: []byte(`{"n":1}`), Meta: strata.Metadata{Tenant: "acme"}}
			ts = append(ts, strata.Tombstone{EventID: id, LeafHash: bytes.Repeat([]byte{9}, 32), Run: run})
		}
		if _, err := s.Append(ctx, "max-"+uuid.NewString(), strata.NoStream, evs...); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := s.TombstoneEvents(ctx, ts); err != nil || n != len(ts) {
		t.Fatalf("TombstoneEvents of %d: %d, %v", len(ts), n, err)
	}
	if tomb, err := s.Tombstone(ctx, ts[len(ts)-1].EventID); err != nil || tomb.Run != run {
		t.Fatalf("the last event's tombstone: %+v, %v", tomb, err)
	}
}
