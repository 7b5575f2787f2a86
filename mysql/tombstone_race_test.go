package mysql

import (
	"bytes"
	"context"
	"database/sql"
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
