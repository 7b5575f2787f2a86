package sqlite_test

import (
	"context"
	"crypto/rand"
	"database/sql"
	"path/filepath"
	"testing"

	"github.com/strata-events/strata"
	"github.com/strata-events/strata/ledger"
)

// TestSealerSignsNoFork: once a stored tile of the signed part of the tree is changed (by
// someone who can write to the database but does not hold the key), the sealer refuses to sign
// a checkpoint whose tree does not extend the one it signed before.
func TestSealerSignsNoFork(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "strata.db")
	st := openPath(t, path)
	appendOne := func(serial string) {
		t.Helper()
		if _, err := st.Append(ctx, "certificate-"+serial, strata.Any, strata.EventData{Type: "CertificateIssued", Data: []byte(`{"serial":"` + serial + `"}`)}); err != nil {
			t.Fatal(err)
		}
	}
	skey, _, _ := ledger.GenerateKey(rand.Reader, "ca.example/strata")
	signer, _ := ledger.NewSigner(skey)
	s, err := ledger.NewSealer(st, ledger.WithSigner(signer))
	if err != nil {
		t.Fatal(err)
	}
	for _, serial := range []string{"7F3A", "7F3B", "7F3C"} {
		appendOne(serial)
	}
	if _, _, err := s.SealOnce(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
	appendOne("7F3D")
	if _, _, err := s.SealOnce(ctx); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	// The first leaf's hash, in the level-0 tile: a signed leaf rewritten.
	var tile []byte
	if err := db.QueryRow(`SELECT data FROM ledger_tiles WHERE level = 0 AND tile_index = 0`).Scan(&tile); err != nil {
		t.Fatal(err)
	}
	tile[0] ^= 1
	if _, err := db.Exec(`UPDATE ledger_tiles SET data = ? WHERE level = 0 AND tile_index = 0`, tile); err != nil {
		t.Fatal(err)
	}
	if c, err := s.Checkpoint(ctx); strata.ErrorCode(err) != strata.Internal {
		t.Fatalf("checkpoint over a changed tile: %d leaves, %v; want an Internal error and no signature", c.Size, err)
	}
	if c, err := st.LatestLedgerCheckpoint(ctx); err != nil || c.Size != 3 {
		t.Fatalf("latest checkpoint: %d leaves, %v; want the one at 3", c.Size, err)
	}
}
