package main

import (
	"database/sql"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	_ "modernc.org/sqlite"
)

// TestLedgerCommands runs keys, seal, proof and verify end to end, then tampers with an event
// and expects verify to fail with a line naming it.
func TestLedgerCommands(t *testing.T) {
	dir := t.TempDir()
	dbPath := filepath.Join(dir, "l.db")
	db := "sqlite:" + dbPath
	key := filepath.Join(dir, "log")
	mustCLI(t, "", "keys", "generate", "--origin", "ca.example/strata", "--out", key)
	mustCLI(t, db, "append", "certificate-7F3A", "CertificateIssued", `{"serial":"7F3A"}`, "--expect", "no-stream")
	mustCLI(t, db, "append", "certificate-7F3A", "CertificateRevoked", `{"reason":"keyCompromise"}`, "--expect", "1")
	out := mustCLI(t, db, "seal", "--key", key+".key")
	if !strings.Contains(out, "sealed 2 events") || !strings.Contains(out, "ca.example/strata\n2\n") {
		t.Fatalf("seal: %s", out)
	}
	var ev struct{ ID string }
	lines := strings.Split(strings.TrimSpace(mustCLI(t, db, "read", "certificate-7F3A")), "\n")
	if err := json.Unmarshal([]byte(lines[1]), &ev); err != nil {
		t.Fatal(err)
	}
	bundle := filepath.Join(dir, "rev.tlog-proof")
	mustCLI(t, db, "proof", ev.ID, "--out", bundle)
	out = mustCLI(t, "", "verify", "--bundle", bundle, "--key", key+".pub")
	if !strings.HasPrefix(out, "OK: event "+ev.ID) {
		t.Fatalf("verify bundle: %s", out)
	}
	// Later, the log grows; a consistency bundle proves the new checkpoint extends the one the
	// auditor kept in the proof bundle, offline.
	mustCLI(t, db, "append", "certificate-8B01", "CertificateIssued", `{"serial":"8B01"}`, "--expect", "no-stream")
	mustCLI(t, db, "seal", "--key", key+".key")
	consistency := filepath.Join(dir, "grow.tlog-consistency")
	if out := mustCLI(t, db, "proof", "--consistency-from", bundle, "--out", consistency); !strings.Contains(out, "consistency from 2 to 3 leaves") {
		t.Fatalf("proof --consistency-from: %s", out)
	}
	if out := mustCLI(t, "", "verify", "--consistency", consistency, "--old", bundle, "--key", key+".pub"); !strings.HasPrefix(out, "OK: the log ca.example/strata at 3 leaves") {
		t.Fatalf("verify --consistency: %s", out)
	}
	if r := cli(t, testContext(t), "", "", "verify", "--consistency", consistency, "--key", key+".pub"); r.code != 2 {
		t.Fatalf("verify --consistency without --old: exit %d, want 2: %s", r.code, r.stderr)
	}
	// The bundle is checked against the key: another key fails, offline.
	other := filepath.Join(dir, "other")
	mustCLI(t, "", "keys", "generate", "--origin", "ca.example/strata", "--out", other)
	if r := cli(t, testContext(t), "", "", "verify", "--bundle", bundle, "--key", other+".pub"); r.code == 0 {
		t.Fatalf("a bundle verified against another key: %s", r.stdout)
	}
	if r := cli(t, testContext(t), "", "", "verify", "--consistency", consistency, "--old", bundle, "--key", other+".pub"); r.code == 0 {
		t.Fatalf("a consistency bundle verified against another key: %s", r.stdout)
	}
	// A bit flipped in the bundle's leaf fails.
	b, _ := os.ReadFile(bundle)
	i := strings.Index(string(b), "extra ") + 20
	b[i] ^= 1
	os.WriteFile(bundle, b, 0o644)
	if r := cli(t, testContext(t), "", "", "verify", "--bundle", bundle, "--key", key+".pub"); r.code == 0 {
		t.Fatalf("an edited bundle verified: %s", r.stdout)
	}
	if out := mustCLI(t, db, "verify", "--key", key+".pub", "--quiet"); !strings.Contains(out, "OK") {
		t.Fatalf("verify db: %s", out)
	}
	raw, err := sql.Open("sqlite", dbPath)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := raw.Exec(`UPDATE events SET data = '{"reason":"superseded"}' WHERE version = 2`); err != nil {
		t.Fatal(err)
	}
	raw.Close()
	r := cli(t, testContext(t), db, "", "verify", "--key", key+".pub", "--quiet")
	if r.code == 0 || !strings.Contains(r.stdout, "PROBLEM changed leaf 1 certificate-7F3A v2") {
		t.Fatalf("verify after tampering: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
}
