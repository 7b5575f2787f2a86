package shred_test

import (
	"context"
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/strata-events/strata"
)

// upperText decodes itself, from text.
type upperText string

func (u *upperText) UnmarshalText(b []byte) error {
	*u = upperText(strings.ToUpper(string(b)))
	return nil
}

// richCert has sensitive fields of names that fold (long s, Kelvin sign), tag options, and
// types that stay in the document.
type richCert struct {
	Subject string      `json:"subjectId" strata:"subject"`
	A       string      `json:"a,omitempty" strata:"sensitive"`
	Long    string      `json:"ſk" strata:"sensitive"`
	Kelvin  nickname    `json:"K" strata:"sensitive"`
	Quoted  string      `json:"q,string" strata:"sensitive"`
	Num     json.Number `json:"num" strata:"sensitive"`
	Up      upperText   `json:"up" strata:"sensitive"`
	Skip    string      `json:"-" strata:"sensitive"`
	Ptr     *string     `json:"ptr" strata:"sensitive"`
	B       string      `json:"b" strata:"sensitive"`
	Clear   string      `json:"c"`
}

// FuzzDecodeIntoRichMatchesDecode is FuzzDecodeIntoMatchesDecode for richCert, of live subjects.
func FuzzDecodeIntoRichMatchesDecode(f *testing.F) {
	for _, s := range []string{
		`{"subjectId":"s1","a":"x","ſk":"l","K":"k","q":"\"q\"","num":"12","up":"u","-":"d","ptr":"p","b":"b","c":"c"}`,
		`{"SK":"1","ſK":"2","sk":"3","k":"4","K":"5","subjectId":"s1"}`,
		`{"subjectId":"s1","A":"1","a":"2","a":"3","B":"4"}`,
		`{"b":"x","a":"y","subjectId":"s1"}`,
	} {
		f.Add(s)
	}
	ctx := context.Background()
	p, reg := declaredProtector[richCert](f, strata.EventSchema{Type: "Rich", Sensitive: []string{"a", "ſk", "K", "q", "num", "up", "-", "ptr", "b"}, Subject: "subjectId"})
	f.Fuzz(func(t *testing.T, doc string) {
		if !json.Valid([]byte(doc)) || !strings.Contains(doc, "subjectId") {
			return
		}
		d := strata.EventData{Type: "Rich", Schema: 1, Data: []byte(doc), Meta: strata.Metadata{Tenant: "acme"}}
		if p.Protect(ctx, &d) != nil {
			return
		}
		ev := strata.Event{ID: d.ID, Stream: "rich-1", Version: 1, Type: d.Type, Schema: d.Schema, Data: d.Data, Meta: d.Meta}
		opened := ev
		var want richCert
		wantErr := p.Reveal(ctx, &opened)
		if wantErr == nil {
			wantErr = json.Unmarshal(opened.Data, &want)
		}
		ms, err := reg.Decode(ctx, ev)
		if (err != nil) != (wantErr != nil) {
			t.Fatalf("%s: DecodeInto error %v, Decode and json.Unmarshal %v", doc, err, wantErr)
		}
		if err == nil && !reflect.DeepEqual(ms[0].Value, want) {
			t.Fatalf("%s: DecodeInto %+v, Decode and json.Unmarshal %+v", doc, ms[0].Value, want)
		}
	})
}
