package query_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/strata-events/strata"
	"github.com/strata-events/strata/internal/backends"
	"github.com/strata-events/strata/query"
)

// TestEntityHistoryEscapedIDs: an entity's ID in a payload is a JSON string, which may spell
// characters as escapes (encoding/json writes & < > as \u0026 \u003c \u003e, other encoders
// write any non-ASCII character as \uXXXX). EntityHistory finds the events whatever the
// spelling, as it finds those that spell the ID plainly.
func TestEntityHistoryEscapedIDs(t *testing.T) {
	ctx := testCtx(t)
	st, _ := backends.Open(t, "inmem")
	for _, id := range []string{"R&D-7", "<9B>", "é-1", "plain-1"} {
		marshalled, err := json.Marshal(map[string]string{"serial": id})
		if err != nil {
			t.Fatal(err)
		}
		ascii := []byte(`{"serial":"`)
		for _, r := range id {
			if r < 0x80 {
				ascii = append(ascii, byte(r))
			} else {
				ascii = append(ascii, []byte(`\u00e9`)...) // the only non-ASCII rune used
			}
		}
		ascii = append(ascii, `"}`...)
		stream := "certificate-" + id
		mustAppend(t, st, stream, strata.EventData{Type: "Issued", Data: marshalled, Meta: strata.Metadata{Tenant: "ca-1"}},
			strata.EventData{Type: "Noted", Data: ascii, Meta: strata.Metadata{Tenant: "ca-1"}})
		var got []query.Entry
		for e, err := range query.EntityHistory(ctx, st, query.Entity{Tenant: "ca-1", ID: id}) {
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, e)
		}
		if len(got) != 2 || got[0].Stream != stream || got[1].Stream != stream {
			t.Errorf("entity %q (payloads %s and %s): %d entries, want 2", id, marshalled, ascii, len(got))
		}
	}
}

// TestEntityHistoryFoldsTheTenantsEventsAlone: in a stream that two tenants write, an entity
// history of one tenant folds that tenant's events alone, so that no value of the other's shows
// in a diff (as the old value of a field both set).
func TestEntityHistoryFoldsTheTenantsEventsAlone(t *testing.T) {
	ctx := testCtx(t)
	st, _ := backends.Open(t, "inmem")
	mustAppend(t, st, "certificate-7F3A",
		strata.EventData{Type: "Noted", Data: []byte(`{"note":"B-SECRET"}`), Meta: strata.Metadata{Tenant: "beta"}},
		strata.EventData{Type: "Issued", Data: []byte(`{"serial":"7F3A","note":"mine"}`), Meta: strata.Metadata{Tenant: "acme"}})
	n := 0
	for e, err := range query.EntityHistory(ctx, st, query.Entity{Tenant: "acme", ID: "7F3A"}) {
		if err != nil {
			t.Fatal(err)
		}
		n++
		if b, _ := json.Marshal(e); strings.Contains(string(b), "B-SECRET") {
			t.Fatalf("acme's entity history shows beta's data: %s", b)
		}
	}
	if n != 1 {
		t.Fatalf("%d entries, want acme's one", n)
	}
}
