package strata_test

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/strata-events/strata"
)

func TestPrepareEventQuery(t *testing.T) {
	q, _, ok, err := strata.PrepareEventQuery("q", strata.EventQuery{Tenant: "acme"})
	if err != nil || ok || q.Limit != strata.DefaultQueryLimit {
		t.Fatalf("defaults: %+v, %v, %v", q, ok, err)
	}
	c := strata.QueryCursor{RecordedAt: time.Date(2023, 3, 14, 9, 0, 0, 1000, time.UTC), Position: strata.Position{Commit: 1017, Event: 42}}
	_, got, ok, err := strata.PrepareEventQuery("q", strata.EventQuery{Tenant: "acme", Cursor: c.Encode()})
	if err != nil || !ok || got != c {
		t.Fatalf("cursor round trip: %+v, %v, %v", got, ok, err)
	}
	if _, _, _, err := strata.PrepareEventQuery("q", strata.EventQuery{}); !errors.Is(err, strata.ErrInvalid) {
		t.Fatalf("no tenant: %v", err)
	}
}

func TestPrefixEnd(t *testing.T) {
	for p, want := range map[string]string{"a": "b", "certificate-": "certificate.", "é": "ê", "a\U0010FFFF": "b", "\uD7FF": "\uE000"} {
		got, ok := strata.PrefixEnd(p)
		if !ok || got != want {
			t.Errorf("PrefixEnd(%q) = %q, %v; want %q", p, got, ok, want)
		}
		if !strings.HasPrefix(p+"zzz", p) || !(p+"zzz" < got) || !(p >= p) {
			t.Errorf("%q: range does not cover its extensions", p)
		}
	}
	if _, ok := strata.PrefixEnd("\U0010FFFF"); ok {
		t.Error("PrefixEnd of the top code point has a bound")
	}
}

func FuzzDecodeQueryCursor(f *testing.F) {
	f.Add(strata.QueryCursor{RecordedAt: time.Unix(1700000000, 123000).UTC(), Position: strata.Position{Commit: 7, Event: 9}}.Encode())
	f.Add("")
	f.Add("AAAA")
	f.Fuzz(func(t *testing.T, s string) {
		c, ok, err := strata.DecodeQueryCursor(s)
		if err != nil {
			if !errors.Is(err, strata.ErrInvalid) {
				t.Fatalf("%q: %v is not Invalid", s, err)
			}
			return
		}
		if ok && c.Encode() != s {
			t.Fatalf("%q decodes to %+v, which encodes to %q", s, c, c.Encode())
		}
	})
}

func TestTombstonesInParts(t *testing.T) {
	ctx := context.Background()
	id := func(i int) uuid.UUID { return uuid.UUID{15: byte(i), 14: byte(i >> 8)} }
	var ts []strata.Tombstone
	for i := range 1200 {
		ts = append(ts, strata.Tombstone{EventID: id(1199 - i), Run: uuid.UUID{0: 1}})
	}
	// Event 5 named again: its last tombstone is the one removed.
	ts = append(ts, strata.Tombstone{EventID: id(5), Run: uuid.UUID{0: 2}})
	var mu sync.Mutex
	var parts [][]strata.Tombstone
	remove := func(_ context.Context, p []strata.Tombstone) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		parts = append(parts, p)
		if p[0].EventID == id(0) {
			return len(p) - 1, errors.New("part of the low IDs failed")
		}
		return len(p), nil
	}
	n, err := strata.TombstonesInParts(ctx, ts, 4, 500, remove)
	if err == nil || err.Error() != "part of the low IDs failed" {
		t.Fatalf("error %v, want the failed part's", err)
	}
	if n != 1199 {
		t.Fatalf("removed %d, want the parts' 1,199", n)
	}
	if len(parts) != 2 {
		t.Fatalf("%d parts of 1,200 tombstones, want 2 (of at least 500)", len(parts))
	}
	var got []strata.Tombstone
	slices.SortFunc(parts, func(a, b []strata.Tombstone) int { return bytes.Compare(a[0].EventID[:], b[0].EventID[:]) })
	for _, p := range parts {
		got = append(got, p...)
	}
	if len(got) != 1200 {
		t.Fatalf("%d tombstones in the parts, want 1,200", len(got))
	}
	for i, tomb := range got {
		if tomb.EventID != id(i) {
			t.Fatalf("tombstone %d is of %s, want %s: the parts go in event ID order", i, tomb.EventID, id(i))
		}
		want := byte(1)
		if i == 5 {
			want = 2
		}
		if tomb.Run[0] != want {
			t.Fatalf("event %d has run %d, want %d", i, tomb.Run[0], want)
		}
	}
	// Fewer than two parts' worth: one call with everything.
	parts = nil
	if n, err := strata.TombstonesInParts(ctx, ts[:999], 2, 500, remove); err != nil || n != 999 || len(parts) != 1 {
		t.Fatalf("999 tombstones: %d removed in %d parts, %v", n, len(parts), err)
	}
}

// TestTombstoneTenantBytes checks TombstoneTenantBytes against Metadata.MarshalJSON for every
// byte: a tenant of one byte is written as it is exactly when the byte is in it, and so is a
// tenant of all of them.
func TestTombstoneTenantBytes(t *testing.T) {
	asIs := func(tenant string) bool {
		b, err := strata.Metadata{Tenant: tenant}.MarshalJSON()
		return err == nil && string(b) == `{"tenant":"`+tenant+`"}`
	}
	for c := range 256 {
		tenant := string([]byte{byte(c)})
		if want := strings.Contains(strata.TombstoneTenantBytes, tenant); asIs(tenant) != want {
			t.Errorf("byte %#02x: written as it is %v, in TombstoneTenantBytes %v", c, !want, want)
		}
	}
	if !asIs(strata.TombstoneTenantBytes) {
		t.Errorf("a tenant of all of TombstoneTenantBytes is not written as it is")
	}
}
