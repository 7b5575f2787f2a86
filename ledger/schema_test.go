package ledger_test

import (
	"bytes"
	"testing"

	"github.com/google/uuid"

	"github.com/strata-events/strata"
	"github.com/strata-events/strata/ledger"
)

// Two events that differ in their schema only never share a leaf, even where a schema lies
// outside the 32 bits of the encoding (a row edited in the database).
func TestLeafSchemaIsNotTruncated(t *testing.T) {
	id := uuid.MustParse("0190e3c2-0000-7000-8000-000000000001")
	a := strata.Event{ID: id, Stream: "s", Version: 1, Type: "T", Schema: 1, Data: []byte(`{}`)}
	for _, schema := range []int{1 + 1<<32, strata.MaxSchema + 1, -1} {
		b := a
		b.Schema = schema
		if bytes.Equal(ledger.EncodeLeaf(nil, &a), ledger.EncodeLeaf(nil, &b)) {
			t.Errorf("schema %d and schema %d encode to the same leaf", a.Schema, b.Schema)
		}
	}
	if got := strata.Schema32(strata.MaxSchema); got != uint32(strata.MaxSchema) {
		t.Errorf("Schema32(MaxSchema) = %d", got)
	}
}
