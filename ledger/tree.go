package ledger

import (
	"context"
	"crypto/sha256"
	"fmt"
	"slices"

	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"

	"github.com/strata-events/strata"
)

// The tree is RFC 6962's: leaf hash SHA-256(0x00 || leaf), node hash SHA-256(0x01 || l || r).
// Its perfect subtree hashes are stored as C2SP tlog-tiles of height 8: tile (L, N) holds the
// hashes at tree level 8L, offsets 256N to 256N+255. Any node at levels 8L to 8L+7 is recomputed
// from one tile, so a proof reads O(log N) hashes from at most two tiles per tile level.

const (
	tileH = strata.LedgerTileHeight
	tileW = strata.LedgerTileWidth
	hsize = strata.LedgerHashSize
)

var hasher = rfc6962.DefaultHasher

var rangeFactory = &compact.RangeFactory{Hash: hasher.HashChildren}

// nodeHash is RFC 6962's interior node hash.
func nodeHash(l, r []byte) Hash {
	var b [1 + 2*hsize]byte
	b[0] = 1
	copy(b[1:], l)
	copy(b[1+hsize:], r)
	return sha256.Sum256(b[:])
}

// builder grows the tree leaf by leaf: a compact range for the root, and the partial tile of
// each tile level, emitting tiles as they fill. Its memory is bounded by 8 partial tiles.
type builder struct {
	rng   *compact.Range
	edge  [strata.MaxLedgerTileLevel + 1][]byte // partial tile data of each level
	dirty [strata.MaxLedgerTileLevel + 1]bool
	full  []strata.LedgerTile // tiles filled since the last flush
	err   error
}

func newBuilder() *builder { return &builder{rng: rangeFactory.NewEmptyRange(0)} }

// size returns the number of leaves.
func (b *builder) size() uint64 { return b.rng.End() }

// visit receives every perfect subtree the range completes; those at a tile level go to tiles.
func (b *builder) visit(id compact.NodeID, hash []byte) {
	if id.Level%tileH != 0 || b.err != nil {
		return
	}
	l := int(id.Level / tileH)
	off := int(id.Index % tileW)
	if len(b.edge[l]) != off*hsize {
		b.err = fmt.Errorf("tile %d/%d: hash %d arrives with %d hashes stored", l, id.Index/tileW, off, len(b.edge[l])/hsize)
		return
	}
	b.edge[l] = append(b.edge[l], hash...)
	b.dirty[l] = true
	if off == tileW-1 {
		b.full = append(b.full, strata.LedgerTile{LedgerTileID: strata.LedgerTileID{Level: l, Index: id.Index / tileW}, Data: b.edge[l]})
		b.edge[l] = make([]byte, 0, tileW*hsize)
		b.dirty[l] = false
	}
}

// add appends a leaf hash.
func (b *builder) add(h Hash) error {
	if err := b.rng.Append(h[:], b.visit); err != nil {
		return err
	}
	return b.err
}

// root returns the tree's root hash; that of the empty tree for size 0.
func (b *builder) root() Hash {
	var h Hash
	r, _ := b.rng.GetRootHash(nil) // cannot fail: the range starts at 0
	if r == nil {
		r = hasher.EmptyRoot()
	}
	copy(h[:], r)
	return h
}

// flush returns the tiles to store for the leaves added since the last flush: every tile that
// filled, and the partial tile of each level that changed.
func (b *builder) flush() []strata.LedgerTile {
	out := b.full
	b.full = nil
	for l := range b.edge {
		if b.dirty[l] && len(b.edge[l]) > 0 {
			out = append(out, strata.LedgerTile{LedgerTileID: strata.LedgerTileID{Level: l, Index: (b.size() >> (tileH * l)) / tileW}, Data: slices.Clone(b.edge[l])})
		}
		b.dirty[l] = false
	}
	return out
}

// resume returns a builder for a stored tree of size n, reading the compact range and the
// partial tiles from the store.
func resume(ctx context.Context, ls strata.LedgerStore, n uint64) (*builder, error) {
	b := newBuilder()
	if n == 0 {
		return b, nil
	}
	ids := compact.RangeNodes(0, n, nil)
	var edgeIDs []strata.LedgerTileID
	var widths []int
	for l := 0; l <= strata.MaxLedgerTileLevel; l++ {
		count := n >> (tileH * l)
		if count == 0 {
			break
		}
		if w := int(count % tileW); w > 0 {
			edgeIDs = append(edgeIDs, strata.LedgerTileID{Level: l, Index: count / tileW})
			widths = append(widths, w)
		}
	}
	tr := newTileReader(ls)
	hashes, err := tr.nodes(ctx, ids, edgeIDs...)
	if err != nil {
		return nil, err
	}
	if b.rng, err = rangeFactory.NewRange(0, n, hashes); err != nil {
		return nil, err
	}
	for i, id := range edgeIDs {
		d := tr.tiles[id]
		if len(d) < widths[i]*hsize {
			return nil, strata.Errorf(strata.Internal, "resume ledger", "tile %d/%d holds %d hashes, want %d for %d leaves", id.Level, id.Index, len(d)/hsize, widths[i], n)
		}
		b.edge[id.Level] = append(make([]byte, 0, tileW*hsize), d[:widths[i]*hsize]...)
	}
	return b, nil
}

// tileReader reads node hashes from stored tiles, caching the tiles it fetched.
type tileReader struct {
	ls    strata.LedgerStore
	tiles map[strata.LedgerTileID][]byte
	// cache, if set, holds the hashed trees of full tiles above level 0 across readers.
	cache *tileCache
}

func newTileReader(ls strata.LedgerStore) *tileReader {
	return &tileReader{ls: ls, tiles: make(map[strata.LedgerTileID][]byte)}
}

// nodeTile locates a node: its tile, and the run of hashes in the tile that it is the root of.
func nodeTile(id compact.NodeID) (strata.LedgerTileID, int, int) {
	l, r := id.Level/tileH, id.Level%tileH
	first := id.Index << r // offset at level 8l
	return strata.LedgerTileID{Level: int(l), Index: first / tileW}, int(first % tileW), 1 << r
}

// subtreeRoot returns the root of the perfect subtree whose 2^k leaves are the hashes in data.
func subtreeRoot(data []byte) Hash {
	if len(data) == hsize {
		return Hash(data)
	}
	half := len(data) / 2
	l, r := subtreeRoot(data[:half]), subtreeRoot(data[half:])
	return nodeHash(l[:], r[:])
}

// nodes returns the hashes of ids, fetching the tiles they lie in (and extra tiles) at once.
func (tr *tileReader) nodes(ctx context.Context, ids []compact.NodeID, extra ...strata.LedgerTileID) ([][]byte, error) {
	const op = "read ledger hashes"
	want := slices.Clone(extra)
	for _, id := range ids {
		if id.Level/tileH > strata.MaxLedgerTileLevel {
			return nil, strata.Errorf(strata.Invalid, op, "node %d/%d is beyond the tree", id.Level, id.Index)
		}
		t, _, _ := nodeTile(id)
		if _, ok := tr.cache.get(t); ok {
			continue
		}
		if _, ok := tr.tiles[t]; !ok && !slices.Contains(want, t) {
			want = append(want, t)
		}
	}
	if len(want) > 0 {
		got, err := tr.ls.LedgerTiles(ctx, want)
		if err != nil {
			return nil, err
		}
		for _, t := range got {
			tr.tiles[t.LedgerTileID] = t.Data
			tr.cache.add(t.LedgerTileID, t.Data)
		}
	}
	out := make([][]byte, len(ids))
	for i, id := range ids {
		t, start, n := nodeTile(id)
		if tt, ok := tr.cache.get(t); ok {
			h := tt.node(start, n)
			out[i] = h[:]
			continue
		}
		d, ok := tr.tiles[t]
		if !ok {
			return nil, strata.Errorf(strata.Internal, op, "tile %d/%d is missing (for node %d/%d)", t.Level, t.Index, id.Level, id.Index)
		}
		if len(d) < (start+n)*hsize {
			return nil, strata.Errorf(strata.Internal, op, "tile %d/%d holds %d hashes, node %d/%d needs %d", t.Level, t.Index, len(d)/hsize, id.Level, id.Index, start+n)
		}
		h := subtreeRoot(d[start*hsize : (start+n)*hsize])
		out[i] = h[:]
	}
	return out, nil
}

// rootAt returns the root of the stored tree at size n (at most the sealed size).
func rootAt(ctx context.Context, tr *tileReader, n uint64) (Hash, error) {
	if n == 0 {
		return Hash(hasher.EmptyRoot()), nil
	}
	hs, err := tr.nodes(ctx, compact.RangeNodes(0, n, nil))
	if err != nil {
		return Hash{}, err
	}
	r, err := rangeFactory.NewRange(0, n, hs)
	if err != nil {
		return Hash{}, strata.Errorf(strata.Internal, "ledger root", "%w", err)
	}
	root, _ := r.GetRootHash(nil)
	return Hash(root), nil
}

// inclusion returns the inclusion proof of leaf index in the tree of size n.
func inclusion(ctx context.Context, tr *tileReader, index, n uint64) ([]Hash, error) {
	nodes, err := proof.Inclusion(index, n)
	if err != nil {
		return nil, strata.Errorf(strata.Invalid, "inclusion proof", "%w", err)
	}
	return rehash(ctx, tr, nodes)
}

// consistency returns the consistency proof from size n1 to size n2.
func consistency(ctx context.Context, tr *tileReader, n1, n2 uint64) ([]Hash, error) {
	nodes, err := proof.Consistency(n1, n2)
	if err != nil {
		return nil, strata.Errorf(strata.Invalid, "consistency proof", "%w", err)
	}
	return rehash(ctx, tr, nodes)
}

func rehash(ctx context.Context, tr *tileReader, nodes proof.Nodes) ([]Hash, error) {
	hs, err := tr.nodes(ctx, nodes.IDs)
	if err != nil {
		return nil, err
	}
	hs, err = nodes.Rehash(hs, hasher.HashChildren)
	if err != nil {
		return nil, strata.Errorf(strata.Internal, "ledger proof", "%w", err)
	}
	out := make([]Hash, len(hs))
	for i, h := range hs {
		out[i] = Hash(h)
	}
	return out, nil
}

// VerifyInclusion checks that leafHash is leaf index of the tree of size n with the given root.
func VerifyInclusion(index, n uint64, leafHash Hash, p []Hash, root Hash) error {
	if err := proof.VerifyInclusion(hasher, index, n, leafHash[:], toBytes(p), root[:]); err != nil {
		return strata.Errorf(strata.Invalid, "verify inclusion", "leaf %d is not in the tree of size %d with root %x: %w", index, n, root[:8], err)
	}
	return nil
}

// VerifyConsistency checks that the tree of size n2 with root2 extends that of size n1 with root1.
func VerifyConsistency(n1, n2 uint64, root1, root2 Hash, p []Hash) error {
	if err := proof.VerifyConsistency(hasher, n1, n2, toBytes(p), root1[:], root2[:]); err != nil {
		return strata.Errorf(strata.Invalid, "verify consistency", "the tree of size %d does not extend that of size %d: %w", n2, n1, err)
	}
	return nil
}

func toBytes(p []Hash) [][]byte {
	out := make([][]byte, len(p))
	for i := range p {
		out[i] = p[i][:]
	}
	return out
}
