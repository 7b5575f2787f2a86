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
			if slices.Contains([]string{"cmd", "examples", "codec", "aggregate", "saga", "shred", "ledger", "projection", "eventsig"}, top) {
				t.Errorf("%s imports %s: backends know the root only, not the toolkit built on it", a, d)
			}
		}
	}
}

// TestToolkitLayering enforces that the toolkit packages reach storage only through the root's
// interfaces: they import no backend, and each imports only the toolkit layers below it.
func TestToolkitLayering(t *testing.T) {
	backends := []string{"inmem", "sqlite", "postgres", "mysql", "storetest"}
	// Each toolkit package with the toolkit packages it may not import.
	for pkg, forbidden := range map[string][]string{
		"codec":      {"aggregate", "saga", "shred", "ledger", "projection"},
		"aggregate":  {"saga", "shred", "ledger", "projection"},
		"saga":       {"shred", "ledger", "projection"},
		"shred":      {"aggregate", "saga", "ledger", "projection"},
		"ledger":     {"codec", "aggregate", "saga", "shred", "projection"},
		"projection": {"aggregate", "saga", "shred", "ledger"},
		"eventsig":   {"aggregate", "saga", "shred", "ledger", "projection"},
		"query":      {"saga", "shred", "projection"},
		"hub":        {"codec", "aggregate", "saga", "shred", "ledger", "projection", "transmit"},
		"transmit":   {"aggregate", "saga", "ledger", "projection"},
		"httpapi":    {"saga", "transmit"},
	} {
		out, err := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}}", module+"/"+pkg).Output()
		if err != nil {
			t.Fatalf("go list %s: %v", pkg, err)
		}
		for _, d := range strings.Fields(string(out)) {
			rel, ok := strings.CutPrefix(d, module+"/")
			if !ok {
				continue
			}
			top, _, _ := strings.Cut(rel, "/")
			if slices.Contains(backends, top) || slices.Contains(forbidden, top) || top == "cmd" || top == "examples" {
				t.Errorf("%s imports %s", pkg, d)
			}
		}
	}
}
