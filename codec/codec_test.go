package codec_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/strata-events/strata"
	"github.com/strata-events/strata/codec"
)

// Three generations of one event: v1 stored a full name, v2 split it, v3 added a country.
type personRegistered struct {
	First   string `json:"first"`
	Last    string `json:"last"`
	Country string `json:"country"`
}

type nameChanged struct {
	Name string `json:"name"`
}

type addressChanged struct {
	City string `json:"city"`
}

func newRegistry(t *testing.T) *codec.Registry {
	t.Helper()
	r := codec.NewRegistry()
	must(t, codec.Register[personRegistered](r, "PersonRegistered", 3))
	must(t, codec.Register[nameChanged](r, "NameChanged", 1))
	must(t, codec.Register[addressChanged](r, "AddressChanged", 1))
	// v1 -> v2: split "name" into first and last.
	must(t, r.Upcast("PersonRegistered", 1, func(rec codec.Record) ([]codec.Record, error) {
		var v1 struct{ Name string }
		if err := json.Unmarshal(rec.Data, &v1); err != nil {
			return nil, err
		}
		first, last, _ := strings.Cut(v1.Name, " ")
		b, _ := json.Marshal(map[string]string{"first": first, "last": last})
		return []codec.Record{{Type: rec.Type, Schema: 2, Data: b}}, nil
	}))
	// v2 -> v3: a default country.
	must(t, r.Upcast("PersonRegistered", 2, func(rec codec.Record) ([]codec.Record, error) {
		var m map[string]any
		if err := json.Unmarshal(rec.Data, &m); err != nil {
			return nil, err
		}
		m["country"] = "unknown"
		b, _ := json.Marshal(m)
		return []codec.Record{{Type: rec.Type, Schema: 3, Data: b}}, nil
	}))
	// A renamed type: "NameSet" is the old name of NameChanged.
	must(t, r.Upcast("NameSet", 1, func(rec codec.Record) ([]codec.Record, error) {
		return []codec.Record{{Type: "NameChanged", Schema: 1, Data: rec.Data}}, nil
	}))
	// A split: "Moved" carried a name and a city at once.
	must(t, r.Upcast("Moved", 1, func(rec codec.Record) ([]codec.Record, error) {
		var v struct{ Name, City string }
		if err := json.Unmarshal(rec.Data, &v); err != nil {
			return nil, err
		}
		n, _ := json.Marshal(nameChanged{Name: v.Name})
		c, _ := json.Marshal(addressChanged{City: v.City})
		return []codec.Record{{Type: "NameChanged", Schema: 1, Data: n}, {Type: "AddressChanged", Schema: 1, Data: c}}, nil
	}))
	return r
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func stored(typ string, schema int, data string) strata.Event {
	return strata.Event{ID: uuid.Must(uuid.NewV7()), Stream: "person-1", Version: 1, Type: typ, Schema: schema, Data: json.RawMessage(data)}
}

func TestUpcasting(t *testing.T) {
	t.Parallel()
	r := newRegistry(t)
	ctx := context.Background()
	for _, c := range []struct {
		name string
		ev   strata.Event
		want []any
	}{
		{"v1 through v2 to v3", stored("PersonRegistered", 1, `{"Name":"Ada Lovelace"}`), []any{personRegistered{First: "Ada", Last: "Lovelace", Country: "unknown"}}},
		{"v2 to v3", stored("PersonRegistered", 2, `{"first":"Alan","last":"Turing"}`), []any{personRegistered{First: "Alan", Last: "Turing", Country: "unknown"}}},
		{"current", stored("PersonRegistered", 3, `{"first":"Grace","last":"Hopper","country":"US"}`), []any{personRegistered{First: "Grace", Last: "Hopper", Country: "US"}}},
		{"renamed", stored("NameSet", 1, `{"name":"Ada"}`), []any{nameChanged{Name: "Ada"}}},
		{"split", stored("Moved", 1, `{"Name":"Ada","City":"London"}`), []any{nameChanged{Name: "Ada"}, addressChanged{City: "London"}}},
	} {
		t.Run(c.name, func(t *testing.T) {
			ms, err := r.Decode(ctx, c.ev)
			if err != nil {
				t.Fatal(err)
			}
			if len(ms) != len(c.want) {
				t.Fatalf("got %d messages, want %d", len(ms), len(c.want))
			}
			for i, m := range ms {
				if fmt.Sprintf("%#v", m.Value) != fmt.Sprintf("%#v", c.want[i]) {
					t.Errorf("message %d: got %#v, want %#v", i, m.Value, c.want[i])
				}
				if m.Event.ID != c.ev.ID || string(m.Event.Data) != string(c.ev.Data) {
					t.Errorf("message %d does not carry the stored event", i)
				}
			}
		})
	}
}

func TestEncodeRoundTrip(t *testing.T) {
	t.Parallel()
	r := newRegistry(t)
	ctx := context.Background()
	meta := strata.Metadata{Principal: "ca-operator"}
	for _, v := range []any{personRegistered{First: "Ada", Country: "UK"}, &nameChanged{Name: "Ada"}} {
		d, err := r.Encode(ctx, v, meta)
		if err != nil {
			t.Fatal(err)
		}
		if d.Meta.Principal != "ca-operator" {
			t.Errorf("metadata lost: %+v", d.Meta)
		}
		m, err := r.DecodeOne(ctx, strata.Event{Type: d.Type, Schema: d.Schema, Data: d.Data})
		if err != nil {
			t.Fatal(err)
		}
		want := v
		if p, ok := v.(*nameChanged); ok {
			want = *p
		}
		if m.Value != want {
			t.Errorf("round trip: got %#v, want %#v", m.Value, want)
		}
	}
	if d, _ := r.Encode(ctx, personRegistered{}, strata.Metadata{}); d.Type != "PersonRegistered" || d.Schema != 3 {
		t.Errorf("encoded as %s schema %d", d.Type, d.Schema)
	}
}

func TestErrorsNameTheEvent(t *testing.T) {
	t.Parallel()
	r := newRegistry(t)
	ctx := context.Background()
	must(t, r.Upcast("Looping", 1, func(rec codec.Record) ([]codec.Record, error) {
		return []codec.Record{{Type: "Looping2", Schema: 1, Data: rec.Data}}, nil
	}))
	must(t, r.Upcast("Looping2", 1, func(rec codec.Record) ([]codec.Record, error) {
		return []codec.Record{{Type: "Looping", Schema: 1, Data: rec.Data}}, nil
	}))
	must(t, r.Upcast("Panics", 1, func(codec.Record) ([]codec.Record, error) { panic("boom") }))
	for _, c := range []struct {
		name string
		ev   strata.Event
		want error
	}{
		{"unknown type", stored("Unheard", 1, `{}`), codec.ErrUnknownType},
		{"bad JSON for the type", stored("NameChanged", 1, `{"name":42}`), codec.ErrUndecodable},
		{"schema newer than the program", stored("NameChanged", 7, `{}`), codec.ErrUndecodable},
		{"no upcaster for an old schema", stored("PersonRegistered", 0, `{}`), codec.ErrUndecodable},
		{"upcaster fails", stored("PersonRegistered", 1, `[1,2]`), codec.ErrUndecodable},
		{"upcasters loop", stored("Looping", 1, `{}`), codec.ErrUndecodable},
		{"upcaster panics", stored("Panics", 1, `{}`), codec.ErrUndecodable},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := r.Decode(ctx, c.ev)
			if !errors.Is(err, c.want) {
				t.Fatalf("got %v, want %v", err, c.want)
			}
			if !errors.Is(err, strata.ErrInvalid) {
				t.Errorf("not an Invalid *strata.Error: %v", err)
			}
			if !strings.Contains(err.Error(), c.ev.ID.String()) || !strings.Contains(err.Error(), c.ev.Type) {
				t.Errorf("error does not name the event: %v", err)
			}
		})
	}
}

func TestRegisterRejects(t *testing.T) {
	t.Parallel()
	r := newRegistry(t)
	for name, err := range map[string]error{
		"same name twice":    codec.Register[struct{ X int }](r, "NameChanged", 1),
		"same Go type twice": codec.Register[nameChanged](r, "NameChanged2", 1),
		"pointer type":       codec.Register[*addressChanged](r, "Ptr", 1),
		"empty name":         codec.Register[struct{ Y int }](r, "", 1),
		"schema 0":           codec.Register[struct{ Z int }](r, "Zero", 0),
		"upcaster twice":     r.Upcast("NameSet", 1, func(codec.Record) ([]codec.Record, error) { return nil, nil }),
	} {
		if err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if err := codec.Ensure[nameChanged](r, "NameChanged", 1); err != nil {
		t.Errorf("Ensure of an existing registration: %v", err)
	}
	if _, err := r.Encode(context.Background(), struct{ Unregistered bool }{}, strata.Metadata{}); !errors.Is(err, codec.ErrUnknownType) {
		t.Errorf("encoding an unregistered type: %v", err)
	}
	if _, err := r.Encode(context.Background(), (*nameChanged)(nil), strata.Metadata{}); err == nil {
		t.Errorf("encoding a nil pointer: accepted")
	}
}

// tagTransform wraps payloads in an object under its tag, to check the order of the pipeline.
type tagTransform struct{ tag string }

func (x tagTransform) Encode(_ context.Context, _ any, rec *codec.Record) error {
	rec.Data = json.RawMessage(`{"` + x.tag + `":` + string(rec.Data) + `}`)
	return nil
}

func (x tagTransform) Decode(_ context.Context, rec *codec.Record) error {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(rec.Data, &m); err != nil {
		return err
	}
	inner, ok := m[x.tag]
	if !ok {
		return fmt.Errorf("no %q wrapper", x.tag)
	}
	rec.Data = inner
	return nil
}

func TestTransformsWrapInOrder(t *testing.T) {
	t.Parallel()
	r := newRegistry(t)
	r.Use(tagTransform{"a"})
	r.Use(tagTransform{"b"})
	ctx := context.Background()
	d, err := r.Encode(ctx, nameChanged{Name: "Ada"}, strata.Metadata{})
	if err != nil {
		t.Fatal(err)
	}
	if got := string(d.Data); got != `{"b":{"a":{"name":"Ada"}}}` {
		t.Fatalf("stored %s", got)
	}
	m, err := r.DecodeOne(ctx, strata.Event{Type: d.Type, Schema: d.Schema, Data: d.Data})
	if err != nil || m.Value != (nameChanged{Name: "Ada"}) {
		t.Fatalf("decoded %#v, %v", m.Value, err)
	}
	// Upcasters run on the payload in clear: a v1 record stored through the transforms.
	v1 := strata.Event{Type: "PersonRegistered", Schema: 1, Data: json.RawMessage(`{"b":{"a":{"Name":"Ada Lovelace"}}}`)}
	m, err = r.DecodeOne(ctx, v1)
	if err != nil || m.Value.(personRegistered).Last != "Lovelace" {
		t.Fatalf("decoded %#v, %v", m.Value, err)
	}
	if _, err := r.Decode(ctx, strata.Event{Type: "NameChanged", Schema: 1, Data: json.RawMessage(`{"name":"x"}`)}); !errors.Is(err, codec.ErrUndecodable) {
		t.Fatalf("a payload the transform rejects: %v", err)
	}
}

// FuzzDecode feeds arbitrary stored events to the pipeline: it may refuse them, never panic.
func FuzzDecode(f *testing.F) {
	f.Add("PersonRegistered", 1, []byte(`{"Name":"Ada Lovelace"}`))
	f.Add("Moved", 1, []byte(`{"Name":"Ada","City":"London"}`))
	f.Add("NameChanged", 1, []byte(`{"name":"x"}`))
	f.Add("PersonRegistered", 2, []byte(`null`))
	f.Fuzz(func(t *testing.T, typ string, schema int, data []byte) {
		r := codec.NewRegistry()
		_ = codec.Register[personRegistered](r, "PersonRegistered", 3)
		_ = codec.Register[nameChanged](r, "NameChanged", 1)
		ms, err := r.Decode(context.Background(), strata.Event{Type: typ, Schema: schema, Data: data})
		if err == nil && len(ms) == 0 {
			t.Fatalf("no messages and no error")
		}
		if err != nil && !errors.Is(err, codec.ErrUnknownType) && !errors.Is(err, codec.ErrUndecodable) {
			t.Fatalf("untyped error: %v", err)
		}
	})
}

// meetChecker is a transform whose CheckType waits until n registrations are checking at
// once (or a second passes), to line up concurrent Register calls deterministically.
type meetChecker struct {
	n       int
	mu      sync.Mutex
	arrived int
	all     chan struct{}
}

func (m *meetChecker) Encode(context.Context, any, *codec.Record) error { return nil }
func (m *meetChecker) Decode(context.Context, *codec.Record) error      { return nil }
func (m *meetChecker) CheckType(string, reflect.Type) error {
	m.mu.Lock()
	m.arrived++
	if m.arrived == m.n {
		close(m.all)
	}
	m.mu.Unlock()
	select {
	case <-m.all:
	case <-time.After(time.Second):
	}
	return nil
}

// TestEnsureConcurrent: packages that bring their own event types call Ensure on a shared
// registry, possibly at once; every call of the same registration must succeed.
func TestEnsureConcurrent(t *testing.T) {
	t.Parallel()
	type ensured struct{ A int }
	r := codec.NewRegistry()
	const n = 2
	r.Use(&meetChecker{n: n, all: make(chan struct{})})
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { errs[i] = codec.Ensure[ensured](r, "Ensured", 1) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("Ensure %d of the same registration, at once: %v", i, err)
		}
	}
}

// TestRegisterSchemaOutOfRange: a schema no store can hold is refused when registered, not
// on every append of the type.
func TestRegisterSchemaOutOfRange(t *testing.T) {
	t.Parallel()
	r := codec.NewRegistry()
	type big struct{ A int }
	err := codec.Register[big](r, "Big", strata.MaxSchema+1)
	if strata.ErrorCode(err) != strata.Invalid {
		t.Fatalf("Register at schema MaxSchema+1: %v, want an Invalid error", err)
	}
	type most struct{ A int }
	if err := codec.Register[most](r, "Most", strata.MaxSchema); err != nil {
		t.Fatalf("Register at schema MaxSchema: %v", err)
	}
}

// TestUpcastSplitIntoMany: an event split into more records than the bound on a chain's
// length decodes; the bound is on each chain, not on the number of records a split makes.
func TestUpcastSplitIntoMany(t *testing.T) {
	t.Parallel()
	r := newRegistry(t)
	const n = 100
	must(t, r.Upcast("NamesImported", 1, func(rec codec.Record) ([]codec.Record, error) {
		out := make([]codec.Record, n)
		for i := range out {
			// Each part is stored at an old schema: a chain of two more steps.
			out[i] = codec.Record{Type: "PersonRegistered", Schema: 1, Data: fmt.Appendf(nil, `{"Name":"P%d Q"}`, i)}
		}
		return out, nil
	}))
	ms, err := r.Decode(context.Background(), stored("NamesImported", 1, `{}`))
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != n {
		t.Fatalf("got %d messages, want %d", len(ms), n)
	}
	for i, m := range ms {
		if want := (personRegistered{First: fmt.Sprintf("P%d", i), Last: "Q", Country: "unknown"}); m.Value != want {
			t.Fatalf("message %d: %#v, want %#v", i, m.Value, want)
		}
	}
	// Upcasters that loop while they split still end in an error.
	must(t, r.Upcast("BombA", 1, func(rec codec.Record) ([]codec.Record, error) {
		return []codec.Record{{Type: "BombB", Schema: 1, Data: rec.Data}, {Type: "BombB", Schema: 1, Data: rec.Data}}, nil
	}))
	must(t, r.Upcast("BombB", 1, func(rec codec.Record) ([]codec.Record, error) {
		return []codec.Record{{Type: "BombA", Schema: 1, Data: rec.Data}, {Type: "BombA", Schema: 1, Data: rec.Data}}, nil
	}))
	if _, err := r.Decode(context.Background(), stored("BombA", 1, `{}`)); !errors.Is(err, codec.ErrUndecodable) {
		t.Fatalf("looping split: %v", err)
	}
}

// nameSetter is a FieldDecoder that sets NameChanged.Name itself, from a "setName" member
// that it leaves out of the payload; retype makes it change the record's type, which the
// registry refuses. recycled counts the payloads of its own that the registry gave back.
type nameSetter struct {
	retype   bool
	recycled *int
}

func (nameSetter) Encode(context.Context, any, *codec.Record) error { return nil }

func (x nameSetter) Recycle(data []byte) {
	if !strings.Contains(string(data), `"setName"`) { // its own: the member is gone
		*x.recycled++
	}
}

func (nameSetter) Decode(_ context.Context, rec *codec.Record) error {
	rec.Data = json.RawMessage(strings.Replace(string(rec.Data), `"setName"`, `"name"`, 1))
	return nil
}

func (x nameSetter) DecodeInto(_ context.Context, rec *codec.Record, dst reflect.Value) error {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(rec.Data, &m); err != nil {
		return err
	}
	if v, ok := m["setName"]; ok {
		var s string
		if err := json.Unmarshal(v, &s); err != nil {
			return err
		}
		dst.Elem().FieldByName("Name").SetString(s + " (set)")
		delete(m, "setName")
		rec.Data, _ = json.Marshal(m)
	}
	if x.retype {
		rec.Type = "AddressChanged"
	}
	return nil
}

// TestFieldDecoder checks when the registry lets the first transform decode into the value:
// for a type registered at the stored schema, with the value it then unmarshals the rest into;
// not when an upcaster runs (Decode then), nor for a transform installed after the first; and
// never with the record's type changed.
func TestFieldDecoder(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r := newRegistry(t)
	recycled := 0
	r.Use(nameSetter{recycled: &recycled})
	m, err := r.DecodeOne(ctx, stored("NameChanged", 1, `{"setName":"Ada"}`))
	if err != nil || m.Value != (nameChanged{Name: "Ada (set)"}) || recycled != 1 {
		t.Fatalf("decoded into: %#v, %v, %d payloads recycled", m.Value, err, recycled)
	}
	// Its payload left as stored is not given back.
	if m, err := r.DecodeOne(ctx, stored("NameChanged", 1, `{"name":"Ada"}`)); err != nil || m.Value != (nameChanged{Name: "Ada"}) || recycled != 1 {
		t.Fatalf("stored payload: %#v, %v, %d payloads recycled", m.Value, err, recycled)
	}
	// Upcast: "NameSet" is renamed to NameChanged, so Decode runs, not DecodeInto.
	if m, err := r.DecodeOne(ctx, stored("NameSet", 1, `{"setName":"Ada"}`)); err != nil || m.Value != (nameChanged{Name: "Ada"}) {
		t.Fatalf("upcast: %#v, %v", m.Value, err)
	}
	// Installed second, it runs first: Decode.
	r2 := newRegistry(t)
	r2.Use(tagTransform{"a"})
	r2.Use(nameSetter{recycled: new(int)})
	if m, err := r2.DecodeOne(ctx, stored("NameChanged", 1, `{"a":{"setName":"Ada"}}`)); err != nil || m.Value != (nameChanged{Name: "Ada"}) {
		t.Fatalf("second transform: %#v, %v", m.Value, err)
	}
	r3 := newRegistry(t)
	r3.Use(nameSetter{retype: true, recycled: new(int)})
	if _, err := r3.Decode(ctx, stored("NameChanged", 1, `{"setName":"Ada"}`)); !errors.Is(err, codec.ErrUndecodable) || !strings.Contains(err.Error(), "changed the type") {
		t.Fatalf("a DecodeInto that changed the type: %v", err)
	}
}
