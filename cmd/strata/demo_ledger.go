package main

import (
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"

	"github.com/strata-events/strata"
	"github.com/strata-events/strata/ledger"
)

// demoOrigin names the demo's log; its key is derived from a fixed seed so that every demo run
// signs with the same key. Never use it for anything else.
const demoOrigin = "demo.strata.example/log"

// demoKey returns the demo's key pair.
func demoKey() (skey, vkey string, err error) {
	return ledger.GenerateKey(&seedReader{seed: sha256.Sum256([]byte("strata demo key, not secret"))}, demoOrigin)
}

// seedReader is a deterministic byte stream: SHA-256 in counter mode over a seed.
type seedReader struct {
	seed [32]byte
	n    uint64
	buf  []byte
}

func (r *seedReader) Read(p []byte) (int, error) {
	for len(r.buf) < len(p) {
		h := sha256.Sum256(fmt.Appendf(r.seed[:], "%d", r.n))
		r.n++
		r.buf = append(r.buf, h[:]...)
	}
	n := copy(p, r.buf)
	r.buf = r.buf[n:]
	return n, nil
}

// ledger seals the log, signs a checkpoint with the demo key, writes a proof bundle for the
// revocation of 0B1C and verifies it offline, from the file and the public key alone.
func (d *demo) ledger(ctx context.Context) error {
	skey, vkey, err := demoKey()
	if err != nil {
		return err
	}
	signer, err := ledger.NewSigner(skey)
	if err != nil {
		return err
	}
	sealer, err := ledger.NewSealer(d.st, ledger.WithSigner(signer))
	if err != nil {
		return err
	}
	n, head, err := sealer.SealOnce(ctx)
	if err != nil {
		return fmt.Errorf("demo: seal: %w", err)
	}
	cp, err := sealer.Checkpoint(ctx)
	if err != nil {
		return fmt.Errorf("demo: checkpoint: %w", err)
	}
	fmt.Fprintf(d.out, "\nTamper-evident log\n  sealed %d events into the Merkle tree (%d leaves) and signed a checkpoint:\n", n, head.Size)
	for _, line := range splitLines(string(cp.Note)) {
		fmt.Fprintf(d.out, "    %s\n", line)
	}
	var revocation *strata.Event
	for e, err := range d.st.ReadStream(ctx, d.stream("0B1C"), strata.ReadStreamOptions{}) {
		if err != nil {
			return err
		}
		if e.Type == "CertificateRevoked" {
			revocation = &e
		}
	}
	if revocation == nil {
		return fmt.Errorf("demo: no revocation of %s to prove", d.serial("0B1C"))
	}
	p, err := ledger.NewProver(d.st)
	if err != nil {
		return err
	}
	b, err := p.Bundle(ctx, revocation.ID)
	if err != nil {
		return fmt.Errorf("demo: proof: %w", err)
	}
	dir := os.TempDir()
	bundlePath := filepath.Join(dir, "strata-demo-revocation.tlog-proof")
	keyPath := filepath.Join(dir, "strata-demo-log.pub")
	if err := os.WriteFile(bundlePath, b.Marshal(), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(keyPath, []byte(vkey+"\n"), 0o644); err != nil {
		return err
	}
	fmt.Fprintf(d.out, "  wrote the proof that %s's revocation is in that checkpoint: %s (%d proof hashes)\n", d.serial("0B1C"), bundlePath, len(b.Proof))

	// Offline: only the file and the public key.
	data, err := os.ReadFile(bundlePath)
	if err != nil {
		return err
	}
	pub, err := os.ReadFile(keyPath)
	if err != nil {
		return err
	}
	policy, err := ledger.NewPolicy(string(pub), nil, 0)
	if err != nil {
		return err
	}
	parsed, err := ledger.ParseBundle(data)
	if err != nil {
		return err
	}
	v, err := parsed.Verify(policy)
	if err != nil {
		return fmt.Errorf("demo: the revocation's proof does not verify: %w", err)
	}
	fmt.Fprintf(d.out, "  verified offline against %s: %s v%d %s (%s) is leaf %d of the %d-leaf tree signed by %s\n",
		keyPath, v.Leaf.Stream, v.Leaf.Version, v.Leaf.Type, v.Leaf.Meta.Principal, v.Index, v.Checkpoint.Size, v.Checkpoint.Origin)
	fmt.Fprintf(d.out, "  the same check from a shell: strata verify --bundle %s --key %s\n", bundlePath, keyPath)
	return nil
}

func splitLines(s string) []string {
	var out []string
	for len(s) > 0 {
		i := 0
		for i < len(s) && s[i] != '\n' {
			i++
		}
		out = append(out, s[:i])
		if i < len(s) {
			i++
		}
		s = s[i:]
	}
	return out
}
