package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
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

// TestSchemaSetCollections declares paths into arrays and maps, appends raw JSON through the
// CLI, and checks that no element's personal data reaches the SQLite file, that it reads back
// with the KEK and as redaction markers after the erasure; malformed paths are refused.
func TestSchemaSetCollections(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "strata.db")
	db := "sqlite:" + path
	kekFile := filepath.Join(dir, "kek")
	if err := os.WriteFile(kekFile, []byte(strings.TrimSpace(mustCLI(t, db, "keys", "generate-kek"))), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args []string
		why  string
	}{
		{[]string{"--sensitive", "approvers[0].email"}, `"[0]" is an array index`},
		{[]string{"--sensitive", "approvers[.email"}, `a "[" must be followed by "]"`},
		{[]string{"--sensitive", "contacts.a*.email"}, `a "*" must stand alone`},
		{[]string{"--sensitive", "holder..email"}, "an empty field name"},
		{[]string{"--sensitive", "email", "--subject", "holders[].id"}, "one event has one data subject"},
		{[]string{"--sensitive", "holder", "--subject", "holder.id"}, "lies in the sensitive path"},
	} {
		r := cli(t, testContext(t), db, "", append([]string{"schema", "set", "RevocationApproved"}, c.args...)...)
		if r.code != exitInvalid || !strings.Contains(r.stderr, c.why) {
			t.Errorf("schema set %q: exit %d, %s; want %d and %q", c.args, r.code, r.stderr, exitInvalid, c.why)
		}
	}
	if out := mustCLI(t, db, "schema", "list"); strings.TrimSpace(out) != "" {
		t.Fatalf("malformed declarations were stored: %s", out)
	}
	mustCLI(t, db, "schema", "set", "RevocationApproved", "--sensitive", "approvers[].email,contacts.*.email", "--sensitive", "teams[].members[].name", "--subject", "subjectId")
	if out := mustCLI(t, db, "schema", "list"); !strings.Contains(out, "RevocationApproved: sensitive approvers[].email, contacts.*.email, teams[].members[].name, subject subjectId") {
		t.Fatalf("schema list: %s", out)
	}
	payload := `{"subjectId":"subject-9","serial":"7F3A","approvers":[{"email":"qx-one@example.org","role":"chair"},{"email":"qx-two@example.org"}],` +
		`"contacts":{"alice":{"email":"qx-alice@example.org"},"bob":{"email":"qx-bob@example.org"}},"teams":[{"members":[{"name":"Qx Wendeltreppe"}]},{"members":[]}],"approverCount":2}`
	mustCLI(t, db, "append", "revocation-7F3A", "RevocationApproved", payload, "--kek-file", kekFile)
	clear := []string{"qx-one", "qx-two", "qx-alice", "qx-bob", "Wendeltreppe"}
	if out := mustCLI(t, db, "read", "revocation-7F3A"); !strings.Contains(out, `"role":"chair"`) || !strings.Contains(out, "strata:enc:v1:") {
		t.Fatalf("read without a KEK shows: %s", out)
	} else {
		for _, c := range clear {
			if strings.Contains(out, c) {
				t.Fatalf("read without a KEK shows %q: %s", c, out)
			}
		}
	}
	out := mustCLI(t, db, "read", "revocation-7F3A", "--kek-file", kekFile)
	for _, c := range clear {
		if !strings.Contains(out, c) {
			t.Fatalf("read with the KEK lacks %q: %s", c, out)
		}
	}
	mustCLI(t, db, "erase", "subject-9")
	out = mustCLI(t, db, "read", "revocation-7F3A", "--kek-file", kekFile)
	if strings.Count(out, `"[redacted]"`) != 5 || !strings.Contains(out, `"role":"chair"`) {
		t.Fatalf("read after erasure: %s", out)
	}
	for _, f := range []string{path, path + "-wal"} {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, c := range clear {
			if strings.Contains(string(b), c) {
				t.Fatalf("%s holds %q in clear", f, c)
			}
		}
	}
}

// TestAuditCommandsReveal: with the KEK, state (and its changes), history (of a stream and of
// an entity) and query print personal data in clear, and redaction markers after the erasure;
// without it they print what the store holds. Snapshots taken meanwhile keep no clear text.
func TestAuditCommandsReveal(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "strata.db")
	db := "sqlite:" + path
	kekFile := filepath.Join(dir, "kek")
	if err := os.WriteFile(kekFile, []byte(strings.TrimSpace(mustCLI(t, db, "keys", "generate-kek"))), 0o600); err != nil {
		t.Fatal(err)
	}
	mustCLI(t, db, "schema", "set", "CertificateIssued", "--sensitive", "subjectDN,subjectEmail", "--subject", "subjectId")
	mustCLI(t, db, "append", "certificate-7F3A", "CertificateIssued", `{"serial":"7F3A","subjectId":"subject-9","subjectDN":"CN=Ulrike Zwiebelfisch","subjectEmail":"uz@example.org"}`,
		"--meta", "tenant=acme", "--kek-file", kekFile)
	mustCLI(t, db, "append", "certificate-7F3A", "CertificateRevoked", `{"serial":"7F3A","reason":"keyCompromise"}`, "--meta", "tenant=acme")
	day := time.Now().UTC().Format("2006-01-02")
	asks := [][]string{
		{"state", "certificate-7F3A"},
		{"state", "certificate-7F3A", "--changes-on", day},
		{"history", "certificate-7F3A"},
		{"history", "--entity", "7F3A", "--tenant", "acme", "--prefix", "certificate-"},
		{"query", "--tenant", "acme", "--all"},
	}
	check := func(when, want string, withKEK bool) {
		t.Helper()
		for _, ask := range asks {
			if withKEK {
				ask = append(ask, "--kek-file", kekFile)
			}
			out := mustCLI(t, db, ask...)
			if !strings.Contains(out, want) {
				t.Errorf("%s, %v: no %q in %s", when, ask, want, out)
			}
		}
	}
	check("without the KEK", "strata:enc:v1:", false)
	check("with the KEK", "CN=Ulrike Zwiebelfisch", true)
	// Snapshots are taken by the model itself, so they hold ciphertext; state still reveals.
	mustCLI(t, db, "state", "certificate-7F3A", "--take-snapshots", "1", "--kek-file", kekFile)
	check("with the KEK and snapshots", "CN=Ulrike Zwiebelfisch", true)
	mustCLI(t, db, "erase", "subject-9", "--tenant", "acme")
	check("after the erasure", `"[redacted]"`, true)
	for _, f := range []string{path, path + "-wal"} {
		if b, err := os.ReadFile(f); err == nil && strings.Contains(string(b), "Zwiebelfisch") {
			t.Fatalf("%s holds the clear text", f)
		}
	}
}

// TestEraseMetaErrorsNameErase: a malformed --meta of strata erase was reported as an error of
// "append", a command the user had not run.
func TestEraseMetaErrorsNameErase(t *testing.T) {
	t.Parallel()
	for _, meta := range []string{"principal", "a=1"} {
		args := []string{"erase", "subject-1", "--meta", meta}
		if meta == "a=1" {
			args = append(args, "--meta", "a=2")
		}
		r := cli(t, testContext(t), "mem:", "", args...)
		wantErr(t, r, exitInvalid, "strata: erase: --meta")
	}
}
