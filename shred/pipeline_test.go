package shred_test

import (
	"bytes"
	"context"
	"testing"

	"github.com/strata-events/strata"
)

// TestDecodeLeavesStoredBytes: decoding writes the clear text into bytes of its own; the stored
// event, which the codec no longer copies for the transforms, keeps its ciphertext.
func TestDecodeLeavesStoredBytes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t, mustKEK(t))
	stored := e.write(t, sample())
	before := bytes.Clone(stored.Data)
	for range 2 {
		m, err := e.reg.DecodeOne(ctx, stored)
		if err != nil || m.Value.(issued) != sample() {
			t.Fatalf("decoded %+v %v", m.Value, err)
		}
		if !bytes.Equal(stored.Data, before) || !bytes.Equal(m.Event.Data, before) {
			t.Fatalf("decoding changed the stored bytes:\n%s\n%s", before, stored.Data)
		}
	}
	// Reveal (the CLI's read) decrypts into new bytes too, and leaves other events alone.
	ev := stored
	if err := e.p.Reveal(ctx, &ev); err != nil || !bytes.Contains(ev.Data, []byte(dn)) || !bytes.Equal(stored.Data, before) {
		t.Fatalf("reveal: %s %v", ev.Data, err)
	}
	plain := strata.Event{ID: stored.ID, Type: "Other", Data: []byte(`{"a":"b"}`)}
	if err := e.p.Reveal(ctx, &plain); err != nil || string(plain.Data) != `{"a":"b"}` {
		t.Fatalf("reveal of an event without encrypted fields: %s %v", plain.Data, err)
	}
	// Raw JSON with white space between tokens is compacted as before, around the envelopes.
	raw := strata.EventData{Type: "Declared", Data: []byte(` { "subjectId" : "subject-9" , "email" : "a@example.org" } `)}
	if err := e.p.Declare(ctx, strata.EventSchema{Type: "Declared", Sensitive: []string{"email"}, Subject: "subjectId"}); err != nil {
		t.Fatal(err)
	}
	if err := e.p.Protect(ctx, &raw); err != nil || bytes.Contains(raw.Data, []byte("a@example.org")) || bytes.Contains(raw.Data, []byte(" ")) {
		t.Fatalf("protect: %s %v", raw.Data, err)
	}
	back := strata.Event{ID: raw.ID, Type: raw.Type, Data: raw.Data, Meta: raw.Meta}
	if err := e.p.Reveal(ctx, &back); err != nil || string(back.Data) != `{"subjectId":"subject-9","email":"a@example.org"}` {
		t.Fatalf("reveal of a declared type: %s %v", back.Data, err)
	}
	// A declared path reaches into arrays: "[]" stands for an element.
	list := strata.EventData{Type: "DeclaredList", Data: []byte(`{"subjectId":"subject-9","holders":[{"email":"b@example.org","n":1},{"email":"c@example.org"}]}`)}
	if err := e.p.Declare(ctx, strata.EventSchema{Type: "DeclaredList", Sensitive: []string{"holders.[].email"}, Subject: "subjectId"}); err != nil {
		t.Fatal(err)
	}
	if err := e.p.Protect(ctx, &list); err != nil || bytes.Contains(list.Data, []byte("example.org")) || !bytes.Contains(list.Data, []byte(`"n":1`)) {
		t.Fatalf("protect a list: %s %v", list.Data, err)
	}
	back = strata.Event{ID: list.ID, Type: list.Type, Data: list.Data, Meta: list.Meta}
	if err := e.p.Reveal(ctx, &back); err != nil || string(back.Data) != `{"subjectId":"subject-9","holders":[{"email":"b@example.org","n":1},{"email":"c@example.org"}]}` {
		t.Fatalf("reveal of a list: %s %v", back.Data, err)
	}
}
