package ledger

import (
	"context"
	"crypto/rand"
	"fmt"
	"testing"

	"github.com/strata-events/strata"
	"github.com/strata-events/strata/inmem"
)

// TestTileCacheMatchesRehash checks that every node a cached full tile answers equals the hash
// re-computed from the tile's bottom row, and that only full tiles above level 0 are cached.
func TestTileCacheMatchesRehash(t *testing.T) {
	t.Parallel()
	data := make([]byte, tileW*hsize)
	rand.Read(data)
	c := newTileCache()
	c.add(strata.LedgerTileID{Level: 0, Index: 7}, data)
	c.add(strata.LedgerTileID{Level: 1, Index: 8}, data[:len(data)-hsize])
	if _, ok := c.get(strata.LedgerTileID{Level: 0, Index: 7}); ok {
		t.Fatal("a level-0 tile was cached")
	}
	if _, ok := c.get(strata.LedgerTileID{Level: 1, Index: 8}); ok {
		t.Fatal("a partial tile was cached")
	}
	id := strata.LedgerTileID{Level: 1, Index: 3}
	c.add(id, data)
	tt, ok := c.get(id)
	if !ok {
		t.Fatal("a full level-1 tile was not cached")
	}
	for n := 1; n <= tileW; n *= 2 {
		for start := 0; start < tileW; start += n {
			if got, want := tt.node(start, n), subtreeRoot(data[start*hsize:(start+n)*hsize]); got != want {
				t.Fatalf("node of %d hashes at %d: %x, want %x", n, start, got, want)
			}
		}
	}
}

// TestCachedProofsVerify builds a tree with full tiles above level 0 and checks that proofs
// made through the prover's cache (asked twice, so the second use hits it) verify against the
// root computed without it.
func TestCachedProofsVerify(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a tree of 66,000 leaves")
	}
	t.Parallel()
	ctx := context.Background()
	st := inmem.New()
	defer st.Close()
	const n = tileW*tileW + 464 // one full level-1 tile and some
	for i := 0; i < n; i += 1000 {
		evs := make([]strata.EventData, min(1000, n-i))
		for j := range evs {
			evs[j] = strata.EventData{Type: "CertificateIssued", Data: []byte(`{}`)}
		}
		if _, err := st.Append(ctx, fmt.Sprintf("certificate-%d", i), strata.NoStream, evs...); err != nil {
			t.Fatal(err)
		}
	}
	s, err := NewSealer(st)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.SealOnce(ctx); err != nil {
		t.Fatal(err)
	}
	root, err := rootAt(ctx, newTileReader(st), n)
	if err != nil {
		t.Fatal(err)
	}
	p, err := NewProver(st)
	if err != nil {
		t.Fatal(err)
	}
	var leaves []strata.LedgerLeaf
	for _, idx := range []uint64{0, 1, 255, 256, 40_000, tileW*tileW - 1, tileW * tileW, n - 1} {
		for l, err := range st.LedgerLeaves(ctx, idx) {
			if err != nil {
				t.Fatal(err)
			}
			leaves = append(leaves, l)
			break
		}
	}
	for round := range 2 {
		for _, l := range leaves {
			pr, err := p.Inclusion(ctx, l.Index, n)
			if err != nil {
				t.Fatal(err)
			}
			h, ok, err := (&auditor{ctx: ctx, ls: st}).storedLeafHash(l.Index)
			if err != nil || !ok {
				t.Fatalf("leaf %d: %v", l.Index, err)
			}
			if err := VerifyInclusion(l.Index, n, h, pr, root); err != nil {
				t.Fatalf("round %d, leaf %d: %v", round, l.Index, err)
			}
		}
	}
	if len(p.cache.trees) == 0 {
		t.Fatal("the prover cached no tile")
	}
}
