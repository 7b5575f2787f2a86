package strata

import (
	"context"
	"iter"
	"time"

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
	// SaveLedgerCheckpoint stores c, replacing the note of a stored checkpoint of the same
	// size (to add cosignatures) and keeping its CreatedAt.
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
