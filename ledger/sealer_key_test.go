package ledger_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"testing"

	"github.com/strata-events/strata"
	"github.com/strata-events/strata/inmem"
	"github.com/strata-events/strata/ledger"
)

// TestSealerKeepsOneLogKey: a sealer whose key did not sign the log's checkpoints refuses to
// sign on. It returned the other key's checkpoint as its own, and with new events would have
// mixed two keys' checkpoints in one log (or replaced the other's at the same size).
func TestSealerKeepsOneLogKey(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := inmem.New()
	defer st.Close()
	sealer := func(origin string) *ledger.Sealer {
		t.Helper()
		skey, _, err := ledger.GenerateKey(rand.Reader, origin)
		if err != nil {
			t.Fatal(err)
		}
		signer, err := ledger.NewSigner(skey)
		if err != nil {
			t.Fatal(err)
		}
		s, err := ledger.NewSealer(st, ledger.WithSigner(signer))
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	first := sealer("ca.example/strata")
	appendN(t, st, 0, 3)
	if _, _, err := first.SealOnce(ctx); err != nil {
		t.Fatal(err)
	}
	cp, err := first.Checkpoint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, other := range []*ledger.Sealer{sealer("ca.example/strata"), sealer("other.example/log")} {
		if _, err := other.Checkpoint(ctx); strata.ErrorCode(err) != strata.Invalid {
			t.Fatalf("checkpoint by another key: %v, want Invalid", err)
		}
		appendN(t, st, 3, 2)
		if _, _, err := other.SealOnce(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := other.Checkpoint(ctx); strata.ErrorCode(err) != strata.Invalid {
			t.Fatalf("checkpoint by another key after new events: %v, want Invalid", err)
		}
	}
	latest, err := st.LatestLedgerCheckpoint(ctx)
	if err != nil || latest.Size != cp.Size || !bytes.Equal(latest.Note, cp.Note) {
		t.Fatalf("latest checkpoint %d, %v: want the first key's at %d", latest.Size, err, cp.Size)
	}
	if next, err := first.Checkpoint(ctx); err != nil || next.Size != 7 {
		t.Fatalf("the log's own key signs on: %d, %v", next.Size, err)
	}
}
