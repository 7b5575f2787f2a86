package ledger

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/strata-events/strata"
)

func sampleEvent() strata.Event {
	return strata.Event{
		ID:     uuid.MustParse("0190e3c2-7b1a-7c3d-9e4f-0123456789ab"),
		Stream: "certificate-0B1C", Version: 3, Type: "CertificateRevoked", Schema: 1,
		Position:   strata.Position{Commit: 7, Event: 7},
		Data:       []byte(`{"serial":"0B1C","reason":"keyCompromise"}`),
		Meta:       strata.Metadata{Principal: "operator:mkim", Correlation: "incident-1", Extra: map[string]string{"ticket": "SEC-4711"}},
		RecordedAt: time.Date(2023, 3, 14, 9, 0, 0, 123456000, time.UTC),
		OccurredAt: time.Date(2023, 3, 14, 7, 30, 0, 0, time.UTC),
	}
}

// TestLeafEncodingGolden pins the leaf encoding of docs/LEDGER.md byte for byte.
func TestLeafEncodingGolden(t *testing.T) {
	e := sampleEvent()
	got := hex.EncodeToString(EncodeLeaf(nil, &e))
	want := "01" + "0190e3c27b1a7c3d9e4f0123456789ab" +
		"00000010" + hex.EncodeToString([]byte("certificate-0B1C")) +
		"0000000000000003" +
		"00000012" + hex.EncodeToString([]byte("CertificateRevoked")) +
		"00000001" +
		"0005f6d731f38e00" + // 2023-03-14T07:30:00Z in µs
		"0005f6d873d2e640" + // 2023-03-14T09:00:00.123456Z in µs
		"00000003" +
		"0000000b" + hex.EncodeToString([]byte("correlation")) + "0000000a" + hex.EncodeToString([]byte("incident-1")) +
		"00000009" + hex.EncodeToString([]byte("principal")) + "0000000d" + hex.EncodeToString([]byte("operator:mkim")) +
		"00000006" + hex.EncodeToString([]byte("ticket")) + "00000008" + hex.EncodeToString([]byte("SEC-4711")) +
		"0000002a" + hex.EncodeToString(e.Data)
	if got != want {
		t.Fatalf("leaf encoding changed:\n got %s\nwant %s", got, want)
	}
	l, err := DecodeLeaf(EncodeLeaf(nil, &e))
	if err != nil {
		t.Fatal(err)
	}
	if l.ID != e.ID || l.Stream != e.Stream || l.Version != e.Version || !l.Meta.Equal(e.Meta) || !bytes.Equal(l.Data, e.Data) ||
		!l.RecordedAt.Equal(e.RecordedAt) || !l.OccurredAt.Equal(e.OccurredAt) || l.Type != e.Type || l.Schema != e.Schema {
		t.Fatalf("round trip: %+v", l)
	}
}

func TestLeafRejectsNonCanonical(t *testing.T) {
	e := sampleEvent()
	good := EncodeLeaf(nil, &e)
	for name, b := range map[string][]byte{
		"empty":    nil,
		"version":  append([]byte{2}, good[1:]...),
		"trailing": append(bytes.Clone(good), 0),
		"short":    good[:len(good)-1],
	} {
		if _, err := DecodeLeaf(b); strata.ErrorCode(err) != strata.Invalid {
			t.Errorf("%s: %v, want Invalid", name, err)
		}
	}
}

// TestLeafRejectsNonCanonicalSchema: EncodeLeaf writes a schema above strata.MaxSchema as
// 0xFFFFFFFF, so a leaf holding one of the other values above it is not the encoding of any
// event; the decoder accepted it, and decoding then encoding changed the leaf (FuzzDecodeLeaf's
// identity), against "one event has exactly one leaf".
func TestLeafRejectsNonCanonicalSchema(t *testing.T) {
	e := sampleEvent()
	good := EncodeLeaf(nil, &e)
	at := 1 + 16 + 4 + len(e.Stream) + 8 + 4 + len(e.Type) // the schema's offset
	if binary.BigEndian.Uint32(good[at:]) != uint32(e.Schema) {
		t.Fatalf("no schema %d at offset %d", e.Schema, at)
	}
	for _, schema := range []uint32{strata.MaxSchema + 1, 0xFFFFFFFE} {
		b := bytes.Clone(good)
		binary.BigEndian.PutUint32(b[at:], schema)
		l, err := DecodeLeaf(b)
		if strata.ErrorCode(err) != strata.Invalid {
			t.Errorf("schema %#x: decoded as schema %d (re-encoded equal: %v), err %v; want Invalid", schema, l.Schema, bytes.Equal(l.Append(nil), b), err)
		}
	}
	// The encoding of a schema out of range (a row edited in the database) still decodes to a
	// leaf that encodes to it.
	e.Schema = strata.MaxSchema + 1
	out := EncodeLeaf(nil, &e)
	if l, err := DecodeLeaf(out); err != nil || !bytes.Equal(l.Append(nil), out) {
		t.Errorf("the leaf of schema %d: %v", e.Schema, err)
	}
}

func testKeys(t testing.TB) (Policy, *Sealer, string) {
	skey, vkey, err := GenerateKey(rand.Reader, "ca.example/strata")
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	p, err := NewPolicy(vkey, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	return p, &Sealer{cfg: config{signer: s}}, vkey
}

func TestCheckpointsAndWitnesses(t *testing.T) {
	policy, s, vkey := testKeys(t)
	c := Checkpoint{Origin: "ca.example/strata", Size: 42, Root: LeafHash([]byte("x"))}
	msg, err := SignCheckpoint(c, s.cfg.signer)
	if err != nil {
		t.Fatal(err)
	}
	got, _, err := OpenCheckpoint(msg, policy)
	if err != nil || got.Size != 42 || got.Root != c.Root {
		t.Fatalf("open: %+v, %v", got, err)
	}
	// Witnesses.
	wsk, wvk, err := GenerateWitnessKey(rand.Reader, "witness.example")
	if err != nil {
		t.Fatal(err)
	}
	w, err := NewWitnessSigner(wsk, func() time.Time { return time.Unix(1700000000, 0) })
	if err != nil {
		t.Fatal(err)
	}
	withW, err := NewPolicy(vkey, []string{wvk}, 1)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := OpenCheckpoint(msg, withW); strata.ErrorCode(err) != strata.Invalid {
		t.Fatalf("a checkpoint without the required cosignature: %v", err)
	}
	cosigned, err := Cosign(msg, policy.Log, w)
	if err != nil {
		t.Fatal(err)
	}
	_, wits, err := OpenCheckpoint(cosigned, withW)
	if err != nil || len(wits) != 1 || wits[0] != "witness.example" {
		t.Fatalf("cosigned: %v, %v", wits, err)
	}
	// A cosignature over another checkpoint does not count.
	other, _ := SignCheckpoint(Checkpoint{Origin: c.Origin, Size: 43, Root: c.Root}, s.cfg.signer)
	forged := append(bytes.Clone(other), cosigned[len(msg):]...)
	if _, _, err := OpenCheckpoint(forged, withW); err == nil {
		t.Fatal("a cosignature moved to another checkpoint verified")
	}
	// Forgeries of the log's signature.
	_, other2, _ := testKeys(t)
	forgedLog, _ := SignCheckpoint(c, other2.cfg.signer)
	if _, _, err := OpenCheckpoint(forgedLog, policy); strata.ErrorCode(err) != strata.Invalid {
		t.Fatalf("a checkpoint signed by another key: %v", err)
	}
	edited := bytes.Replace(msg, []byte("\n42\n"), []byte("\n43\n"), 1)
	if _, _, err := OpenCheckpoint(edited, policy); strata.ErrorCode(err) != strata.Invalid {
		t.Fatalf("an edited checkpoint: %v", err)
	}
	if _, err := SignCheckpoint(Checkpoint{Origin: "other.example", Size: 1}, s.cfg.signer); strata.ErrorCode(err) != strata.Invalid {
		t.Fatalf("signing another origin: %v", err)
	}
}

func FuzzParseCheckpoint(f *testing.F) {
	f.Add([]byte("ca.example/strata\n42\nIlE2xk8hPxZd0CM5AkVcAaSYD3UYbP/RLTLSWddfT44=\n"))
	f.Add([]byte("o\n0\nIlE2xk8hPxZd0CM5AkVcAaSYD3UYbP/RLTLSWddfT44=\next\n"))
	f.Add([]byte("o\n01\n\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := ParseCheckpoint(b)
		if err != nil {
			if strata.ErrorCode(err) != strata.Invalid {
				t.Fatalf("error %v is not Invalid", err)
			}
			return
		}
		if !bytes.Equal(c.Marshal(), b) {
			t.Fatalf("parse then marshal is not the identity: %q -> %q", b, c.Marshal())
		}
	})
}

func FuzzParseBundle(f *testing.F) {
	policy, s, _ := testKeys(f)
	e := sampleEvent()
	leaf := EncodeLeaf(nil, &e)
	msg, _ := SignCheckpoint(Checkpoint{Origin: "ca.example/strata", Size: 1, Root: LeafHash(leaf)}, s.cfg.signer)
	good := (&Bundle{Leaf: leaf, Index: 0, Checkpoint: msg}).Marshal()
	if _, err := mustParse(good).Verify(policy); err != nil {
		f.Fatalf("seed bundle: %v", err)
	}
	f.Add(good)
	f.Add([]byte(BundleHeader + "\nextra AA==\nindex 0\n\nx\n"))
	f.Add([]byte(BundleHeader + "\nindex 00\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		bd, err := ParseBundle(b)
		if err != nil {
			if strata.ErrorCode(err) != strata.Invalid {
				t.Fatalf("error %v is not Invalid", err)
			}
			return
		}
		v, err := bd.Verify(policy)
		if err != nil {
			if strata.ErrorCode(err) != strata.Invalid {
				t.Fatalf("verify error %v is not Invalid", err)
			}
			return
		}
		// Whatever verifies must be the one leaf that was signed.
		if v.Leaf.ID != e.ID || !bytes.Equal(bd.Leaf, leaf) {
			t.Fatalf("a different leaf verified: %+v", v.Leaf)
		}
	})
}

func mustParse(b []byte) *Bundle {
	bd, err := ParseBundle(b)
	if err != nil {
		panic(err)
	}
	return bd
}

func FuzzDecodeLeaf(f *testing.F) {
	e := sampleEvent()
	f.Add(EncodeLeaf(nil, &e))
	f.Add([]byte{1})
	f.Fuzz(func(t *testing.T, b []byte) {
		l, err := DecodeLeaf(b)
		if err != nil {
			if !errors.Is(err, strata.ErrInvalid) {
				t.Fatalf("error %v is not Invalid", err)
			}
			return
		}
		if got := l.Append(nil); !bytes.Equal(got, b) {
			t.Fatalf("decode then encode is not the identity")
		}
	})
}

// TestQuorumCountsEachWitnessOnce: a quorum counts witnesses, by name: two keys under one
// name in a policy are refused, so that one witness cannot count twice.
func TestQuorumCountsEachWitnessOnce(t *testing.T) {
	_, _, vkey := testKeys(t)
	_, w1, err := GenerateWitnessKey(rand.Reader, "witness.example")
	if err != nil {
		t.Fatal(err)
	}
	_, w2, err := GenerateWitnessKey(rand.Reader, "witness.example")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := NewPolicy(vkey, []string{w1, w2}, 2); strata.ErrorCode(err) != strata.Invalid {
		t.Fatalf("two witness keys under one name: %v, want Invalid", err)
	}
	_, w3, _ := GenerateWitnessKey(rand.Reader, "other-witness.example")
	if _, err := NewPolicy(vkey, []string{w1, w3}, 2); err != nil {
		t.Fatalf("two witnesses: %v", err)
	}
}

// TestCosignAgainReplacesTheCosignature: a witness (or strata cosign standing in for one, run
// on a schedule) that cosigns a checkpoint it cosigned before must not pile up signature lines:
// a note with more than 100 lines does not open, and the checkpoint, every bundle made from it
// and the sealer's next checkpoint would all fail.
func TestCosignAgainReplacesTheCosignature(t *testing.T) {
	policy, s, vkey := testKeys(t)
	msg, err := SignCheckpoint(Checkpoint{Origin: "ca.example/strata", Size: 42, Root: LeafHash([]byte("x"))}, s.cfg.signer)
	if err != nil {
		t.Fatal(err)
	}
	wsk, wvk, _ := GenerateWitnessKey(rand.Reader, "witness.example")
	osk, ovk, _ := GenerateWitnessKey(rand.Reader, "other-witness.example")
	other, _ := NewWitnessSigner(osk, func() time.Time { return time.Unix(1700000000, 0) })
	if msg, err = Cosign(msg, policy.Log, other); err != nil {
		t.Fatal(err)
	}
	withW, err := NewPolicy(vkey, []string{wvk, ovk}, 2)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 100 {
		w, _ := NewWitnessSigner(wsk, func() time.Time { return time.Unix(1700000000+int64(i), 0) })
		if msg, err = Cosign(msg, policy.Log, w); err != nil {
			t.Fatalf("cosign %d: %v", i+1, err)
		}
	}
	if _, wits, err := OpenCheckpoint(msg, withW); err != nil || len(wits) != 2 {
		t.Fatalf("a checkpoint cosigned 100 times by one witness: %v, %v", wits, err)
	}
	if n := bytes.Count(msg, []byte("\n— witness.example ")); n != 1 {
		t.Fatalf("%d cosignature lines by the witness, want 1 (the latest):\n%s", n, msg)
	}
	if !bytes.Contains(msg, []byte("\n— other-witness.example ")) || !signedBy(msg, s.cfg.signer) {
		t.Fatalf("cosigning again dropped another signature:\n%s", msg)
	}
}

// TestWitnessKeyNamesAreNoteNames: a cosignature is a line of the signed note, and note.Open
// refuses the whole note when a signature line's name holds a Unicode space or is not UTF-8.
// A witness key with such a name must not be made or accepted: cosigning with it made the
// checkpoint unreadable to every verifier, the sealer included.
func TestWitnessKeyNamesAreNoteNames(t *testing.T) {
	policy, s, _ := testKeys(t)
	msg, err := SignCheckpoint(Checkpoint{Origin: "ca.example/strata", Size: 1, Root: LeafHash([]byte("x"))}, s.cfg.signer)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"witness\u00a0example", "witness\u2003example", "witness\u0085", "witness\xff"} {
		skey, vkey, err := GenerateWitnessKey(rand.Reader, name)
		if err == nil {
			w, werr := NewWitnessSigner(skey, nil)
			if werr == nil {
				if cosigned, cerr := Cosign(msg, policy.Log, w); cerr == nil {
					_, _, err = OpenCheckpoint(cosigned, policy)
				}
			}
			t.Errorf("witness key named %q generated (%s); its cosigned checkpoint opens: %v", name, vkey, err)
			continue
		}
		if strata.ErrorCode(err) != strata.Invalid {
			t.Errorf("name %q: %v, want Invalid", name, err)
		}
		// Keys made elsewhere with such a name are refused too.
		_, good, _ := GenerateWitnessKey(rand.Reader, "w")
		_, rest, _ := strings.Cut(good, "+")
		if _, err := NewWitnessVerifier(name + "+" + rest); strata.ErrorCode(err) != strata.Invalid {
			t.Errorf("verifier key named %q: %v, want Invalid", name, err)
		}
	}
}

// TestSignCheckpointRefusesBadExtensions: an extension line is one non-empty line of text. An
// empty one put a blank line into the signed text, one holding a line break became two, and
// one with another control character made a note that note.Open refuses; the log signed them
// without an error, and the checkpoint then did not open, or opened as another.
func TestSignCheckpointRefusesBadExtensions(t *testing.T) {
	policy, s, _ := testKeys(t)
	c := Checkpoint{Origin: "ca.example/strata", Size: 3, Root: LeafHash([]byte("x"))}
	for _, ext := range [][]string{{""}, {"a\nb"}, {"ok", "b\n"}, {"\n"}, {"a\tb"}, {"a\rb"}, {"\xff"}} {
		c.Extensions = ext
		msg, err := SignCheckpoint(c, s.cfg.signer)
		if strata.ErrorCode(err) != strata.Invalid {
			got, _, oerr := OpenCheckpoint(msg, policy)
			t.Errorf("extensions %q: signed (%v); opens as %q, %v", ext, err, got.Extensions, oerr)
		}
	}
	// A log key whose name no note can carry is not made.
	if _, _, err := GenerateKey(rand.Reader, "ca.example/\x01"); strata.ErrorCode(err) != strata.Invalid {
		t.Errorf("a log key named with a control character: %v, want Invalid", err)
	}
	c.Extensions = []string{"vendor.example/ext 1", "more"}
	msg, err := SignCheckpoint(c, s.cfg.signer)
	if err != nil {
		t.Fatal(err)
	}
	if got, _, err := OpenCheckpoint(msg, policy); err != nil || !slices.Equal(got.Extensions, c.Extensions) {
		t.Fatalf("extensions %q: %q, %v", c.Extensions, got.Extensions, err)
	}
}
