package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestPersonalDataCLI declares a type's personal data, appends with and without a KEK, reads,
// erases, rotates the KEK, and checks that the SQLite file never holds the clear text.
func TestPersonalDataCLI(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "strata.db")
	db := "sqlite:" + path
	kek := strings.TrimSpace(mustCLI(t, db, "keys", "generate-kek"))
	kekFile := filepath.Join(dir, "kek")
	if err := os.WriteFile(kekFile, []byte(kek), 0o600); err != nil {
		t.Fatal(err)
	}
	mustCLI(t, db, "schema", "set", "CertificateIssued", "--sensitive", "subjectDN,subjectEmail", "--subject", "subjectId")
	if out := mustCLI(t, db, "schema", "list"); !strings.Contains(out, "CertificateIssued: sensitive subjectDN, subjectEmail, subject subjectId") {
		t.Fatalf("schema list: %s", out)
	}
	payload := `{"serial":"7F3A","subjectId":"subject-9","subjectDN":"CN=Ulrike Zwiebelfisch","subjectEmail":"uz@example.org"}`
	// Without a KEK the CLI refuses to write a declared type rather than write it in clear.
	r := cli(t, testContext(t), db, "", "append", "certificate-7F3A", "CertificateIssued", payload)
	if r.code != exitUnavailable || !strings.Contains(r.stderr, "no key-encryption key") {
		t.Fatalf("append without a KEK: exit %d, %s", r.code, r.stderr)
	}
	mustCLI(t, db, "append", "certificate-7F3A", "CertificateIssued", payload, "--kek-file", kekFile)
	if out := mustCLI(t, db, "read", "certificate-7F3A"); strings.Contains(out, "Zwiebelfisch") || !strings.Contains(out, "strata:enc:v1:") {
		t.Fatalf("read without a KEK shows: %s", out)
	}
	if out := mustCLI(t, db, "read", "certificate-7F3A", "--kek-file", kekFile); !strings.Contains(out, `"subjectDN":"CN=Ulrike Zwiebelfisch"`) {
		t.Fatalf("read with the KEK shows: %s", out)
	}
	// Rotate to a new KEK; the new one alone reads.
	next := strings.TrimSpace(mustCLI(t, db, "keys", "generate-kek"))
	nextFile := filepath.Join(dir, "kek2")
	os.WriteFile(nextFile, []byte(next), 0o600)
	if out := mustCLI(t, db, "keys", "rotate-kek", "--to-file", nextFile, "--kek-file", kekFile); !strings.Contains(out, "re-wrapped 1 data keys") {
		t.Fatalf("rotate: %s", out)
	}
	if r := cli(t, testContext(t), db, "", "read", "certificate-7F3A", "--kek-file", kekFile); r.code == 0 || !strings.Contains(r.stderr, "cannot unwrap") {
		t.Fatalf("the old KEK after rotation: exit %d %s", r.code, r.stderr)
	}
	if out := mustCLI(t, db, "read", "certificate-7F3A", "--kek-file", nextFile); !strings.Contains(out, "Zwiebelfisch") {
		t.Fatalf("read with the new KEK: %s", out)
	}
	if out := mustCLI(t, db, "erase", "subject-9", "--meta", "principal=dpo"); !strings.Contains(out, "erased subject-9") {
		t.Fatalf("erase: %s", out)
	}
	if out := mustCLI(t, db, "read", "certificate-7F3A", "--kek-file", nextFile); !strings.Contains(out, `"subjectDN":"[redacted]"`) {
		t.Fatalf("read after erasure: %s", out)
	}
	for _, f := range []string{path, path + "-wal"} {
		if b, err := os.ReadFile(f); err == nil && strings.Contains(string(b), "Zwiebelfisch") {
			t.Fatalf("%s holds the clear text", f)
		}
	}
}
