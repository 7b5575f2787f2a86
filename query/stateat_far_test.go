package query_test

import (
	"testing"
	"time"

	"github.com/strata-events/strata"
	"github.com/strata-events/strata/internal/backends"
	"github.com/strata-events/strata/query"
)

// TestStateAtFarTimes asks for states at times no database stores (after year 294,247, before
// 4713 BC) on every backend: the state after every event, and before any, from the snapshot
// where one holds, instead of an error from PostgreSQL's snapshot lookup that the other
// backends do not give.
func TestStateAtFarTimes(t *testing.T) {
	for _, kind := range backends.All {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			ctx := testCtx(t)
			st, _ := backends.Open(t, kind)
			mustAppend(t, st, "registry-1", strata.EventData{Type: "Set", Data: []byte(`{"a":1}`)})
			m := query.JSONModel()
			if n, err := query.TakeSnapshots(ctx, st, m, "registry-1", 1); err != nil || n != 1 {
				t.Fatalf("take snapshots: %d, %v", n, err)
			}
			late, early := time.Date(300000, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(-5000, 1, 1, 0, 0, 0, 0, time.UTC)
			for _, c := range []struct {
				at      query.At
				version int64
				snap    int64
			}{
				{query.At{Recorded: late}, 1, 1},
				{query.At{Occurred: late}, 1, 1},
				{query.At{Recorded: late, Occurred: late}, 1, 1},
				{query.At{Recorded: early}, 0, 0},
				{query.At{Occurred: early}, 1, 0},
			} {
				got, err := query.StateAt(ctx, st, m, "registry-1", c.at)
				if err != nil || got.Version != c.version || got.FromSnapshot != c.snap {
					t.Errorf("state at %+v: version %d from snapshot %d, %v; want version %d from snapshot %d", c.at, got.Version, got.FromSnapshot, err, c.version, c.snap)
				}
			}
		})
	}
}

// TestStateAtSnapshotValidOnTheLastDay: a snapshot whose events hold (valid time) until late
// on 31 December 9999, the last day RFC 3339 and MySQL's DATETIME reach, serves a state asked
// without a valid time on every backend. MySQL looked only for snapshots valid by that day's
// midnight, and so replayed the stream.
func TestStateAtSnapshotValidOnTheLastDay(t *testing.T) {
	for _, kind := range backends.All {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			ctx := testCtx(t)
			st, _ := backends.Open(t, kind)
			mustAppend(t, st, "registry-1", strata.EventData{Type: "Set", Data: []byte(`{"until":"9999-12-31T12:00:00Z"}`)})
			m := query.JSONFieldModel("until")
			if n, err := query.TakeSnapshots(ctx, st, m, "registry-1", 1); err != nil || n != 1 {
				t.Fatalf("take snapshots: %d, %v", n, err)
			}
			got, err := query.StateAt(ctx, st, m, "registry-1", query.At{})
			if err != nil || got.Version != 1 || got.FromSnapshot != 1 {
				t.Errorf("state now: version %d from snapshot %d, %v; want version 1 from snapshot 1", got.Version, got.FromSnapshot, err)
			}
			if n, err := query.TakeSnapshots(ctx, st, m, "registry-1", 1); err != nil || n != 0 {
				t.Errorf("take snapshots again: %d, %v; want none (the one taken is the latest)", n, err)
			}
		})
	}
}
