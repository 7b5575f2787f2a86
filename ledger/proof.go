package ledger

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/google/uuid"
	"github.com/transparency-dev/merkle/compact"

	"github.com/strata-events/strata"
)

// BundleHeader is the first line of a proof bundle: the C2SP tlog-proof format.
const BundleHeader = "c2sp.org/tlog-proof@v1"

// MaxBundleLen bounds what ParseBundle reads: the largest leaf, base64-encoded, and room for
// the proof and the checkpoint.
const MaxBundleLen = (strata.MaxDataLen+strata.MaxMetaLen+2048)*4/3 + 1<<20

// Bundle proves offline that an event is in a signed checkpoint of the log. It is a C2SP
// tlog-proof whose extra data is the event's leaf encoding:
//
//	c2sp.org/tlog-proof@v1
//	extra <base64 of the leaf encoding>
//	index <leaf index>
//	<base64 inclusion proof hash, one per line>
//	<empty line>
//	<signed checkpoint note>
type Bundle struct {
	Leaf       []byte
	Index      uint64
	Proof      []Hash
	Checkpoint []byte
}

// Marshal encodes b in the tlog-proof text format.
func (b *Bundle) Marshal() []byte {
	var w bytes.Buffer
	w.WriteString(BundleHeader + "\n")
	w.WriteString("extra " + base64.StdEncoding.EncodeToString(b.Leaf) + "\n")
	fmt.Fprintf(&w, "index %d\n", b.Index)
	writeHashes(&w, b.Proof)
	w.WriteString("\n")
	w.Write(b.Checkpoint)
	return w.Bytes()
}

// ParseBundle decodes a bundle. It checks the syntax only; Verify checks the rest. Every error
// is Invalid.
func ParseBundle(data []byte) (*Bundle, error) {
	const op = "parse bundle"
	bad := func(format string, args ...any) (*Bundle, error) {
		return nil, strata.Errorf(strata.Invalid, op, format, args...)
	}
	if len(data) > MaxBundleLen {
		return bad("%d bytes, more than %d", len(data), MaxBundleLen)
	}
	head, cp, ok := bytes.Cut(data, []byte("\n\n"))
	if !ok {
		return bad("no empty line before the checkpoint")
	}
	lines := strings.Split(string(head), "\n")
	if lines[0] != BundleHeader {
		return bad("the first line is not %q", BundleHeader)
	}
	lines = lines[1:]
	b := &Bundle{Checkpoint: bytes.Clone(cp)}
	if len(lines) > 0 && strings.HasPrefix(lines[0], "extra ") {
		leaf, err := decodeBase64(lines[0][len("extra "):])
		if err != nil {
			return bad("extra: %v", err)
		}
		b.Leaf = leaf
		lines = lines[1:]
	}
	if b.Leaf == nil {
		return bad("no extra line with the event's leaf")
	}
	if len(lines) == 0 || !strings.HasPrefix(lines[0], "index ") {
		return bad("no index line")
	}
	n, err := parseDecimal(lines[0][len("index "):])
	if err != nil {
		return bad("index: %v", err)
	}
	b.Index = n
	if b.Proof, err = parseHashes(lines[1:], 64); err != nil {
		return bad("%v", err)
	}
	return b, nil
}

// writeHashes writes proof hashes in base64, one per line.
func writeHashes(w *bytes.Buffer, hs []Hash) {
	for _, h := range hs {
		w.WriteString(base64.StdEncoding.EncodeToString(h[:]) + "\n")
	}
}

// parseHashes decodes proof lines written by writeHashes, at most most of them.
func parseHashes(lines []string, most int) ([]Hash, error) {
	if len(lines) > most {
		return nil, fmt.Errorf("%d proof hashes, more than a tree of 2^64 leaves needs (%d)", len(lines), most)
	}
	var hs []Hash
	for i, l := range lines {
		h, err := decodeBase64(l)
		if err != nil || len(h) != hsize {
			return nil, fmt.Errorf("proof line %d is not a base64 hash", i+1)
		}
		hs = append(hs, Hash(h))
	}
	return hs, nil
}

// parseDecimal parses a decimal number without sign or leading zeros.
func parseDecimal(s string) (uint64, error) {
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil || s == "" || (s != "0" && s[0] == '0') || s[0] == '+' {
		return 0, fmt.Errorf("%q is not a decimal number without leading zeros", s)
	}
	return n, nil
}

// Verified is what a bundle proves.
type Verified struct {
	Leaf       Leaf
	Index      uint64
	Checkpoint Checkpoint
	// Witnesses are the names of the witnesses whose cosignatures verified.
	Witnesses []string
}

// Verify checks the bundle offline: the checkpoint's signatures against the policy, the leaf's
// encoding, and the inclusion proof of the leaf's hash in the checkpoint's root. Every error
// is Invalid.
func (b *Bundle) Verify(p Policy) (Verified, error) {
	c, wits, err := OpenCheckpoint(b.Checkpoint, p)
	if err != nil {
		return Verified{}, err
	}
	leaf, err := DecodeLeaf(b.Leaf)
	if err != nil {
		return Verified{}, err
	}
	if b.Index >= c.Size {
		return Verified{}, strata.Errorf(strata.Invalid, "verify bundle", "leaf index %d is outside the checkpoint's tree of %d leaves", b.Index, c.Size)
	}
	if err := VerifyInclusion(b.Index, c.Size, LeafHash(b.Leaf), b.Proof, c.Root); err != nil {
		return Verified{}, err
	}
	return Verified{Leaf: leaf, Index: b.Index, Checkpoint: c, Witnesses: wits}, nil
}

// Prover makes proofs from a store's ledger.
type Prover struct {
	store strata.Store
	ls    strata.LedgerStore
	cache *tileCache
}

// NewProver returns a prover for store, which must implement strata.LedgerStore.
func NewProver(store strata.Store) (*Prover, error) {
	ls, ok := store.(strata.LedgerStore)
	if !ok {
		return nil, strata.Errorf(strata.Invalid, "new prover", "the store (%T) keeps no ledger", store)
	}
	return &Prover{store: store, ls: ls, cache: newTileCache()}, nil
}

// tiles returns a tile reader for one proof that shares the prover's cache of full tiles.
func (p *Prover) tiles() *tileReader {
	tr := newTileReader(p.ls)
	tr.cache = p.cache
	return tr
}

// Inclusion returns the inclusion proof of leaf index in the tree of size n.
func (p *Prover) Inclusion(ctx context.Context, index, n uint64) ([]Hash, error) {
	if err := p.checkSize(ctx, n); err != nil {
		return nil, err
	}
	return inclusion(ctx, p.tiles(), index, n)
}

// Consistency returns the consistency proof from the tree of size n1 to that of size n2.
func (p *Prover) Consistency(ctx context.Context, n1, n2 uint64) ([]Hash, error) {
	if err := p.checkSize(ctx, n2); err != nil {
		return nil, err
	}
	return consistency(ctx, p.tiles(), n1, n2)
}

// Root returns the root of the tree of size n.
func (p *Prover) Root(ctx context.Context, n uint64) (Hash, error) {
	if err := p.checkSize(ctx, n); err != nil {
		return Hash{}, err
	}
	return rootAt(ctx, p.tiles(), n)
}

func (p *Prover) checkSize(ctx context.Context, n uint64) error {
	head, err := p.ls.LedgerHead(ctx)
	if err != nil {
		return err
	}
	if n > head.Size {
		return strata.Errorf(strata.Invalid, "ledger proof", "tree size %d is larger than the sealed tree (%d leaves)", n, head.Size)
	}
	return nil
}

// event reads the event of a leaf from the log.
func (p *Prover) event(ctx context.Context, l strata.LedgerLeaf) (strata.Event, error) {
	for e, err := range p.store.ReadStream(ctx, l.Stream, strata.ReadStreamOptions{From: l.Version, Limit: 1}) {
		if err != nil {
			return strata.Event{}, err
		}
		if e.ID == l.EventID && e.Version == l.Version {
			return e, nil
		}
	}
	return strata.Event{}, strata.Errorf(strata.NotFound, "ledger proof", "event %s of leaf %d (%s v%d) is not in the log", l.EventID, l.Index, l.Stream, l.Version)
}

// Bundle returns the proof bundle of an event against the latest stored checkpoint. It is a
// NotFound error when the event is not sealed, or not yet in a checkpoint.
func (p *Prover) Bundle(ctx context.Context, eventID uuid.UUID) (*Bundle, error) {
	const op = "proof bundle"
	leaf, err := p.ls.LedgerLeaf(ctx, eventID)
	if err != nil {
		return nil, err
	}
	cp, err := p.ls.LatestLedgerCheckpoint(ctx)
	if err != nil {
		if errors.Is(err, strata.ErrNotFound) {
			return nil, strata.Errorf(strata.NotFound, op, "event %s is sealed at leaf %d but the ledger has no checkpoint yet", eventID, leaf.Index)
		}
		return nil, err
	}
	if cp.Size <= leaf.Index {
		return nil, strata.Errorf(strata.NotFound, op, "event %s is sealed at leaf %d, after the latest checkpoint (%d leaves)", eventID, leaf.Index, cp.Size)
	}
	e, err := p.event(ctx, leaf)
	if err != nil {
		return nil, err
	}
	enc := EncodeLeaf(nil, &e)
	if rs, ok := p.store.(strata.RetentionStore); ok {
		// A bundle carries the leaf's content. Retention that removed it after sealing left a
		// leaf that no bundle can prove (strata verify checks the event's tombstone against the
		// tree instead); retention before sealing (AllowUnsealed) left a tombstone that was
		// sealed as it is, and its bundle verifies.
		switch _, err := rs.Tombstone(ctx, eventID); {
		case err == nil:
			sealed, err := p.leafHash(ctx, leaf.Index)
			if err != nil {
				return nil, err
			}
			if LeafHash(enc) != sealed {
				return nil, strata.Errorf(strata.NotFound, op, "retention removed the payload of event %s (leaf %d): no bundle can prove content that is gone; strata verify checks its tombstone's leaf hash against the tree", eventID, leaf.Index)
			}
		case !errors.Is(err, strata.ErrNotFound):
			return nil, err
		}
	}
	pr, err := p.Inclusion(ctx, leaf.Index, cp.Size)
	if err != nil {
		return nil, err
	}
	return &Bundle{Leaf: enc, Index: leaf.Index, Proof: pr, Checkpoint: cp.Note}, nil
}

// leafHash returns the stored hash of leaf i.
func (p *Prover) leafHash(ctx context.Context, i uint64) (Hash, error) {
	hs, err := p.tiles().nodes(ctx, []compact.NodeID{compact.NewNodeID(0, i)})
	if err != nil {
		return Hash{}, err
	}
	return Hash(hs[0]), nil
}
