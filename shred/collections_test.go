package shred_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/strata-events/strata"
	"github.com/strata-events/strata/codec"
	"github.com/strata-events/strata/inmem"
	"github.com/strata-events/strata/shred"
)

// The types of a revocation approved by a committee: personal data in the elements of slices,
// arrays and maps, behind pointers and in embedded structs.
type (
	approver struct {
		Name  string `json:"name" strata:"sensitive"`
		Email string `json:"email" strata:"sensitive"`
		Role  string `json:"role"`
	}
	contact struct {
		Email string    `json:"email" strata:"sensitive"`
		Phone *string   `json:"phone,omitempty" strata:"sensitive"`
		Since time.Time `json:"since"`
	}
	committee struct {
		Name    string     `json:"name"`
		Members []approver `json:"members"`
	}
	// Audit is embedded: encoding/json puts its fields in the object of the event.
	Audit struct {
		Auditor string `json:"auditor" strata:"sensitive"`
	}
	// checkedEmail refuses what is not an e-mail address: after erasure it reads as its zero
	// value (null), not as "[redacted]", which it would refuse.
	checkedEmail string
	requester    struct {
		ID    string       `json:"id" strata:"subject"`
		Email checkedEmail `json:"email,omitempty" strata:"sensitive"`
	}
	revocation struct {
		Serial     string                `json:"serial"`
		Requester  *requester            `json:"requester"`
		Approvers  []approver            `json:"approvers"`
		Committees []committee           `json:"committees"`
		Matrix     [][]approver          `json:"matrix"`
		Seconds    [2]approver           `json:"seconds"`
		Contacts   map[string]contact    `json:"contacts"`
		ByRole     map[string][]approver `json:"byRole"`
		Lead       *approver             `json:"lead"`
		Deputies   []*approver           `json:"deputies"`
		Secrets    []string              `json:"secrets" strata:"sensitive"`
		Note       any                   `json:"note" strata:"sensitive"`
		Tags       []string              `json:"tags"`
		*Audit
	}
)

func (e *checkedEmail) UnmarshalText(b []byte) error {
	if !bytes.Contains(b, []byte("@")) {
		return fmt.Errorf("%q is not an e-mail address", b)
	}
	*e = checkedEmail(b)
	return nil
}

// person returns an approver whose personal data is marked by tag, to be searched for in the
// stored bytes.
func person(tag string) approver {
	return approver{Name: "Qx" + tag + " Vandersloot", Email: "qx" + tag + "@example.org", Role: "role-" + tag}
}

func fullRevocation() revocation {
	phone := "+49 30 5550" + "1717"
	return revocation{
		Serial:     "7F3A",
		Requester:  &requester{ID: "subject-42", Email: "rq-zwiebel@example.org"},
		Approvers:  []approver{person("a1"), person("a2"), person("a3")},
		Committees: []committee{{Name: "pki", Members: []approver{person("c1"), person("c2")}}, {Name: "empty", Members: []approver{}}, {Name: "none"}},
		Matrix:     [][]approver{{person("m1")}, {}, {person("m2"), person("m3")}},
		Seconds:    [2]approver{person("s1"), person("s2")},
		Contacts: map[string]contact{
			"alice": {Email: "qx-alice@example.org", Phone: &phone, Since: time.Date(2021, 5, 6, 0, 0, 0, 0, time.UTC)},
			"bob":   {Email: "qx-bob@example.org"},
		},
		ByRole:   map[string][]approver{"chair": {person("r1")}, "none": nil},
		Lead:     &approver{Name: "Qxlead Vandersloot", Email: "qxlead@example.org"},
		Deputies: []*approver{nil, {Name: "Qxdep Vandersloot", Email: "qxdep@example.org"}},
		Secrets:  []string{"qx-secret-1", "qx-secret-2"},
		Note:     map[string]any{"said": "qx-note"},
		Tags:     []string{"kept", "in-clear"},
		Audit:    &Audit{Auditor: "qx-auditor"},
	}
}

// clearTexts lists the personal data of a revocation, every element's.
func clearTexts(v revocation) []string {
	out := []string{string(v.Requester.Email)}
	add := func(a approver) { out = append(out, a.Name, a.Email) }
	for _, a := range v.Approvers {
		add(a)
	}
	for _, c := range v.Committees {
		for _, a := range c.Members {
			add(a)
		}
	}
	for _, row := range v.Matrix {
		for _, a := range row {
			add(a)
		}
	}
	for _, a := range v.Seconds {
		add(a)
	}
	for _, c := range v.Contacts {
		out = append(out, c.Email)
		if c.Phone != nil {
			out = append(out, *c.Phone)
		}
	}
	for _, as := range v.ByRole {
		for _, a := range as {
			add(a)
		}
	}
	add(*v.Lead)
	add(*v.Deputies[1])
	out = append(out, v.Secrets...)
	out = append(out, "qx-note", v.Audit.Auditor)
	return out
}

// redactedRevocation is what v reads as after its subject is erased.
func redactedRevocation(v revocation) revocation {
	r := func(a approver) approver { a.Name, a.Email = shred.Redacted, shred.Redacted; return a }
	rs := func(as []approver) []approver {
		if as == nil {
			return nil
		}
		out := make([]approver, len(as))
		for i, a := range as {
			out[i] = r(a)
		}
		return out
	}
	out := v
	out.Requester = &requester{ID: v.Requester.ID} // the checked e-mail reads as its zero value
	out.Approvers = rs(v.Approvers)
	out.Committees = nil
	for _, c := range v.Committees {
		out.Committees = append(out.Committees, committee{Name: c.Name, Members: rs(c.Members)})
	}
	out.Matrix = nil
	for _, row := range v.Matrix {
		out.Matrix = append(out.Matrix, rs(row))
	}
	out.Seconds = [2]approver{r(v.Seconds[0]), r(v.Seconds[1])}
	out.Contacts = map[string]contact{}
	for k, c := range v.Contacts {
		out.Contacts[k] = contact{Email: shred.Redacted, Since: c.Since}
	}
	out.ByRole = map[string][]approver{}
	for k, as := range v.ByRole {
		out.ByRole[k] = rs(as)
	}
	lead := r(*v.Lead)
	out.Lead = &lead
	dep := r(*v.Deputies[1])
	out.Deputies = []*approver{nil, &dep}
	out.Secrets, out.Note = nil, nil
	out.Audit = &Audit{Auditor: shred.Redacted}
	return out
}

func revocationEnv(t *testing.T) env {
	t.Helper()
	e := newEnv(t, mustKEK(t))
	if err := codec.Register[revocation](e.reg, "Revocation", 1); err != nil {
		t.Fatal(err)
	}
	return e
}

func (e env) writeAny(t *testing.T, stream string, v any) strata.Event {
	t.Helper()
	ctx := context.Background()
	d, err := e.reg.Encode(ctx, v, strata.Metadata{})
	if err != nil {
		t.Fatal(err)
	}
	res, err := e.st.Append(ctx, stream, strata.Any, d)
	if err != nil {
		t.Fatal(err)
	}
	for ev, err := range e.st.ReadStream(ctx, stream, strata.ReadStreamOptions{From: res.LastVersion}) {
		if err != nil {
			t.Fatal(err)
		}
		return ev
	}
	t.Fatal("the appended event is not there")
	return strata.Event{}
}

func decodeRevocation(t *testing.T, e env, ev strata.Event) revocation {
	t.Helper()
	m, err := e.reg.DecodeOne(context.Background(), ev)
	if err != nil {
		t.Fatal(err)
	}
	return m.Value.(revocation)
}

// TestCollectionsRoundTrip encrypts the sensitive fields of the elements of slices, arrays and
// maps, nested and behind pointers, decrypts them on read, and reads redaction markers after
// the erasure.
func TestCollectionsRoundTrip(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := revocationEnv(t)
	v := fullRevocation()
	stored := e.writeAny(t, "certificate-7F3A", v)
	for _, clear := range clearTexts(v) {
		if bytes.Contains(stored.Data, []byte(clear)) {
			t.Errorf("the stored payload holds %q in clear: %s", clear, stored.Data)
		}
	}
	for _, kept := range []string{`"serial":"7F3A"`, `"id":"subject-42"`, `"role":"role-a2"`, `"name":"pki"`, `"tags":["kept","in-clear"]`, `"since":"2021-05-06T00:00:00Z"`, `"alice":{`, `"deputies":[null,{`, `"members":[]`} {
		if !bytes.Contains(stored.Data, []byte(kept)) {
			t.Errorf("the stored payload lost %s: %s", kept, stored.Data)
		}
	}
	if !json.Valid(stored.Data) || stored.Meta.Subject != "subject-42" {
		t.Fatalf("stored %s, meta %+v", stored.Data, stored.Meta)
	}
	if got := decodeRevocation(t, e, stored); !reflect.DeepEqual(got, v) {
		t.Fatalf("decoded\n%+v\nwant\n%+v", got, v)
	}
	if _, err := e.p.Erase(ctx, "subject-42", strata.Metadata{Principal: "dpo"}); err != nil {
		t.Fatal(err)
	}
	if got, want := decodeRevocation(t, e, stored), redactedRevocation(v); !reflect.DeepEqual(got, want) {
		t.Fatalf("after erasure\n%+v\nwant\n%+v", got, want)
	}
}

// TestEmptyCollections: nil and empty slices and maps, nil pointers and nil elements pass as
// they are.
func TestEmptyCollections(t *testing.T) {
	t.Parallel()
	e := revocationEnv(t)
	for i, v := range []revocation{
		{Serial: "nil", Requester: &requester{ID: "subject-1"}},
		{Serial: "empty", Requester: &requester{ID: "subject-1"}, Approvers: []approver{}, Committees: []committee{}, Matrix: [][]approver{}, Contacts: map[string]contact{}, ByRole: map[string][]approver{}, Deputies: []*approver{nil}, Secrets: []string{}},
	} {
		stored := e.writeAny(t, fmt.Sprintf("certificate-%d", i), v)
		if got := decodeRevocation(t, e, stored); !reflect.DeepEqual(got, v) {
			t.Fatalf("%s: decoded %+v, want %+v (stored %s)", v.Serial, got, v, stored.Data)
		}
	}
}

// TestCollectionsTampering: an element's ciphertext is bound to its field, its map key and its
// event.
func TestCollectionsTampering(t *testing.T) {
	t.Parallel()
	e := revocationEnv(t)
	stored := e.writeAny(t, "certificate-7F3A", fullRevocation())
	var doc struct {
		Approvers []map[string]json.RawMessage `json:"approvers"`
		Contacts  map[string]map[string]json.RawMessage
	}
	if err := json.Unmarshal(stored.Data, &doc); err != nil {
		t.Fatal(err)
	}
	a0, a1 := doc.Approvers[0]["email"], doc.Approvers[1]["email"]
	alice, bob := doc.Contacts["alice"]["email"], doc.Contacts["bob"]["email"]
	swap := func(data []byte, x, y json.RawMessage) []byte {
		data = bytes.Replace(data, x, []byte("\x00"), 1)
		data = bytes.Replace(data, y, x, 1)
		return bytes.Replace(data, []byte("\x00"), y, 1)
	}
	// Another base64 letter in the middle of the sealed value: a bit flip could make an
	// invalid base64 character (malformed, not tampered) or touch only padding bits.
	flip := bytes.Clone(a1)
	if mid := len(flip) / 2; flip[mid] == 'A' {
		flip[mid] = 'B'
	} else {
		flip[mid] = 'A'
	}
	for name, data := range map[string][]byte{
		"a flipped byte in an element":       bytes.Replace(stored.Data, a1, flip, 1),
		"moved to another map key":           swap(stored.Data, alice, bob),
		"moved from an array into a map":     swap(stored.Data, a0, alice),
		"moved to another field of the item": bytes.Replace(stored.Data, doc.Approvers[0]["name"], a0, 1),
	} {
		ev := stored
		ev.Data = data
		if _, err := e.reg.DecodeOne(context.Background(), ev); !errors.Is(err, shred.ErrTampered) {
			t.Errorf("%s: %v, want ErrTampered", name, err)
		}
	}
	moved := stored
	moved.ID = uuid.Must(uuid.NewV7())
	if _, err := e.reg.DecodeOne(context.Background(), moved); !errors.Is(err, shred.ErrTampered) {
		t.Errorf("moved to another event: %v", err)
	}
	// The elements of one array are bound to the array, not to their index: two of them swapped
	// within the same event decode, each to the other's value.
	swapped := stored
	swapped.Data = swap(stored.Data, a0, a1)
	if got := decodeRevocation(t, e, swapped); got.Approvers[0].Email != "qxa2@example.org" || got.Approvers[1].Email != "qxa1@example.org" {
		t.Fatalf("swapped elements decode as %+v", got.Approvers)
	}
}

// TestInterfaceFields: a sensitive interface field is encrypted whole; a value behind an
// untagged interface whose type has tags the plan cannot see is refused, not written in clear.
func TestInterfaceFields(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	type withAny struct {
		SubjectID string `json:"subjectId" strata:"subject"`
		DN        string `json:"dn" strata:"sensitive"`
		Extra     any    `json:"extra"`
		More      []any  `json:"more"`
	}
	type plainAny struct {
		Extra map[string]any `json:"extra"`
	}
	e := newEnv(t, mustKEK(t))
	if err := codec.Register[withAny](e.reg, "WithAny", 1); err != nil {
		t.Fatal(err)
	}
	if err := codec.Register[plainAny](e.reg, "PlainAny", 1); err != nil {
		t.Fatal(err)
	}
	ok := withAny{SubjectID: "subject-1", DN: "CN=qx", Extra: map[string]any{"n": 1.0, "list": []any{"a"}}, More: []any{"x", 2.0}}
	stored := e.writeAny(t, "any-1", ok)
	if m, err := e.reg.DecodeOne(ctx, stored); err != nil || !reflect.DeepEqual(m.Value, ok) {
		t.Fatalf("decoded %+v %v", m.Value, err)
	}
	for name, v := range map[string]any{
		"a tagged struct behind an interface":       withAny{SubjectID: "subject-1", Extra: person("x1")},
		"a tagged pointer in a slice of any":        withAny{SubjectID: "subject-1", More: []any{"x", &approver{Email: "qx@example.org"}}},
		"a tagged struct in a map behind any":       withAny{SubjectID: "subject-1", Extra: map[string]any{"a": []any{person("x2")}}},
		"a type without tags, a tagged value in it": plainAny{Extra: map[string]any{"who": person("x3")}},
	} {
		_, err := e.reg.Encode(ctx, v, strata.Metadata{})
		if !errors.Is(err, shred.ErrUnprotectable) || !errors.Is(err, strata.ErrInvalid) || !strings.Contains(err.Error(), "behind an interface") {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// TestRefusedTypes: Go types whose tags the Protector cannot follow are refused when they are
// registered in a registry that has it, and their values when they are encoded.
func TestRefusedTypes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	type (
		subjectInSlice struct {
			Holders []struct {
				ID    string `json:"id" strata:"subject"`
				Email string `json:"email" strata:"sensitive"`
			} `json:"holders"`
		}
		subjectInMap struct {
			Holders map[string]requester `json:"holders"`
		}
		twoSubjects struct {
			A string `json:"a" strata:"subject"`
			B string `json:"b" strata:"subject"`
			C string `json:"c" strata:"sensitive"`
		}
		misspelt struct {
			ID    string `json:"id" strata:"subject"`
			Email string `json:"email" strata:"sensitve"`
		}
		node struct {
			ID       string `json:"id"`
			Name     string `json:"name" strata:"sensitive"`
			Children []node `json:"children"`
		}
		recursive struct {
			ID   string `json:"id" strata:"subject"`
			Tree node   `json:"tree"`
		}
		encodesItself struct {
			ID  string     `json:"id" strata:"subject"`
			Raw selfCoding `json:"raw"`
		}
		embeddedTagged struct {
			ID    string `json:"id" strata:"subject"`
			Audit `strata:"sensitive"`
		}
		subjectInSensitive struct {
			R requester `json:"r" strata:"sensitive"`
		}
	)
	type registerFunc = func(*codec.Registry) error
	for _, c := range []struct {
		name, why string
		check     registerFunc
		value     any
	}{
		{"subject in a slice", "one event has one data subject", reg[subjectInSlice], subjectInSlice{}},
		{"subject in a map", "one event has one data subject", reg[subjectInMap], subjectInMap{Holders: map[string]requester{"x": {ID: "subject-1", Email: "q@example.org"}}}},
		{"two subjects", "two fields are tagged", reg[twoSubjects], twoSubjects{A: "subject-1", B: "subject-2", C: "x"}},
		{"a misspelt tag", `strata:"sensitve"`, reg[misspelt], misspelt{ID: "subject-1", Email: "q@example.org"}},
		{"a recursive type", "holds itself", reg[recursive], recursive{ID: "subject-1", Tree: node{Name: "qx", Children: []node{{Name: "qy"}}}}},
		{"a type that encodes itself", "encodes itself", reg[encodesItself], encodesItself{ID: "subject-1", Raw: selfCoding{Email: "q@example.org"}}},
		{"a tagged embedded struct", "no one value holds it", reg[embeddedTagged], embeddedTagged{ID: "subject-1", Audit: Audit{Auditor: "qx"}}},
		{"a subject in a sensitive field", "the subject is stored in clear", reg[subjectInSensitive], subjectInSensitive{R: requester{ID: "subject-1"}}},
	} {
		t.Run(c.name, func(t *testing.T) {
			// Installed first, the Protector refuses the registration.
			e := newEnv(t, mustKEK(t))
			err := c.check(e.reg)
			if !errors.Is(err, shred.ErrUnprotectable) || !errors.Is(err, strata.ErrInvalid) || !strings.Contains(err.Error(), c.why) {
				t.Fatalf("registered: %v", err)
			}
			// Registered first, its values are refused.
			reg := codec.NewRegistry()
			if err := c.check(reg); err != nil {
				t.Fatal(err)
			}
			reg.Use(e.p)
			if _, err := reg.Encode(ctx, c.value, strata.Metadata{Subject: "subject-1"}); !errors.Is(err, shred.ErrUnprotectable) || !errors.Is(err, strata.ErrInvalid) {
				t.Fatalf("encoded: %v", err)
			}
			if err := e.p.CheckType("X", reflect.TypeOf(c.value)); !errors.Is(err, shred.ErrUnprotectable) {
				t.Fatalf("CheckType: %v", err)
			}
		})
	}
	// The types of this file's other tests pass.
	p := newEnv(t, mustKEK(t)).p
	for _, v := range []any{revocation{}, issued{}, holderState{}} {
		if err := p.CheckType("X", reflect.TypeOf(v)); err != nil {
			t.Errorf("%T: %v", v, err)
		}
	}
}

// reg returns a function that registers E as "X".
func reg[E any](r *codec.Registry) error { return codec.Register[E](r, "X", 1) }

// selfCoding encodes itself: the place of its tagged field in its JSON is unknown.
type selfCoding struct {
	Email string `strata:"sensitive"`
}

func (s selfCoding) MarshalJSON() ([]byte, error) { return json.Marshal("mailto:" + s.Email) }

// TestDeclaredCollections protects raw JSON by declared paths with "[]" and "*" steps.
func TestDeclaredCollections(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t, mustKEK(t))
	schema := strata.EventSchema{Type: "RevocationApproved", Subject: "subjectId",
		Sensitive: []string{"approvers[].email", "contacts.*.email", "teams[].members[].name", "matrix[][]", "notes.*", "legacy.[].email"}}
	if err := e.p.Declare(ctx, schema); err != nil {
		t.Fatal(err)
	}
	payload := `{"subjectId":"subject-9","approvers":[{"email":"qx1@example.org","role":"chair"},{"email":"qx2@example.org"},{"role":"none"}],` +
		`"contacts":{"alice":{"email":"qx-alice@example.org","tier":1},"bob":{"email":{"nested":"qx-bob"}}},` +
		`"teams":[{"members":[{"name":"Qx Team1"},{"name":"Qx Team2"}]},{"members":[]},{"members":null}],` +
		`"matrix":[["qx-m1",2],[],[{"x":"qx-m3"}]],"notes":{"a":"qx-note-a","b":[1,"qx-note-b"]},"legacy":[{"email":"qx-legacy@example.org"}],"serial":"7F3A"}`
	ev := strata.EventData{Type: schema.Type, Data: []byte(payload)}
	if err := e.p.Protect(ctx, &ev); err != nil {
		t.Fatal(err)
	}
	for _, clear := range []string{"qx1@", "qx2@", "qx-alice", "qx-bob", "Qx Team1", "Qx Team2", "qx-m1", "qx-m3", "qx-note-a", "qx-note-b", "qx-legacy"} {
		if bytes.Contains(ev.Data, []byte(clear)) {
			t.Errorf("%q in clear: %s", clear, ev.Data)
		}
	}
	for _, kept := range []string{`"role":"chair"`, `{"role":"none"}`, `"tier":1`, `"members":[]`, `"members":null`, `[]`, `"serial":"7F3A"`} {
		if !bytes.Contains(ev.Data, []byte(kept)) {
			t.Errorf("lost %s: %s", kept, ev.Data)
		}
	}
	back := strata.Event{ID: ev.ID, Type: ev.Type, Data: ev.Data, Meta: ev.Meta}
	if err := e.p.Reveal(ctx, &back); err != nil || string(back.Data) != payload {
		t.Fatalf("revealed %s %v", back.Data, err)
	}
	if _, err := e.p.Erase(ctx, "subject-9", strata.Metadata{}); err != nil {
		t.Fatal(err)
	}
	back = strata.Event{ID: ev.ID, Type: ev.Type, Data: ev.Data, Meta: ev.Meta}
	if err := e.p.Reveal(ctx, &back); err != nil {
		t.Fatal(err)
	}
	want := `{"subjectId":"subject-9","approvers":[{"email":"[redacted]","role":"chair"},{"email":"[redacted]"},{"role":"none"}],` +
		`"contacts":{"alice":{"email":"[redacted]","tier":1},"bob":{"email":null}},` +
		`"teams":[{"members":[{"name":"[redacted]"},{"name":"[redacted]"}]},{"members":[]},{"members":null}],` +
		`"matrix":[["[redacted]",null],[],[null]],"notes":{"a":"[redacted]","b":null},"legacy":[{"email":"[redacted]"}],"serial":"7F3A"}`
	if string(back.Data) != want {
		t.Fatalf("after erasure\n%s\nwant\n%s", back.Data, want)
	}
}

// TestDeclarationsValidated: malformed paths and ambiguous subjects are refused with an
// Invalid error that says what is wrong, and nothing is stored.
func TestDeclarationsValidated(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t, mustKEK(t))
	for _, c := range []struct {
		sensitive []string
		subject   string
		why       string
	}{
		{[]string{"approvers[0].email"}, "", `"[0]" is an array index`},
		{[]string{"approvers[.email"}, "", `a "[" must be followed by "]"`},
		{[]string{"approvers[]email"}, "", `a "[" must be followed by "]"`},
		{[]string{"approvers].email"}, "", `a "]" only closes "[]"`},
		{[]string{"contacts*.email"}, "", `a "*" must stand alone`},
		{[]string{"contacts.**.email"}, "", `a "*" must stand alone`},
		{[]string{"holder..email"}, "", "an empty field name"},
		{[]string{"holder."}, "", "an empty field name"},
		{[]string{"a[].b", "a.[].b"}, "", "are the same path"},
		{[]string{"email"}, "holders[].id", "one event has one data subject"},
		{[]string{"email"}, "holders.*.id", "one event has one data subject"},
		{[]string{"holder"}, "holder.id", "lies in the sensitive path"},
		{[]string{"*.email"}, "holder.email", "lies in the sensitive path"},
		{[]string{"email"}, "holder[0]", `"[0]" is an array index`},
	} {
		err := e.p.Declare(ctx, strata.EventSchema{Type: "T", Sensitive: c.sensitive, Subject: c.subject})
		if !errors.Is(err, strata.ErrInvalid) || !strings.Contains(err.Error(), c.why) {
			t.Errorf("declare %q subject %q: %v, want Invalid: %s", c.sensitive, c.subject, err, c.why)
		}
	}
	if list, err := e.st.EventSchemas(ctx); err != nil || len(list) != 0 {
		t.Fatalf("stored %+v %v", list, err)
	}
	// A schema stored by an older version that no longer validates refuses its events.
	bad := &badSchemas{Store: e.st, list: []strata.EventSchema{{Type: "Old", Sensitive: []string{"holders[0].email"}, Subject: "holders.[].id"}}}
	p, err := shred.New(ctx, bad, mustKEK(t))
	if err != nil {
		t.Fatal(err)
	}
	ev := strata.EventData{Type: "Old", Data: []byte(`{"holders":[{"id":"subject-1","email":"qx@example.org"}]}`)}
	if err := p.Protect(ctx, &ev); !errors.Is(err, shred.ErrUnprotectable) || !errors.Is(err, strata.ErrInvalid) || !strings.Contains(err.Error(), "declare it again") {
		t.Fatalf("an event of a type whose stored schema is malformed: %v", err)
	}
}

// badSchemas is a store whose stored schemas bypassed validation.
type badSchemas struct {
	*inmem.Store
	list []strata.EventSchema
}

func (b *badSchemas) EventSchemas(context.Context) ([]strata.EventSchema, error) { return b.list, nil }

// TestSnapshotsWithCollections seals the elements of a state's slices and maps.
func TestSnapshotsWithCollections(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t, mustKEK(t))
	v := fullRevocation()
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	s := strata.Snapshot{Stream: "certificate-7F3A", Version: 4, Schema: 1, Data: data}
	if err := e.p.SealSnapshot(ctx, v, &s); err != nil {
		t.Fatal(err)
	}
	for _, clear := range clearTexts(v) {
		if bytes.Contains(s.Data, []byte(clear)) {
			t.Errorf("the snapshot holds %q in clear", clear)
		}
	}
	open := s
	if ok, err := e.p.OpenSnapshot(ctx, (*revocation)(nil), &open); err != nil || !ok {
		t.Fatalf("open: %v %v", ok, err)
	}
	var got revocation
	if err := json.Unmarshal(open.Data, &got); err != nil || !reflect.DeepEqual(got, v) {
		t.Fatalf("opened %+v %v", got, err)
	}
	if _, err := e.p.Erase(ctx, "subject-42", strata.Metadata{}); err != nil {
		t.Fatal(err)
	}
	if ok, err := e.p.OpenSnapshot(ctx, (*revocation)(nil), &s); ok || err != nil {
		t.Fatalf("a snapshot of an erased subject: %v %v", ok, err)
	}
}

// TestRedactCollections: log lines hold no element's personal data.
func TestRedactCollections(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&buf, nil))
	v := fullRevocation()
	logger.Info("revoked", "event", shred.Redact(v), "approvers", shred.Redact(v.Approvers))
	out := buf.String()
	for _, clear := range clearTexts(v) {
		if strings.Contains(out, clear) {
			t.Errorf("the log line holds %q: %s", clear, out)
		}
	}
	if !strings.Contains(out, `"role":"role-a1"`) || !strings.Contains(out, shred.Redacted) {
		t.Fatalf("log line %s", out)
	}
}

// TestDeclaredPathsFoldCase: a declared path matches member names without regard to case, as
// encoding/json matches them with a Go reader's fields: a raw writer's "Email" or "EMAIL" for a
// declared "email" is sealed, not stored in clear, and reveals as it was sent.
func TestDeclaredPathsFoldCase(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t, mustKEK(t))
	schema := strata.EventSchema{Type: "ConsentGiven", Subject: "subjectId", Sensitive: []string{"email", "contacts.*.phone", "holder.name"}}
	if err := e.p.Declare(ctx, schema); err != nil {
		t.Fatal(err)
	}
	payload := `{"subjectId":"subject-9","Email":"qx1@example.org","contacts":{"bob":{"PHONE":"qx-555"}},"Holder":{"NAME":"Qx Kelvin"},"note":"kept"}`
	ev := strata.EventData{Type: schema.Type, Data: []byte(payload)}
	if err := e.p.Protect(ctx, &ev); err != nil {
		t.Fatal(err)
	}
	for _, clear := range []string{"qx1@", "qx-555", "Qx Kelvin"} {
		if bytes.Contains(ev.Data, []byte(clear)) {
			t.Errorf("%q in clear: %s", clear, ev.Data)
		}
	}
	if !bytes.Contains(ev.Data, []byte(`"note":"kept"`)) {
		t.Errorf("lost the note: %s", ev.Data)
	}
	back := strata.Event{ID: ev.ID, Type: ev.Type, Data: ev.Data, Meta: ev.Meta}
	if err := e.p.Reveal(ctx, &back); err != nil || string(back.Data) != payload {
		t.Fatalf("revealed %s %v", back.Data, err)
	}
}
