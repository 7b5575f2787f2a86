package storetest

import (
	"bytes"
	"errors"
	"slices"
	"testing"

	"github.com/google/uuid"

	"github.com/strata-events/strata"
)

// RunLedger runs the section of the suite for [strata.LedgerStore]: the empty ledger, batches
// of leaves and tiles, the head check that keeps concurrent sealers from sealing twice,
// atomicity, lookups, checkpoints, restarts, bad input and use after close. [Run] calls it; a
// store that does not implement the interface skips it, or fails it when f.Capabilities is set.
// It checks storage only: package ledger's tests seal, prove and audit on every backend.
func RunLedger(t *testing.T, newStore NewStore, f Features) {
	suite{newStore: newStore, f: f}.runLedger(t)
}

func (s suite) runLedger(t *testing.T) {
	runParallel(t, []subtest{
		{"Empty", s.testLedgerEmpty},
		{"AppendAndRead", s.testLedgerAppend},
		{"HeadConflict", s.testLedgerConflict},
		{"DuplicateEventIsAtomic", s.testLedgerDuplicate},
		{"Checkpoints", s.testLedgerCheckpoints},
		{"SurviveReopen", s.testLedgerReopen},
		{"BadInputRejected", s.testLedgerBadInput},
		{"UseAfterClose", s.testLedgerAfterClose},
	})
}

// ledgerBatch makes n leaves after head with made-up events, and a level-0 tile per 256.
func ledgerBatch(head strata.LedgerHead, n int) ([]strata.LedgerLeaf, []strata.LedgerTile) {
	leaves := make([]strata.LedgerLeaf, n)
	for i := range leaves {
		idx := head.Size + uint64(i)
		leaves[i] = strata.LedgerLeaf{Index: idx, EventID: uuid.New(), Position: strata.Position{Commit: idx + 1, Event: idx + 1}, Stream: certStream(int(idx % 7)), Version: int64(idx/7 + 1)}
	}
	var tiles []strata.LedgerTile
	end := head.Size + uint64(n)
	for first := head.Size / strata.LedgerTileWidth; first*strata.LedgerTileWidth < end; first++ {
		w := min(end-first*strata.LedgerTileWidth, strata.LedgerTileWidth)
		data := make([]byte, w*strata.LedgerHashSize)
		for i := range data {
			data[i] = byte(first) ^ byte(i)
		}
		tiles = append(tiles, strata.LedgerTile{LedgerTileID: strata.LedgerTileID{Level: 0, Index: first}, Data: data})
	}
	return leaves, tiles
}

func headAfter(leaves []strata.LedgerLeaf) strata.LedgerHead {
	l := leaves[len(leaves)-1]
	return strata.LedgerHead{Size: l.Index + 1, Last: l.Position}
}

func (s suite) testLedgerEmpty(t *testing.T) {
	ctx := testContext(t)
	_, ls := capability[strata.LedgerStore](t, s)
	if h, err := ls.LedgerHead(ctx); err != nil || h != (strata.LedgerHead{}) {
		t.Fatalf("head of a new ledger: %+v, %v", h, err)
	}
	if _, err := ls.LatestLedgerCheckpoint(ctx); !errors.Is(err, strata.ErrNotFound) {
		t.Fatalf("latest checkpoint of a new ledger: %v, want NotFound", err)
	}
	if _, err := ls.LedgerLeaf(ctx, uuid.New()); !errors.Is(err, strata.ErrNotFound) {
		t.Fatalf("leaf of an unsealed event: %v, want NotFound", err)
	}
	if got := mustCollect(t, ls.LedgerLeaves(ctx, 0)); len(got) != 0 {
		t.Fatalf("leaves of a new ledger: %d", len(got))
	}
	if got, err := ls.LedgerTiles(ctx, []strata.LedgerTileID{{Level: 0, Index: 0}}); err != nil || len(got) != 0 {
		t.Fatalf("tiles of a new ledger: %v, %v", got, err)
	}
}

func (s suite) testLedgerAppend(t *testing.T) {
	ctx := testContext(t)
	_, ls := capability[strata.LedgerStore](t, s)
	var all []strata.LedgerLeaf
	head := strata.LedgerHead{}
	var lastTiles []strata.LedgerTile
	for _, n := range []int{1, 300, 2000} { // a partial tile that grows, then fills
		leaves, tiles := ledgerBatch(head, n)
		if err := ls.AppendLedger(ctx, head, leaves, tiles); err != nil {
			t.Fatalf("append %d leaves at %d: %v", n, head.Size, err)
		}
		head = headAfter(leaves)
		all = append(all, leaves...)
		lastTiles = tiles
	}
	if got, err := ls.LedgerHead(ctx); err != nil || got != head {
		t.Fatalf("head %+v, %v; want %+v", got, err, head)
	}
	got := mustCollect(t, ls.LedgerLeaves(ctx, 0))
	if !slices.Equal(got, all) {
		t.Fatalf("leaves read back differ: %d leaves, want %d", len(got), len(all))
	}
	if got := mustCollect(t, ls.LedgerLeaves(ctx, 2000)); !slices.Equal(got, all[2000:]) {
		t.Fatalf("leaves from 2000: %d, want %d", len(got), len(all)-2000)
	}
	for _, i := range []int{0, 1, 700, len(all) - 1} {
		l, err := ls.LedgerLeaf(ctx, all[i].EventID)
		if err != nil || l != all[i] {
			t.Fatalf("leaf of event %d: %+v, %v; want %+v", i, l, err, all[i])
		}
	}
	var ids []strata.LedgerTileID
	for _, tl := range lastTiles {
		ids = append(ids, tl.LedgerTileID)
	}
	ids = append(ids, strata.LedgerTileID{Level: 3, Index: 9}) // missing: left out
	tiles, err := ls.LedgerTiles(ctx, ids)
	if err != nil {
		t.Fatalf("tiles: %v", err)
	}
	if len(tiles) != len(lastTiles) {
		t.Fatalf("%d tiles, want %d", len(tiles), len(lastTiles))
	}
	for _, want := range lastTiles {
		i := slices.IndexFunc(tiles, func(t strata.LedgerTile) bool { return t.LedgerTileID == want.LedgerTileID })
		if i < 0 || !bytes.Equal(tiles[i].Data, want.Data) {
			t.Fatalf("tile %+v not stored as written (the widest write wins)", want.LedgerTileID)
		}
	}
}

func (s suite) testLedgerConflict(t *testing.T) {
	ctx := testContext(t)
	_, ls := capability[strata.LedgerStore](t, s)
	leaves, tiles := ledgerBatch(strata.LedgerHead{}, 10)
	if err := ls.AppendLedger(ctx, strata.LedgerHead{}, leaves, tiles); err != nil {
		t.Fatal(err)
	}
	// A second sealer that read the old head must not seal the same places again.
	other, otherTiles := ledgerBatch(strata.LedgerHead{}, 5)
	wantCode(t, ls.AppendLedger(ctx, strata.LedgerHead{}, other, otherTiles), strata.Conflict, "append from a stale head")
	if h, _ := ls.LedgerHead(ctx); h != headAfter(leaves) {
		t.Fatalf("head moved by a refused batch: %+v", h)
	}
	if _, err := ls.LedgerLeaf(ctx, other[0].EventID); !errors.Is(err, strata.ErrNotFound) {
		t.Fatalf("a refused batch left a leaf: %v", err)
	}
}

func (s suite) testLedgerDuplicate(t *testing.T) {
	ctx := testContext(t)
	_, ls := capability[strata.LedgerStore](t, s)
	leaves, tiles := ledgerBatch(strata.LedgerHead{}, 10)
	if err := ls.AppendLedger(ctx, strata.LedgerHead{}, leaves, tiles); err != nil {
		t.Fatal(err)
	}
	head := headAfter(leaves)
	next, nextTiles := ledgerBatch(head, 20)
	next[15].EventID = leaves[3].EventID // sealed already
	wantCode(t, ls.AppendLedger(ctx, head, next, nextTiles), strata.Conflict, "append a sealed event again")
	if h, _ := ls.LedgerHead(ctx); h != head {
		t.Fatalf("head moved by a refused batch: %+v", h)
	}
	if got := mustCollect(t, ls.LedgerLeaves(ctx, 0)); len(got) != 10 {
		t.Fatalf("%d leaves after a refused batch, want 10", len(got))
	}
	if _, err := ls.LedgerLeaf(ctx, next[0].EventID); !errors.Is(err, strata.ErrNotFound) {
		t.Fatalf("a refused batch left a leaf: %v", err)
	}
	tl, _ := ls.LedgerTiles(ctx, []strata.LedgerTileID{{}})
	if len(tl) != 1 || len(tl[0].Data) != 10*strata.LedgerHashSize {
		t.Fatalf("a refused batch changed tile 0/0")
	}
}

func (s suite) testLedgerCheckpoints(t *testing.T) {
	ctx := testContext(t)
	_, ls := capability[strata.LedgerStore](t, s)
	for _, size := range []uint64{10, 1, 5} {
		if err := ls.SaveLedgerCheckpoint(ctx, strata.LedgerCheckpoint{Size: size, Note: []byte("note " + certStream(int(size)))}); err != nil {
			t.Fatalf("save checkpoint %d: %v", size, err)
		}
	}
	latest, err := ls.LatestLedgerCheckpoint(ctx)
	if err != nil || latest.Size != 10 || latest.CreatedAt.IsZero() {
		t.Fatalf("latest: %+v, %v", latest, err)
	}
	if err := ls.SaveLedgerCheckpoint(ctx, strata.LedgerCheckpoint{Size: 10, Note: []byte("cosigned")}); err != nil {
		t.Fatal(err)
	}
	again, _ := ls.LatestLedgerCheckpoint(ctx)
	if string(again.Note) != "cosigned" || !again.CreatedAt.Equal(latest.CreatedAt) {
		t.Fatalf("replaced checkpoint: %q at %v, want the new note at the first time %v", again.Note, again.CreatedAt, latest.CreatedAt)
	}
	var sizes []uint64
	for c, err := range ls.LedgerCheckpoints(ctx, 0) {
		if err != nil {
			t.Fatal(err)
		}
		sizes = append(sizes, c.Size)
	}
	if !slices.Equal(sizes, []uint64{1, 5, 10}) {
		t.Fatalf("checkpoint sizes %v, want [1 5 10]", sizes)
	}
	after := mustCollect(t, ls.LedgerCheckpoints(ctx, 1))
	if len(after) != 2 || after[0].Size != 5 || string(after[0].Note) != "note "+certStream(5) {
		t.Fatalf("checkpoints after 1: %+v", after)
	}
	// A note read is the caller's: editing it does not edit the store.
	after[0].Note[0] ^= 0x20
	if c, err := ls.LatestLedgerCheckpoint(ctx); err == nil {
		c.Note[0] ^= 0x20
	}
	if got := mustCollect(t, ls.LedgerCheckpoints(ctx, 1)); string(got[0].Note) != "note "+certStream(5) || string(got[1].Note) != "cosigned" {
		t.Fatalf("editing the notes read changed the stored ones: %q, %q", got[0].Note, got[1].Note)
	}
	// The longest note ValidateLedgerCheckpoint accepts is stored whole.
	long := bytes.Repeat([]byte("— witness.example AAAA\n"), strata.MaxLedgerNoteLen)[:strata.MaxLedgerNoteLen]
	if err := ls.SaveLedgerCheckpoint(ctx, strata.LedgerCheckpoint{Size: 11, Note: long}); err != nil {
		t.Fatalf("save a note of %d bytes, the most a note may have: %v", len(long), err)
	}
	if c, err := ls.LatestLedgerCheckpoint(ctx); err != nil || c.Size != 11 || !bytes.Equal(c.Note, long) {
		t.Fatalf("a note of %d bytes read back as %d bytes (size %d): %v", len(long), len(c.Note), c.Size, err)
	}
}

func (s suite) testLedgerReopen(t *testing.T) {
	skipWithoutReopen(t, s)
	ctx := testContext(t)
	st, ls := capability[strata.LedgerStore](t, s)
	leaves, tiles := ledgerBatch(strata.LedgerHead{}, 300)
	if err := ls.AppendLedger(ctx, strata.LedgerHead{}, leaves, tiles); err != nil {
		t.Fatal(err)
	}
	if err := ls.SaveLedgerCheckpoint(ctx, strata.LedgerCheckpoint{Size: 300, Note: []byte("n")}); err != nil {
		t.Fatal(err)
	}
	ls2 := reopen[strata.LedgerStore](t, s, st)
	if h, err := ls2.LedgerHead(ctx); err != nil || h != headAfter(leaves) {
		t.Fatalf("head after reopen: %+v, %v", h, err)
	}
	if got := mustCollect(t, ls2.LedgerLeaves(ctx, 0)); !slices.Equal(got, leaves) {
		t.Fatalf("leaves after reopen differ")
	}
	if c, err := ls2.LatestLedgerCheckpoint(ctx); err != nil || c.Size != 300 {
		t.Fatalf("checkpoint after reopen: %+v, %v", c, err)
	}
}

func (s suite) testLedgerBadInput(t *testing.T) {
	ctx := testContext(t)
	_, ls := capability[strata.LedgerStore](t, s)
	good, tiles := ledgerBatch(strata.LedgerHead{}, 3)
	mod := func(f func(l []strata.LedgerLeaf)) []strata.LedgerLeaf {
		c := slices.Clone(good)
		f(c)
		return c
	}
	for _, c := range []struct {
		name   string
		leaves []strata.LedgerLeaf
		tiles  []strata.LedgerTile
	}{
		{"index gap", mod(func(l []strata.LedgerLeaf) { l[1].Index = 5 }), tiles},
		{"no event ID", mod(func(l []strata.LedgerLeaf) { l[0].EventID = uuid.Nil }), tiles},
		{"positions out of order", mod(func(l []strata.LedgerLeaf) { l[2].Position = l[0].Position }), tiles},
		{"bad stream", mod(func(l []strata.LedgerLeaf) { l[0].Stream = "" }), tiles},
		{"tile of a partial hash", good, []strata.LedgerTile{{Data: make([]byte, 33)}}},
		{"empty tile", good, []strata.LedgerTile{{Data: nil}}},
		{"tile too wide", good, []strata.LedgerTile{{Data: make([]byte, 257*32)}}},
		{"tile level", good, []strata.LedgerTile{{LedgerTileID: strata.LedgerTileID{Level: 8}, Data: make([]byte, 32)}}},
	} {
		wantCode(t, ls.AppendLedger(ctx, strata.LedgerHead{}, c.leaves, c.tiles), strata.Invalid, c.name)
	}
	if h, _ := ls.LedgerHead(ctx); h != (strata.LedgerHead{}) {
		t.Fatalf("bad input moved the head: %+v", h)
	}
	wantCode(t, ls.SaveLedgerCheckpoint(ctx, strata.LedgerCheckpoint{Size: 1}), strata.Invalid, "checkpoint without a note")
	wantCode(t, ls.SaveLedgerCheckpoint(ctx, strata.LedgerCheckpoint{Size: 1, Note: make([]byte, strata.MaxLedgerNoteLen+1)}), strata.Invalid, "checkpoint note too long")
}

func (s suite) testLedgerAfterClose(t *testing.T) {
	ctx := testContext(t)
	st, ls := capability[strata.LedgerStore](t, s)
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	_, err := ls.LedgerHead(ctx)
	wantClosed(t, err, "LedgerHead")
	leaves, tiles := ledgerBatch(strata.LedgerHead{}, 1)
	wantClosed(t, ls.AppendLedger(ctx, strata.LedgerHead{}, leaves, tiles), "AppendLedger")
	_, err = ls.LedgerLeaf(ctx, uuid.New())
	wantClosed(t, err, "LedgerLeaf")
	_, err = Collect(ls.LedgerLeaves(ctx, 0))
	wantClosed(t, err, "LedgerLeaves")
	_, err = ls.LatestLedgerCheckpoint(ctx)
	wantClosed(t, err, "LatestLedgerCheckpoint")
	wantClosed(t, ls.SaveLedgerCheckpoint(ctx, strata.LedgerCheckpoint{Size: 1, Note: []byte("n")}), "SaveLedgerCheckpoint")
}
