package sqlite_test

import (
	"context"
	"crypto/rand"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/strata-events/strata"
	"github.com/strata-events/strata/ledger"
)

// sealedOne appends two events, seals them and signs a checkpoint, and returns the first.
func sealedOne(t *testing.T) (strata.Store, strata.Event, ledger.Policy) {
	ctx := context.Background()
	st := open(t)
	if _, err := st.Append(ctx, "cert-1", strata.Any,
		strata.EventData{Type: "Revoked", Data: []byte(`{"serial":"AB12"}`), Meta: strata.Metadata{Principal: "alice"}},
		strata.EventData{Type: "Issued", Data: []byte(`{"serial":"CD34"}`)}); err != nil {
		t.Fatal(err)
	}
	skey, vkey, _ := ledger.GenerateKey(rand.Reader, "ca.example/strata")
	signer, _ := ledger.NewSigner(skey)
	policy, _ := ledger.NewPolicy(vkey, nil, 0)
	s, _ := ledger.NewSealer(st, ledger.WithSigner(signer))
	if _, _, err := s.SealOnce(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
	for e, err := range st.ReadAll(ctx, strata.ReadAllOptions{}) {
		if err != nil {
			t.Fatal(err)
		}
		return st, e, policy
	}
	t.Fatal("no event")
	return nil, strata.Event{}, policy
}

// A proof bundle carries its leaf's content, which retention removed: the prover refuses a
// bundle for a tombstoned event with a NotFound error that says so, rather than hand out one
// that cannot verify.
func TestNoBundleForATombstonedEvent(t *testing.T) {
	ctx := context.Background()
	st, e, policy := sealedOne(t)
	rs := st.(strata.RetentionStore)
	h := ledger.LeafHash(ledger.EncodeLeaf(nil, &e))
	if _, err := rs.TombstoneEvents(ctx, []strata.Tombstone{{EventID: e.ID, LeafHash: h[:], Run: uuid.New()}}); err != nil {
		t.Fatal(err)
	}
	p, _ := ledger.NewProver(st)
	b, err := p.Bundle(ctx, e.ID)
	if err == nil {
		_, err = b.Verify(policy)
		t.Fatalf("prover returned a bundle for a tombstoned event; verify: %v", err)
	}
	if strata.ErrorCode(err) != strata.NotFound || !strings.Contains(err.Error(), "retention removed") {
		t.Errorf("bundle of a tombstoned event: %v", err)
	}
}
