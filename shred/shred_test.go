package shred_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/strata-events/strata"
	"github.com/strata-events/strata/codec"
	"github.com/strata-events/strata/inmem"
	"github.com/strata-events/strata/shred"
)

type holder struct {
	Name  string `json:"name" strata:"sensitive"`
	Email string `json:"email" strata:"sensitive"`
}

type issued struct {
	Serial    string    `json:"serial"`
	SubjectID string    `json:"subjectId" strata:"subject"`
	DN        string    `json:"subjectDN" strata:"sensitive"`
	Born      time.Time `json:"born" strata:"sensitive"`
	Holder    holder    `json:"holder"`
	Note      string    `json:"note"`
}

const (
	dn    = "CN=Zyxwv Quimby,O=Example"
	email = "zyxwv.quimby@example.org"
)

func sample() issued {
	return issued{Serial: "7F3A", SubjectID: "subject-42", DN: dn, Born: time.Date(1970, 1, 2, 0, 0, 0, 0, time.UTC),
		Holder: holder{Name: "Zyxwv Quimby", Email: email}, Note: "kept in clear"}
}

type env struct {
	st  *inmem.Store
	p   *shred.Protector
	reg *codec.Registry
}

func newEnv(t *testing.T, kek shred.KeyProvider) env {
	t.Helper()
	st := inmem.New()
	t.Cleanup(func() { st.Close() })
	return envOn(t, st, kek)
}

func envOn(t *testing.T, st *inmem.Store, kek shred.KeyProvider) env {
	t.Helper()
	p, err := shred.New(context.Background(), st, kek)
	if err != nil {
		t.Fatal(err)
	}
	reg := codec.NewRegistry()
	if err := codec.Register[issued](reg, "Issued", 1); err != nil {
		t.Fatal(err)
	}
	reg.Use(p)
	return env{st: st, p: p, reg: reg}
}

func mustKEK(t *testing.T) *shred.LocalKEK {
	t.Helper()
	text, err := shred.GenerateKEK()
	if err != nil {
		t.Fatal(err)
	}
	k, err := shred.ParseKEK(text)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func (e env) write(t *testing.T, v issued) strata.Event {
	t.Helper()
	ctx := context.Background()
	d, err := e.reg.Encode(ctx, v, strata.Metadata{Tenant: "acme"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.st.Append(ctx, "certificate-"+v.Serial, strata.Any, d); err != nil {
		t.Fatal(err)
	}
	var last strata.Event
	for ev, err := range e.st.ReadStream(ctx, "certificate-"+v.Serial, strata.ReadStreamOptions{Backward: true, Limit: 1}) {
		if err != nil {
			t.Fatal(err)
		}
		last = ev
	}
	return last
}

func TestEncryptsSensitiveFieldsOnly(t *testing.T) {
	t.Parallel()
	e := newEnv(t, mustKEK(t))
	stored := e.write(t, sample())
	for _, clear := range []string{dn, email, "Zyxwv", "1970-01-02"} {
		if bytes.Contains(stored.Data, []byte(clear)) {
			t.Errorf("stored data holds %q in clear: %s", clear, stored.Data)
		}
	}
	for _, kept := range []string{`"serial":"7F3A"`, `"subjectId":"subject-42"`, `"note":"kept in clear"`} {
		if !bytes.Contains(stored.Data, []byte(kept)) {
			t.Errorf("stored data lost %s: %s", kept, stored.Data)
		}
	}
	if stored.Meta.Subject != "subject-42" || stored.Meta.Tenant != "acme" {
		t.Errorf("metadata %+v", stored.Meta)
	}
	m, err := e.reg.DecodeOne(context.Background(), stored)
	if err != nil {
		t.Fatal(err)
	}
	if got := m.Value.(issued); got != sample() {
		t.Fatalf("decoded %+v, want %+v", got, sample())
	}
}

func TestEraseRedactsEverywhere(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	kek := mustKEK(t)
	e := newEnv(t, kek)
	stored := e.write(t, sample())
	other := sample()
	other.Serial, other.SubjectID = "0B1C", "subject-7"
	otherStored := e.write(t, other)
	var hooked []string
	e.p.OnErase(func(_ context.Context, s string) error { hooked = append(hooked, s); return nil })
	tomb, err := e.p.Erase(ctx, "subject-42", strata.Metadata{Principal: "dpo"})
	if err != nil || !tomb.Erased() || len(tomb.Wrapped) != 0 {
		t.Fatalf("erase: %+v %v", tomb, err)
	}
	m, err := e.reg.DecodeOne(ctx, stored)
	if err != nil {
		t.Fatalf("replay after erasure: %v", err)
	}
	got := m.Value.(issued)
	want := issued{Serial: "7F3A", SubjectID: "subject-42", DN: shred.Redacted, Holder: holder{Name: shred.Redacted, Email: shred.Redacted}, Note: "kept in clear"} // Born: zero
	if got != want {
		t.Fatalf("after erasure %+v, want %+v", got, want)
	}
	// Another subject's data is untouched.
	if m, err := e.reg.DecodeOne(ctx, otherStored); err != nil || m.Value.(issued).DN != dn {
		t.Fatalf("other subject: %+v %v", m.Value, err)
	}
	// A fresh process, with no key cached, reads the tombstone.
	if m, err := envOn(t, e.st, kek).reg.DecodeOne(ctx, stored); err != nil || m.Value.(issued) != want {
		t.Fatalf("a fresh process after erasure: %+v %v", m.Value, err)
	}
	if len(hooked) != 1 || hooked[0] != "subject-42" {
		t.Errorf("hooks saw %v", hooked)
	}
	// The erasure is recorded once, with no personal data, even when erased twice.
	if _, err := e.p.Erase(ctx, "subject-42", strata.Metadata{Principal: "dpo"}); err != nil {
		t.Fatal(err)
	}
	info, _ := e.st.StreamInfo(ctx, shred.ErasureStream("subject-42"))
	if info.Version != 1 {
		t.Errorf("erasure stream at version %d, want 1", info.Version)
	}
	// New personal data of an erased subject is refused, and nothing is written.
	if _, err := e.reg.Encode(ctx, sample(), strata.Metadata{}); !errors.Is(err, shred.ErrErased) || !errors.Is(err, strata.ErrForbidden) {
		t.Fatalf("writing an erased subject's data: %v", err)
	}
}

func TestWrongKEK(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t, mustKEK(t))
	stored := e.write(t, sample())
	wrong := envOn(t, e.st, mustKEK(t))
	_, err := wrong.reg.DecodeOne(ctx, stored)
	if !errors.Is(err, shred.ErrWrongKEK) || !strings.Contains(err.Error(), "subject-42") {
		t.Fatalf("decode with the wrong KEK: %v", err)
	}
	before, _ := e.st.StreamInfo(ctx, "certificate-7F3A")
	if _, err := wrong.reg.Encode(ctx, sample(), strata.Metadata{Tenant: "acme"}); !errors.Is(err, shred.ErrWrongKEK) {
		t.Fatalf("encode with the wrong KEK: %v", err)
	}
	if after, _ := e.st.StreamInfo(ctx, "certificate-7F3A"); after.Version != before.Version {
		t.Fatalf("something was written")
	}
}

// TestWrongKEKCreatesNoKey: a process with a wrong (or new) key-encryption key must not make
// keys for new subjects either. They would be wrapped by a KEK the right one cannot open, and
// their personal data lost once the configuration is put right.
func TestWrongKEKCreatesNoKey(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	right := mustKEK(t)
	e := newEnv(t, right)
	e.write(t, sample())
	wrongKEK := mustKEK(t)
	wrong := envOn(t, e.st, wrongKEK)
	other := sample()
	other.SubjectID = "subject-new"
	if _, err := wrong.reg.Encode(ctx, other, strata.Metadata{}); !errors.Is(err, shred.ErrWrongKEK) || !strings.Contains(err.Error(), right.KEK()) {
		t.Fatalf("encode for a new subject with the wrong KEK: %v", err)
	}
	if _, err := e.st.SubjectKey(ctx, "", "subject-new"); !errors.Is(err, strata.ErrNotFound) {
		t.Fatalf("the wrong KEK made a data key: %v", err)
	}
	// A keyring that still holds the right KEK may wrap new keys with its new one.
	ring := envOn(t, e.st, shred.NewKeyring(wrongKEK, right))
	if _, err := ring.reg.Encode(ctx, other, strata.Metadata{}); err != nil {
		t.Fatalf("encode with a keyring during a rotation: %v", err)
	}
	// So may a KEK on a store whose keys are all erased, or that has none.
	fresh := newEnv(t, wrongKEK)
	if _, err := fresh.reg.Encode(ctx, other, strata.Metadata{}); err != nil {
		t.Fatalf("encode on a new store: %v", err)
	}
}

func TestTamperedOrMovedCiphertext(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t, mustKEK(t))
	stored := e.write(t, sample())
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(stored.Data, &fields); err != nil {
		t.Fatal(err)
	}
	env := string(fields["subjectDN"])
	flip := []byte(env)
	flip[len(flip)-3] ^= 1
	for name, mutate := range map[string]func(strata.Event) strata.Event{
		"a flipped byte": func(ev strata.Event) strata.Event {
			ev.Data = bytes.Replace(ev.Data, []byte(env), flip, 1)
			return ev
		},
		"moved to another field": func(ev strata.Event) strata.Event {
			var m map[string]json.RawMessage
			json.Unmarshal(ev.Data, &m)
			h := string(m["holder"])
			var hm map[string]json.RawMessage
			json.Unmarshal([]byte(h), &hm)
			ev.Data = bytes.Replace(ev.Data, hm["email"], []byte(env), 1)
			return ev
		},
		"moved to another event": func(ev strata.Event) strata.Event {
			ev.ID = uuid.Must(uuid.NewV7())
			return ev
		},
		"claimed by another subject": func(ev strata.Event) strata.Event {
			ev.Meta.Subject = "subject-7"
			return ev
		},
		"a malformed envelope": func(ev strata.Event) strata.Event {
			ev.Data = bytes.Replace(ev.Data, []byte(env), []byte(`"strata:enc:v1:s:!!"`), 1)
			return ev
		},
	} {
		t.Run(name, func(t *testing.T) {
			if name == "claimed by another subject" {
				// Give that subject a key, so that the failure is the binding, not a missing key.
				o := sample()
				o.Serial, o.SubjectID = "0B1C", "subject-7"
				e.write(t, o)
			}
			_, err := e.reg.DecodeOne(ctx, mutate(stored))
			if err == nil {
				t.Fatal("accepted")
			}
			if !errors.Is(err, shred.ErrTampered) && !errors.Is(err, shred.ErrEnvelope) {
				t.Fatalf("error %v, want ErrTampered or ErrEnvelope", err)
			}
		})
	}
}

func TestDeclaredSchemaForRawJSON(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t, mustKEK(t))
	if err := e.p.Declare(ctx, strata.EventSchema{Type: "CardIssued", Sensitive: []string{"holder.name", "pan"}, Subject: "customer"}); err != nil {
		t.Fatal(err)
	}
	rec := codec.Record{ID: uuid.Must(uuid.NewV7()), Type: "CardIssued", Schema: 1,
		Data: []byte(`{"customer":"c-9","pan":"4111111111111111","holder":{"name":"Zyxwv","tier":2},"limit":100}`)}
	if err := e.p.Encode(ctx, nil, &rec); err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(rec.Data, []byte("4111")) || bytes.Contains(rec.Data, []byte("Zyxwv")) || !bytes.Contains(rec.Data, []byte(`"tier":2`)) {
		t.Fatalf("encoded %s", rec.Data)
	}
	if err := e.p.Decode(ctx, &rec); err != nil {
		t.Fatal(err)
	}
	if string(rec.Data) != `{"customer":"c-9","pan":"4111111111111111","holder":{"name":"Zyxwv","tier":2},"limit":100}` {
		t.Fatalf("round trip %s", rec.Data)
	}
	// Without a subject the write is refused.
	bad := codec.Record{ID: uuid.Must(uuid.NewV7()), Type: "CardIssued", Schema: 1, Data: []byte(`{"pan":"4111"}`)}
	if err := e.p.Encode(ctx, nil, &bad); !errors.Is(err, strata.ErrInvalid) {
		t.Fatalf("no subject: %v", err)
	}
}

func TestRotateKEK(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	oldKEK, newKEK := mustKEK(t), mustKEK(t)
	e := newEnv(t, oldKEK)
	var events []strata.Event
	for i := range 5 {
		v := sample()
		v.Serial, v.SubjectID = "S"+string(rune('A'+i)), "subject-"+string(rune('a'+i))
		events = append(events, e.write(t, v))
	}
	if _, err := e.p.Erase(ctx, "subject-c", strata.Metadata{}); err != nil {
		t.Fatal(err)
	}
	// During the rotation every process holds both.
	both := envOn(t, e.st, shred.NewKeyring(newKEK, oldKEK))
	n, err := both.p.RotateKEK(ctx, newKEK)
	if err != nil || n != 4 {
		t.Fatalf("rotated %d keys: %v; want the 4 not erased", n, err)
	}
	if n, err := both.p.RotateKEK(ctx, newKEK); err != nil || n != 0 {
		t.Fatalf("a second rotation re-wrapped %d: %v", n, err)
	}
	// Afterwards the new KEK alone reads everything.
	only := envOn(t, e.st, newKEK)
	for i, ev := range events {
		m, err := only.reg.DecodeOne(ctx, ev)
		if err != nil {
			t.Fatalf("event %d after rotation: %v", i, err)
		}
		if want := map[bool]string{true: shred.Redacted, false: dn}[i == 2]; m.Value.(issued).DN != want {
			t.Errorf("event %d reads %q, want %q", i, m.Value.(issued).DN, want)
		}
	}
}

func TestRedactForLogs(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&buf, nil))
	v := sample()
	logger.Info("issued", "event", shred.Redact(v), "ptr", shred.Redact(&v))
	out := buf.String()
	for _, clear := range []string{dn, email, "Zyxwv"} {
		if strings.Contains(out, clear) {
			t.Fatalf("log line holds %q: %s", clear, out)
		}
	}
	if !strings.Contains(out, `"serial":"7F3A"`) || !strings.Contains(out, shred.Redacted) {
		t.Fatalf("log line %s", out)
	}
}

func TestKEKFiles(t *testing.T) {
	t.Parallel()
	for _, bad := range []string{"", "zz", strings.Repeat("ab", 31)} {
		if _, err := shred.ParseKEK(bad); !errors.Is(err, strata.ErrInvalid) {
			t.Errorf("ParseKEK(%q): %v", bad, err)
		}
	}
	a, _ := shred.ParseKEK(strings.Repeat("ab", 32))
	b, _ := shred.ParseKEK(" " + strings.Repeat("ab", 32) + "\n")
	if a.KEK() != b.KEK() || !strings.HasPrefix(a.KEK(), "local:") {
		t.Errorf("names %q %q", a.KEK(), b.KEK())
	}
}
