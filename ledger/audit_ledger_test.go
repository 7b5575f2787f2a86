package ledger

import (
	"context"
	"crypto/rand"
	"fmt"
	"slices"
	"testing"

	"github.com/strata-events/strata"
	"github.com/strata-events/strata/inmem"
)

// viewStore shows an audit an in-memory store whose ledger tables were edited behind its back:
// the head through head, and tiles through tiles (nil data: the tile is gone).
type viewStore struct {
	*inmem.Store
	head  func(strata.LedgerHead) strata.LedgerHead
	tiles map[strata.LedgerTileID][]byte
}

func (s *viewStore) LedgerHead(ctx context.Context) (strata.LedgerHead, error) {
	h, err := s.Store.LedgerHead(ctx)
	if err == nil && s.head != nil {
		h = s.head(h)
	}
	return h, err
}

func (s *viewStore) LedgerTiles(ctx context.Context, ids []strata.LedgerTileID) ([]strata.LedgerTile, error) {
	ts, err := s.Store.LedgerTiles(ctx, ids)
	if err != nil {
		return nil, err
	}
	out := slices.DeleteFunc(ts, func(t strata.LedgerTile) bool { _, ok := s.tiles[t.LedgerTileID]; return ok })
	for _, id := range ids {
		if d := s.tiles[id]; d != nil {
			out = append(out, strata.LedgerTile{LedgerTileID: id, Data: slices.Clone(d)})
		}
	}
	return out, nil
}

// sealedView returns a store of n events, sealed and checkpointed at n by a key of origin
// "ca.example/strata", with the log's policy and events.
func sealedView(t *testing.T, n int) (*viewStore, Policy, []strata.Event) {
	t.Helper()
	ctx := context.Background()
	st := inmem.New()
	t.Cleanup(func() { st.Close() })
	for i := range n {
		if _, err := st.Append(ctx, fmt.Sprintf("certificate-%02d", i%7), strata.Any, strata.EventData{Type: "CertificateIssued", Data: fmt.Appendf(nil, `{"n":%d}`, i)}); err != nil {
			t.Fatal(err)
		}
	}
	skey, vkey, err := GenerateKey(rand.Reader, "ca.example/strata")
	if err != nil {
		t.Fatal(err)
	}
	signer, _ := NewSigner(skey)
	policy, err := NewPolicy(vkey, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewSealer(st, WithBatch(100), WithSigner(signer))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.SealOnce(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
	var evs []strata.Event
	for e, err := range st.ReadAll(ctx, strata.ReadAllOptions{}) {
		if err != nil {
			t.Fatal(err)
		}
		evs = append(evs, e)
	}
	return &viewStore{Store: st}, policy, evs
}

// wantAuditProblem fails unless an audit of st (with policy p, if set) reports a problem of kind.
func wantAuditProblem(t *testing.T, st strata.Store, p *Policy, kind ProblemKind) {
	t.Helper()
	rep, err := Audit(context.Background(), st, AuditOptions{Policy: p})
	if err != nil {
		t.Fatalf("audit: %v", err)
	}
	for _, pr := range rep.Problems {
		if pr.Kind == kind {
			return
		}
	}
	t.Fatalf("the audit reports no %s problem: OK %v, problems %v", kind, rep.OK(), rep.Problems)
}

// TestAuditHeadLast: the head's last position is what the sealer reads on from. Moved back
// onto a sealed event, every later sealing run fails (its events already have leaves) and
// Sealer.Run retries the Conflict forever; the audit must report it.
func TestAuditHeadLast(t *testing.T) {
	t.Parallel()
	st, policy, evs := sealedView(t, 600)
	if rep, err := Audit(context.Background(), st, AuditOptions{Policy: &policy}); err != nil || !rep.OK() {
		t.Fatalf("audit before tampering: %+v, %v", rep, err)
	}
	st.head = func(h strata.LedgerHead) strata.LedgerHead { h.Last = evs[500].Position; return h }
	wantAuditProblem(t, st, &policy, BadHash)
}

// TestAuditPartialTiles: a stored partial tile holds exactly the hashes of the sealed tree
// (the sealer writes it with the head it moves). One with hashes beyond the tree, at level 0
// or above, or a tile wholly beyond it, serves hashes no leaf backs; the audit must report it.
func TestAuditPartialTiles(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	junk := make([]byte, hsize)
	for _, c := range []struct {
		name   string
		n      int
		id     strata.LedgerTileID
		extend bool // append a hash to the stored tile, else store one hash there
	}{
		{"Level0Longer", 600, strata.LedgerTileID{Level: 0, Index: 2}, true},
		{"Level1Longer", 600, strata.LedgerTileID{Level: 1, Index: 0}, true},
		{"Level0BeyondTree", 512, strata.LedgerTileID{Level: 0, Index: 2}, false},
		{"Level2BeyondTree", 600, strata.LedgerTileID{Level: 2, Index: 0}, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			st, policy, _ := sealedView(t, c.n)
			if rep, err := Audit(ctx, st, AuditOptions{Policy: &policy}); err != nil || !rep.OK() {
				t.Fatalf("audit before tampering: %+v, %v", rep, err)
			}
			data := junk
			if c.extend {
				ts, err := st.Store.LedgerTiles(ctx, []strata.LedgerTileID{c.id})
				if err != nil || len(ts) != 1 {
					t.Fatalf("tile %v: %v, %v", c.id, ts, err)
				}
				data = append(ts[0].Data, junk...)
			}
			st.tiles = map[strata.LedgerTileID][]byte{c.id: data}
			wantAuditProblem(t, st, &policy, BadHash)
		})
	}
}

// TestAuditCheckpointOrigins: without a key the audit cannot tell whose checkpoints a store
// holds, but one log's checkpoints all carry its origin; a store mixing two logs' checkpoints
// (each with the right root) must not pass as OK.
func TestAuditCheckpointOrigins(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st, _, _ := sealedView(t, 300)
	for i := range 300 {
		if _, err := st.Append(ctx, "certificate-more", strata.Any, strata.EventData{Type: "CertificateIssued", Data: fmt.Appendf(nil, `{"n":%d}`, 300+i)}); err != nil {
			t.Fatal(err)
		}
	}
	skey, _, err := GenerateKey(rand.Reader, "other.example/log")
	if err != nil {
		t.Fatal(err)
	}
	other, _ := NewSigner(skey)
	s, err := NewSealer(st.Store, WithBatch(100))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.SealOnce(ctx); err != nil {
		t.Fatal(err)
	}
	root, err := rootAt(ctx, newTileReader(st.Store), 600)
	if err != nil {
		t.Fatal(err)
	}
	msg, err := SignCheckpoint(Checkpoint{Origin: "other.example/log", Size: 600, Root: root}, other)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Store.SaveLedgerCheckpoint(ctx, strata.LedgerCheckpoint{Size: 600, Note: msg}); err != nil {
		t.Fatal(err)
	}
	wantAuditProblem(t, st, nil, BadCheckpoint)
}

// TestAuditMemoryFlatAcrossCheckpoints: the audit checks a consistency proof between every
// two consecutive checkpoints, reading its hashes from tiles. A log signs a checkpoint every
// minute, so a large one has many; the tiles of one proof must not stay with the audit for the
// next, or its memory grows with the log (a level-0 tile of 8 KiB per checkpoint).
func TestAuditMemoryFlatAcrossCheckpoints(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := inmem.New()
	t.Cleanup(func() { st.Close() })
	skey, vkey, err := GenerateKey(rand.Reader, "ca.example/strata")
	if err != nil {
		t.Fatal(err)
	}
	signer, _ := NewSigner(skey)
	policy, err := NewPolicy(vkey, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewSealer(st, WithSigner(signer))
	if err != nil {
		t.Fatal(err)
	}
	const checkpoints = 40
	for c := range checkpoints {
		batch := make([]strata.EventData, 300) // checkpoints off the tile boundaries
		for i := range batch {
			batch[i] = strata.EventData{Type: "CertificateIssued", Data: fmt.Appendf(nil, `{"n":%d}`, c*len(batch)+i)}
		}
		if _, err := st.Append(ctx, fmt.Sprintf("certificate-%02d", c), strata.NoStream, batch...); err != nil {
			t.Fatal(err)
		}
		if _, _, err := s.SealOnce(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Checkpoint(ctx); err != nil {
			t.Fatal(err)
		}
	}
	a, err := newAuditor(ctx, st, AuditOptions{Policy: &policy})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := a.run()
	if err != nil || !rep.OK() || rep.Checkpoints != checkpoints {
		t.Fatalf("audit: %+v, %v", rep, err)
	}
	// One proof reads at most two tiles per tile level.
	if held, most := len(a.tr.tiles), 2*(strata.MaxLedgerTileLevel+1); held > most {
		t.Fatalf("after %d checkpoints the audit holds %d tiles, want at most %d: its memory grows with the log", checkpoints, held, most)
	}
}

// liveStore runs a sealer once, right after the audit has read the ledger head: the log and
// the ledger grow while the audit reads them, as they do under strata serve --key.
type liveStore struct {
	*inmem.Store
	grow func()
}

func (s *liveStore) LedgerHead(ctx context.Context) (strata.LedgerHead, error) {
	h, err := s.Store.LedgerHead(ctx)
	if g := s.grow; g != nil && err == nil {
		s.grow = nil
		g()
	}
	return h, err
}

// TestAuditOfALiveLog: an audit checks the ledger up to the head it read first. Events,
// leaves, tiles and checkpoints that a sealer adds while it runs are not problems: the audit
// reported the head as wrong, the grown partial tiles as not matching and the new checkpoint
// as larger than the tree, and strata verify failed on every busy log.
func TestAuditOfALiveLog(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := inmem.New()
	t.Cleanup(func() { st.Close() })
	skey, vkey, _ := GenerateKey(rand.Reader, "ca.example/strata")
	signer, _ := NewSigner(skey)
	policy, _ := NewPolicy(vkey, nil, 0)
	s, err := NewSealer(st, WithSigner(signer))
	if err != nil {
		t.Fatal(err)
	}
	grow := func(n int) {
		for i := range n {
			if _, err := st.Append(ctx, fmt.Sprintf("certificate-%02d", i%7), strata.Any, strata.EventData{Type: "CertificateIssued", Data: fmt.Appendf(nil, `{"n":%d}`, i)}); err != nil {
				t.Fatal(err)
			}
		}
		if _, _, err := s.SealOnce(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Checkpoint(ctx); err != nil {
			t.Fatal(err)
		}
	}
	grow(600)
	live := &liveStore{Store: st, grow: func() { grow(300) }}
	rep, err := Audit(ctx, live, AuditOptions{Policy: &policy})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() || rep.Leaves != 600 || rep.Checkpoints != 1 || rep.Unsealed != 300 {
		t.Fatalf("audit of a log that grew while it ran: %+v", rep)
	}
	if rep, err := Audit(ctx, st, AuditOptions{Policy: &policy}); err != nil || !rep.OK() || rep.Leaves != 900 || rep.Checkpoints != 2 {
		t.Fatalf("audit once it stood still: %+v, %v", rep, err)
	}
	// A head moved back behind leaves and a checkpoint is still reported: it did not move on.
	var evs []strata.Event
	for e, err := range st.ReadAll(ctx, strata.ReadAllOptions{}) {
		if err != nil {
			t.Fatal(err)
		}
		evs = append(evs, e)
	}
	view := &viewStore{Store: st, head: func(h strata.LedgerHead) strata.LedgerHead {
		return strata.LedgerHead{Size: 700, Last: evs[699].Position}
	}}
	wantAuditProblem(t, view, &policy, BadHash)
	wantAuditProblem(t, view, &policy, BadCheckpoint)
}
