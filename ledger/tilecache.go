package ledger

import (
	"sync"

	"github.com/strata-events/strata"
)

// maxCachedTiles bounds a tileCache: 1,024 trees of 255 hashes, 8 MiB. A tree of 2^32 leaves
// has 65,793 tiles above level 0; a tree of 10M leaves has 154.
const maxCachedTiles = 1024

// tileCache keeps, for a Prover, every node hash inside full tiles above level 0. A full tile
// never changes, and the tiles above level 0 are few and shared by every proof, so each proof
// then re-hashes only inside its level-0 tile instead of some 250 SHA-256 per tile level.
type tileCache struct {
	mu    sync.Mutex
	trees map[strata.LedgerTileID]*tileTree
}

// tileTree holds the hashes of a full tile at each height inside it: levels[r] holds the
// tileW>>r roots of its subtrees of 2^r leaves.
type tileTree struct {
	levels [tileH + 1][]Hash
}

func newTileCache() *tileCache { return &tileCache{trees: make(map[strata.LedgerTileID]*tileTree)} }

// get returns the tree of tile t, if cached.
func (c *tileCache) get(t strata.LedgerTileID) (*tileTree, bool) {
	if c == nil {
		return nil, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	tt, ok := c.trees[t]
	return tt, ok
}

// add caches the tree of t when t is a full tile above level 0 and there is room.
func (c *tileCache) add(t strata.LedgerTileID, data []byte) {
	if c == nil || t.Level == 0 || len(data) != tileW*hsize {
		return
	}
	c.mu.Lock()
	_, have := c.trees[t]
	full := len(c.trees) >= maxCachedTiles
	c.mu.Unlock()
	if have || full {
		return
	}
	tt := &tileTree{}
	tt.levels[0] = make([]Hash, tileW)
	for i := range tileW {
		tt.levels[0][i] = Hash(data[i*hsize : (i+1)*hsize])
	}
	for r := 1; r <= tileH; r++ {
		below := tt.levels[r-1]
		tt.levels[r] = make([]Hash, len(below)/2)
		for i := range tt.levels[r] {
			tt.levels[r][i] = nodeHash(below[2*i][:], below[2*i+1][:])
		}
	}
	c.mu.Lock()
	c.trees[t] = tt
	c.mu.Unlock()
}

// node returns the root of the run of n hashes from start (n a power of two, start a
// multiple of n).
func (tt *tileTree) node(start, n int) Hash {
	r := 0
	for 1<<r < n {
		r++
	}
	return tt.levels[r][start>>r]
}
