package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/strata-events/strata"
	"github.com/strata-events/strata/eventsig"
)

// parseEventKeys reads --event-key KID=FILE flags: PEM "PUBLIC KEY" files holding an Ed25519
// or ECDSA P-256 key.
func parseEventKeys(flags []string) ([]eventsig.Verifier, error) {
	var vs []eventsig.Verifier
	for _, f := range flags {
		kid, path, ok := strings.Cut(f, "=")
		if !ok || kid == "" || path == "" {
			return nil, invalidf("verify", "--event-key %q: want KEY-ID=PUBLIC-KEY.pem", f)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, invalidf("verify", "--event-key %s: %v", kid, err)
		}
		block, _ := pem.Decode(b)
		if block == nil || block.Type != "PUBLIC KEY" {
			return nil, invalidf("verify", "--event-key %s: %s holds no PEM PUBLIC KEY", kid, path)
		}
		pub, err := x509.ParsePKIXPublicKey(block.Bytes)
		if err != nil {
			return nil, invalidf("verify", "--event-key %s: %v", kid, err)
		}
		switch k := pub.(type) {
		case ed25519.PublicKey:
			vs = append(vs, eventsig.Ed25519Verifier(kid, k))
		case *ecdsa.PublicKey:
			if k.Curve != elliptic.P256() {
				return nil, invalidf("verify", "--event-key %s: an ECDSA key on %s; ES256 signatures need P-256", kid, k.Curve.Params().Name)
			}
			vs = append(vs, eventsig.ES256Verifier(kid, k))
		default:
			return nil, invalidf("verify", "--event-key %s: a %T; want Ed25519 or ECDSA P-256", kid, pub)
		}
	}
	return vs, nil
}

// verifyEventSignatures checks that every event of the log is signed by one of vs, printing a
// PROBLEM line per event that is not, and returns how many were not.
func verifyEventSignatures(ctx context.Context, st strata.Store, vs []eventsig.Verifier, out io.Writer) (checked, bad int, err error) {
	for e, err := range st.ReadAll(ctx, strata.ReadAllOptions{}) {
		if err != nil {
			return checked, bad, err
		}
		if tombstoned(ctx, st, &e) {
			continue // retention removed its payload and signature; the audit checked its leaf hash
		}
		checked++
		if _, err := eventsig.Verify(e, vs...); err != nil {
			bad++
			if bad <= 1000 {
				fmt.Fprintf(out, "PROBLEM signature: %s v%d at %s: %v\n", e.Stream, e.Version, e.Position, err)
			}
		}
	}
	return checked, bad, nil
}

// tombstoned reports whether retention removed e's payload (strata.RetentionStore keeps a
// tombstone for it).
func tombstoned(ctx context.Context, st strata.Store, e *strata.Event) bool {
	rs, ok := st.(strata.RetentionStore)
	if !ok || string(e.Data) != string(strata.TombstoneData) {
		return false
	}
	_, err := rs.Tombstone(ctx, e.ID)
	return err == nil
}
