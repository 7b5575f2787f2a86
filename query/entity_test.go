package query_test

import (
	"encoding/json"
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
