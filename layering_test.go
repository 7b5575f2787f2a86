package strata_test

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/strata-events/strata"

// adapters may import the root and internal helpers, never each other (DESIGN §4).
var adapters = []string{"inmem", "sqlite", "postgres", "mysql", "storetest"}

// TestLayering enforces the import graph with go list: the root does no I/O through a driver and
// imports no package of its own module, and adapters never import each other.
func TestLayering(t *testing.T) {
	deps := func(pkg string) []string {
		out, err := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}}", pkg).Output()
		if err != nil {
			t.Fatalf("go list %s: %v", pkg, err)
		}
		return strings.Fields(string(out))
	}
	for _, d := range deps(module) {
		if d != module && strings.HasPrefix(d, module+"/") {
			t.Errorf("the root package imports %s; the root holds the domain only", d)
		}
		// database/sql/driver is allowed: uuid implements driver.Valuer without doing I/O.
		for _, io := range []string{"database/sql", "github.com/jackc/pgx/v5", "modernc.org/sqlite", "github.com/go-sql-driver/mysql", "net/http", "os/exec"} {
			if d == io {
				t.Errorf("the root package depends on %s; it must do no I/O", io)
			}
		}
	}
	for _, a := range adapters {
		for _, d := range deps(module + "/" + a) {
			rel, ok := strings.CutPrefix(d, module+"/")
			if !ok || rel == a {
				continue
			}
			top, _, _ := strings.Cut(rel, "/")
			if slices.Contains(adapters, top) {
				t.Errorf("%s imports %s: adapters import the root, never each other", a, d)
			}
			if top == "cmd" {
				t.Errorf("%s imports %s", a, d)
			}
		}
	}
}
