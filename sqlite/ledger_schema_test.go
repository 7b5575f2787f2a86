package sqlite_test

import (
	"context"
	"crypto/rand"
	"testing"

	"github.com/strata-events/strata"
	"github.com/strata-events/strata/ledger"
)

// An edit of a sealed event's schema to a value outside the leaf's 32 bits is detected by the
// audit, and such a schema cannot be appended.
func TestAuditDetectsASchemaEdit(t *testing.T) {
	ctx := context.Background()
	st := open(t)
	if _, err := st.Append(ctx, "cert-1", strata.Any, strata.EventData{Type: "Issued", Schema: 1, Data: []byte(`{"n":1}`)}); err != nil {
		t.Fatal(err)
	}
	skey, vkey, _ := ledger.GenerateKey(rand.Reader, "ca.example/strata")
	signer, _ := ledger.NewSigner(skey)
	policy, _ := ledger.NewPolicy(vkey, nil, 0)
	s, err := ledger.NewSealer(st, ledger.WithSigner(signer))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.SealOnce(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
	rawExec(t, st, `UPDATE events SET schema = 4294967297`)()
	rep, err := ledger.Audit(ctx, st, ledger.AuditOptions{Policy: &policy})
	if err != nil {
		t.Fatal(err)
	}
	if rep.OK() {
		t.Fatalf("audit reports OK (%d leaves, %d checkpoints) after the sealed event's schema was changed from 1 to 4294967297", rep.Leaves, rep.Checkpoints)
	}
	if _, err := st.Append(ctx, "cert-2", strata.Any, strata.EventData{Type: "Issued", Schema: 1<<32 + 7}); strata.ErrorCode(err) != strata.Invalid {
		t.Errorf("append of schema %d: %v, want an Invalid error", 1<<32+7, err)
	}
}
