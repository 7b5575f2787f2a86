package shred_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/strata-events/strata"
	"github.com/strata-events/strata/aggregate"
	"github.com/strata-events/strata/shred"
)

// holderState is an aggregate state that copied personal data from its events.
type holderState struct {
	Serial  string    `json:"serial"`
	Subject string    `json:"subject" strata:"subject"`
	DN      string    `json:"dn" strata:"sensitive"`
	Born    time.Time `json:"born" strata:"sensitive"`
	Holder  holder    `json:"holder"`
	Events  int       `json:"events"`
}

var _ aggregate.SnapshotProtector = (*shred.Protector)(nil)

func sampleState() holderState {
	return holderState{Serial: "7F3A", Subject: "subject-42", DN: dn, Born: time.Date(1970, 1, 2, 0, 0, 0, 0, time.UTC),
		Holder: holder{Name: "Zyxwv Quimby", Email: email}, Events: 3}
}

func sealed(t *testing.T, p *shred.Protector, stream string, v holderState) strata.Snapshot {
	t.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	s := strata.Snapshot{Stream: stream, Version: 3, Schema: 1, Data: data}
	if err := p.SealSnapshot(context.Background(), v, &s); err != nil {
		t.Fatal(err)
	}
	return s
}

func opened(t *testing.T, p *shred.Protector, s strata.Snapshot) (holderState, bool, error) {
	t.Helper()
	ok, err := p.OpenSnapshot(context.Background(), (*holderState)(nil), &s)
	if err != nil || !ok {
		return holderState{}, ok, err
	}
	var v holderState
	if err := json.Unmarshal(s.Data, &v); err != nil {
		t.Fatalf("an opened snapshot does not decode: %v: %s", err, s.Data)
	}
	return v, true, nil
}

func TestSnapshotsAreSealed(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t, mustKEK(t))
	s := sealed(t, e.p, "holder-7F3A", sampleState())
	for _, clear := range []string{dn, email, "Zyxwv", "1970-01-02"} {
		if bytes.Contains(s.Data, []byte(clear)) {
			t.Errorf("the snapshot holds %q in clear: %s", clear, s.Data)
		}
	}
	if !bytes.Contains(s.Data, []byte(`"subject":"subject-42"`)) || !bytes.Contains(s.Data, []byte(`"events":3`)) {
		t.Errorf("the snapshot lost its clear fields: %s", s.Data)
	}
	if v, ok, err := opened(t, e.p, s); err != nil || !ok || v != sampleState() {
		t.Fatalf("opened %+v %v %v, want %+v", v, ok, err, sampleState())
	}
	// The fields are bound to the snapshot: another stream, version or schema does not open.
	for _, moved := range []strata.Snapshot{
		{Stream: "holder-0B1C", Version: s.Version, Schema: s.Schema, Data: s.Data},
		{Stream: s.Stream, Version: s.Version + 1, Schema: s.Schema, Data: s.Data},
		{Stream: s.Stream, Version: s.Version, Schema: s.Schema + 1, Data: s.Data},
	} {
		if _, _, err := opened(t, e.p, moved); !errors.Is(err, shred.ErrTampered) {
			t.Errorf("a snapshot moved to %s v%d schema %d: %v", moved.Stream, moved.Version, moved.Schema, err)
		}
	}
	// A state without sensitive fields, and a snapshot without encrypted fields, pass unchanged.
	plain := strata.Snapshot{Stream: "counter-1", Version: 1, Data: []byte(`{"total":3}`)}
	if err := e.p.SealSnapshot(ctx, struct{ Total int }{3}, &plain); err != nil || string(plain.Data) != `{"total":3}` {
		t.Fatalf("a state without sensitive fields: %s %v", plain.Data, err)
	}
	if ok, err := e.p.OpenSnapshot(ctx, (*holderState)(nil), &plain); err != nil || !ok || string(plain.Data) != `{"total":3}` {
		t.Fatalf("opening a clear snapshot: %s %v %v", plain.Data, ok, err)
	}
	// A state whose sensitive fields lie in the elements of a slice is sealed too (see
	// TestSnapshotsWithCollections).
	type holders struct {
		Subject string   `json:"subject" strata:"subject"`
		All     []holder `json:"all"`
	}
	many := holders{Subject: "subject-42", All: []holder{{Name: "Zyxwv Quimby", Email: email}}}
	data, _ := json.Marshal(many)
	manySnap := strata.Snapshot{Stream: "holders-1", Version: 1, Data: data}
	if err := e.p.SealSnapshot(ctx, many, &manySnap); err != nil || bytes.Contains(manySnap.Data, []byte(email)) || bytes.Contains(manySnap.Data, []byte("Zyxwv")) {
		t.Fatalf("a state with sensitive fields in a slice: %s %v", manySnap.Data, err)
	}
	// A state whose tags cannot be followed is refused, not snapshotted in clear.
	type tree struct {
		Subject string `json:"subject" strata:"subject"`
		Name    string `json:"name" strata:"sensitive"`
		Kids    []tree `json:"kids"`
	}
	deep := tree{Subject: "subject-42", Name: "Zyxwv", Kids: []tree{{Name: "Quimby"}}}
	data, _ = json.Marshal(deep)
	if err := e.p.SealSnapshot(ctx, deep, &strata.Snapshot{Stream: "tree-1", Version: 1, Data: data}); !errors.Is(err, strata.ErrInvalid) || !errors.Is(err, shred.ErrUnprotectable) {
		t.Fatalf("a recursive state: %v", err)
	}
	// A state with sensitive fields and no subject is refused.
	noSubject := sampleState()
	noSubject.Subject = ""
	data, _ = json.Marshal(noSubject)
	if err := e.p.SealSnapshot(ctx, noSubject, &strata.Snapshot{Stream: "holder-x", Version: 1, Data: data}); !errors.Is(err, strata.ErrInvalid) {
		t.Fatalf("a state without its subject: %v", err)
	}
}

func TestSnapshotsAfterErasure(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	kek := mustKEK(t)
	e := newEnv(t, kek)
	before := sealed(t, e.p, "holder-7F3A", sampleState())
	if _, err := e.p.Erase(ctx, "subject-42", strata.Metadata{Principal: "dpo"}); err != nil {
		t.Fatal(err)
	}
	// A snapshot sealed before the erasure no longer opens: the repository drops it and folds
	// the events; so does a fresh process without the key cached.
	for _, p := range []*shred.Protector{e.p, envOn(t, e.st, kek).p} {
		if _, ok, err := opened(t, p, before); ok || err != nil {
			t.Fatalf("a snapshot of an erased subject: opened %v, %v", ok, err)
		}
	}
	// The state replayed after the erasure (redacted fields) is sealed as redaction markers,
	// with no key, and opens as it is.
	replayed := sampleState()
	replayed.DN, replayed.Born, replayed.Holder = shred.Redacted, time.Time{}, holder{Name: shred.Redacted, Email: shred.Redacted}
	after := sealed(t, e.p, "holder-7F3A", replayed)
	if bytes.Contains(after.Data, []byte("strata:enc:")) || !bytes.Contains(after.Data, []byte(`"born":null`)) {
		t.Fatalf("the snapshot of an erased subject: %s", after.Data)
	}
	if v, ok, err := opened(t, e.p, after); err != nil || !ok || v != replayed {
		t.Fatalf("opened %+v %v %v, want %+v", v, ok, err, replayed)
	}
}
