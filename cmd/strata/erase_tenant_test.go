package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestEraseTenantCLI: `strata erase --tenant` erases one tenant's subject and leaves the same
// subject ID of another tenant readable; a tenant without the subject is an error.
func TestEraseTenantCLI(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	db := "sqlite:" + filepath.Join(dir, "strata.db")
	kekFile := filepath.Join(dir, "kek")
	if err := os.WriteFile(kekFile, []byte(strings.TrimSpace(mustCLI(t, db, "keys", "generate-kek"))), 0o600); err != nil {
		t.Fatal(err)
	}
	mustCLI(t, db, "schema", "set", "ConsentGiven", "--sensitive", "email", "--subject", "subjectId")
	for _, c := range []struct{ tenant, email string }{{"acme", "alice@acme.example"}, {"umbrella", "bob@umbrella.example"}} {
		mustCLI(t, db, "append", "consent-"+c.tenant, "ConsentGiven", `{"subjectId":"subject-9","email":"`+c.email+`"}`,
			"--meta", "tenant="+c.tenant, "--kek-file", kekFile)
	}
	if r := cli(t, testContext(t), db, "", "erase", "subject-9", "--tenant", "nobody"); r.code == 0 || !strings.Contains(r.stderr, "no data subject") {
		t.Fatalf("erase in a tenant without the subject: exit %d %s", r.code, r.stderr)
	}
	if out := mustCLI(t, db, "erase", "subject-9", "--tenant", "acme", "--meta", "principal=dpo"); !strings.Contains(out, `erased subject-9 of tenant "acme"`) || !strings.Contains(out, "erasure@acme/subject-9") {
		t.Fatalf("erase in acme: %s", out)
	}
	if out := mustCLI(t, db, "read", "consent-acme", "--kek-file", kekFile); !strings.Contains(out, `"email":"[redacted]"`) {
		t.Fatalf("acme after its erasure: %s", out)
	}
	if out := mustCLI(t, db, "read", "consent-umbrella", "--kek-file", kekFile); !strings.Contains(out, "bob@umbrella.example") {
		t.Fatalf("umbrella after acme's erasure: %s", out)
	}
	if out := mustCLI(t, db, "erase", "subject-9"); !strings.Contains(out, "in every tenant") {
		t.Fatalf("erase in every tenant: %s", out)
	}
	if out := mustCLI(t, db, "read", "consent-umbrella", "--kek-file", kekFile); !strings.Contains(out, `"email":"[redacted]"`) {
		t.Fatalf("umbrella after the erasure in every tenant: %s", out)
	}
}
