package ledger_test

import (
	"context"
	"crypto/rand"
	"errors"
	"testing"

	"github.com/strata-events/strata"
	"github.com/strata-events/strata/inmem"
	"github.com/strata-events/strata/ledger"
)

// TestConsistencyBundle proves offline that a later checkpoint extends an earlier one, and
// refuses every bundle that does not.
func TestConsistencyBundle(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := inmem.New()
	defer st.Close()
	skey, vkey, err := ledger.GenerateKey(rand.Reader, "ca.example/strata")
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ledger.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	policy, err := ledger.NewPolicy(vkey, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	s, err := ledger.NewSealer(st, ledger.WithSigner(signer))
	if err != nil {
		t.Fatal(err)
	}
	checkpoint := func(n int) []byte {
		t.Helper()
		appendN(t, st, 0, n)
		if _, _, err := s.SealOnce(ctx); err != nil {
			t.Fatal(err)
		}
		cp, err := s.Checkpoint(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return cp.Note
	}
	old := checkpoint(37)
	p, err := ledger.NewProver(st)
	if err != nil {
		t.Fatal(err)
	}
	// A bundle kept from an earlier inclusion proof serves as the older checkpoint.
	var first strata.Event
	for e, err := range st.ReadAll(ctx, strata.ReadAllOptions{Limit: 1}) {
		if err != nil {
			t.Fatal(err)
		}
		first = e
	}
	ib, err := p.Bundle(ctx, first.ID)
	if err != nil {
		t.Fatal(err)
	}
	if note, err := ledger.CheckpointNote(ib.Marshal()); err != nil || string(note) != string(old) {
		t.Fatalf("checkpoint of a proof bundle: %q, %v", note, err)
	}
	newer := checkpoint(100)

	b, err := p.ConsistencyBundle(ctx, 37)
	if err != nil {
		t.Fatal(err)
	}
	parsed, err := ledger.ParseConsistencyBundle(b.Marshal())
	if err != nil {
		t.Fatal(err)
	}
	v, err := parsed.Verify(policy, old)
	if err != nil || v.Old.Size != 37 || v.New.Size != 137 || string(parsed.Checkpoint) != string(newer) {
		t.Fatalf("verify: %+v, %v", v, err)
	}
	// From a checkpoint to itself: an empty proof.
	if same, err := p.ConsistencyBundle(ctx, 137); err != nil || len(same.Proof) != 0 {
		t.Fatalf("self-consistency: %+v, %v", same, err)
	} else if _, err := same.Verify(policy, newer); err != nil {
		t.Fatal(err)
	}

	invalid := func(name string, err error) {
		t.Helper()
		if !errors.Is(err, strata.ErrInvalid) {
			t.Errorf("%s: %v, want Invalid", name, err)
		}
	}
	// A tampered proof hash.
	bad := *parsed
	bad.Proof = append([]ledger.Hash(nil), parsed.Proof...)
	bad.Proof[0][0] ^= 1
	_, err = bad.Verify(policy, old)
	invalid("tampered proof", err)
	// A bundle claiming another older size.
	bad = *parsed
	bad.OldSize = 36
	_, err = bad.Verify(policy, old)
	invalid("other old size", err)
	// Older and newer swapped.
	_, err = (&ledger.ConsistencyBundle{OldSize: 137, Checkpoint: old}).Verify(policy, newer)
	invalid("swapped checkpoints", err)
	// A checkpoint signed by another key.
	otherKey, _, _ := ledger.GenerateKey(rand.Reader, "ca.example/strata")
	otherSigner, _ := ledger.NewSigner(otherKey)
	forged, err := ledger.SignCheckpoint(v.New, otherSigner)
	if err != nil {
		t.Fatal(err)
	}
	_, err = (&ledger.ConsistencyBundle{OldSize: 37, Proof: parsed.Proof, Checkpoint: forged}).Verify(policy, old)
	invalid("forged checkpoint", err)
	// Larger than the latest checkpoint.
	_, err = p.ConsistencyBundle(ctx, 138)
	invalid("beyond the head", err)
	// Syntax.
	for _, text := range []string{"", "strata/tlog-consistency@v1\n", "strata/tlog-consistency@v1\nold 01\n\nx", "strata/tlog-consistency@v1\nold 3\n!!\n\nx", "c2sp.org/tlog-proof@v1\nold 3\n\nx"} {
		_, err := ledger.ParseConsistencyBundle([]byte(text))
		invalid("parse "+text, err)
	}
}

// FuzzParseConsistencyBundle checks that the parser never panics and that what it accepts
// survives a round trip.
func FuzzParseConsistencyBundle(f *testing.F) {
	f.Add([]byte("strata/tlog-consistency@v1\nold 3\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n\nnote"))
	f.Add([]byte("strata/tlog-consistency@v1\nold 0\n\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		b, err := ledger.ParseConsistencyBundle(data)
		if err != nil {
			return
		}
		again, err := ledger.ParseConsistencyBundle(b.Marshal())
		if err != nil || again.OldSize != b.OldSize || len(again.Proof) != len(b.Proof) || string(again.Checkpoint) != string(b.Checkpoint) {
			t.Fatalf("round trip: %+v, %v", again, err)
		}
	})
}

// TestConsistencyWitnessPolicyIsForTheNewer: the older checkpoint is the one the verifier
// trusts already (kept, say, from a proof bundle of last year, before the log had witnesses);
// the witness policy applies to the newer checkpoint, the one the bundle brings (docs/LEDGER.md,
// "Consistency bundles"). Verify required the quorum of the older one too, so an auditor could
// not move from an old, uncosigned checkpoint to a cosigned one.
func TestConsistencyWitnessPolicyIsForTheNewer(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := inmem.New()
	defer st.Close()
	skey, vkey, _ := ledger.GenerateKey(rand.Reader, "ca.example/strata")
	signer, _ := ledger.NewSigner(skey)
	wskey, wvkey, _ := ledger.GenerateWitnessKey(rand.Reader, "witness.example")
	witness, _ := ledger.NewWitnessSigner(wskey, nil)
	logOnly, _ := ledger.NewPolicy(vkey, nil, 0)
	withWitness, err := ledger.NewPolicy(vkey, []string{wvkey}, 1)
	if err != nil {
		t.Fatal(err)
	}
	s, _ := ledger.NewSealer(st, ledger.WithSigner(signer))
	checkpoint := func(n int) strata.LedgerCheckpoint {
		t.Helper()
		appendN(t, st, 0, n)
		if _, _, err := s.SealOnce(ctx); err != nil {
			t.Fatal(err)
		}
		cp, err := s.Checkpoint(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return cp
	}
	old := checkpoint(10) // before the log had a witness
	cur := checkpoint(20)
	if cur.Note, err = ledger.Cosign(cur.Note, logOnly.Log, witness); err != nil {
		t.Fatal(err)
	}
	if err := st.SaveLedgerCheckpoint(ctx, cur); err != nil {
		t.Fatal(err)
	}
	p, _ := ledger.NewProver(st)
	b, err := p.ConsistencyBundle(ctx, old.Size)
	if err != nil {
		t.Fatal(err)
	}
	v, err := b.Verify(withWitness, old.Note)
	if err != nil || len(v.Witnesses) != 1 || v.Old.Size != 10 || v.New.Size != 30 {
		t.Fatalf("from an uncosigned older checkpoint to a cosigned one: %+v, %v", v, err)
	}
	// The newer checkpoint still needs the quorum.
	bare, _ := ledger.SignCheckpoint(v.New, signer)
	if _, err := (&ledger.ConsistencyBundle{OldSize: b.OldSize, Proof: b.Proof, Checkpoint: bare}).Verify(withWitness, old.Note); !errors.Is(err, strata.ErrInvalid) {
		t.Fatalf("a newer checkpoint without the witness's cosignature: %v, want Invalid", err)
	}
	// And the older one is still checked against the log's key.
	otherKey, _, _ := ledger.GenerateKey(rand.Reader, "ca.example/strata")
	other, _ := ledger.NewSigner(otherKey)
	forgedOld, _ := ledger.SignCheckpoint(v.Old, other)
	if _, err := b.Verify(withWitness, forgedOld); !errors.Is(err, strata.ErrInvalid) {
		t.Fatalf("an older checkpoint signed by another key: %v, want Invalid", err)
	}
}
