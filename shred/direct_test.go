package shred_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/strata-events/strata"
	"github.com/strata-events/strata/codec"
	"github.com/strata-events/strata/inmem"
	"github.com/strata-events/strata/shred"
)

// nickname is a named string type: DecodeInto sets it like a string.
type nickname string

// directCert has sensitive string fields that DecodeInto sets itself (dn, mail, nick), a
// sensitive time that stays in the document, and fields in clear.
type directCert struct {
	Subject string    `json:"subjectId" strata:"subject"`
	DN      string    `json:"dn" strata:"sensitive"`
	Mail    string    `json:"mail" strata:"sensitive"`
	Nick    nickname  `json:"nick" strata:"sensitive"`
	Born    time.Time `json:"born" strata:"sensitive"`
	Note    string    `json:"note"`
	N       int       `json:"n"`
}

// directEnv is a Protector whose schema declared for "Direct" seals what directCert marks, by
// names without regard to case (as for writers in other languages), and a registry that
// decodes "Direct" into directCert.
type directEnv struct {
	p   *shred.Protector
	reg *codec.Registry
	// erased holds the documents given to newDirectEnv, sealed before their subject,
	// erasedSubject, was erased.
	erased []strata.Event
}

// erasedSubject is erased in every directEnv.
const erasedSubject = "subject-erased"

// declaredProtector returns a Protector over a new in-memory store, with schema declared, and
// a registry that decodes schema.Type (schema 1) into E through it.
func declaredProtector[E any](t testing.TB, schema strata.EventSchema) (*shred.Protector, *codec.Registry) {
	t.Helper()
	ctx := context.Background()
	st := inmem.New()
	t.Cleanup(func() { st.Close() })
	text, _ := shred.GenerateKEK()
	kek, _ := shred.ParseKEK(text)
	p, err := shred.New(ctx, st, kek)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Declare(ctx, schema); err != nil {
		t.Fatal(err)
	}
	reg := codec.NewRegistry()
	if err := codec.Register[E](reg, schema.Type, 1); err != nil {
		t.Fatal(err)
	}
	reg.Use(p)
	return p, reg
}

// newDirectEnv returns a directEnv with the documents erasedDocs, of erasedSubject, sealed
// before it was erased.
func newDirectEnv(t testing.TB, erasedDocs ...string) directEnv {
	t.Helper()
	ctx := context.Background()
	p, reg := declaredProtector[directCert](t, strata.EventSchema{Type: "Direct", Sensitive: []string{"dn", "mail", "nick", "born", "list[]"}, Subject: "subjectId"})
	e := directEnv{p: p, reg: reg}
	for _, doc := range append(erasedDocs, `{"subjectId":"`+erasedSubject+`","dn":"x"}`) {
		ev, ok := e.seal(t, doc)
		if !ok {
			t.Fatalf("cannot seal %s", doc)
		}
		e.erased = append(e.erased, ev)
	}
	if _, err := p.Erase(ctx, erasedSubject, strata.Metadata{}); err != nil {
		t.Fatal(err)
	}
	return e
}

// seal protects doc as a "Direct" event, as stored; ok is false for a document the Protector
// refuses.
func (e directEnv) seal(t testing.TB, doc string) (strata.Event, bool) {
	t.Helper()
	d := strata.EventData{Type: "Direct", Schema: 1, Data: []byte(doc), Meta: strata.Metadata{Tenant: "acme"}}
	if err := e.p.Protect(context.Background(), &d); err != nil {
		return strata.Event{}, false
	}
	return strata.Event{ID: d.ID, Stream: "direct-1", Version: 1, Type: d.Type, Schema: d.Schema, Data: d.Data, Meta: d.Meta}, true
}

// nullErasedBorn is the opened document doc of the erased subject with the markers of its
// born members as null: the declared schema seals born as a JSON string, which reads as
// Redacted once erased, and DecodeInto reads it as null, as directCert's Born is a time.
func nullErasedBorn(doc []byte) []byte {
	dec := json.NewDecoder(bytes.NewReader(doc))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return doc
	}
	out := []byte("{")
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return doc
		}
		key := tok.(string)
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return doc
		}
		if string(raw) == `"`+shred.Redacted+`"` && strings.EqualFold(key, "born") {
			raw = json.RawMessage("null")
		}
		if len(out) > 1 {
			out = append(out, ',')
		}
		k, _ := json.Marshal(key)
		out = append(append(append(out, k...), ':'), raw...)
	}
	return append(out, '}')
}

// compare decodes ev through the registry (DecodeInto) and as Decode and json.Unmarshal
// would, and fails unless both give the same value, or both fail. It returns the value.
func (e directEnv) compare(t testing.TB, ev strata.Event) (directCert, bool) {
	t.Helper()
	ctx := context.Background()
	opened := ev
	var want directCert
	wantErr := e.p.Reveal(ctx, &opened)
	if wantErr == nil {
		if ev.Meta.Subject == erasedSubject {
			opened.Data = nullErasedBorn(opened.Data)
		}
		wantErr = json.Unmarshal(opened.Data, &want)
	}
	ms, err := e.reg.Decode(ctx, ev)
	if (err == nil) != (wantErr == nil) {
		t.Fatalf("stored %s: decoded with error %v, as Decode and json.Unmarshal with error %v", ev.Data, err, wantErr)
	}
	if err != nil {
		return directCert{}, false
	}
	if got := ms[0].Value.(directCert); !reflect.DeepEqual(got, want) {
		t.Fatalf("stored %s (opened %s):\ndecoded    %+v\nwant       %+v", ev.Data, opened.Data, got, want)
	}
	return want, true
}

// TestDecodeIntoMatchesDecode decodes documents whose members json.Unmarshal would match in
// some other way than by their names alone (repeated, in other cases, escaped, in other
// orders) and values that the walk must leave to it, and checks that the value is the one of
// Decode and json.Unmarshal.
func TestDecodeIntoMatchesDecode(t *testing.T) {
	e := newDirectEnv(t, `{"subjectId":"`+erasedSubject+`","dn":"CN=gone","mail":"gone@example.org","list":["x"]}`,
		`{"mail":"gone@example.org","subjectId":"`+erasedSubject+`","DN":"CN=gone","dn":"CN=gone too"}`,
		`{"subjectId":"`+erasedSubject+`","dn":"CN=gone","born":"1970-01-02T00:00:00Z","BORN":"1970-01-03T00:00:00Z"}`)
	for _, ev := range e.erased {
		if v, ok := e.compare(t, ev); !ok || v.DN != shred.Redacted || !v.Born.IsZero() {
			t.Fatalf("erased %s decoded as %+v", ev.Data, v)
		}
	}
	for _, doc := range []string{
		`{"subjectId":"s1","dn":"CN=a","mail":"a@example.org","nick":"al","born":"1970-01-02T00:00:00Z","note":"n","n":3}`,
		`{"dn":"CN=first","subjectId":"s1"}`,
		`{"subjectId":"s1"}`,
		`{"subjectId":"s1","mail":"last@example.org"}`,
		`{"dn":"CN=a","mail":"b","nick":"c","subjectId":"s1"}`,
		`{ "dn" : "CN=spaced" , "subjectId" : "s1" , "mail" : "m" }`,
		`{"subjectId":"s1","dn":"CN=first","dn":"CN=second"}`,
		`{"subjectId":"s1","DN":"CN=upper first","dn":"CN=exact after"}`,
		`{"subjectId":"s1","dn":"CN=exact first","Dn":"CN=folded after"}`,
		`{"subjectId":"s1","dn":"CN=sealed","note":"x","dN":"CN=sealed too"}`,
		`{"subjectId":"s1","d\u006e":"CN=escaped name"}`,
		`{"subjectId":"s1","nic\u212a":"Kelvin sign first","nick":"exact after"}`,
		"{\"subjectId\":\"s1\",\"nic\u212a\":\"Kelvin sign first\",\"nick\":\"exact after\"}",
		`{"subjectId":"s1","dn":"CN=M\u00fcller, O=\"Q\""}`,
		`{"subjectId":"s1","dn":"CN=Müller,O=Straße"}`,
		`{"subjectId":"s1","dn":null,"mail":12,"nick":{"a":1}}`,
		`{"subjectId":"s1","dn":["CN=in an array"]}`,
		`{"subjectId":"s1","note":{"dn":"CN=nested"},"list":["x","y"]}`,
		`{"subjectId":"s1","born":"1970-01-02T00:00:00Z","nick":"n"}`,
		`{"subjectId":"s1","dn":"CN=a","n":"not a number"}`,
		`{"subjectId":"s1","nick":"a\tb"}`,
	} {
		ev, ok := e.seal(t, doc)
		if !ok {
			t.Fatalf("cannot seal %s", doc)
		}
		e.compare(t, ev)
	}
}

// TestDecodeIntoSetsFieldsItself checks that the walk does what DecodeInto is for: it sets the
// sensitive strings of the Go value, erased ones to Redacted, and leaves their members out of
// the document json.Unmarshal reads, which keeps the rest (a sensitive array, opened).
func TestDecodeIntoSetsFieldsItself(t *testing.T) {
	const doc = `","dn":"CN=a","note":"n","mail":"m@example.org","list":["x"]}`
	e := newDirectEnv(t, `{"subjectId":"`+erasedSubject+doc)
	ctx := context.Background()
	live, _ := e.seal(t, `{"subjectId":"s1`+doc)
	for _, c := range []struct {
		ev     strata.Event
		wantDN string
	}{{live, "CN=a"}, {e.erased[0], shred.Redacted}} {
		ev := c.ev
		rec := codec.Record{ID: ev.ID, Type: ev.Type, Schema: ev.Schema, Data: ev.Data, Meta: ev.Meta}
		dst := reflect.New(reflect.TypeFor[directCert]())
		if err := e.p.DecodeInto(ctx, &rec, dst); err != nil {
			t.Fatal(err)
		}
		got := dst.Elem().Interface().(directCert)
		if got.DN != c.wantDN || got.Note != "" {
			t.Fatalf("%s: the walk set %+v", ev.Data, got)
		}
		if bytes.Contains(rec.Data, []byte(`"dn"`)) || bytes.Contains(rec.Data, []byte(`"mail"`)) || !json.Valid(rec.Data) ||
			!bytes.Contains(rec.Data, []byte(`"list":[`)) {
			t.Fatalf("%s: the document left is %s", ev.Data, rec.Data)
		}
		if v, ok := e.compare(t, ev); !ok || v.DN != c.wantDN || v.Note != "n" {
			t.Fatalf("%s: decoded %+v", ev.Data, v)
		}
	}
}

// FuzzDecodeIntoMatchesDecode seals arbitrary documents by the declared schema and checks that
// the registry's decoding through DecodeInto gives what Decode and json.Unmarshal give.
func FuzzDecodeIntoMatchesDecode(f *testing.F) {
	for _, s := range []string{
		`{"subjectId":"s1","dn":"CN=a","mail":"a@example.org","nick":"al","born":"1970-01-02T00:00:00Z","note":"n","n":3}`,
		`{"dn":"CN=first","DN":"x","subjectId":"s1"}`,
		`{"subjectId":"` + erasedSubject + `","mail":"m","dn":"d"}`,
		`{ "subjectId" : "s1", "nick":"\u00e9", "list":["a",{"b":1}] }`,
	} {
		f.Add(s)
	}
	e := newDirectEnv(f, `{"subjectId":"`+erasedSubject+`","dn":"d","mail":"m","nick":"n","born":"1970-01-02T00:00:00Z"}`)
	f.Fuzz(func(t *testing.T, doc string) {
		if !json.Valid([]byte(doc)) || !strings.Contains(doc, "subjectId") {
			return
		}
		if ev, ok := e.seal(t, doc); ok {
			e.compare(t, ev)
		}
	})
}

// TestDecodeIntoConcurrently decodes events of different subjects and contents from several
// goroutines at once, each many times: the buffers DecodeInto opens payloads into go back to a
// pool, and no value may show another event's bytes.
func TestDecodeIntoConcurrently(t *testing.T) {
	e := newDirectEnv(t)
	type job struct {
		ev   strata.Event
		want directCert
	}
	var jobs []job
	for i := range 8 {
		doc := fmt.Sprintf(`{"subjectId":"s%d","dn":"CN=holder %d,O=Example","mail":"holder%d@example.org","note":"%s","n":%d}`, i%3, i, i, strings.Repeat("x", i*150), i)
		ev, ok := e.seal(t, doc)
		if !ok {
			t.Fatalf("cannot seal %s", doc)
		}
		want, _ := e.compare(t, ev)
		jobs = append(jobs, job{ev, want})
	}
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 400 {
				j := jobs[(g+i)%len(jobs)]
				m, err := e.reg.DecodeOne(context.Background(), j.ev)
				if err != nil {
					t.Error(err)
					return
				}
				if got := m.Value.(directCert); got != j.want {
					t.Errorf("decoded %+v, want %+v", got, j.want)
					return
				}
			}
		})
	}
	wg.Wait()
}
