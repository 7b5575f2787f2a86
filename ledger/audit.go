package ledger

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"iter"

	"github.com/google/uuid"

	"github.com/strata-events/strata"
)

// ProblemKind classifies what an audit found.
type ProblemKind string

// The kinds of problems.
const (
	// Changed: a stored event no longer encodes to its sealed leaf hash.
	Changed ProblemKind = "changed"
	// Deleted: a sealed event is gone from the log.
	Deleted ProblemKind = "deleted"
	// Inserted: an event in the sealed part of the log has no leaf.
	Inserted ProblemKind = "inserted"
	// Reordered: the log holds another sealed event at a leaf's place.
	Reordered ProblemKind = "reordered"
	// BadHash: a stored tree hash, leaf row or head does not match the rest.
	BadHash ProblemKind = "hash"
	// BadCheckpoint: a checkpoint's signature, root or consistency fails.
	BadCheckpoint ProblemKind = "checkpoint"
	// Unrecorded: a tombstone names a retention run that no event of the log records, so
	// nothing vouches that retention, and not someone who can write to the database, removed
	// the payload.
	Unrecorded ProblemKind = "unrecorded"
)

// Problem is one finding of [Audit].
type Problem struct {
	Kind ProblemKind
	// Leaf is the leaf index concerned, or -1.
	Leaf     int64
	EventID  uuid.UUID
	Stream   string
	Version  int64
	Position strata.Position
	Msg      string
}

func (p Problem) String() string {
	s := string(p.Kind)
	if p.Leaf >= 0 {
		s += fmt.Sprintf(" leaf %d", p.Leaf)
	}
	if p.Stream != "" {
		s += fmt.Sprintf(" %s v%d", p.Stream, p.Version)
	}
	if !p.Position.IsZero() {
		s += fmt.Sprintf(" at position %s", p.Position)
	}
	if p.EventID != uuid.Nil {
		s += fmt.Sprintf(" (event %s)", p.EventID)
	}
	return s + ": " + p.Msg
}

// AuditProgress is reported while an audit runs.
type AuditProgress struct {
	Leaves, Sealed uint64 // leaves checked, of the sealed total
	Events         uint64 // events read
}

// AuditOptions configure [Audit].
type AuditOptions struct {
	// Policy, when set, checks every checkpoint's signatures; without it signatures are not
	// checked (roots and consistency still are).
	Policy *Policy
	// Progress, when set, is called every ProgressEvery leaves and at the end.
	Progress      func(AuditProgress)
	ProgressEvery uint64
	// MaxProblems caps the problems kept (default 1000); the rest are only counted.
	MaxProblems int
}

// AuditReport is the result of [Audit].
type AuditReport struct {
	Leaves     uint64 // leaves checked
	Events     uint64 // events read from the log
	Unsealed   uint64 // events after the sealed part of the log
	Tombstoned uint64 // sealed events whose payload retention removed, verified by their tombstones
	// TombstonedByUnsealedRuns counts the Tombstoned events whose retention run is recorded by
	// an event after the sealed part of the log: the next audit, once it is sealed, vouches.
	TombstonedByUnsealedRuns uint64
	Checkpoints              int  // checkpoints checked
	Signed                   bool // whether signatures were checked
	Problems                 []Problem
	Dropped                  int // problems beyond MaxProblems
}

// OK reports whether the audit found nothing wrong.
func (r *AuditReport) OK() bool { return len(r.Problems) == 0 && r.Dropped == 0 }

// Audit recomputes every leaf from the stored events and checks it against the stored hashes,
// every stored hash against the hashes below it, every checkpoint's root (and, with a policy,
// signatures) against the tree, and the consistency of consecutive checkpoints. It checks the
// tree of the ledger head it reads first: leaves, tiles and checkpoints that a sealer adds
// while it runs are left for the next audit, and their events count as Unsealed. It streams:
// memory stays flat whatever the size of the log. The error is for failures to read; what is
// wrong with the data is in the report.
func Audit(ctx context.Context, store strata.Store, opts AuditOptions) (*AuditReport, error) {
	a, err := newAuditor(ctx, store, opts)
	if err != nil {
		return nil, err
	}
	return a.run()
}

// newAuditor returns the auditor of an Audit.
func newAuditor(ctx context.Context, store strata.Store, opts AuditOptions) (*auditor, error) {
	ls, ok := store.(strata.LedgerStore)
	if !ok {
		return nil, strata.Errorf(strata.Invalid, "audit", "the store (%T) keeps no ledger", store)
	}
	if opts.MaxProblems <= 0 {
		opts.MaxProblems = 1000
	}
	if opts.ProgressEvery == 0 {
		opts.ProgressEvery = 1 << 16
	}
	a := &auditor{ctx: ctx, store: store, ls: ls, opts: opts, b: newBuilder(), tr: newTileReader(ls), beyond: -1, rep: &AuditReport{Signed: opts.Policy != nil},
		runs: map[uuid.UUID]bool{}, tombRuns: map[uuid.UUID]tombRef{}, tombCount: map[uuid.UUID]uint64{}}
	a.prover = &Prover{store: store, ls: ls}
	return a, nil
}

type auditor struct {
	ctx context.Context
	// leaf is the buffer each event's leaf is encoded into.
	leaf   []byte
	store  strata.Store
	ls     strata.LedgerStore
	prover *Prover
	opts   AuditOptions
	rep    *AuditReport
	head   strata.LedgerHead // the head when the audit began: the tree it checks
	beyond int64             // the first leaf row at or past head.Size; -1 for none

	// runs holds the IDs of the log's RetentionStarted events, true for those after the sealed
	// part; tombRuns and tombCount, the runs that the tombstones found name (see checkRuns).
	runs      map[uuid.UUID]bool
	tombRuns  map[uuid.UUID]tombRef
	tombCount map[uuid.UUID]uint64

	b    *builder        // fed with the stored leaf hashes
	last strata.Position // the position of the last leaf row
	tr   *tileReader     // reads the hashes of one consistency proof at a time

	tile0    []byte // the stored level-0 tile of the current leaves
	tile0Idx uint64
	tile0OK  bool

	nextCP func() (strata.LedgerCheckpoint, error, bool)
	cp     *strata.LedgerCheckpoint
	prev   *Checkpoint // the last checkpoint checked
}

func (a *auditor) problem(p Problem) {
	if len(a.rep.Problems) >= a.opts.MaxProblems {
		a.rep.Dropped++
		return
	}
	a.rep.Problems = append(a.rep.Problems, p)
}

func (a *auditor) progress() {
	if a.opts.Progress != nil {
		a.opts.Progress(AuditProgress{Leaves: a.rep.Leaves, Sealed: a.head.Size, Events: a.rep.Events})
	}
}

func (a *auditor) run() (*AuditReport, error) {
	var err error
	if a.head, err = a.ls.LedgerHead(a.ctx); err != nil {
		return nil, err
	}
	nextLeaf, stopLeaves := iter.Pull2(a.ls.LedgerLeaves(a.ctx, 0))
	defer stopLeaves()
	nextCP, stopCP := iter.Pull2(a.ls.LedgerCheckpoints(a.ctx, 0))
	defer stopCP()
	a.nextCP = nextCP
	if err := a.advanceCP(); err != nil {
		return nil, err
	}
	// The audit covers the tree of the head it read: a sealer may add leaves while it runs.
	var (
		leaf strata.LedgerLeaf
		lerr error
		more bool
	)
	pull := func() {
		if leaf, lerr, more = nextLeaf(); more && lerr == nil && leaf.Index >= a.head.Size {
			a.beyond, more = int64(leaf.Index), false
		}
	}
	if pull(); lerr != nil {
		return nil, lerr
	}
	advance := func() error {
		if err := a.sealLeaf(leaf); err != nil {
			return err
		}
		pull()
		return lerr
	}
	for e, err := range a.store.ReadAll(a.ctx, strata.ReadAllOptions{}) {
		if err != nil {
			return nil, err
		}
		a.rep.Events++
		if e.Type == strata.RetentionStartedType {
			a.runs[e.ID] = !more || e.ID != leaf.EventID // true: after the sealed part
		}
		for {
			if !more {
				if e.Position.Compare(a.head.Last) <= 0 {
					a.problem(Problem{Kind: Inserted, Leaf: -1, EventID: e.ID, Stream: e.Stream, Version: e.Version, Position: e.Position, Msg: "the event lies in the sealed part of the log but has no leaf"})
				} else {
					a.rep.Unsealed++
				}
				break
			}
			if e.ID == leaf.EventID {
				a.checkEvent(&e, leaf)
				if err := advance(); err != nil {
					return nil, err
				}
				break
			}
			other, err := a.ls.LedgerLeaf(a.ctx, e.ID)
			if errors.Is(err, strata.ErrNotFound) {
				a.problem(Problem{Kind: Inserted, Leaf: -1, EventID: e.ID, Stream: e.Stream, Version: e.Version, Position: e.Position,
					Msg: fmt.Sprintf("the event has no leaf, but the log holds it before sealed leaf %d (%s v%d)", leaf.Index, leaf.Stream, leaf.Version)})
				break
			}
			if err != nil {
				return nil, err
			}
			if _, err := a.prover.event(a.ctx, leaf); errors.Is(err, strata.ErrNotFound) {
				a.problem(Problem{Kind: Deleted, Leaf: int64(leaf.Index), EventID: leaf.EventID, Stream: leaf.Stream, Version: leaf.Version, Position: leaf.Position, Msg: "the sealed event is missing from the log"})
				if err := advance(); err != nil {
					return nil, err
				}
				continue // compare e with the next leaf
			} else if err != nil {
				return nil, err
			}
			a.problem(Problem{Kind: Reordered, Leaf: int64(leaf.Index), EventID: leaf.EventID, Stream: leaf.Stream, Version: leaf.Version, Position: leaf.Position,
				Msg: fmt.Sprintf("the log holds %s v%d (sealed at leaf %d) in this leaf's place", e.Stream, e.Version, other.Index)})
			if err := advance(); err != nil {
				return nil, err
			}
			break
		}
		if a.rep.Events%a.opts.ProgressEvery == 0 {
			a.progress()
		}
	}
	for more {
		if _, err := a.prover.event(a.ctx, leaf); errors.Is(err, strata.ErrNotFound) {
			a.problem(Problem{Kind: Deleted, Leaf: int64(leaf.Index), EventID: leaf.EventID, Stream: leaf.Stream, Version: leaf.Version, Position: leaf.Position, Msg: "the sealed event is missing from the log"})
		} else if err != nil {
			return nil, err
		} else {
			a.problem(Problem{Kind: Reordered, Leaf: int64(leaf.Index), EventID: leaf.EventID, Stream: leaf.Stream, Version: leaf.Version, Position: leaf.Position, Msg: "the sealed event is in the log, but not in its leaf's place"})
		}
		if err := advance(); err != nil {
			return nil, err
		}
	}
	a.checkRuns()
	if err := a.finish(); err != nil {
		return nil, err
	}
	a.progress()
	return a.rep, nil
}

// storedLeafHash returns the stored hash of leaf i from its level-0 tile.
func (a *auditor) storedLeafHash(i uint64) (Hash, bool, error) {
	if idx := i / tileW; !a.tile0OK || a.tile0Idx != idx || uint64(len(a.tile0)) < (i%tileW+1)*hsize {
		ts, err := a.ls.LedgerTiles(a.ctx, []strata.LedgerTileID{{Level: 0, Index: idx}})
		if err != nil {
			return Hash{}, false, err
		}
		a.tile0, a.tile0Idx, a.tile0OK = nil, idx, true
		if len(ts) == 1 {
			a.tile0 = ts[0].Data
		}
	}
	off := (i % tileW) * hsize
	if uint64(len(a.tile0)) < off+hsize {
		return Hash{}, false, nil
	}
	return Hash(a.tile0[off : off+hsize]), true, nil
}

// checkEvent compares an event with its sealed leaf hash.
func (a *auditor) checkEvent(e *strata.Event, l strata.LedgerLeaf) {
	stored, ok, err := a.storedLeafHash(l.Index)
	if err != nil || !ok {
		return // reported by sealLeaf
	}
	a.leaf = EncodeLeaf(a.leaf[:0], e)
	if LeafHash(a.leaf) != stored && !a.tombstoned(e, stored) {
		a.problem(Problem{Kind: Changed, Leaf: int64(l.Index), EventID: e.ID, Stream: e.Stream, Version: e.Version, Position: e.Position,
			Msg: "the stored event does not match its sealed leaf hash (its data, metadata, type, times or the hash were edited)"})
	} else if e.Stream != l.Stream || e.Version != l.Version {
		a.problem(Problem{Kind: BadHash, Leaf: int64(l.Index), EventID: e.ID, Stream: e.Stream, Version: e.Version, Position: e.Position,
			Msg: fmt.Sprintf("the leaf row names %s v%d", l.Stream, l.Version)})
	}
}

// sealLeaf adds leaf l's stored hash to the recomputed tree and checks what that completes.
func (a *auditor) sealLeaf(l strata.LedgerLeaf) error {
	i := a.b.size()
	if l.Index != i {
		a.problem(Problem{Kind: BadHash, Leaf: int64(l.Index), EventID: l.EventID, Stream: l.Stream, Version: l.Version, Msg: fmt.Sprintf("leaf rows skip from %d to %d", i, l.Index)})
	}
	h, ok, err := a.storedLeafHash(i)
	if err != nil {
		return err
	}
	if !ok {
		a.problem(Problem{Kind: BadHash, Leaf: int64(i), EventID: l.EventID, Stream: l.Stream, Version: l.Version, Msg: fmt.Sprintf("the leaf's hash is missing from tile 0/%d", i/tileW)})
	}
	if err := a.b.add(h); err != nil {
		return strata.Errorf(strata.Internal, "audit", "%w", err)
	}
	a.last = l.Position
	a.rep.Leaves++
	for _, t := range a.b.full {
		if t.Level > 0 {
			if err := a.compareTile(t, true); err != nil {
				return err
			}
		}
	}
	a.b.full = a.b.full[:0]
	for a.cp != nil && a.cp.Size == a.b.size() {
		a.checkCheckpoint(*a.cp)
		if err := a.advanceCP(); err != nil {
			return err
		}
	}
	return nil
}

// compareTile checks a recomputed tile against the stored one (whole, or as a prefix).
func (a *auditor) compareTile(t strata.LedgerTile, full bool) error {
	ts, err := a.ls.LedgerTiles(a.ctx, []strata.LedgerTileID{t.LedgerTileID})
	if err != nil {
		return err
	}
	switch {
	case len(ts) == 0:
		a.problem(Problem{Kind: BadHash, Leaf: -1, Msg: fmt.Sprintf("tile %d/%d is missing", t.Level, t.Index)})
	case full && !bytes.Equal(ts[0].Data, t.Data), !full && !bytes.HasPrefix(ts[0].Data, t.Data):
		a.problem(Problem{Kind: BadHash, Leaf: int64(t.Index << (tileH * t.Level) * tileW), Msg: fmt.Sprintf("stored tile %d/%d does not match the hashes below it", t.Level, t.Index)})
	}
	return nil
}

func (a *auditor) advanceCP() error {
	c, err, ok := a.nextCP()
	if err != nil {
		return err
	}
	if !ok {
		a.cp = nil
		return nil
	}
	a.cp = &c
	if c.Size == 0 {
		a.checkCheckpoint(c)
		return a.advanceCP()
	}
	return nil
}

func cpProblem(size uint64, format string, args ...any) Problem {
	return Problem{Kind: BadCheckpoint, Leaf: -1, Msg: fmt.Sprintf("checkpoint of size %d: ", size) + fmt.Sprintf(format, args...)}
}

// checkCheckpoint checks a stored checkpoint at the moment the recomputed tree has its size.
func (a *auditor) checkCheckpoint(sc strata.LedgerCheckpoint) {
	a.rep.Checkpoints++
	var c Checkpoint
	var err error
	if a.opts.Policy != nil {
		c, _, err = OpenCheckpoint(sc.Note, *a.opts.Policy)
	} else {
		c, err = noteCheckpoint(sc.Note)
	}
	if err != nil {
		a.problem(cpProblem(sc.Size, "%v", err))
		return
	}
	if c.Size != sc.Size {
		a.problem(cpProblem(sc.Size, "the note says size %d", c.Size))
		return
	}
	if root := a.b.root(); c.Root != root {
		a.problem(cpProblem(sc.Size, "the signed root %x… is not the root of the stored tree (%x…): sealed events or hashes were changed", c.Root[:6], root[:6]))
		return
	}
	if a.prev != nil && c.Origin != a.prev.Origin {
		a.problem(cpProblem(sc.Size, "its origin %q is not %q, that of the checkpoint of size %d: a log's checkpoints all carry its origin", c.Origin, a.prev.Origin, a.prev.Size))
	}
	if a.prev != nil {
		// The tiles of one proof are of no use to the next: dropped, they keep the audit's
		// memory flat however many checkpoints the log has.
		clear(a.tr.tiles)
		p, err := consistency(a.ctx, a.tr, a.prev.Size, c.Size)
		if err == nil {
			err = VerifyConsistency(a.prev.Size, c.Size, a.prev.Root, c.Root, p)
		}
		if err != nil {
			a.problem(cpProblem(sc.Size, "not consistent with the checkpoint of size %d: %v", a.prev.Size, err))
		}
	}
	a.prev = &c
}

// finish checks what the leaves left over: the head, the partial tiles and later checkpoints.
// What a sealer added while the audit ran (the head has moved on) is not checked, and not a
// problem.
func (a *auditor) finish() error {
	n := a.b.size()
	now, err := a.ls.LedgerHead(a.ctx)
	if err != nil {
		return err
	}
	grown := now.Size > a.head.Size && a.head.Last.Less(now.Last)
	switch {
	case n != a.head.Size:
		a.problem(Problem{Kind: BadHash, Leaf: -1, Msg: fmt.Sprintf("the ledger head says %d leaves, the store holds %d", a.head.Size, n)})
	case a.head.Last != a.last:
		a.problem(Problem{Kind: BadHash, Leaf: -1, Msg: fmt.Sprintf("the ledger head's last position is %s, the last leaf's %s: the sealer would read on from the wrong place", a.head.Last, a.last)})
	case a.beyond >= 0 && !grown:
		a.problem(Problem{Kind: BadHash, Leaf: a.beyond, Msg: fmt.Sprintf("the ledger head says %d leaves, the store holds leaf %d too", a.head.Size, a.beyond)})
	}
	// The sealer stores each level's partial tile with the head it moves: the stored one holds
	// exactly the tree's hashes (at level 0, those the leaves were read from), and at a level
	// whose tiles are all full there is none. A tree that grew since holds more.
	for l := range a.b.edge {
		t := strata.LedgerTile{LedgerTileID: strata.LedgerTileID{Level: l, Index: (n >> (tileH * l)) / tileW}, Data: a.b.edge[l]}
		if len(t.Data) > 0 {
			if err := a.compareTile(t, !grown); err != nil {
				return err
			}
			continue
		}
		if grown {
			continue
		}
		ts, err := a.ls.LedgerTiles(a.ctx, []strata.LedgerTileID{t.LedgerTileID})
		if err != nil {
			return err
		}
		if len(ts) > 0 {
			a.problem(Problem{Kind: BadHash, Leaf: -1, Msg: fmt.Sprintf("stored tile %d/%d lies beyond the tree of %d leaves", l, t.Index, n)})
		}
	}
	for a.cp != nil {
		if !grown || n != a.head.Size || a.cp.Size > now.Size {
			a.problem(cpProblem(a.cp.Size, "larger than the stored tree (%d leaves)", n))
			a.rep.Checkpoints++
		}
		if err := a.advanceCP(); err != nil {
			return err
		}
	}
	return nil
}

// tombstoned reports whether retention removed e's payload and kept a tombstone with the sealed
// leaf hash: the event's row still holds its place, and the tree and every proof stay valid.
// A tombstone with another hash is not accepted, so the event is reported as changed.
func (a *auditor) tombstoned(e *strata.Event, stored Hash) bool {
	rs, ok := a.store.(strata.RetentionStore)
	if !ok || !bytes.Equal(e.Data, strata.TombstoneData) {
		return false
	}
	t, err := rs.Tombstone(a.ctx, e.ID)
	if err != nil || !bytes.Equal(t.LeafHash, stored[:]) {
		return false
	}
	a.rep.Tombstoned++
	if _, seen := a.tombRuns[t.Run]; !seen {
		a.tombRuns[t.Run] = tombRef{id: e.ID, stream: e.Stream, version: e.Version, pos: e.Position}
	}
	a.tombCount[t.Run]++
	return true
}

// tombRef names the first event a retention run's tombstone was found on, for the report.
type tombRef struct {
	id      uuid.UUID
	stream  string
	version int64
	pos     strata.Position
}

// checkRuns reports the tombstones whose retention run no RetentionStarted event of the log
// records, and counts those whose run is recorded after the sealed part (see
// AuditReport.TombstonedByUnsealedRuns). A run's event may lie anywhere in the log (it is
// newer than the events it removed), so this waits for the end of the walk; memory grows with
// the number of runs, not of events.
func (a *auditor) checkRuns() {
	for run, first := range a.tombRuns {
		unsealed, ok := a.runs[run]
		switch {
		case !ok:
			a.problem(Problem{Kind: Unrecorded, Leaf: -1, EventID: first.id, Stream: first.stream, Version: first.version, Position: first.pos,
				Msg: fmt.Sprintf("%d tombstones (this event's the first) name retention run %s, which no %s event of the log records: nothing vouches that retention removed their payloads", a.tombCount[run], run, strata.RetentionStartedType)})
		case unsealed:
			a.rep.TombstonedByUnsealedRuns += a.tombCount[run]
		}
	}
}
