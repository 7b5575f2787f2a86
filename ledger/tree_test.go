package ledger

import (
	"context"
	"crypto/sha256"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/strata-events/strata"
)

// tileStore is a strata.LedgerStore that keeps only tiles, for tests of the tree.
type tileStore struct {
	strata.LedgerStore
	tiles map[strata.LedgerTileID][]byte
	reads int
}

func (s *tileStore) LedgerTiles(_ context.Context, ids []strata.LedgerTileID) ([]strata.LedgerTile, error) {
	s.reads++
	var out []strata.LedgerTile
	for _, id := range ids {
		if d, ok := s.tiles[id]; ok {
			out = append(out, strata.LedgerTile{LedgerTileID: id, Data: d})
		}
	}
	return out, nil
}

// grow builds a tree of n leaves (leaf i is "leaf i"), flushing tiles into ts every flushEvery
// leaves, and returns tlog's stored hashes of the same leaves.
func grow(t testing.TB, n, flushEvery int) (*tileStore, *builder, []tlog.Hash) {
	ts := &tileStore{tiles: map[strata.LedgerTileID][]byte{}}
	b := newBuilder()
	var stored []tlog.Hash
	r := tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) {
		out := make([]tlog.Hash, len(idx))
		for i, x := range idx {
			out[i] = stored[x]
		}
		return out, nil
	})
	for i := range n {
		data := fmt.Appendf(nil, "leaf %d", i)
		if err := b.add(LeafHash(data)); err != nil {
			t.Fatal(err)
		}
		hs, err := tlog.StoredHashes(int64(i), data, r)
		if err != nil {
			t.Fatal(err)
		}
		stored = append(stored, hs...)
		if (i+1)%flushEvery == 0 || i == n-1 {
			for _, tl := range b.flush() {
				ts.tiles[tl.LedgerTileID] = tl.Data
			}
		}
	}
	return ts, b, stored
}

func tlogReader(stored []tlog.Hash) tlog.HashReader {
	return tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) {
		out := make([]tlog.Hash, len(idx))
		for i, x := range idx {
			out[i] = stored[x]
		}
		return out, nil
	})
}

// TestCrossCheckTlog compares roots and proofs with golang.org/x/mod/sumdb/tlog on the same
// leaves, for random tree sizes (a property test) and the sizes around tile edges.
func TestCrossCheckTlog(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	sizes := []int{1, 2, 3, 255, 256, 257, 511, 512, 513, 65535 + 2}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 20 {
		sizes = append(sizes, 1+rng.IntN(3000))
	}
	for _, n := range sizes {
		ts, b, stored := grow(t, n, 1+rng.IntN(700))
		r := tlogReader(stored)
		tr := newTileReader(ts)
		want, err := tlog.TreeHash(int64(n), r)
		if err != nil {
			t.Fatal(err)
		}
		if got := b.root(); got != Hash(want) {
			t.Fatalf("size %d: builder root %x, tlog %x", n, got, want)
		}
		for range 10 {
			m := 1 + rng.IntN(n) // an older tree size
			got, err := rootAt(ctx, tr, uint64(m))
			wantM, _ := tlog.TreeHash(int64(m), r)
			if err != nil || got != Hash(wantM) {
				t.Fatalf("root at %d of %d: %x, %v; tlog %x", m, n, got, err, wantM)
			}
			i := rng.IntN(m)
			p, err := inclusion(ctx, tr, uint64(i), uint64(m))
			if err != nil {
				t.Fatal(err)
			}
			tp, err := tlog.ProveRecord(int64(m), int64(i), r)
			if err != nil {
				t.Fatal(err)
			}
			if len(p) != len(tp) {
				t.Fatalf("inclusion %d in %d: %d hashes, tlog %d", i, m, len(p), len(tp))
			}
			for k := range p {
				if p[k] != Hash(tp[k]) {
					t.Fatalf("inclusion %d in %d: hash %d differs from tlog's", i, m, k)
				}
			}
			lh := LeafHash(fmt.Appendf(nil, "leaf %d", i))
			if err := tlog.CheckRecord(tp, int64(m), wantM, int64(i), tlog.Hash(lh)); err != nil {
				t.Fatalf("tlog rejects its own proof: %v", err)
			}
			if err := VerifyInclusion(uint64(i), uint64(m), lh, p, got); err != nil {
				t.Fatal(err)
			}
			// A proof must fail for another leaf or another root.
			if VerifyInclusion(uint64(i), uint64(m), LeafHash([]byte("other")), p, got) == nil {
				t.Fatalf("inclusion of a foreign leaf verified")
			}
			c, err := consistency(ctx, tr, uint64(m), uint64(n))
			if err != nil {
				t.Fatal(err)
			}
			tc, err := tlog.ProveTree(int64(n), int64(m), r)
			if err != nil {
				t.Fatal(err)
			}
			if len(c) != len(tc) {
				t.Fatalf("consistency %d→%d: %d hashes, tlog %d", m, n, len(c), len(tc))
			}
			for k := range c {
				if c[k] != Hash(tc[k]) {
					t.Fatalf("consistency %d→%d: hash %d differs from tlog's", m, n, k)
				}
			}
			if err := tlog.CheckTree(tc, int64(n), want, int64(m), wantM); err != nil {
				t.Fatalf("tlog rejects the consistency proof: %v", err)
			}
			if err := VerifyConsistency(uint64(m), uint64(n), got, Hash(want), c); err != nil {
				t.Fatal(err)
			}
			if m < n && VerifyConsistency(uint64(m), uint64(n), got, sha256.Sum256([]byte("x")), c) == nil {
				t.Fatalf("consistency with a foreign root verified")
			}
		}
		// Resuming from the tiles gives the same tree.
		rb, err := resume(ctx, ts, uint64(n))
		if err != nil {
			t.Fatalf("resume at %d: %v", n, err)
		}
		if rb.root() != b.root() {
			t.Fatalf("resume at %d: another root", n)
		}
		for l := range b.edge {
			if string(rb.edge[l]) != string(b.edge[l]) {
				t.Fatalf("resume at %d: partial tile of level %d differs", n, l)
			}
		}
	}
}

// TestProofReads checks that a proof costs a bounded number of tile reads (one query) and
// O(log N) hashes.
func TestProofReads(t *testing.T) {
	t.Parallel()
	ts, _, _ := grow(t, 70_000, 10_000)
	tr := newTileReader(ts)
	p, err := inclusion(context.Background(), tr, 12_345, 70_000)
	if err != nil {
		t.Fatal(err)
	}
	if ts.reads != 1 || len(tr.tiles) > 6 || len(p) > 17 {
		t.Fatalf("inclusion proof in 70,000 leaves: %d queries, %d tiles, %d hashes", ts.reads, len(tr.tiles), len(p))
	}
}

// TestTilePath matches tlog's tile paths, less the height that C2SP tlog-tiles fixes at 8.
func TestTilePath(t *testing.T) {
	for _, c := range []struct {
		l int
		n int64
		w int
	}{{0, 0, 256}, {0, 1234067, 5}, {2, 999, 256}, {1, 1000, 17}} {
		want := strings.Replace(tlog.Tile{H: 8, L: c.l, N: c.n, W: c.w}.Path(), "tile/8/", "tile/", 1)
		if got := TilePath(strata.LedgerTileID{Level: c.l, Index: uint64(c.n)}, c.w); got != want {
			t.Errorf("TilePath(%d, %d, %d) = %q, want %q", c.l, c.n, c.w, got, want)
		}
	}
}
