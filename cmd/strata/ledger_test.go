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

// TestKeysGenerateKeepsExistingKeys: generating a key pair where one exists must not replace
// the log's signing key (lost for good) or the public key its checkpoints verify against.
func TestKeysGenerateKeepsExistingKeys(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	prefix := filepath.Join(dir, "log")
	mustCLI(t, "", "keys", "generate", "--origin", "ca.example/strata", "--out", prefix)
	key, _ := os.ReadFile(prefix + ".key")
	pub, _ := os.ReadFile(prefix + ".pub")
	r := cli(t, testContext(t), "", "", "keys", "generate", "--origin", "ca.example/strata", "--out", prefix)
	wantErr(t, r, exitInvalid, "exists")
	if r.stdout != "" {
		t.Errorf("stdout %q, want nothing", r.stdout)
	}
	if k, _ := os.ReadFile(prefix + ".key"); string(k) != string(key) {
		t.Error("the secret key was replaced")
	}
	if p, _ := os.ReadFile(prefix + ".pub"); string(p) != string(pub) {
		t.Error("the public key was replaced")
	}
	// Only the public key left: no new secret key next to it either.
	other := filepath.Join(dir, "other")
	if err := os.WriteFile(other+".pub", pub, 0o644); err != nil {
		t.Fatal(err)
	}
	wantErr(t, cli(t, testContext(t), "", "", "keys", "generate", "--origin", "x.example", "--out", other), exitInvalid, "exists")
	if _, err := os.Stat(other + ".key"); err == nil {
		t.Error("a secret key was written next to another key's public key")
	}
}

// TestVerifyOfflineRefusesAuditFlags: --event-key requires every event to be signed, which only
// the audit of a database checks; an offline --bundle or --consistency check that printed OK
// without checking it would pass off an unsigned event as verified.
func TestVerifyOfflineRefusesAuditFlags(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	db := "sqlite:" + filepath.Join(dir, "l.db")
	key := filepath.Join(dir, "log")
	mustCLI(t, "", "keys", "generate", "--origin", "ca.example/strata", "--out", key)
	mustCLI(t, db, "append", "certificate-7F3A", "CertificateIssued", `{"serial":"7F3A"}`)
	mustCLI(t, db, "seal", "--key", key+".key")
	var ev struct{ ID string }
	if err := json.Unmarshal([]byte(mustCLI(t, db, "read", "certificate-7F3A")), &ev); err != nil {
		t.Fatal(err)
	}
	bundle := filepath.Join(dir, "p")
	mustCLI(t, db, "proof", ev.ID, "--out", bundle)
	cons := filepath.Join(dir, "c")
	mustCLI(t, db, "proof", "--consistency-from", bundle, "--out", cons)
	for _, args := range [][]string{
		{"verify", "--bundle", bundle, "--key", key + ".pub", "--event-key", "ra-1=" + key + ".pub"},
		{"verify", "--consistency", cons, "--old", bundle, "--key", key + ".pub", "--event-key", "ra-1=" + key + ".pub"},
	} {
		r := cli(t, testContext(t), "", "", args...)
		wantErr(t, r, exitInvalid, "--event-key")
		if r.stdout != "" {
			t.Errorf("%v: stdout %q, want nothing", args, r.stdout)
		}
	}
}

// TestVerifyVouchesForSomething: an audit of a database path that is not there must not create
// an empty store and find it sound, and --key over a log without a checkpoint has checked no
// signature: neither prints OK.
func TestVerifyVouchesForSomething(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	key := filepath.Join(dir, "log")
	mustCLI(t, "", "keys", "generate", "--origin", "ca.example/strata", "--out", key)
	typo := filepath.Join(dir, "typo.db")
	wantErr(t, cli(t, testContext(t), "sqlite:"+typo, "", "verify", "--key", key+".pub", "--quiet"), exitNotFound, "no database at")
	if _, err := os.Stat(typo); err == nil {
		t.Errorf("verify created %s", typo)
	}
	db := "sqlite:" + filepath.Join(dir, "l.db")
	mustCLI(t, db, "append", "certificate-7F3A", "CertificateIssued", `{"serial":"7F3A"}`)
	r := cli(t, testContext(t), db, "", "verify", "--key", key+".pub", "--quiet")
	if r.code == 0 || !strings.Contains(r.stdout, "PROBLEM no checkpoint to check with --key") || strings.Contains(r.stdout, "\nOK") {
		t.Fatalf("verify --key of an unsealed log: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	mustCLI(t, db, "seal", "--key", key+".key")
	if out := mustCLI(t, db, "verify", "--key", key+".pub", "--quiet"); !strings.HasSuffix(out, "OK\n") {
		t.Fatalf("verify after seal: %s", out)
	}
}

// TestVerifyWitnessNeedsKey: --witness and --quorum ask that checkpoints carry cosignatures,
// which only a check of the log's signature (--key) looks at. Without --key the audit checked
// no signature at all and still printed OK with exit status 0: a script that required a
// witness quorum passed a log nobody cosigned.
func TestVerifyWitnessNeedsKey(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	key, wit := filepath.Join(dir, "log"), filepath.Join(dir, "witness")
	mustCLI(t, "", "keys", "generate", "--origin", "ca.example/strata", "--out", key)
	mustCLI(t, "", "keys", "generate", "--origin", "witness.example", "--out", wit, "--witness")
	db := "sqlite:" + filepath.Join(dir, "l.db")
	mustCLI(t, db, "append", "certificate-7F3A", "CertificateIssued", `{"serial":"7F3A"}`)
	mustCLI(t, db, "seal", "--key", key+".key") // signed by the log, cosigned by no witness
	for _, args := range [][]string{
		{"verify", "--quiet", "--witness", wit + ".pub"},
		{"verify", "--quiet", "--witness", wit + ".pub", "--quorum", "1"},
		{"verify", "--quiet", "--quorum", "1"},
	} {
		r := cli(t, testContext(t), db, "", args...)
		wantErr(t, r, exitInvalid, "--key")
		if strings.Contains(r.stdout, "OK") {
			t.Errorf("%v: stdout %q", args, r.stdout)
		}
	}
	// With --key, the missing cosignature is found.
	if r := cli(t, testContext(t), db, "", "verify", "--quiet", "--key", key+".pub", "--witness", wit+".pub"); r.code == 0 {
		t.Fatalf("a checkpoint without the witness's cosignature verified: %s", r.stdout)
	}
}

// TestVerifyOneOfflineCheckAtATime: with both --bundle and --consistency, verify checked the
// consistency bundle only and exited 0, whatever the proof bundle held; --old without
// --consistency was ignored.
func TestVerifyOneOfflineCheckAtATime(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	key := filepath.Join(dir, "log")
	mustCLI(t, "", "keys", "generate", "--origin", "ca.example/strata", "--out", key)
	db := "sqlite:" + filepath.Join(dir, "l.db")
	mustCLI(t, db, "append", "certificate-7F3A", "CertificateIssued", `{"serial":"7F3A"}`)
	mustCLI(t, db, "seal", "--key", key+".key")
	var ev struct{ ID string }
	if err := json.Unmarshal([]byte(mustCLI(t, db, "read", "certificate-7F3A")), &ev); err != nil {
		t.Fatal(err)
	}
	bundle := filepath.Join(dir, "p")
	mustCLI(t, db, "proof", ev.ID, "--out", bundle)
	cons := filepath.Join(dir, "c")
	mustCLI(t, db, "proof", "--consistency-from", bundle, "--out", cons)
	forged := filepath.Join(dir, "forged")
	if err := os.WriteFile(forged, []byte("not a bundle\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r := cli(t, testContext(t), "", "", "verify", "--bundle", forged, "--consistency", cons, "--old", bundle, "--key", key+".pub")
	wantErr(t, r, exitInvalid, "--bundle")
	if r.stdout != "" {
		t.Errorf("stdout %q, want nothing", r.stdout)
	}
	// --old without --consistency was ignored the same way.
	r = cli(t, testContext(t), "", "", "verify", "--bundle", bundle, "--old", forged, "--key", key+".pub")
	wantErr(t, r, exitInvalid, "--old")
	if r.stdout != "" {
		t.Errorf("stdout %q, want nothing", r.stdout)
	}
}

// TestSigningKeyRefusedBeforeWriting: a log whose checkpoints another key signs makes seal --key
// and demo fail with exit 2 (invalid input, nothing written) before they seal or append anything.
func TestSigningKeyRefusedBeforeWriting(t *testing.T) {
	db := tempDB(t)
	dir := t.TempDir()
	mustCLI(t, db, "append", "s-1", "T", `{}`)
	mustCLI(t, "", "keys", "generate", "--origin", "ca.example/log", "--out", filepath.Join(dir, "log"))
	mustCLI(t, "", "keys", "generate", "--origin", "other.example/log", "--out", filepath.Join(dir, "other"))
	mustCLI(t, db, "seal", "--key", filepath.Join(dir, "log.key"))

	mustCLI(t, db, "append", "s-1", "T", `{}`)
	r := cli(t, testContext(t), db, "", "seal", "--key", filepath.Join(dir, "other.key"))
	if r.code != exitInvalid {
		t.Fatalf("seal with another key: exit %d, want %d: %s%s", r.code, exitInvalid, r.stdout, r.stderr)
	}
	if out := mustCLI(t, db, "seal"); !strings.HasPrefix(out, "sealed 1 events") {
		t.Errorf("the refused seal sealed events; a later seal says %q, want sealed 1 events", out)
	}

	r = cli(t, testContext(t), db, "", "demo")
	if r.code != exitInvalid {
		t.Fatalf("demo on a log signed by another key: exit %d, want %d: %s", r.code, exitInvalid, r.stderr)
	}
	if out := mustCLI(t, db, "streams"); len(lines(t, out)) != 1 {
		t.Errorf("the refused demo wrote streams:\n%s", out)
	}
}

// TestKeysGenerateNeedsAFileName: an --out that names no file (empty, or a directory ending in
// a slash) wrote the hidden files .key and .pub, where nobody looks for a log's secret key.
func TestKeysGenerateNeedsAFileName(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	for _, out := range []string{"", dir + string(filepath.Separator), "."} {
		wantErr(t, cli(t, testContext(t), "", "", "keys", "generate", "--origin", "ca.example/log", "--out", out), exitInvalid, "--out")
	}
	for _, p := range []string{".key", ".pub", "..key", "..pub"} {
		if _, err := os.Lstat(filepath.Join(dir, p)); err == nil {
			t.Errorf("keys generate wrote %s", p)
		}
	}
}
