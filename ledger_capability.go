package strata

import (
	"bytes"
	"context"
	"encoding/base64"
	"iter"
	"math/rand/v2"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/google/uuid"
)

// The storage of the tamper-evident log (package ledger). A backend keeps three things for it:
// the leaves (leaf index → event), the Merkle tree's hashes as C2SP tlog-tiles, and signed
// checkpoints. Package ledger computes every hash; a backend only stores bytes and guarantees
// that a batch commits atomically with the head it moves, so that a sealer that crashes never
// seals an event twice or skips one.

// Limits of the ledger storage.
const (
	// LedgerTileHeight is the height of a tile: a full tile holds 2^8 = 256 hashes.
	LedgerTileHeight = 8
	// LedgerTileWidth is the number of hashes in a full tile.
	LedgerTileWidth = 1 << LedgerTileHeight
	// LedgerHashSize is the size of one hash (SHA-256).
	LedgerHashSize = 32
	// MaxLedgerTileLevel bounds a tile's level: 8 levels of 8 cover 2^64 leaves.
	MaxLedgerTileLevel = 7
	// MaxLedgerBatch is the most leaves one AppendLedger call may carry.
	MaxLedgerBatch = 100_000
	// MaxLedgerNoteLen is the longest stored checkpoint note, in bytes.
	MaxLedgerNoteLen = 64 << 10
	// MaxLedgerNoteSignatures is the most signature lines a stored checkpoint note may hold:
	// golang.org/x/mod/sumdb/note refuses to open a note with more, its log signature too.
	MaxLedgerNoteSignatures = 100
)

// LedgerHead is how far the ledger has sealed the global log.
type LedgerHead struct {
	// Size is the number of leaves: leaf indexes run 0 to Size-1.
	Size uint64
	// Last is the Position of the event of leaf Size-1; Start when Size is 0. The next sealer
	// run reads the log after it.
	Last Position
}

// LedgerLeaf says which event a leaf of the tree is. The leaf's hash is in the level-0 tile.
type LedgerLeaf struct {
	Index    uint64
	EventID  uuid.UUID
	Position Position
	// Stream and Version are kept so that an audit can name an event that has been deleted.
	Stream  string
	Version int64
}

// LedgerTileID names a tile: the hashes at tree level Level*LedgerTileHeight, from offset
// Index*LedgerTileWidth.
type LedgerTileID struct {
	Level int
	Index uint64
}

// LedgerTile is a tile with its hashes: 1 to LedgerTileWidth hashes of LedgerHashSize bytes,
// concatenated. A partial tile grows as the tree grows; the stored one is the widest written.
type LedgerTile struct {
	LedgerTileID
	Data []byte
}

// LedgerCheckpoint is a signed checkpoint of the tree, as a note (C2SP tlog-checkpoint with
// signatures and cosignatures).
type LedgerCheckpoint struct {
	// Size is the tree size the checkpoint commits to; one checkpoint is kept per size.
	Size uint64
	// Note is the signed note's text.
	Note []byte
	// CreatedAt is when it was first saved (store clock, UTC, microseconds); set by the store.
	CreatedAt time.Time
}

// LedgerStore stores the tamper-evident log of package ledger.
type LedgerStore interface {
	// LedgerHead returns how far the ledger has sealed; the zero LedgerHead for a new store.
	LedgerHead(ctx context.Context) (LedgerHead, error)
	// AppendLedger stores leaves (indexes from.Size, from.Size+1, ...) and tiles, replacing
	// stored tiles with the same IDs, and moves the head from from to the head that
	// [PrepareLedgerAppend] computes, all in one transaction. It is a Conflict error, and
	// nothing is written, when the stored head is not from (another sealer got there first)
	// or when one of the events already has a leaf. Bad input is an Invalid error.
	AppendLedger(ctx context.Context, from LedgerHead, leaves []LedgerLeaf, tiles []LedgerTile) error
	// LedgerTiles returns the stored tiles among ids, in any order; missing ones are left out.
	LedgerTiles(ctx context.Context, ids []LedgerTileID) ([]LedgerTile, error)
	// LedgerLeaves reads the leaves from index from on, in index order.
	LedgerLeaves(ctx context.Context, from uint64) iter.Seq2[LedgerLeaf, error]
	// LedgerLeaf returns the leaf of an event, or a NotFound error when it has none.
	LedgerLeaf(ctx context.Context, eventID uuid.UUID) (LedgerLeaf, error)
	// SaveLedgerCheckpoint stores c. A stored checkpoint of the same size keeps its CreatedAt,
	// and its note becomes MergeLedgerNotes of it and c's, atomically: a note of the same text
	// adds or replaces signatures (cosignatures) and keeps the others, one of another text
	// replaces the note.
	SaveLedgerCheckpoint(ctx context.Context, c LedgerCheckpoint) error
	// LedgerCheckpoints reads the checkpoints with a size greater than after, by size.
	LedgerCheckpoints(ctx context.Context, after uint64) iter.Seq2[LedgerCheckpoint, error]
	// LatestLedgerCheckpoint returns the checkpoint of the largest size, or a NotFound error.
	LatestLedgerCheckpoint(ctx context.Context) (LedgerCheckpoint, error)
}

// PrepareLedgerAppend validates a batch for [LedgerStore.AppendLedger] and returns the head
// after it: leaf indexes contiguous from from.Size, positions increasing after from.Last, event
// IDs set, tiles of a valid level with 1 to LedgerTileWidth whole hashes. Every error is Invalid.
// Backends call it first.
func PrepareLedgerAppend(op string, from LedgerHead, leaves []LedgerLeaf, tiles []LedgerTile) (LedgerHead, error) {
	if len(leaves) > MaxLedgerBatch {
		return LedgerHead{}, Errorf(Invalid, op, "%d leaves in one batch, more than %d", len(leaves), MaxLedgerBatch)
	}
	to := from
	for i, l := range leaves {
		if l.Index != from.Size+uint64(i) {
			return LedgerHead{}, Errorf(Invalid, op, "leaf %d of the batch has index %d, want %d", i, l.Index, from.Size+uint64(i))
		}
		if l.EventID == uuid.Nil {
			return LedgerHead{}, Errorf(Invalid, op, "leaf %d has no event ID", l.Index)
		}
		if !to.Last.Less(l.Position) {
			return LedgerHead{}, Errorf(Invalid, op, "leaf %d: position %s does not follow %s", l.Index, l.Position, to.Last)
		}
		if err := ValidateStreamName(op, l.Stream); err != nil {
			return LedgerHead{}, err
		}
		to.Last = l.Position
	}
	to.Size += uint64(len(leaves))
	for _, t := range tiles {
		if t.Level < 0 || t.Level > MaxLedgerTileLevel {
			return LedgerHead{}, Errorf(Invalid, op, "tile level %d outside 0-%d", t.Level, MaxLedgerTileLevel)
		}
		if n := len(t.Data); n == 0 || n%LedgerHashSize != 0 || n > LedgerTileWidth*LedgerHashSize {
			return LedgerHead{}, Errorf(Invalid, op, "tile %d/%d holds %d bytes, not 1-%d hashes", t.Level, t.Index, n, LedgerTileWidth)
		}
	}
	return to, nil
}

// ValidateLedgerCheckpoint returns an Invalid error for a checkpoint with an empty or too long
// note. Backends call it in SaveLedgerCheckpoint.
func ValidateLedgerCheckpoint(op string, c LedgerCheckpoint) error {
	if len(c.Note) == 0 || len(c.Note) > MaxLedgerNoteLen {
		return Errorf(Invalid, op, "checkpoint note of %d bytes, want 1-%d", len(c.Note), MaxLedgerNoteLen)
	}
	if _, sigs, ok := splitNote(c.Note); ok && len(sigs) > MaxLedgerNoteSignatures {
		return Errorf(Invalid, op, "checkpoint note with %d signature lines (with the stored note's, when it merges with it), more than the %d a verifier opens", len(sigs), MaxLedgerNoteSignatures)
	}
	return nil
}

// LedgerHeadConflict returns the Conflict error of AppendLedger when the stored head is not the
// one the batch extends.
func LedgerHeadConflict(op string, want, got LedgerHead) error {
	return Errorf(Conflict, op, "the ledger head is at %d leaves (position %s), not %d (%s): another sealer ran", got.Size, got.Last, want.Size, want.Last)
}

// LedgerLeafNotFound returns the NotFound error of LedgerLeaf.
func LedgerLeafNotFound(op string, id uuid.UUID) error {
	return Errorf(NotFound, op, "event %s is not sealed in the ledger", id)
}

// LedgerCheckpointNotFound returns the NotFound error of LatestLedgerCheckpoint.
func LedgerCheckpointNotFound(op string) error {
	return Errorf(NotFound, op, "the ledger has no checkpoint")
}

// MergeLedgerNotes returns the note that SaveLedgerCheckpoint stores when stored is the note
// already stored at the checkpoint's size and incoming the one being saved. When both sign the
// same checkpoint text, it is that text with stored's signatures in their order, those of a key
// incoming signs replaced by incoming's (a key is a signature line's name and key hash),
// followed by incoming's of other keys: a cosignature added meanwhile survives a sealer that
// saves the same checkpoint again, and two witnesses that cosign at once both stay. A stored
// line that note.Open would refuse (it then opens no signature of the note at all) does not
// stay, so that a save can mend a note a bad line broke. Otherwise it is incoming, which
// replaces stored whole.
func MergeLedgerNotes(stored, incoming []byte) []byte {
	text, sigs, ok := splitNote(stored)
	newText, newSigs, newOK := splitNote(incoming)
	if !ok || !newOK || string(text) != string(newText) {
		return incoming
	}
	byKey := map[string][][]byte{}
	var keys []string // incoming's, in order
	for _, n := range newSigs {
		k, _ := noteSigKey(n)
		if byKey[k] == nil {
			keys = append(keys, k)
		}
		byKey[k] = append(byKey[k], n)
	}
	out := append([]byte(nil), text...)
	done := map[string]bool{}
	for _, s := range sigs {
		k, ok := noteSigKey(s)
		switch {
		case !ok:
			// Dropped: kept, it would make the note fail to open for good, as no later save
			// of the same text could remove it.
		case byKey[k] == nil:
			out = append(out, s...)
		case !done[k]:
			done[k] = true
			out = append(out, bytes.Join(byKey[k], nil)...)
		}
	}
	for _, k := range keys {
		if !done[k] {
			out = append(out, bytes.Join(byKey[k], nil)...)
		}
	}
	return out
}

// splitNote cuts a signed note (C2SP signed-note) into its text, up to and with the blank line
// that ends it, and its signature lines, each with its newline.
func splitNote(n []byte) (text []byte, sigs [][]byte, ok bool) {
	i := bytes.LastIndex(n, []byte("\n\n"))
	if i < 0 || len(n) == 0 || n[len(n)-1] != '\n' {
		return nil, nil, false
	}
	text, rest := n[:i+2], n[i+2:]
	for len(rest) > 0 {
		j := bytes.IndexByte(rest, '\n')
		sigs, rest = append(sigs, rest[:j+1]), rest[j+1:]
	}
	return text, sigs, true
}

// noteSigKey is what tells a signature line's key, read as note.Open reads it: "— name base64"
// with the key hash in the signature's first 4 bytes. ok is false for a line note.Open refuses
// (which makes it refuse the whole note); such a line is its own key.
func noteSigKey(line []byte) (key string, ok bool) {
	rest, hasPrefix := strings.CutPrefix(string(line), "— ")
	rest, hasNL := strings.CutSuffix(rest, "\n")
	if !hasPrefix || !hasNL || !utf8.ValidString(rest) || strings.ContainsFunc(rest, func(r rune) bool { return r < 0x20 }) {
		return string(line), false
	}
	name, b64, _ := strings.Cut(rest, " ")
	sig, err := base64.StdEncoding.DecodeString(b64)
	if err != nil || b64 == "" || len(sig) < 5 || name == "" || strings.ContainsFunc(name, unicode.IsSpace) || strings.Contains(name, "+") {
		return string(line), false
	}
	return name + " " + string(sig[:4]), true
}

// SaveLedgerCheckpointMerged is SaveLedgerCheckpoint for a backend without a lock on the
// checkpoint's row: it reads the stored note (load), merges c's into it with
// MergeLedgerNotes, and stores the result with insert (false when a row of that size exists)
// or swap (false when the stored note is no longer old), reading again when either lost a
// race: 16 times at most, each after a little longer wait (then an Unavailable error).
func SaveLedgerCheckpointMerged(ctx context.Context, op string, c LedgerCheckpoint,
	load func(ctx context.Context, size uint64) (note []byte, found bool, err error),
	insert func(ctx context.Context, c LedgerCheckpoint) (bool, error),
	swap func(ctx context.Context, size uint64, old, note []byte) (bool, error)) error {
	if err := ValidateLedgerCheckpoint(op, c); err != nil {
		return err
	}
	for attempt := range 16 {
		if attempt > 0 {
			// Another save came first: let it finish (saves of a checkpoint come in bursts,
			// one per witness).
			t := time.NewTimer(time.Duration(attempt)*time.Millisecond + rand.N(2*time.Millisecond))
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
				return ctx.Err()
			}
		}
		old, found, err := load(ctx, c.Size)
		if err != nil {
			return err
		}
		var done bool
		if !found {
			done, err = insert(ctx, c)
		} else {
			note := MergeLedgerNotes(old, c.Note)
			if err := ValidateLedgerCheckpoint(op, LedgerCheckpoint{Size: c.Size, Note: note}); err != nil {
				return err
			}
			if bytes.Equal(note, old) {
				return nil
			}
			done, err = swap(ctx, c.Size, old, note)
		}
		if err != nil || done {
			return err
		}
	}
	return Errorf(Unavailable, op, "the checkpoint of size %d kept changing while it was saved; retry", c.Size)
}
