// Package ledgertest is the ledger's part of the conformance suite: every backend seals,
// proves and audits the same log with [Run], and shows with the raw-SQL hooks of [Tamper] that
// an audit reports every kind of tampering with its stream, version and leaf index.
package ledgertest

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"iter"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"golang.org/x/mod/sumdb/note"

	"github.com/strata-events/strata"
	"github.com/strata-events/strata/ledger"
)

// Tamper edits a backend's tables behind the store's back, as an attacker with write access to
// the database would. Each hook gets the store the test made.
type Tamper struct {
	// EditData replaces the stored data of e.
	EditData func(t testing.TB, s strata.Store, e strata.Event, data []byte)
	// CopyMeta replaces the stored metadata of to with that of from.
	CopyMeta func(t testing.TB, s strata.Store, to, from strata.Event)
	// Delete removes e.
	Delete func(t testing.TB, s strata.Store, e strata.Event)
	// Swap exchanges the places of a and b in the global log.
	Swap func(t testing.TB, s strata.Store, a, b strata.Event)
	// InsertAfter inserts a copy of after, with ID id in stream "certificate-EVIL" version 1,
	// right after after in the global log (moving later events if it must).
	InsertAfter func(t testing.TB, s strata.Store, after strata.Event, id uuid.UUID)
}

// NewStore makes a fresh, empty store for one subtest, cleaned up with t.
type NewStore func(t testing.TB) strata.Store

const events = 600

func testContext(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// fixture is a sealed log: 600 events in 12 streams, checkpoints at 300 and 600.
type fixture struct {
	st     strata.Store
	evs    []strata.Event
	policy ledger.Policy
	signer *ledger.Sealer
}

func newFixture(t testing.TB, newStore NewStore) *fixture {
	t.Helper()
	ctx := testContext(t)
	st := newStore(t)
	for i := 0; i < events; i += 6 {
		var batch []strata.EventData
		for j := range 6 {
			batch = append(batch, strata.EventData{
				Type: "CertificateIssued", Data: fmt.Appendf(nil, `{"serial":"%04X","n":%d}`, i+j, i+j),
				Meta: strata.Metadata{Principal: fmt.Sprintf("operator-%d", (i+j)%3), Correlation: fmt.Sprint("req-", i+j)},
			})
		}
		if _, err := st.Append(ctx, fmt.Sprintf("certificate-%02d", (i/6)%12), strata.Any, batch...); err != nil {
			t.Fatalf("append: %v", err)
		}
	}
	skey, vkey, err := ledger.GenerateKey(rand.Reader, "ca.example/strata")
	if err != nil {
		t.Fatal(err)
	}
	signer, _ := ledger.NewSigner(skey)
	policy, err := ledger.NewPolicy(vkey, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	s1, err := ledger.NewSealer(st, ledger.WithBatch(300), ledger.WithSigner(signer))
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{st: st, policy: policy, signer: s1}
	// Seal half, checkpoint, then the rest.
	for e, err := range st.ReadAll(ctx, strata.ReadAllOptions{}) {
		if err != nil {
			t.Fatal(err)
		}
		f.evs = append(f.evs, e)
	}
	half, err := ledger.NewSealer(&limited{Store: st, n: 300}, ledger.WithBatch(100), ledger.WithSigner(signer))
	if err != nil {
		t.Fatal(err)
	}
	if n, _, err := half.SealOnce(ctx); err != nil || n != 300 {
		t.Fatalf("seal the first half: %d, %v", n, err)
	}
	if _, err := half.Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
	if n, head, err := s1.SealOnce(ctx); err != nil || n != 300 || head.Size != events {
		t.Fatalf("seal the rest: %d, %+v, %v", n, head, err)
	}
	if c, err := s1.Checkpoint(ctx); err != nil || c.Size != events {
		t.Fatalf("checkpoint: %+v, %v", c, err)
	}
	return f
}

// limited shows a sealer only the first n events of the log, as if the rest were not
// committed yet.
type limited struct {
	strata.Store
	n int
}

func (l *limited) ReadAll(ctx context.Context, opts strata.ReadAllOptions) iter.Seq2[strata.Event, error] {
	return func(yield func(strata.Event, error) bool) {
		i := 0
		for e, err := range l.Store.ReadAll(ctx, strata.ReadAllOptions{}) {
			if err != nil {
				yield(e, err)
				return
			}
			i++
			if i > l.n {
				return
			}
			if !opts.After.Less(e.Position) {
				continue
			}
			if !yield(e, nil) {
				return
			}
		}
	}
}

// LedgerHead and the rest pass through to the store's ledger.
func (l *limited) ls() strata.LedgerStore { return l.Store.(strata.LedgerStore) }
func (l *limited) LedgerHead(ctx context.Context) (strata.LedgerHead, error) {
	return l.ls().LedgerHead(ctx)
}
func (l *limited) AppendLedger(ctx context.Context, from strata.LedgerHead, leaves []strata.LedgerLeaf, tiles []strata.LedgerTile) error {
	return l.ls().AppendLedger(ctx, from, leaves, tiles)
}
func (l *limited) LedgerTiles(ctx context.Context, ids []strata.LedgerTileID) ([]strata.LedgerTile, error) {
	return l.ls().LedgerTiles(ctx, ids)
}
func (l *limited) LedgerLeaves(ctx context.Context, from uint64) iter.Seq2[strata.LedgerLeaf, error] {
	return l.ls().LedgerLeaves(ctx, from)
}
func (l *limited) LedgerLeaf(ctx context.Context, id uuid.UUID) (strata.LedgerLeaf, error) {
	return l.ls().LedgerLeaf(ctx, id)
}
func (l *limited) SaveLedgerCheckpoint(ctx context.Context, c strata.LedgerCheckpoint) error {
	return l.ls().SaveLedgerCheckpoint(ctx, c)
}
func (l *limited) LedgerCheckpoints(ctx context.Context, after uint64) iter.Seq2[strata.LedgerCheckpoint, error] {
	return l.ls().LedgerCheckpoints(ctx, after)
}
func (l *limited) LatestLedgerCheckpoint(ctx context.Context) (strata.LedgerCheckpoint, error) {
	return l.ls().LatestLedgerCheckpoint(ctx)
}

func (f *fixture) audit(t testing.TB) *ledger.AuditReport {
	t.Helper()
	rep, err := ledger.Audit(testContext(t), f.st, ledger.AuditOptions{Policy: &f.policy})
	if err != nil {
		t.Fatalf("audit: %v", err)
	}
	return rep
}

// wantProblem fails unless the report names a problem of kind at leaf (-1: any) for stream
// and version ("" : any).
func wantProblem(t testing.TB, rep *ledger.AuditReport, kind ledger.ProblemKind, leaf int64, stream string, version int64) {
	t.Helper()
	if rep.OK() {
		t.Fatalf("the audit found nothing; want a %s problem", kind)
	}
	for _, p := range rep.Problems {
		if p.Kind == kind && (leaf < 0 || p.Leaf == leaf) && (stream == "" || (p.Stream == stream && p.Version == version)) {
			return
		}
	}
	var got []string
	for _, p := range rep.Problems {
		got = append(got, p.String())
	}
	t.Fatalf("no %s problem at leaf %d (%s v%d) among:\n%s", kind, leaf, stream, version, strings.Join(got, "\n"))
}

// Run checks sealing, proofs and a clean audit on the backend, and that sealing never passes
// an append that commits after one with a higher position.
func Run(t *testing.T, newStore NewStore) {
	t.Run("SealerWaitsForLateCommit", func(t *testing.T) {
		t.Parallel()
		testLateCommit(t, newStore)
	})
	t.Run("SealProveAudit", func(t *testing.T) {
		t.Parallel()
		ctx := testContext(t)
		f := newFixture(t, newStore)
		rep := f.audit(t)
		if !rep.OK() || rep.Leaves != events || rep.Events != events || rep.Checkpoints != 2 {
			t.Fatalf("audit of an untouched log: %+v", rep)
		}
		p, err := ledger.NewProver(f.st)
		if err != nil {
			t.Fatal(err)
		}
		for _, i := range []int{0, 1, 255, 256, 299, 300, 511, 599} {
			b, err := p.Bundle(ctx, f.evs[i].ID)
			if err != nil {
				t.Fatalf("bundle of event %d: %v", i, err)
			}
			parsed, err := ledger.ParseBundle(b.Marshal())
			if err != nil {
				t.Fatalf("parse bundle %d: %v", i, err)
			}
			v, err := parsed.Verify(f.policy)
			if err != nil {
				t.Fatalf("verify bundle %d: %v", i, err)
			}
			if v.Index != uint64(i) || v.Leaf.ID != f.evs[i].ID || string(v.Leaf.Data) != string(f.evs[i].Data) || !v.Leaf.Meta.Equal(f.evs[i].Meta) {
				t.Fatalf("bundle %d proves %+v", i, v.Leaf)
			}
		}
		r300, err := p.Root(ctx, 300)
		if err != nil {
			t.Fatal(err)
		}
		r600, _ := p.Root(ctx, 600)
		cp, err := p.Consistency(ctx, 300, 600)
		if err != nil {
			t.Fatal(err)
		}
		if err := ledger.VerifyConsistency(300, 600, r300, r600, cp); err != nil {
			t.Fatal(err)
		}
		// Sealing again adds nothing; new events are sealed after the old ones.
		if n, _, err := f.signer.SealOnce(ctx); err != nil || n != 0 {
			t.Fatalf("seal again: %d, %v", n, err)
		}
	})
	t.Run("CosignaturesAtOnceAllStay", func(t *testing.T) {
		t.Parallel()
		testCosignaturesAtOnce(t, newStore)
	})
	t.Run("ABadLineDoesNotStay", func(t *testing.T) {
		t.Parallel()
		testBadLineMended(t, newStore)
	})
}

// testBadLineMended saves the latest checkpoint with a line note.Open refuses, which breaks the
// whole note (no signature of it opens, and no witness can cosign it), then has a sealer save
// the checkpoint again: the merge drops the bad line, and the note opens and takes a
// cosignature again.
func testBadLineMended(t *testing.T, newStore NewStore) {
	ctx := testContext(t)
	f := newFixture(t, newStore)
	ls := f.st.(strata.LedgerStore)
	logOnly, err := ls.LatestLedgerCheckpoint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	bad := logOnly
	bad.Note = append(slices.Clone(logOnly.Note), "— not a signature\n"...)
	if err := ls.SaveLedgerCheckpoint(ctx, bad); err != nil {
		t.Fatal(err)
	}
	if err := ls.SaveLedgerCheckpoint(ctx, logOnly); err != nil {
		t.Fatal(err)
	}
	cp, err := ls.LatestLedgerCheckpoint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := ledger.OpenCheckpoint(cp.Note, f.policy); err != nil {
		t.Fatalf("the checkpoint saved again after a bad line does not open (%v):\n%s", err, cp.Note)
	}
	skey, _, err := ledger.GenerateWitnessKey(rand.Reader, "witness.example")
	if err != nil {
		t.Fatal(err)
	}
	w, err := ledger.NewWitnessSigner(skey, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ledger.Cosign(cp.Note, f.policy.Log, w); err != nil {
		t.Fatalf("cosign the checkpoint saved again after a bad line: %v", err)
	}
}

// testCosignaturesAtOnce has eight witnesses cosign the latest checkpoint at once, each reading
// it, cosigning and saving it back as strata cosign does, then a sealer save the same
// checkpoint again, as a second sealer would: every cosignature stays, and a witness that
// cosigns again replaces its own.
func testCosignaturesAtOnce(t *testing.T, newStore NewStore) {
	ctx := testContext(t)
	f := newFixture(t, newStore)
	ls := f.st.(strata.LedgerStore)
	const witnesses = 8
	var vkeys []string
	var signers []note.Signer
	for i := range witnesses {
		skey, vkey, err := ledger.GenerateWitnessKey(rand.Reader, fmt.Sprintf("witness-%d.example", i))
		if err != nil {
			t.Fatal(err)
		}
		w, err := ledger.NewWitnessSigner(skey, nil)
		if err != nil {
			t.Fatal(err)
		}
		vkeys, signers = append(vkeys, vkey), append(signers, w)
	}
	logOnly, err := ls.LatestLedgerCheckpoint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	cosign := func(w note.Signer) error {
		cp, err := ls.LatestLedgerCheckpoint(ctx)
		if err != nil {
			return err
		}
		if cp.Note, err = ledger.Cosign(cp.Note, f.policy.Log, w); err != nil {
			return err
		}
		return ls.SaveLedgerCheckpoint(ctx, cp)
	}
	var wg sync.WaitGroup
	errs := make([]error, witnesses)
	start := make(chan struct{})
	for i, w := range signers {
		wg.Go(func() {
			<-start
			errs[i] = cosign(w)
		})
	}
	close(start)
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatalf("cosign at once: %v", err)
	}
	// A second sealer saves the checkpoint it signed, without the cosignatures.
	if err := ls.SaveLedgerCheckpoint(ctx, logOnly); err != nil {
		t.Fatal(err)
	}
	if err := cosign(signers[0]); err != nil {
		t.Fatalf("cosign again: %v", err)
	}
	cp, err := ls.LatestLedgerCheckpoint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	p := f.policy
	p.Witnesses, p.Quorum = nil, witnesses
	for _, v := range vkeys {
		wv, err := ledger.NewWitnessVerifier(v)
		if err != nil {
			t.Fatal(err)
		}
		p.Witnesses = append(p.Witnesses, wv)
	}
	if _, cosigned, err := ledger.OpenCheckpoint(cp.Note, p); err != nil || len(cosigned) != witnesses {
		t.Fatalf("the checkpoint after %d witnesses cosigned at once holds %d cosignatures (%v), want all:\n%s", witnesses, len(cosigned), err, cp.Note)
	}
	if n := bytes.Count(cp.Note, []byte("\n— ")); n != witnesses+1 {
		t.Fatalf("the checkpoint holds %d signatures, want the log's and one per witness:\n%s", n, cp.Note)
	}
	if !bytes.HasPrefix(cp.Note, logOnly.Note) {
		t.Fatalf("the log's signed checkpoint changed:\n%s\nwas\n%s", cp.Note, logOnly.Note)
	}
}

// testLateCommit seals while the append with the lower position is still open (the lost
// revocation of DESIGN §3): the sealer must not pass it, and once it commits it gets its leaf,
// in log order, with the ledger holding every event once.
func testLateCommit(t *testing.T, newStore NewStore) {
	ctx := testContext(t)
	st := newStore(t)
	if _, err := st.Append(ctx, "certificate-0000", strata.NoStream, strata.EventData{Type: "CertificateIssued"}); err != nil {
		t.Fatal(err)
	}
	sealer, err := ledger.NewSealer(st)
	if err != nil {
		t.Fatal(err)
	}
	if n, _, err := sealer.SealOnce(ctx); err != nil || n != 1 {
		t.Fatalf("first seal: %d, %v", n, err)
	}
	held, release := make(chan struct{}), make(chan struct{})
	revocation := uuid.New()
	aDone := make(chan error, 1)
	go func() {
		hold := strata.WithBeforeCommit(ctx, func(context.Context) error {
			close(held)
			select {
			case <-release:
			case <-ctx.Done():
			}
			return nil
		})
		_, err := st.Append(hold, "certificate-7F3A", strata.NoStream, strata.EventData{ID: revocation, Type: "CertificateRevoked"})
		aDone <- err
	}()
	<-held
	bDone := make(chan error, 1)
	go func() {
		_, err := st.Append(ctx, "certificate-0B1C", strata.NoStream, strata.EventData{Type: "CertificateIssued"})
		bDone <- err
	}()
	select {
	case err := <-bDone: // parallel writers: the issuance commits first
		if err != nil {
			t.Fatal(err)
		}
		bDone <- nil
	case <-time.After(200 * time.Millisecond): // serial writers: the issuance waits
	}
	sealed := make(chan error, 1) // a seal while the revocation is open (it may wait for it)
	go func() { _, _, err := sealer.SealOnce(ctx); sealed <- err }()
	select {
	case err := <-sealed:
		sealed <- err
	case <-time.After(200 * time.Millisecond):
	}
	close(release)
	for _, c := range []chan error{aDone, bDone, sealed} {
		if err := <-c; err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := sealer.SealOnce(ctx); err != nil {
		t.Fatal(err)
	}
	var log []strata.Event
	for e, err := range st.ReadAll(ctx, strata.ReadAllOptions{}) {
		if err != nil {
			t.Fatal(err)
		}
		log = append(log, e)
	}
	var leaves []strata.LedgerLeaf
	for l, err := range st.(strata.LedgerStore).LedgerLeaves(ctx, 0) {
		if err != nil {
			t.Fatal(err)
		}
		leaves = append(leaves, l)
	}
	if len(leaves) != len(log) {
		t.Fatalf("the ledger holds %d leaves, the log %d events: the sealer passed the revocation while it was open (the lost revocation)", len(leaves), len(log))
	}
	for i := range log {
		if leaves[i].EventID != log[i].ID {
			t.Fatalf("leaf %d is of event %s at %s, the log's event %d is %s at %s", i, leaves[i].EventID, leaves[i].Position, i, log[i].ID, log[i].Position)
		}
	}
}

// RunTamper checks that an audit reports each kind of tampering on the backend.
func RunTamper(t *testing.T, newStore NewStore, tm Tamper) {
	cases := []struct {
		name string
		fn   func(t *testing.T, f *fixture)
	}{
		{"EditData", func(t *testing.T, f *fixture) {
			e := f.evs[417]
			tm.EditData(t, f.st, e, []byte(`{"serial":"0000","n":0}`))
			wantProblem(t, f.audit(t), ledger.Changed, 417, e.Stream, e.Version)
		}},
		{"EditMetadata", func(t *testing.T, f *fixture) {
			e := f.evs[100]
			tm.CopyMeta(t, f.st, e, f.evs[101])
			wantProblem(t, f.audit(t), ledger.Changed, 100, e.Stream, e.Version)
		}},
		{"DeleteRow", func(t *testing.T, f *fixture) {
			e := f.evs[250]
			tm.Delete(t, f.st, e)
			rep := f.audit(t)
			wantProblem(t, rep, ledger.Deleted, 250, e.Stream, e.Version)
			if len(rep.Problems) != 1 {
				t.Fatalf("one deletion, %d problems: %v", len(rep.Problems), rep.Problems)
			}
		}},
		{"DeleteLastRow", func(t *testing.T, f *fixture) {
			e := f.evs[events-1]
			tm.Delete(t, f.st, e)
			wantProblem(t, f.audit(t), ledger.Deleted, events-1, e.Stream, e.Version)
		}},
		{"SwapRows", func(t *testing.T, f *fixture) {
			a, b := f.evs[10], f.evs[500]
			tm.Swap(t, f.st, a, b)
			rep := f.audit(t)
			wantProblem(t, rep, ledger.Reordered, 10, a.Stream, a.Version)
			wantProblem(t, rep, ledger.Reordered, 500, b.Stream, b.Version)
		}},
		{"InsertRow", func(t *testing.T, f *fixture) {
			id := uuid.New()
			tm.InsertAfter(t, f.st, f.evs[299], id)
			rep := f.audit(t)
			wantProblem(t, rep, ledger.Inserted, -1, "certificate-EVIL", 1)
			if len(rep.Problems) != 1 || rep.Problems[0].EventID != id {
				t.Fatalf("one insertion, problems: %v", rep.Problems)
			}
		}},
		{"EditStoredHash", func(t *testing.T, f *fixture) {
			editTile(t, f, 1, 0) // level 1 holds the roots of the full level-0 tiles
			wantProblem(t, f.audit(t), ledger.BadHash, -1, "", 0)
		}},
		{"EditStoredLeafHash", func(t *testing.T, f *fixture) {
			editTile(t, f, 0, 1) // leaves 256-511
			rep := f.audit(t)
			wantProblem(t, rep, ledger.BadCheckpoint, -1, "", 0)
		}},
		{"ForgeCheckpoint", func(t *testing.T, f *fixture) {
			ctx := testContext(t)
			ls := f.st.(strata.LedgerStore)
			c, err := ls.LatestLedgerCheckpoint(ctx)
			if err != nil {
				t.Fatal(err)
			}
			// Re-sign the checkpoint with a key of the same name: the signature must fail.
			skey, _, _ := ledger.GenerateKey(rand.Reader, "ca.example/strata")
			forger, _ := ledger.NewSigner(skey)
			body, err := ledger.ParseCheckpoint(c.Note[:indexOfBlank(c.Note)+1])
			if err != nil {
				t.Fatal(err)
			}
			body.Root[0] ^= 1
			forged, err := ledger.SignCheckpoint(body, forger)
			if err != nil {
				t.Fatal(err)
			}
			if err := ls.SaveLedgerCheckpoint(ctx, strata.LedgerCheckpoint{Size: c.Size, Note: forged}); err != nil {
				t.Fatal(err)
			}
			wantProblem(t, f.audit(t), ledger.BadCheckpoint, -1, "", 0)
			// Without the key, the root still gives the forgery away.
			rep, err := ledger.Audit(ctx, f.st, ledger.AuditOptions{})
			if err != nil {
				t.Fatal(err)
			}
			wantProblem(t, rep, ledger.BadCheckpoint, -1, "", 0)
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, newStore)
			if rep := f.audit(t); !rep.OK() {
				t.Fatalf("audit before tampering: %v", rep.Problems)
			}
			c.fn(t, f)
		})
	}
}

func indexOfBlank(note []byte) int {
	for i := 0; i+1 < len(note); i++ {
		if note[i] == '\n' && note[i+1] == '\n' {
			return i
		}
	}
	return len(note) - 1
}

// editTile flips a bit in a stored tile through the store's own API (the head stays put).
func editTile(t testing.TB, f *fixture, level int, index uint64) {
	t.Helper()
	ctx := testContext(t)
	ls := f.st.(strata.LedgerStore)
	ts, err := ls.LedgerTiles(ctx, []strata.LedgerTileID{{Level: level, Index: index}})
	if err != nil || len(ts) != 1 {
		t.Fatalf("tile %d/%d: %v, %v", level, index, ts, err)
	}
	ts[0].Data[5] ^= 0x40
	head, _ := ls.LedgerHead(ctx)
	if err := ls.AppendLedger(ctx, head, nil, ts); err != nil {
		t.Fatal(err)
	}
}
