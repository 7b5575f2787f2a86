package shred_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/strata-events/strata"
	"github.com/strata-events/strata/codec"
	"github.com/strata-events/strata/inmem"
	"github.com/strata-events/strata/shred"
)

// A json tag name that encoding/json cannot use (here with an apostrophe) is ignored by it:
// the field keeps its Go name, and an embedded struct's fields are promoted. The plan must
// follow, or the field is stored in clear.
type oddTag struct {
	SubjectID string `json:"subjectId" strata:"subject"`
	Email     string `json:"e'mail" strata:"sensitive"`
}

type oddInner struct {
	Email string `json:"email" strata:"sensitive"`
}

type oddEmbed struct {
	SubjectID string `json:"subjectId" strata:"subject"`
	oddInner  `json:"in'ner"`
}

func TestInvalidJSONTagNames(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t, mustKEK(t))
	if err := codec.Register[oddTag](e.reg, "OddTag", 1); err != nil {
		t.Fatal(err)
	}
	if err := codec.Register[oddEmbed](e.reg, "OddEmbed", 1); err != nil {
		t.Fatal(err)
	}
	for i, v := range []any{
		oddTag{SubjectID: "subject-1", Email: "secret1@example.org"},
		oddEmbed{SubjectID: "subject-1", oddInner: oddInner{Email: "secret2@example.org"}},
	} {
		stored := e.writeAny(t, "odd-"+string(rune('a'+i)), v)
		if bytes.Contains(stored.Data, []byte("@example.org")) {
			t.Errorf("%T stored in clear: %s", v, stored.Data)
		}
		m, err := e.reg.DecodeOne(ctx, stored)
		if err != nil || m.Value != v {
			t.Errorf("%T decodes to %+v, %v", v, m.Value, err)
		}
	}
}

// A sensitive string inside a JSON string (the ",string" option) and a json.Number read as
// null after erasure: the marker Redacted is neither, and replay would fail on it.
type quoted struct {
	SubjectID string      `json:"subjectId" strata:"subject"`
	Email     string      `json:"email,string" strata:"sensitive"`
	Amount    json.Number `json:"amount" strata:"sensitive"`
}

func TestErasedValuesThatAreNotPlainStrings(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t, mustKEK(t))
	if err := codec.Register[quoted](e.reg, "Quoted", 1); err != nil {
		t.Fatal(err)
	}
	v := quoted{SubjectID: "subject-1", Email: "q@example.org", Amount: "12"}
	stored := e.writeAny(t, "quoted-1", v)
	if m, err := e.reg.DecodeOne(ctx, stored); err != nil || m.Value != v {
		t.Fatalf("before erasure: %+v, %v", m.Value, err)
	}
	if _, err := e.p.Erase(ctx, "subject-1", strata.Metadata{}); err != nil {
		t.Fatal(err)
	}
	m, err := e.reg.DecodeOne(ctx, stored)
	if err != nil {
		t.Fatalf("after erasure, replay fails: %v", err)
	}
	if got := m.Value.(quoted); got.Email != "" || got.Amount != "" || got.SubjectID != "subject-1" {
		t.Errorf("after erasure: %+v", got)
	}
}

// A value in clear that starts like an encrypted field would make every read of its event
// fail: Encode refuses it, on types with sensitive fields and without, and on snapshots; a key
// that starts so is no value, and passes.
type noteOnly struct {
	Note string            `json:"note"`
	Tags map[string]string `json:"tags,omitempty"`
}

func TestRefusesEnvelopeLookalikes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t, mustKEK(t))
	if err := codec.Register[noteOnly](e.reg, "NoteOnly", 1); err != nil {
		t.Fatal(err)
	}
	fake := "strata:enc:v1:s:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
	v := sample()
	v.Note = fake
	for _, value := range []any{v, noteOnly{Note: fake}, noteOnly{Tags: map[string]string{"k": fake}}} {
		_, err := e.reg.Encode(ctx, value, strata.Metadata{Tenant: "acme"})
		if !errors.Is(err, shred.ErrLookalike) || strata.ErrorCode(err) != strata.Invalid {
			t.Errorf("%T holding %q in clear: %v, want an Invalid error wrapping ErrLookalike", value, fake, err)
		}
	}
	if _, err := e.reg.Encode(ctx, noteOnly{Note: "x", Tags: map[string]string{fake: "v"}}, strata.Metadata{}); err != nil {
		t.Errorf("a key that starts like an envelope: %v", err)
	}
	s := strata.Snapshot{Stream: "certificate-7F3A", Version: 1, Data: []byte(`{"note":"` + fake + `"}`)}
	if err := e.p.SealSnapshot(ctx, noteOnly{}, &s); !errors.Is(err, shred.ErrLookalike) {
		t.Errorf("a snapshot holding %q in clear: %v", fake, err)
	}
}

// wrappedExtra seals a whole map: a lookalike inside it is refused too, as it would read back
// in clear.
type wrappedExtra struct {
	SubjectID string            `json:"subjectId" strata:"subject"`
	Extra     map[string]string `json:"extra" strata:"sensitive"`
}

// The seal walk refuses lookalikes itself once the subject's key is cached, in clear fields and
// inside sealed ones, naming the first one's path; a subject without a key yet is checked
// before its key is made, and gets none.
func TestRefusesLookalikesOfAKnownSubject(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t, mustKEK(t))
	if err := codec.Register[wrappedExtra](e.reg, "WrappedExtra", 1); err != nil {
		t.Fatal(err)
	}
	if _, err := e.reg.Encode(ctx, sample(), strata.Metadata{}); err != nil { // caches the key
		t.Fatal(err)
	}
	fake := "strata:enc:v1:s:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
	note, dnToo, sealed := sample(), sample(), sample()
	note.Note = fake
	dnToo.DN, dnToo.Note = fake, fake
	sealed.DN = fake
	for _, c := range []struct {
		value any
		path  string
	}{
		{note, `"note"`},
		{dnToo, `"subjectDN"`},
		{sealed, `"subjectDN"`},
		{wrappedExtra{SubjectID: "subject-42", Extra: map[string]string{"k": fake}}, `"extra.k"`},
	} {
		_, err := e.reg.Encode(ctx, c.value, strata.Metadata{})
		if !errors.Is(err, shred.ErrLookalike) || strata.ErrorCode(err) != strata.Invalid || !strings.Contains(err.Error(), c.path) {
			t.Errorf("%+v: %v, want an Invalid error wrapping ErrLookalike at %s", c.value, err, c.path)
		}
	}
	fresh := sample()
	fresh.SubjectID, fresh.Note = "subject-new", fake
	if _, err := e.reg.Encode(ctx, fresh, strata.Metadata{}); !errors.Is(err, shred.ErrLookalike) {
		t.Fatalf("a new subject's lookalike: %v", err)
	}
	if _, err := e.st.SubjectKey(ctx, "", "subject-new"); !errors.Is(err, strata.ErrNotFound) {
		t.Errorf("a refused event of a new subject made it a key: %v", err)
	}
}

// Redact redacts sensitive fields however deep they lie.
type (
	deep9 struct{ Secret holder }
	deep8 struct{ N deep9 }
	deep7 struct{ N deep8 }
	deep6 struct{ N deep7 }
	deep5 struct{ N deep6 }
	deep4 struct{ N deep5 }
	deep3 struct{ N deep4 }
	deep2 struct{ N deep3 }
	deep1 struct{ N deep2 }
)

func TestRedactDeepValues(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	v := deep1{N: deep2{N: deep3{N: deep4{N: deep5{N: deep6{N: deep7{N: deep8{N: deep9{Secret: holder{Email: email}}}}}}}}}}
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("x", "v", shred.Redact(v))
	if strings.Contains(buf.String(), email) || !strings.Contains(buf.String(), shred.Redacted) {
		t.Errorf("log line: %s", buf.String())
	}
}

// racyStore runs hook once, between reading a subject key from the store and returning it.
type racyStore struct {
	*inmem.Store
	hook func()
}

func (s *racyStore) SubjectKey(ctx context.Context, tenant, subject string) (strata.SubjectKey, error) {
	k, err := s.Store.SubjectKey(ctx, tenant, subject)
	if h := s.hook; h != nil {
		s.hook = nil
		h()
	}
	return k, err
}

// A key read from the store before Erase and cached after it must not bring the subject back:
// once Erase returns, this process neither decrypts nor encrypts for the subject.
func TestEraseDuringAKeyLookup(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	kek := mustKEK(t)
	e := newEnv(t, kek)
	stored := e.write(t, sample())
	rs := &racyStore{Store: e.st}
	p, err := shred.New(ctx, rs, kek)
	if err != nil {
		t.Fatal(err)
	}
	reg := codec.NewRegistry()
	if err := codec.Register[issued](reg, "Issued", 1); err != nil {
		t.Fatal(err)
	}
	reg.Use(p)
	rs.hook = func() {
		if _, err := p.Erase(ctx, "subject-42", strata.Metadata{}); err != nil {
			t.Error(err)
		}
	}
	_, _ = reg.DecodeOne(ctx, stored) // its key lookup straddles the erasure
	m, err := reg.DecodeOne(ctx, stored)
	if err != nil {
		t.Fatal(err)
	}
	if got := m.Value.(issued); got.DN != shred.Redacted {
		t.Errorf("after Erase returned, the subject's field reads %q", got.DN)
	}
	if _, err := reg.Encode(ctx, sample(), strata.Metadata{Tenant: "acme"}); !errors.Is(err, shred.ErrErased) {
		t.Errorf("after Erase returned, an event of the subject encodes: %v", err)
	}
}

// OpenSnapshot with no state refuses a snapshot with encrypted fields instead of panicking.
func TestOpenSnapshotWithoutState(t *testing.T) {
	t.Parallel()
	e := newEnv(t, mustKEK(t))
	s := sealed(t, e.p, "holder-1", sampleState())
	if ok, err := e.p.OpenSnapshot(context.Background(), nil, &s); ok || strata.ErrorCode(err) != strata.Invalid {
		t.Errorf("OpenSnapshot(nil state) = %v, %v", ok, err)
	}
}

// A sensitive value that only quotes the envelope prefix inside its text (an escaped quote
// before it) is no lookalike: it is sealed whether or not the subject's key is cached.
func TestQuotedPrefixInsideASensitiveValueIsNoLookalike(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t, mustKEK(t))
	if err := codec.Register[wrappedExtra](e.reg, "WrappedExtra", 1); err != nil {
		t.Fatal(err)
	}
	text := `he wrote "strata:enc:v1:s:AAAA" in the form`
	v := sample()
	v.DN = text
	for i := range 2 { // the first write makes the key, the second finds it cached
		d, err := e.reg.Encode(ctx, v, strata.Metadata{})
		if err != nil {
			t.Fatalf("write %d of a sensitive %q: %v", i+1, text, err)
		}
		if bytes.Contains(d.Data, []byte("he wrote")) {
			t.Fatalf("write %d stored in clear: %s", i+1, d.Data)
		}
	}
	w := wrappedExtra{SubjectID: "subject-42", Extra: map[string]string{"k": text}}
	if _, err := e.reg.Encode(ctx, w, strata.Metadata{}); err != nil {
		t.Errorf("a sealed map holding %q: %v", text, err)
	}
}

// A lookalike under the empty member name, the path "", is refused like any other: stored, it
// would make every read of the event fail.
func TestRefusesLookalikeUnderEmptyName(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t, mustKEK(t))
	fake := "strata:enc:v1:s:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
	ev := strata.EventData{Type: "Raw", Data: []byte(`{"":"` + fake + `"}`)}
	if err := e.p.Protect(ctx, &ev); !errors.Is(err, shred.ErrLookalike) || strata.ErrorCode(err) != strata.Invalid {
		t.Errorf("%s: %v, want an Invalid error wrapping ErrLookalike", ev.Data, err)
	}
	if err := codec.Register[map[string]string](e.reg, "Tags", 1); err != nil {
		t.Fatal(err)
	}
	if _, err := e.reg.Encode(ctx, map[string]string{"": fake}, strata.Metadata{}); !errors.Is(err, shred.ErrLookalike) {
		t.Errorf("a map holding %q under \"\": %v, want ErrLookalike", fake, err)
	}
}

// A sensitive value that opens but does not decode into its Go type (a raw-JSON writer sent a
// date the Go type cannot parse) fails to decode with an error that does not quote it: the
// error reaches log lines, and the value is personal data in clear.
func TestUndecodableSensitiveValueStaysOutOfTheError(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t, mustKEK(t))
	if err := e.p.Declare(ctx, strata.EventSchema{Type: "Issued", Sensitive: []string{"subjectDN", "born"}, Subject: "subjectId"}); err != nil {
		t.Fatal(err)
	}
	const born = "02/01/1970 Zyxwv"
	ev := strata.EventData{Type: "Issued", Schema: 1, Data: []byte(`{"serial":"7F3A","subjectId":"subject-42","subjectDN":"CN=x","born":"` + born + `"}`)}
	if err := e.p.Protect(ctx, &ev); err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(ev.Data, []byte(born)) {
		t.Fatalf("stored in clear: %s", ev.Data)
	}
	_, err := e.reg.DecodeOne(ctx, strata.Event{ID: ev.ID, Stream: "certificate-7F3A", Version: 1, Type: ev.Type, Schema: ev.Schema, Data: ev.Data, Meta: ev.Meta})
	if !errors.Is(err, codec.ErrUndecodable) || strata.ErrorCode(err) != strata.Invalid {
		t.Fatalf("decoding a born the Go type cannot parse: %v, want an Invalid ErrUndecodable", err)
	}
	if strings.Contains(err.Error(), "02/01/1970") || strings.Contains(err.Error(), "Zyxwv") {
		t.Errorf("the error quotes the decrypted value: %v", err)
	}
}
