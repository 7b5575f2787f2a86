package mysql

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/strata-events/strata"
)

// TestTombstoneEventsRacingAnotherCall removes events W < X while another transaction, as a
// TombstoneEvents call would, holds X's row and then commits X's tombstone: the call waits for
// X, reads its row as that transaction left it, and removes W alone, keeping the other's
// tombstone of X.
func TestTombstoneEventsRacingAnotherCall(t *testing.T) {
	dsn := newDatabase(t)
	s := openStore(t, dsn)
	ctx := context.Background()
	for range 2 {
		if _, err := s.Append(ctx, "s-1", strata.Any, strata.EventData{Type: "T", Data: []byte(`{}`), Meta: strata.Metadata{Tenant: "a"}}); err != nil {
			t.Fatal(err)
		}
	}
	var ids []uuid.UUID
	for ev, err := range s.ReadStream(ctx, "s-1", strata.ReadStreamOptions{}) {
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, ev.ID)
	}
	if bytes.Compare(ids[0][:], ids[1][:]) > 0 {
		ids[0], ids[1] = ids[1], ids[0]
	}
	w, x := ids[0], ids[1]
	db, err := sql.Open("mysql", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	tx, err := db.BeginTx(ctx, &sql.TxOptions{Isolation: sql.LevelReadCommitted})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec("SELECT id FROM events WHERE id = ? FOR UPDATE", x[:]); err != nil {
		t.Fatal(err)
	}
	done := make(chan error)
	var n int
	go func() {
		var err error
		n, err = s.TombstoneEvents(ctx, []strata.Tombstone{{EventID: w, LeafHash: make([]byte, 32), Run: w}, {EventID: x, LeafHash: make([]byte, 32), Run: w}})
		done <- err
	}()
	time.Sleep(500 * time.Millisecond) // the call waits for X's row
	if _, err := tx.Exec("UPDATE events SET data = 'null', meta = '{\"tenant\":\"a\"}', removed_leaf_hash = ?, removed_run = ?, removed_at = ? WHERE id = ?",
		make([]byte, 32), x[:], strata.Timestamp(time.Now()), x[:]); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("TombstoneEvents: %v", err)
	}
	if n != 1 {
		t.Fatalf("removed %d, want W alone", n)
	}
	if tomb, err := s.Tombstone(ctx, w); err != nil || tomb.Run != w {
		t.Fatalf("W's tombstone: %+v, %v", tomb, err)
	}
	if tomb, err := s.Tombstone(ctx, x); err != nil || tomb.Run != x {
		t.Fatalf("X's tombstone: %+v, %v; want the other transaction's", tomb, err)
	}
}

// appendTenants appends n events, a hundred to a stream, the i-th of tenant(i), and returns
// their IDs.
func appendTenants(t *testing.T, s *Store, n int, tenant func(i int) string) []uuid.UUID {
	t.Helper()
	ctx := testCtx(t)
	var ids []uuid.UUID
	for i := 0; i < n; i += 100 {
		evs := make([]strata.EventData, min(100, n-i))
		for j := range evs {
			id := uuid.Must(uuid.NewV7())
			evs[j] = strata.EventData{ID: id, Type: "T", Data: []byte(`{"n":1}`), Meta: strata.Metadata{Tenant: tenant(i + j), Principal: "p"}}
			ids = append(ids, id)
		}
		if _, err := s.Append(ctx, "mixed-"+uuid.NewString(), strata.NoStream, evs...); err != nil {
			t.Fatal(err)
		}
	}
	return ids
}

// mixedTenant is a plain tenant for most events, one JSON escapes for one in ten and one
// longer than the 200 bytes of the tenant column for one in thirty.
func mixedTenant(i int) string {
	switch {
	case i%30 == 0:
		return strings.Repeat("L", 250)
	case i%10 == 0:
		return `e"x`
	}
	return "acme"
}

// wantRemoved fails unless every event of ids has a tombstone.
func wantRemoved(t *testing.T, s *Store, ids []uuid.UUID) {
	t.Helper()
	for i, id := range ids {
		if _, err := s.Tombstone(testCtx(t), id); err != nil {
			t.Fatalf("event %d of %d: %v", i, len(ids), err)
		}
	}
}

// TestTombstoneEventsMixedTenantsInParts removes, in one call cut in two parts, events of
// plain, escaped and long tenants, a part being a large share of the table: both parts take
// the path for tenants not plain, and each event is removed, and counted, once.
func TestTombstoneEventsMixedTenantsInParts(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	s := newStore(t)
	ids := appendTenants(t, s, 3000, mixedTenant)
	var ts []strata.Tombstone
	for _, id := range ids[:1800] {
		ts = append(ts, strata.Tombstone{EventID: id, LeafHash: bytes.Repeat([]byte{1}, 32), Run: id})
	}
	if n, err := s.TombstoneEvents(ctx, ts); err != nil || n != len(ts) {
		t.Fatalf("TombstoneEvents of %d: %d, %v", len(ts), n, err)
	}
	wantRemoved(t, s, ids[:1800])
	if n, err := s.TombstoneEvents(ctx, ts); err != nil || n != 0 {
		t.Fatalf("TombstoneEvents again: %d, %v; want 0", n, err)
	}
}

// TestTombstoneEventsManyAtOnce runs four calls at once over overlapping sets of the same
// events, of mixed tenants, in rounds of 750 of 3,000 events (one part each, a quarter of the
// table) and of 1,500 (two parts each): no call deadlocks or fails, and each event is removed,
// and counted, once.
func TestTombstoneEventsManyAtOnce(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	s := newStore(t)
	ids := appendTenants(t, s, 3000, mixedTenant)
	for _, round := range [][]uuid.UUID{ids[:750], ids[750:1500], ids[1500:]} {
		var (
			wg   sync.WaitGroup
			n    [4]int
			errs [4]error
		)
		for k := range 4 {
			var ts []strata.Tombstone
			for i, id := range round {
				if k%2 == 0 && (i+k)%4 == 0 {
					continue // calls 0 and 2 leave out a quarter each
				}
				ts = append(ts, strata.Tombstone{EventID: id, LeafHash: bytes.Repeat([]byte{byte(k + 1)}, 32), Run: uuid.New()})
			}
			wg.Go(func() { n[k], errs[k] = s.TombstoneEvents(ctx, ts) })
		}
		wg.Wait()
		if err := errors.Join(errs[:]...); err != nil {
			t.Fatalf("%d events, four calls at once: %v", len(round), err)
		}
		if total := n[0] + n[1] + n[2] + n[3]; total != len(round) {
			t.Fatalf("%d events, four calls at once removed %v, %d in all", len(round), n, total)
		}
		wantRemoved(t, s, round)
	}
}
