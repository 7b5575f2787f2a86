package strata_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/strata-events/strata"
)

func TestExpectedVersion(t *testing.T) {
	for _, c := range []struct {
		e       strata.ExpectedVersion
		valid   bool
		allows  []int64
		refuses []int64
		str     string
	}{
		{strata.Any, true, []int64{0, 1, 9}, nil, "any"},
		{strata.NoStream, true, []int64{0}, []int64{1}, "no stream"},
		{strata.StreamExists, true, []int64{1, 7}, []int64{0}, "stream exists"},
		{strata.Exact(3), true, []int64{3}, []int64{0, 2, 4}, "3"},
		{strata.Exact(0), true, []int64{0}, []int64{1}, "no stream"},
		{strata.Exact(-1), false, nil, []int64{0, 1}, "invalid"},
		{strata.ExpectedVersion{}, false, nil, []int64{0, 1}, "invalid"},
	} {
		if c.e.Valid() != c.valid || c.e.String() != c.str {
			t.Errorf("%v: valid %v string %q", c.e, c.e.Valid(), c.e.String())
		}
		for _, v := range c.allows {
			if !c.e.Allows(v) {
				t.Errorf("%s should allow version %d", c.e, v)
			}
		}
		for _, v := range c.refuses {
			if c.e.Allows(v) {
				t.Errorf("%s should refuse version %d", c.e, v)
			}
		}
	}
}

func TestErrors(t *testing.T) {
	cause := errors.New("connection refused")
	err := fmt.Errorf("wrapped: %w", strata.Errorf(strata.Unavailable, "append", "database unreachable: %w", cause))
	if !errors.Is(err, strata.ErrUnavailable) || errors.Is(err, strata.ErrConflict) {
		t.Fatalf("errors.Is does not match on the code: %v", err)
	}
	if !errors.Is(err, cause) {
		t.Fatalf("the cause is not reachable")
	}
	if got := err.Error(); got != "wrapped: strata: append: database unreachable: connection refused" {
		t.Fatalf("message %q", got)
	}
	var se *strata.Error
	if !errors.As(err, &se) || !se.Retryable() {
		t.Fatalf("an Unavailable error should be retryable")
	}
	if e := strata.ClosedError("read all"); strata.ErrorCode(e) != strata.Unavailable || !errors.Is(e, strata.ErrClosed) || e.(*strata.Error).Retryable() {
		t.Fatalf("closed error %v", e)
	}
	c := strata.VersionConflict("append", "certificate-1", strata.Exact(2), 5)
	if c.Error() != `strata: append: stream "certificate-1" is at version 5, expected 2` {
		t.Fatalf("conflict message %q", c.Error())
	}
	if strata.ErrorCode(nil) != "" || strata.ErrorCode(errors.New("x")) != strata.Internal {
		t.Fatalf("ErrorCode of nil or a foreign error")
	}
}

func TestPosition(t *testing.T) {
	for _, c := range []struct {
		in   string
		want strata.Position
		out  string
	}{
		{"", strata.Start, "0"},
		{"0", strata.Start, "0"},
		{"42", strata.Position{Commit: 42, Event: 42}, "42"},
		{"1017.42", strata.Position{Commit: 1017, Event: 42}, "1017.42"},
	} {
		p, err := strata.ParsePosition(c.in)
		if err != nil || p != c.want || p.String() != c.out {
			t.Errorf("ParsePosition(%q) = %v, %v; String %q", c.in, p, err, p.String())
		}
	}
	for _, bad := range []string{"x", "1.", ".1", "1.2.3", "-1", "1 ", "99999999999999999999"} {
		if _, err := strata.ParsePosition(bad); strata.ErrorCode(err) != strata.Invalid {
			t.Errorf("ParsePosition(%q): %v, want Invalid", bad, err)
		}
	}
	a, b := strata.Position{Commit: 5, Event: 9}, strata.Position{Commit: 6, Event: 1}
	if !a.Less(b) || b.Less(a) || a.Compare(a) != 0 || !strata.Start.Less(a) {
		t.Fatalf("ordering by commit then event is broken")
	}
}

func TestMetadataJSON(t *testing.T) {
	m := strata.Metadata{Tenant: "acme", Principal: "alice", Extra: map[string]string{"ticket": "T-9", "a": "1"}}
	b, err := json.Marshal(m)
	if err != nil || string(b) != `{"a":"1","principal":"alice","tenant":"acme","ticket":"T-9"}` {
		t.Fatalf("marshal: %s %v", b, err)
	}
	var back strata.Metadata
	if err := json.Unmarshal(b, &back); err != nil || !back.Equal(m) {
		t.Fatalf("round trip: %+v %v", back, err)
	}
	if err := json.Unmarshal([]byte(`{"tenant":1}`), &back); err == nil {
		t.Fatalf("a non-string value should fail")
	}
}

// TestMetadataSubject checks that Subject, once an extra key, keeps the encoding events stored
// with it as an extra key: the canonical bytes, and so every leaf hash the ledger sealed, do not
// change, and such stored metadata decodes into the field.
func TestMetadataSubject(t *testing.T) {
	m := strata.Metadata{Tenant: "acme", Subject: "subject-42", Subsystem: "ra", Session: "s-1", Extra: map[string]string{"subjectx": "x"}}
	b, _ := json.Marshal(m)
	const want = `{"session":"s-1","subject":"subject-42","subjectx":"x","subsystem":"ra","tenant":"acme"}`
	if string(b) != want {
		t.Fatalf("marshal: %s, want %s", b, want)
	}
	for _, stored := range []string{want, `{"session":"s-1","subject":"subject-\u0034\u0032","subjectx":"x","subsystem":"ra","tenant":"acme"}`} {
		var back strata.Metadata
		if err := json.Unmarshal([]byte(stored), &back); err != nil || !back.Equal(m) || back.Subject != "subject-42" {
			t.Fatalf("decode %s: %+v %v", stored, back, err)
		}
	}
	if m.Get(strata.MetaSubject) != "subject-42" || !strata.IsWellKnownMetaKey(strata.MetaSubject) {
		t.Fatalf("subject is not a well-known key")
	}
	var set strata.Metadata
	if set.Set(strata.MetaSubject, "s-9"); set.Subject != "s-9" || set.Extra != nil {
		t.Fatalf("Set: %+v", set)
	}
	_, err := strata.PrepareAppend("append", []strata.StreamAppend{{Stream: "s", Expected: strata.Any,
		Events: []strata.EventData{{Type: "E", Meta: strata.Metadata{Extra: map[string]string{"subject": "s-1"}}}}}})
	if !errors.Is(err, strata.ErrInvalid) || !strings.Contains(err.Error(), `metadata key "subject" must be set through its Metadata field`) {
		t.Fatalf("subject as an extra key: %v", err)
	}
}

func TestPrepareAppend(t *testing.T) {
	in := []strata.StreamAppend{{Stream: "s", Expected: strata.Any, Events: []strata.EventData{{Type: "E"}}}}
	out, err := strata.PrepareAppend("append", in)
	if err != nil {
		t.Fatal(err)
	}
	e := out[0].Events[0]
	if e.ID.Version() != 7 || e.Schema != 1 || string(e.Data) != "{}" {
		t.Fatalf("defaults not filled: %+v", e)
	}
	if in[0].Events[0].ID != uuid.Nil {
		t.Fatalf("PrepareAppend modified its input")
	}
	_, err = strata.PrepareAppend("append", []strata.StreamAppend{{Stream: "s", Expected: strata.Any, Events: []strata.EventData{{Type: "E", Data: []byte("{")}}}})
	if err == nil || !strings.Contains(err.Error(), `stream "s" event 0: data is not valid JSON`) {
		t.Fatalf("error should name the stream and event: %v", err)
	}
}

func TestResolveReplay(t *testing.T) {
	a, b := uuid.Must(uuid.NewV7()), uuid.Must(uuid.NewV7())
	batch := strata.StreamAppend{Stream: "s", Events: []strata.EventData{
		{ID: a, Type: "E", Schema: 1, Data: []byte(`{}`)}, {ID: b, Type: "F", Schema: 1, Data: []byte(`{"x":1}`)},
	}}
	stored := map[uuid.UUID]strata.Event{
		a: {ID: a, Stream: "s", Version: 4, Type: "E", Schema: 1, Data: []byte(`{}`)},
		b: {ID: b, Stream: "s", Version: 5, Type: "F", Schema: 1, Data: []byte(`{"x":1}`)},
	}
	res, ok, err := strata.ResolveReplay("append", batch, stored)
	if err != nil || !ok || res != (strata.AppendResult{Stream: "s", FirstVersion: 4, LastVersion: 5, Replayed: true}) {
		t.Fatalf("replay: %+v %v %v", res, ok, err)
	}
	if _, ok, err := strata.ResolveReplay("append", batch, nil); ok || err != nil {
		t.Fatalf("nothing stored is not a replay and not an error")
	}
	changed := stored[b]
	changed.Data = []byte(`{"x":2}`)
	if _, _, err := strata.ResolveReplay("append", batch, map[uuid.UUID]strata.Event{a: stored[a], b: changed}); strata.ErrorCode(err) != strata.Conflict {
		t.Fatalf("other content: %v", err)
	}
	if _, _, err := strata.ResolveReplay("append", batch, map[uuid.UUID]strata.Event{a: stored[a]}); strata.ErrorCode(err) != strata.Conflict {
		t.Fatalf("partial: %v", err)
	}
}

func FuzzParsePosition(f *testing.F) {
	for _, s := range []string{"", "0", "42", "1017.42", "1.", "x", "18446744073709551615.1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := strata.ParsePosition(s)
		if err != nil {
			if strata.ErrorCode(err) != strata.Invalid {
				t.Fatalf("error code %q", strata.ErrorCode(err))
			}
			return
		}
		q, err := strata.ParsePosition(p.String())
		if err != nil || q != p {
			t.Fatalf("%q → %v → %q → %v, %v", s, p, p.String(), q, err)
		}
	})
}

func FuzzMetadataJSON(f *testing.F) {
	f.Add([]byte(`{"tenant":"acme","ticket":"T-9"}`))
	f.Add([]byte(`{"a":1}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var m strata.Metadata
		if err := json.Unmarshal(b, &m); err != nil {
			return
		}
		out, err := json.Marshal(m)
		if err != nil {
			t.Fatalf("marshal: %v", err)
		}
		var back strata.Metadata
		if err := json.Unmarshal(out, &back); err != nil || !back.Equal(m) {
			t.Fatalf("not stable: %s → %+v", out, back)
		}
	})
}

// FuzzMetadataDecode checks the decoder's fast path against encoding/json on any input: both
// accept or both refuse, and they agree on every key.
func FuzzMetadataDecode(f *testing.F) {
	f.Add([]byte(`{"category":"c","causation":"x","correlation":"c-1","principal":"alice","tenant":"acme","ticket":"T-9"}`))
	f.Add([]byte(`{"tenant":"a","tenant":"b"}`))
	f.Add([]byte(`{"tenant":"","tenant":"b"}`))
	f.Add([]byte(`{"t":"a","t":"b"}`))
	f.Add([]byte(`{"tenant":"\u0041"}`))
	f.Add([]byte(`{"a":"\xff"}`))
	f.Add([]byte(`{"a":"b",}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var got strata.Metadata
		gotErr := got.UnmarshalJSON(b)
		var ref map[string]string
		refErr := json.Unmarshal(b, &ref)
		if (gotErr == nil) != (refErr == nil) {
			t.Fatalf("%q: decoder error %v, encoding/json error %v", b, gotErr, refErr)
		}
		if gotErr != nil {
			return
		}
		var want strata.Metadata
		for k, v := range ref {
			want.Set(k, v)
		}
		if !got.Equal(want) {
			t.Fatalf("%q: decoded %+v, encoding/json %+v", b, got, want)
		}
	})
}

func FuzzPrepareAppend(f *testing.F) {
	f.Add("certificate-1", "CertificateIssued", []byte(`{"serial":"7F3A"}`), "acme")
	f.Add("", "", []byte(`{`), "")
	f.Fuzz(func(t *testing.T, stream, typ string, data []byte, tenant string) {
		out, err := strata.PrepareAppend("append", []strata.StreamAppend{{Stream: stream, Expected: strata.Any,
			Events: []strata.EventData{{Type: typ, Data: data, Meta: strata.Metadata{Tenant: tenant}}}}})
		if err != nil {
			if strata.ErrorCode(err) != strata.Invalid {
				t.Fatalf("error code %q: %v", strata.ErrorCode(err), err)
			}
			return
		}
		if !json.Valid(out[0].Events[0].Data) || out[0].Events[0].ID == uuid.Nil {
			t.Fatalf("accepted bad input")
		}
	})
}

// FuzzMetadataCanonical checks the fast encoder and decoder against encoding/json.
func FuzzMetadataCanonical(f *testing.F) {
	f.Add("acme", "alice", "ticket", "T-9")
	f.Add("a\"b", "<x>", "é", "\x01")
	f.Add("", "", "zz", "")
	f.Add("a<b>&c", "\u2028", "aa", "\"q\\")
	f.Add("t", "\x01", "k", "\xff")
	f.Add("", "", "category2", "v")
	f.Fuzz(func(t *testing.T, tenant, principal, key, val string) {
		m := strata.Metadata{Tenant: tenant, Principal: principal}
		if key != "" && !strata.IsWellKnownMetaKey(key) {
			m.Extra = map[string]string{key: val}
		}
		got, _ := m.MarshalJSON()
		ref := map[string]string{}
		for k, v := range m.Extra {
			ref[k] = v
		}
		if tenant != "" {
			ref["tenant"] = tenant
		}
		if principal != "" {
			ref["principal"] = principal
		}
		want, _ := json.Marshal(ref) // encoding/json sorts map keys
		if string(got) != string(want) {
			t.Fatalf("MarshalJSON %s, encoding/json %s", got, want)
		}
		var back strata.Metadata
		if err := back.UnmarshalJSON(got); err != nil {
			t.Fatal(err)
		}
		var refBack map[string]string
		_ = json.Unmarshal(got, &refBack)
		for k, v := range refBack {
			if back.Get(k) != v {
				t.Fatalf("key %q decoded as %q, encoding/json says %q", k, back.Get(k), v)
			}
		}
	})
}
