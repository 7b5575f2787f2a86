package query_test

import (
	"context"
	"iter"
	"testing"
	"time"

	"github.com/strata-events/strata"
	"github.com/strata-events/strata/inmem"
	"github.com/strata-events/strata/query"
)

// earlierLater is a store whose stream versions are not recorded in version order, as on
// PostgreSQL, which stamps an event with its transaction's start: version 2 of every stream
// reads as recorded a second before version 1.
type earlierLater struct{ *inmem.Store }

func (s earlierLater) ReadStream(ctx context.Context, stream string, opts strata.ReadStreamOptions) iter.Seq2[strata.Event, error] {
	return func(yield func(strata.Event, error) bool) {
		for e, err := range s.Store.ReadStream(ctx, stream, opts) {
			if e.Version == 2 {
				e.RecordedAt = e.RecordedAt.Add(-2 * time.Second)
			}
			if !yield(e, err) {
				return
			}
		}
	}
}

// snapshotless hides the store's temporal snapshots.
type snapshotless struct{ strata.Store }

// TestStateAtLastRecordedAtFromSnapshot: a state's LastRecordedAt is when its last event was
// recorded, whether the fold starts from a snapshot or not. A snapshot's RecordedUpTo is the
// latest recording time of the versions it folds, which is not its last version's when a
// later version was recorded earlier.
func TestStateAtLastRecordedAtFromSnapshot(t *testing.T) {
	ctx := testCtx(t)
	mem := inmem.New()
	defer mem.Close()
	st := earlierLater{mem}
	mustAppend(t, st, "registry-1", strata.EventData{Type: "Set", Data: []byte(`{"a":1}`)})
	mustAppend(t, st, "registry-1", strata.EventData{Type: "Set", Data: []byte(`{"b":2}`)})
	m := query.JSONModel()
	if n, err := query.TakeSnapshots(ctx, st, m, "registry-1", 2); err != nil || n != 1 {
		t.Fatalf("take snapshots: %d, %v", n, err)
	}
	for _, at := range []query.At{{}, {Occurred: time.Now().Add(time.Hour)}} {
		replay, err := query.StateAt(ctx, snapshotless{st}, m, "registry-1", at)
		if err != nil {
			t.Fatal(err)
		}
		snap, err := query.StateAt(ctx, st, m, "registry-1", at)
		if err != nil {
			t.Fatal(err)
		}
		if snap.FromSnapshot != 2 || replay.FromSnapshot != 0 {
			t.Fatalf("folds from snapshots %d and %d, want 2 and 0", snap.FromSnapshot, replay.FromSnapshot)
		}
		if snap.Version != replay.Version || !snap.LastRecordedAt.Equal(replay.LastRecordedAt) {
			t.Errorf("at %+v: from the snapshot version %d recorded at %s; replayed version %d recorded at %s",
				at, snap.Version, snap.LastRecordedAt, replay.Version, replay.LastRecordedAt)
		}
	}
}
