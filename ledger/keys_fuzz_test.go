package ledger

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/strata-events/strata"
)

// fixedRand is a deterministic key source for fuzz seeds.
type fixedRand byte

func (r fixedRand) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(r) + byte(i)
	}
	return len(p), nil
}

// FuzzWitnessKeys checks the witness key parsers: an Invalid error, or a key whose name is
// valid and whose hash is the key ID of its public key.
func FuzzWitnessKeys(f *testing.F) {
	skey, vkey, err := GenerateWitnessKey(fixedRand(1), "witness.example")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(vkey, skey)
	f.Add("w+00000000+BA==", "PRIVATE+KEY+w+zzzzzzzz+")
	f.Add(strings.ToUpper(vkey), strings.Replace(skey, "+", " ", 1))
	f.Fuzz(func(t *testing.T, vkey, skey string) {
		v, err := NewWitnessVerifier(vkey)
		if err != nil {
			if strata.ErrorCode(err) != strata.Invalid {
				t.Fatalf("verifier %q: %v is not Invalid", vkey, err)
			}
		} else {
			w := v.(*witness)
			canon := "+" + base64.StdEncoding.EncodeToString(append([]byte{algCosignatureV1}, w.pub...))
			if !validKeyName(w.name) || cosigKeyHash(w.name, w.pub) != w.hash || !strings.HasSuffix(vkey, canon) {
				t.Fatalf("verifier %q accepted as %+v", vkey, w)
			}
			_ = v.Verify([]byte(skey), []byte(vkey)) // must not panic
		}
		s, err := NewWitnessSigner(skey, func() time.Time { return time.Unix(1, 0) })
		if err != nil {
			if strata.ErrorCode(err) != strata.Invalid {
				t.Fatalf("signer %q: %v is not Invalid", skey, err)
			}
			return
		}
		msg := []byte("o\n1\nAAAA\n")
		sig, err := s.Sign(msg)
		if err != nil {
			t.Fatalf("signer %q: %v", skey, err)
		}
		if !s.(*witness).Verify(msg, sig) {
			t.Fatalf("signer %q: its own signature does not verify", skey)
		}
	})
}

// FuzzNoteKeys checks the log's key parsers (note verifier and signer keys, and a policy
// with a witness): an Invalid error, or keys that sign and verify a checkpoint.
func FuzzNoteKeys(f *testing.F) {
	skey, vkey, err := GenerateKey(fixedRand(2), "ca.example/strata")
	if err != nil {
		f.Fatal(err)
	}
	_, wkey, _ := GenerateWitnessKey(fixedRand(3), "witness.example")
	f.Add(vkey, skey, wkey, 1)
	f.Add(vkey, skey, "", 0)
	f.Add(" "+vkey+"\n", skey+"\n", wkey, 2)
	f.Add("a+00000000+AQ==", "PRIVATE+KEY+a+00000000+AQ==", "", -1)
	f.Fuzz(func(t *testing.T, vkey, skey, wkey string, quorum int) {
		var witnesses []string
		if wkey != "" {
			witnesses = []string{wkey}
		}
		p, err := NewPolicy(vkey, witnesses, quorum)
		if err != nil {
			if strata.ErrorCode(err) != strata.Invalid {
				t.Fatalf("policy %q: %v is not Invalid", vkey, err)
			}
		} else if p.Log == nil || p.Quorum < 0 || p.Quorum > len(p.Witnesses) {
			t.Fatalf("policy %q, %d: %+v", vkey, quorum, p)
		}
		s, err := NewSigner(skey)
		if err != nil {
			if strata.ErrorCode(err) != strata.Invalid {
				t.Fatalf("signer %q: %v is not Invalid", skey, err)
			}
			return
		}
		msg, err := SignCheckpoint(Checkpoint{Origin: s.Name(), Size: 1}, s)
		if err != nil {
			if strata.ErrorCode(err) != strata.Invalid {
				t.Fatalf("sign with %q: %v is not Invalid", skey, err)
			}
			return
		}
		if err == nil && p.Log != nil && p.Quorum == 0 && p.Log.Name() == s.Name() && p.Log.KeyHash() == s.KeyHash() {
			if _, _, err := OpenCheckpoint(msg, p); err != nil && strata.ErrorCode(err) != strata.Invalid {
				t.Fatalf("open: %v is not Invalid", err)
			}
		}
	})
}

// FuzzOpenCheckpoint checks signed checkpoints against a policy with a witness: an Invalid
// error, or a checkpoint signed by the log whose origin is the log's and whose witnesses are
// the policy's.
func FuzzOpenCheckpoint(f *testing.F) {
	skey, vkey, _ := GenerateKey(fixedRand(4), "ca.example/strata")
	wskey, wvkey, _ := GenerateWitnessKey(fixedRand(5), "witness.example")
	p, err := NewPolicy(vkey, []string{wvkey}, 0)
	if err != nil {
		f.Fatal(err)
	}
	s, _ := NewSigner(skey)
	w, _ := NewWitnessSigner(wskey, func() time.Time { return time.Unix(1700000000, 0) })
	root := sha256.Sum256([]byte("x"))
	msg, err := SignCheckpoint(Checkpoint{Origin: "ca.example/strata", Size: 42, Root: root, Extensions: []string{"ext"}}, s)
	if err != nil {
		f.Fatal(err)
	}
	cosigned, err := Cosign(msg, p.Log, w)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(msg)
	f.Add(cosigned)
	f.Add(append(bytes.Clone(cosigned), cosigned[len(msg):]...))
	f.Add([]byte("ca.example/strata\n42\n\n— ca.example/strata AAAA\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, wits, err := OpenCheckpoint(b, p)
		if err != nil {
			if strata.ErrorCode(err) != strata.Invalid {
				t.Fatalf("%v is not Invalid", err)
			}
			return
		}
		if c.Origin != "ca.example/strata" {
			t.Fatalf("checkpoint of %q accepted", c.Origin)
		}
		for _, n := range wits {
			if n != "witness.example" {
				t.Fatalf("cosigned by unknown witness %q", n)
			}
		}
		if _, err := Cosign(b, p.Log, w); err != nil {
			t.Fatalf("an accepted checkpoint cannot be cosigned: %v", err)
		}
	})
}

// fuzzTileStore serves fixed tiles; the other LedgerStore methods are not called.
type fuzzTileStore struct {
	strata.LedgerStore
	tiles map[strata.LedgerTileID][]byte
}

func (s fuzzTileStore) LedgerTiles(_ context.Context, ids []strata.LedgerTileID) ([]strata.LedgerTile, error) {
	var out []strata.LedgerTile
	for _, id := range ids {
		if d, ok := s.tiles[id]; ok {
			out = append(out, strata.LedgerTile{LedgerTileID: id, Data: d})
		}
	}
	return out, nil
}

// FuzzTiles reads roots, proofs and a resumed builder from stored tiles of any content (a
// corrupted or truncated store): a typed error or a result, never a panic.
func FuzzTiles(f *testing.F) {
	full := bytes.Repeat([]byte{7}, tileW*hsize)
	f.Add(full[:3*hsize], full[:hsize], uint64(3), uint64(1))
	f.Add(full, full, uint64(tileW*tileW), uint64(300))
	f.Add(full, full[:5], uint64(tileW+1), uint64(0))
	f.Add([]byte{}, []byte{1}, uint64(1)<<40, uint64(1)<<39)
	f.Fuzz(func(t *testing.T, t0, t1 []byte, n, index uint64) {
		st := fuzzTileStore{tiles: map[strata.LedgerTileID][]byte{
			{Level: 0, Index: 0}:         t0,
			{Level: 0, Index: n / tileW}: t0,
			{Level: 1, Index: 0}:         t1,
			{Level: 1, Index: n >> 16}:   t1,
		}}
		typed := func(what string, err error) {
			var se *strata.Error
			if err != nil && !errors.As(err, &se) {
				t.Fatalf("%s: untyped error %v", what, err)
			}
		}
		tr := newTileReader(st)
		tr.cache = newTileCache()
		_, err := rootAt(context.Background(), tr, n)
		typed("root", err)
		if index < n {
			_, err = inclusion(context.Background(), tr, index, n)
			typed("inclusion", err)
			_, err = consistency(context.Background(), tr, index, n)
			typed("consistency", err)
		}
		_, err = resume(context.Background(), st, n)
		typed("resume", err)
	})
}

// FuzzVerifyConsistency checks consistency bundles against an older checkpoint (either the
// note or a bundle carrying it): an Invalid error, or a proof from a smaller tree of the same
// log whose older size is the bundle's.
func FuzzVerifyConsistency(f *testing.F) {
	skey, vkey, _ := GenerateKey(fixedRand(6), "ca.example/strata")
	p, err := NewPolicy(vkey, nil, 0)
	if err != nil {
		f.Fatal(err)
	}
	s, _ := NewSigner(skey)
	l0, l1 := LeafHash([]byte("a")), LeafHash([]byte("b"))
	old, _ := SignCheckpoint(Checkpoint{Origin: "ca.example/strata", Size: 1, Root: l0}, s)
	cur, _ := SignCheckpoint(Checkpoint{Origin: "ca.example/strata", Size: 2, Root: nodeHash(l0[:], l1[:])}, s)
	good := (&ConsistencyBundle{OldSize: 1, Proof: []Hash{l1}, Checkpoint: cur}).Marshal()
	bd, _ := ParseConsistencyBundle(good)
	if _, err := bd.Verify(p, old); err != nil {
		f.Fatalf("seed: %v", err)
	}
	f.Add(good, old)
	f.Add(good, good)
	f.Add((&ConsistencyBundle{OldSize: 2, Checkpoint: cur}).Marshal(), cur)
	f.Add((&ConsistencyBundle{OldSize: 2, Checkpoint: old}).Marshal(), cur)
	f.Fuzz(func(t *testing.T, data, prev []byte) {
		b, err := ParseConsistencyBundle(data)
		if err != nil {
			return
		}
		note, err := CheckpointNote(prev)
		if err != nil {
			if strata.ErrorCode(err) != strata.Invalid {
				t.Fatalf("checkpoint note: %v is not Invalid", err)
			}
			return
		}
		v, err := b.Verify(p, note)
		if err != nil {
			if strata.ErrorCode(err) != strata.Invalid {
				t.Fatalf("verify: %v is not Invalid", err)
			}
			return
		}
		if v.Old.Origin != v.New.Origin || v.Old.Size != b.OldSize || v.Old.Size > v.New.Size {
			t.Fatalf("verified %+v", v)
		}
	})
}
