package shred

import (
	"bytes"
	"errors"
	"maps"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/strata-events/strata"
)

func keysOf(path ...string) [][]byte {
	keys := make([][]byte, len(path))
	for i, k := range path {
		keys[i] = []byte(k)
	}
	return keys
}

// TestPlanLookup matches the paths of values against plans with "[]" and "*" steps.
func TestPlanLookup(t *testing.T) {
	pl := newPlan()
	for _, p := range []string{"subjectDN", "holder.email", "approvers[].email", "contacts.*.email", "teams[].members[].email", "matrix[][]", "byRole.*[].name", "notes.*", "[].top"} {
		steps, err := strata.ParseFieldPath("test", p)
		if err != nil {
			t.Fatal(err)
		}
		pl.add(steps, 0)
	}
	for _, c := range []struct {
		keys []string
		want bool
	}{
		{[]string{"subjectDN"}, true},
		{[]string{"serial"}, false},
		{[]string{"holder", "email"}, true},
		{[]string{"holder", "name"}, false},
		{[]string{"approvers", "[]", "email"}, true},
		{[]string{"approvers", "[]", "role"}, false},
		{[]string{"approvers", "email"}, false},
		{[]string{"approvers", "[]", "x", "email"}, false},
		{[]string{"contacts", "alice", "email"}, true},
		{[]string{"contacts", "bob.b", "email"}, true},
		{[]string{"contacts", "[]", "email"}, true}, // "*" takes array elements too
		{[]string{"contacts", "alice", "phone"}, false},
		{[]string{"contacts", "email"}, false},
		{[]string{"teams", "[]", "members", "[]", "email"}, true},
		{[]string{"teams", "[]", "members", "email"}, false},
		{[]string{"matrix", "[]", "[]"}, true},
		{[]string{"matrix", "[]"}, false},
		{[]string{"byRole", "admin", "[]", "name"}, true},
		{[]string{"byRole", "admin", "name"}, false},
		{[]string{"notes", "anything"}, true},
		{[]string{"notes", "anything", "deeper"}, false},
		{[]string{"[]", "top"}, true},
		{[]string{"other", "anything"}, false},
	} {
		if _, got := pl.lookup(keysOf(c.keys...)); got != c.want {
			t.Errorf("lookup(%q) = %v, want %v", c.keys, got, c.want)
		}
	}
	// A plan without "*" is ruled out by the last key alone, as before.
	flat := newPlan()
	flat.add([]string{"a", "b"}, 's')
	if flat.anyLeaf || len(flat.wild) != 0 {
		t.Fatalf("a flat plan: %+v", flat)
	}
	if k, ok := flat.lookup(keysOf("a", "b")); !ok || k != 's' {
		t.Fatalf("flat lookup %c %v", k, ok)
	}
	for _, path := range [][]string{{"contacts", "alice", "email"}, {"teams", "[]", "members", "[]", "email"}, {"notes", "x"}, {"other", "y"}} {
		keys := keysOf(path...)
		if n := testing.AllocsPerRun(100, func() { pl.lookup(keys) }); n != 0 {
			t.Errorf("lookup(%q) allocates %v times", path, n)
		}
	}
}

type (
	tpApprover struct {
		Name  string `json:"name" strata:"sensitive"`
		Email string `json:"email" strata:"sensitive"`
		Role  string `json:"role"`
	}
	tpContact struct {
		Email string     `json:"email" strata:"sensitive"`
		Phone *string    `json:"phone,omitempty" strata:"sensitive"`
		Since time.Time  `json:"since"`
		Boss  *tpContact `json:"-"`
	}
	tpAudit struct {
		Auditor string `json:"auditor" strata:"sensitive"`
	}
	tpInner struct {
		ID string `json:"id" strata:"subject"`
	}
	tpEvent struct {
		Ref       *tpInner                `json:"ref"`
		Approvers []tpApprover            `json:"approvers"`
		Matrix    [][]tpApprover          `json:"matrix"`
		Fixed     [2]tpApprover           `json:"fixed"`
		Contacts  map[string]tpContact    `json:"contacts"`
		ByRole    map[string][]tpApprover `json:"byRole"`
		Lead      *tpApprover             `json:"lead"`
		Secrets   []string                `json:"secrets" strata:"sensitive"`
		Note      any                     `json:"note" strata:"sensitive"`
		Skipped   tpApprover              `json:"-"`
		tpAudit
		hidden tpApprover
	}
)

// TestPlanOfType derives the sensitive paths of a Go type the way encoding/json lays it out.
func TestPlanOfType(t *testing.T) {
	pl := planOfType(reflect.TypeFor[tpEvent]())
	if pl.err != nil {
		t.Fatal(pl.err)
	}
	got := slices.Sorted(maps.Keys(pl.sensitive))
	for _, w := range pl.wild {
		got = append(got, strings.Join(w.steps, "."))
	}
	want := []string{
		"approvers.[].email", "approvers.[].name", "auditor", "fixed.[].email", "fixed.[].name", "lead.email", "lead.name",
		"matrix.[].[].email", "matrix.[].[].name", "note", "secrets",
		"contacts.*.email", "contacts.*.phone", "byRole.*.[].name", "byRole.*.[].email",
	}
	if !slices.Equal(slices.Sorted(slices.Values(got)), slices.Sorted(slices.Values(want))) {
		t.Fatalf("paths %q, want %q", got, want)
	}
	if pl.subject != "ref.id" || !slices.Equal(pl.subjectIndex, []int{0, 0}) || pl.dynamic {
		t.Fatalf("subject %q %v, dynamic %v", pl.subject, pl.subjectIndex, pl.dynamic)
	}
	if pl.sensitive["approvers.[].email"] != 's' || pl.sensitive["secrets"] != 'j' || pl.sensitive["note"] != 'j' {
		t.Fatalf("kinds %v", pl.sensitive)
	}
	if !errors.Is(planOfType(reflect.TypeFor[struct {
		A []struct {
			ID string `json:"id" strata:"subject"`
		} `json:"a"`
	}]()).err, ErrUnprotectable) {
		t.Fatal("a subject in a slice was accepted")
	}
}

// TestFoldKeyIsEqualFold: two keys fold alike exactly when bytes.EqualFold finds them equal,
// non-ASCII folds (the Kelvin sign, the long s) included.
func TestFoldKeyIsEqualFold(t *testing.T) {
	keys := []string{"email", "Email", "EMAIL", "eMaIl", "k", "K", "\u212a", "s", "S", "\u017f", "straße", "STRASSE", "Straße", "µ", "Μ", "μ", "", "a.b", "A.B", "[]", "ǅ", "ǆ", "Ǆ", "\xff"}
	for _, a := range keys {
		for _, b := range keys {
			fa, fb := string(foldKey(nil, []byte(a))), string(foldKey(nil, []byte(b)))
			if (fa == fb) != bytes.EqualFold([]byte(a), []byte(b)) {
				t.Errorf("%q and %q fold to %q and %q; EqualFold says %v", a, b, fa, fb, bytes.EqualFold([]byte(a), []byte(b)))
			}
		}
	}
}
