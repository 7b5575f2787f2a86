package storetest

import (
	"bytes"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/strata-events/strata"
)

// The fixture of the backends' tests of the migration that moved tombstones from a table of
// their own into their events' rows. A backend test removes events with RemoveBeforeUpgrade,
// puts the tombstones back in their old table and the schema version before the migration,
// reopens the store (which runs it) and checks the result with TombstonesUpgraded.

// TombstonesBeforeUpgrade is what RemoveBeforeUpgrade did: the five events it appended, of
// which the first three are removed, and their tombstones as the store read them back.
type TombstonesBeforeUpgrade struct {
	IDs        []uuid.UUID
	Tombstones []strata.Tombstone
}

// RemoveBeforeUpgrade appends five events of a plain tenant, a tenant JSON escapes and no
// tenant, and removes the first three (one of each).
func RemoveBeforeUpgrade(t testing.TB, s strata.RetentionStore) TombstonesBeforeUpgrade {
	t.Helper()
	ctx := testContext(t)
	st, ok := s.(strata.Store)
	if !ok {
		t.Fatalf("%T is no strata.Store", s)
	}
	var b TombstonesBeforeUpgrade
	for i, tenant := range []string{"acme", `esc"aped`, "", "acme", `esc"aped`} {
		id := uuid.Must(uuid.NewV7())
		if _, err := st.Append(ctx, "upgrade-"+strings.Repeat("x", i+1), strata.NoStream, strata.EventData{ID: id, Type: "Issued", Data: []byte(`{"cn":"a"}`),
			Meta: strata.Metadata{Tenant: tenant, Principal: "op"}}); err != nil {
			t.Fatal(err)
		}
		b.IDs = append(b.IDs, id)
	}
	run := uuid.Must(uuid.NewV7())
	var ts []strata.Tombstone
	for i, id := range b.IDs[:3] {
		ts = append(ts, strata.Tombstone{EventID: id, LeafHash: bytes.Repeat([]byte{byte(i + 1)}, 32), Run: run})
	}
	if n, err := s.TombstoneEvents(ctx, ts); n != 3 || err != nil {
		t.Fatalf("TombstoneEvents: %d, %v", n, err)
	}
	for _, id := range b.IDs[:3] {
		tomb, err := s.Tombstone(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		b.Tombstones = append(b.Tombstones, tomb)
	}
	return b
}

// TombstonesUpgraded checks a store reopened after the migration: each tombstone of b reads
// back the same, the events never removed have none, and they alone are retention candidates
// (a removed event of the escaped tenant is not, though it may stay in an index of events a
// backend keys on their payload).
func TombstonesUpgraded(t testing.TB, s strata.RetentionStore, b TombstonesBeforeUpgrade) {
	t.Helper()
	ctx := testContext(t)
	for i, id := range b.IDs {
		got, err := s.Tombstone(ctx, id)
		if i >= len(b.Tombstones) {
			if !errors.Is(err, strata.ErrNotFound) {
				t.Errorf("event %d, never removed: Tombstone = %+v, %v; want NotFound", i, got, err)
			}
			continue
		}
		want := b.Tombstones[i]
		if err != nil || !bytes.Equal(got.LeafHash, want.LeafHash) || got.Run != want.Run || !got.RemovedAt.Equal(want.RemovedAt) {
			t.Errorf("event %d: Tombstone = %+v, %v; want %+v", i, got, err, want)
		}
	}
	page, err := s.RetentionCandidates(ctx, strata.RetentionSelect{AnyTenant: true, RecordedBefore: time.Now().Add(time.Hour), Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	var got []uuid.UUID
	for _, ev := range page.Events {
		got = append(got, ev.ID)
	}
	if rest := b.IDs[len(b.Tombstones):]; !slices.Equal(got, rest) {
		t.Errorf("retention candidates after the upgrade: %v, want the events never removed %v", got, rest)
	}
}
