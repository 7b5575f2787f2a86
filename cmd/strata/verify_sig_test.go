package main

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/strata-events/strata"
	"github.com/strata-events/strata/codec"
	"github.com/strata-events/strata/eventsig"
	"github.com/strata-events/strata/sqlite"
)

type signedPayload struct {
	Serial string `json:"serial"`
}

// TestVerifyEventSignatures signs events in Go, then audits them with strata verify
// --event-key: all signed passes; an unsigned event appended by hand fails with its stream.
func TestVerifyEventSignatures(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "strata.db")
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	der, _ := x509.MarshalPKIXPublicKey(pub)
	keyFile := filepath.Join(dir, "ra.pem")
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o644)

	st, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	reg := codec.NewRegistry()
	codec.Register[signedPayload](reg, "Signed", 1)
	reg.Use(eventsig.Transform(eventsig.NewEd25519("ra-1", priv)))
	for i := range 3 {
		d, err := reg.Encode(ctx, signedPayload{Serial: string(rune('A' + i))}, strata.Metadata{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := st.Append(ctx, "certificate-S", strata.Any, d); err != nil {
			t.Fatal(err)
		}
	}
	st.Close()
	db := "sqlite:" + path
	if out := mustCLI(t, db, "verify", "--quiet", "--event-key", "ra-1="+keyFile); !strings.Contains(out, "3 event signatures checked, 0 missing or bad") {
		t.Fatalf("verify: %s", out)
	}
	mustCLI(t, db, "append", "certificate-U", "Unsigned", "{}")
	r := cli(t, testContext(t), db, "", "verify", "--quiet", "--event-key", "ra-1="+keyFile)
	if r.code == 0 || !strings.Contains(r.stdout, "PROBLEM signature: certificate-U v1") {
		t.Fatalf("verify with an unsigned event: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if r := cli(t, testContext(t), db, "", "verify", "--event-key", "nokey"); r.code != exitInvalid {
		t.Fatalf("a bad --event-key: exit %d %s", r.code, r.stderr)
	}
}
