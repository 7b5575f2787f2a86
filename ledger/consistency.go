package ledger

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/strata-events/strata"
)

// ConsistencyHeader is the first line of a consistency bundle.
const ConsistencyHeader = "strata/tlog-consistency@v1"

// maxConsistencyLen bounds what ParseConsistencyBundle reads: 2·64 proof hashes and a
// checkpoint with many cosignatures fit in far less.
const maxConsistencyLen = 1 << 20

// ConsistencyBundle proves offline that a newer signed checkpoint extends an older one: every
// leaf of the older tree is, unchanged and in its place, in the newer one. Its text form
// follows the C2SP tlog-proof layout:
//
//	strata/tlog-consistency@v1
//	old <size of the older tree>
//	<base64 consistency proof hash, one per line>
//	<empty line>
//	<the newer signed checkpoint note>
//
// The older checkpoint is not in the bundle: the verifier brings the one it trusts (kept from an
// earlier proof bundle or checkpoint), so that the bundle cannot choose it.
type ConsistencyBundle struct {
	OldSize    uint64
	Proof      []Hash
	Checkpoint []byte
}

// Marshal encodes b in its text form.
func (b *ConsistencyBundle) Marshal() []byte {
	var w bytes.Buffer
	w.WriteString(ConsistencyHeader + "\n")
	fmt.Fprintf(&w, "old %d\n", b.OldSize)
	writeHashes(&w, b.Proof)
	w.WriteString("\n")
	w.Write(b.Checkpoint)
	return w.Bytes()
}

// ParseConsistencyBundle decodes a consistency bundle. It checks the syntax only; Verify
// checks the rest. Every error is Invalid.
func ParseConsistencyBundle(data []byte) (*ConsistencyBundle, error) {
	const op = "parse consistency bundle"
	bad := func(format string, args ...any) (*ConsistencyBundle, error) {
		return nil, strata.Errorf(strata.Invalid, op, format, args...)
	}
	if len(data) > maxConsistencyLen {
		return bad("%d bytes, more than %d", len(data), maxConsistencyLen)
	}
	head, cp, ok := bytes.Cut(data, []byte("\n\n"))
	if !ok {
		return bad("no empty line before the checkpoint")
	}
	lines := strings.Split(string(head), "\n")
	if lines[0] != ConsistencyHeader {
		return bad("the first line is not %q", ConsistencyHeader)
	}
	lines = lines[1:]
	if len(lines) == 0 || !strings.HasPrefix(lines[0], "old ") {
		return bad("no old line")
	}
	n, err := parseDecimal(lines[0][len("old "):])
	if err != nil {
		return bad("old: %v", err)
	}
	b := &ConsistencyBundle{OldSize: n, Checkpoint: bytes.Clone(cp)}
	if b.Proof, err = parseHashes(lines[1:], 128); err != nil {
		return bad("%v", err)
	}
	return b, nil
}

// VerifiedConsistency is what a consistency bundle proves.
type VerifiedConsistency struct {
	Old, New Checkpoint
	// Witnesses are the names of the witnesses whose cosignatures on the newer checkpoint
	// verified.
	Witnesses []string
}

// Verify checks the bundle offline against old, the signed checkpoint note the verifier
// trusts: the older checkpoint's signature against the policy's log key, the newer's against
// the whole policy (the witness quorum is for the checkpoint the bundle brings: the older one
// may predate the witnesses), their origins, sizes, and the consistency proof from the older
// root to the newer. Every error is Invalid.
func (b *ConsistencyBundle) Verify(p Policy, old []byte) (VerifiedConsistency, error) {
	const op = "verify consistency"
	oc, _, err := OpenCheckpoint(old, Policy{Log: p.Log})
	if err != nil {
		return VerifiedConsistency{}, fmt.Errorf("the older checkpoint: %w", err)
	}
	nc, wits, err := OpenCheckpoint(b.Checkpoint, p)
	if err != nil {
		return VerifiedConsistency{}, fmt.Errorf("the bundle's checkpoint: %w", err)
	}
	switch {
	case oc.Origin != nc.Origin:
		return VerifiedConsistency{}, strata.Errorf(strata.Invalid, op, "the checkpoints are of different logs: %q and %q", oc.Origin, nc.Origin)
	case b.OldSize != oc.Size:
		return VerifiedConsistency{}, strata.Errorf(strata.Invalid, op, "the bundle proves consistency from a tree of %d leaves, the older checkpoint has %d", b.OldSize, oc.Size)
	case oc.Size > nc.Size:
		return VerifiedConsistency{}, strata.Errorf(strata.Invalid, op, "the older checkpoint (%d leaves) is larger than the bundle's (%d)", oc.Size, nc.Size)
	}
	if err := VerifyConsistency(oc.Size, nc.Size, oc.Root, nc.Root, b.Proof); err != nil {
		return VerifiedConsistency{}, err
	}
	return VerifiedConsistency{Old: oc, New: nc, Witnesses: wits}, nil
}

// ConsistencyBundle returns the consistency bundle from the tree of oldSize leaves to the
// latest stored checkpoint. It is a NotFound error when the ledger has no checkpoint, and
// Invalid when oldSize is larger than the latest checkpoint.
func (p *Prover) ConsistencyBundle(ctx context.Context, oldSize uint64) (*ConsistencyBundle, error) {
	const op = "consistency bundle"
	cp, err := p.ls.LatestLedgerCheckpoint(ctx)
	if err != nil {
		if errors.Is(err, strata.ErrNotFound) {
			return nil, strata.Errorf(strata.NotFound, op, "the ledger has no checkpoint yet")
		}
		return nil, err
	}
	if oldSize > cp.Size {
		return nil, strata.Errorf(strata.Invalid, op, "the older tree (%d leaves) is larger than the latest checkpoint (%d)", oldSize, cp.Size)
	}
	pr, err := p.Consistency(ctx, oldSize, cp.Size)
	if err != nil {
		return nil, err
	}
	return &ConsistencyBundle{OldSize: oldSize, Proof: pr, Checkpoint: cp.Note}, nil
}

// CheckpointNote returns the signed checkpoint note in data, which is either the note itself
// or a proof or consistency bundle that carries one (what a verifier kept from an earlier
// proof). It checks no signature.
func CheckpointNote(data []byte) ([]byte, error) {
	for _, h := range []string{BundleHeader, ConsistencyHeader} {
		if bytes.HasPrefix(data, []byte(h+"\n")) {
			_, cp, ok := bytes.Cut(data, []byte("\n\n"))
			if !ok {
				return nil, strata.Errorf(strata.Invalid, "checkpoint note", "a %s bundle without its checkpoint", h)
			}
			return cp, nil
		}
	}
	return data, nil
}
