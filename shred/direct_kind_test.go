package shred_test

import (
	"context"
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/strata-events/strata"
	"github.com/strata-events/strata/shred"
)

// KindEmb has a field of the name of kindCert's own dn, which encoding/json's rules for
// promoted names leave behind kindCert.DN (the shallower one dominates).
type KindEmb struct {
	DN time.Time `json:"dn"`
}

// kindCert has sensitive fields that decode a JSON string as a string, though not (or not
// only) as a top-level string field: an erased value there must read as Redacted.
type kindCert struct {
	KindEmb
	Subject string  `json:"subjectId" strata:"subject"`
	DN      string  `json:"dn" strata:"sensitive"`
	Ptr     *string `json:"ptr" strata:"sensitive"`
}

// TestErasedKindByGoType checks that an erased value of a declared schema reads as Redacted,
// as Decode and json.Unmarshal give it, where the Go value at its path decodes a string as
// a string: a field that dominates an embedded one of its name, a pointer to a string.
func TestErasedKindByGoType(t *testing.T) {
	ctx := context.Background()
	p, reg := declaredProtector[kindCert](t, strata.EventSchema{Type: "Kind", Sensitive: []string{"dn", "ptr"}, Subject: "subjectId"})
	d := strata.EventData{Type: "Kind", Schema: 1, Data: []byte(`{"subjectId":"gone","dn":"CN=gone","ptr":"p"}`), Meta: strata.Metadata{Tenant: "acme"}}
	if err := p.Protect(ctx, &d); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Erase(ctx, "gone", strata.Metadata{}); err != nil {
		t.Fatal(err)
	}
	ev := strata.Event{ID: d.ID, Stream: "kind-1", Version: 1, Type: d.Type, Schema: d.Schema, Data: d.Data, Meta: d.Meta}
	opened := ev
	if err := p.Reveal(ctx, &opened); err != nil {
		t.Fatal(err)
	}
	var want kindCert
	if err := json.Unmarshal(opened.Data, &want); err != nil {
		t.Fatal(err)
	}
	ms, err := reg.Decode(ctx, ev)
	if err != nil {
		t.Fatal(err)
	}
	got := ms[0].Value.(kindCert)
	if !reflect.DeepEqual(got, want) || got.DN != shred.Redacted || got.Ptr == nil || *got.Ptr != shred.Redacted {
		t.Fatalf("decoded %+v (ptr %v), want %+v (ptr %v)", got, got.Ptr, want, want.Ptr)
	}
}

// quotedCert has a sensitive string of the option string.
type quotedCert struct {
	Subject string `json:"subjectId" strata:"subject"`
	Q       string `json:"q,string" strata:"sensitive"`
}

// TestErasedQuotedString checks that an event with an erased value of a declared schema at a
// string field of the option string decodes, the field empty: Redacted is no JSON in a string.
func TestErasedQuotedString(t *testing.T) {
	ctx := context.Background()
	p, reg := declaredProtector[quotedCert](t, strata.EventSchema{Type: "Quoted", Sensitive: []string{"q"}, Subject: "subjectId"})
	d := strata.EventData{Type: "Quoted", Schema: 1, Data: []byte(`{"subjectId":"gone","q":"\"CN=gone\""}`), Meta: strata.Metadata{Tenant: "acme"}}
	if err := p.Protect(ctx, &d); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Erase(ctx, "gone", strata.Metadata{}); err != nil {
		t.Fatal(err)
	}
	ms, err := reg.Decode(ctx, strata.Event{ID: d.ID, Stream: "quoted-1", Version: 1, Type: d.Type, Schema: d.Schema, Data: d.Data, Meta: d.Meta})
	if err != nil {
		t.Fatal(err)
	}
	if v := ms[0].Value.(quotedCert); v.Q != "" || v.Subject != "gone" {
		t.Fatalf("decoded %+v", v)
	}
}
