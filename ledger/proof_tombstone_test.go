package ledger_test

import (
	"context"
	"crypto/rand"
	"testing"

	"github.com/google/uuid"

	"github.com/strata-events/strata"
	"github.com/strata-events/strata/inmem"
	"github.com/strata-events/strata/ledger"
)

// TestBundleOfAnEventTombstonedBeforeSealing: retention with AllowUnsealed may remove a payload
// before the sealer reads the event, which then seals the tombstoned row: its leaf is what the
// store holds, and a bundle of it verifies. The prover refused every tombstoned event, saying
// that no bundle could prove it.
func TestBundleOfAnEventTombstonedBeforeSealing(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := inmem.New()
	defer st.Close()
	skey, vkey, _ := ledger.GenerateKey(rand.Reader, "ca.example/strata")
	signer, _ := ledger.NewSigner(skey)
	policy, _ := ledger.NewPolicy(vkey, nil, 0)
	_, err := st.Append(ctx, "certificate-7F3A", strata.NoStream,
		strata.EventData{Type: "CertificateIssued", Data: []byte(`{"serial":"7F3A"}`), Meta: strata.Metadata{Tenant: "acme", Principal: "ra"}},
		strata.EventData{Type: "CertificateIssued", Data: []byte(`{"serial":"7F3B"}`), Meta: strata.Metadata{Tenant: "acme", Principal: "ra"}})
	if err != nil {
		t.Fatal(err)
	}
	var evs []strata.Event
	for e, err := range st.ReadAll(ctx, strata.ReadAllOptions{}) {
		if err != nil {
			t.Fatal(err)
		}
		evs = append(evs, e)
	}
	removed := evs[0]
	h := ledger.LeafHash(ledger.EncodeLeaf(nil, &removed))
	if n, err := st.TombstoneEvents(ctx, []strata.Tombstone{{EventID: removed.ID, LeafHash: h[:], Run: uuid.New()}}); err != nil || n != 1 {
		t.Fatalf("tombstone: %d, %v", n, err)
	}
	s, _ := ledger.NewSealer(st, ledger.WithSigner(signer))
	if _, _, err := s.SealOnce(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
	p, _ := ledger.NewProver(st)
	b, err := p.Bundle(ctx, removed.ID)
	if err != nil {
		t.Fatalf("bundle of an event sealed as a tombstone: %v", err)
	}
	v, err := b.Verify(policy)
	if err != nil || v.Leaf.ID != removed.ID || string(v.Leaf.Data) != string(strata.TombstoneData) {
		t.Fatalf("verify: %+v, %v", v.Leaf, err)
	}
	// An event tombstoned after sealing has no bundle: its sealed content is gone.
	other := evs[1]
	h = ledger.LeafHash(ledger.EncodeLeaf(nil, &other))
	if _, err := st.TombstoneEvents(ctx, []strata.Tombstone{{EventID: other.ID, LeafHash: h[:], Run: uuid.New()}}); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Bundle(ctx, other.ID); strata.ErrorCode(err) != strata.NotFound {
		t.Fatalf("bundle of an event tombstoned after sealing: %v, want NotFound", err)
	}
}
