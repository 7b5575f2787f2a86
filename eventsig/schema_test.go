package eventsig_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"testing"

	"github.com/google/uuid"

	"github.com/strata-events/strata"
	"github.com/strata-events/strata/codec"
	"github.com/strata-events/strata/eventsig"
)

// A signature made for one schema does not verify for another, even one outside the 32 bits
// the digest holds it in (a row edited in the database).
func TestSignatureSchemaIsNotTruncated(t *testing.T) {
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	tr := eventsig.Transform(eventsig.NewEd25519("k", priv))
	rec := codec.Record{ID: uuid.New(), Type: "Issued", Schema: 1, Data: []byte(`{}`)}
	if err := tr.Encode(context.Background(), nil, &rec); err != nil {
		t.Fatal(err)
	}
	e := strata.Event{ID: rec.ID, Stream: "s", Version: 1, Type: rec.Type, Schema: 1 + 1<<32, Data: rec.Data, Meta: rec.Meta}
	if kid, err := eventsig.Verify(e, eventsig.Ed25519Verifier("k", priv.Public().(ed25519.PublicKey))); err == nil {
		t.Fatalf("signature made for schema 1 verifies (key %s) for schema %d", kid, e.Schema)
	}
}
