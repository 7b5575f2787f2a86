package strata_test

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/strata-events/strata"
)

// FuzzParseFieldPath checks that a path either is an Invalid error or has steps that format
// to a path parsing to the same steps.
func FuzzParseFieldPath(f *testing.F) {
	for _, s := range []string{"subjectDN", "holder.email", "approvers[].email", "contacts.*.email", "teams[].members[].email", "holders.[].email", "a[0]", "a..b", "*x", "a]", "[]", "a[]]", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		steps, err := strata.ParseFieldPath("fuzz", s)
		if err != nil {
			var se *strata.Error
			if !errors.As(err, &se) || se.Code != strata.Invalid {
				t.Fatalf("%q: %v is not an Invalid *strata.Error", s, err)
			}
			return
		}
		if len(steps) == 0 {
			t.Fatalf("%q: accepted with no steps", s)
		}
		back := strata.FormatFieldPath(steps)
		again, err := strata.ParseFieldPath("fuzz", back)
		if err != nil || !slices.Equal(again, steps) {
			t.Fatalf("%q → %q → %q → %q, %v", s, steps, back, again, err)
		}
	})
}

// FuzzPrepareEventSchema checks schema declarations: an Invalid error, or a schema whose paths
// all parse and that validates again unchanged.
func FuzzPrepareEventSchema(f *testing.F) {
	f.Add("CertificateIssued", "subjectDN", "subjectEmail", "subjectId")
	f.Add("RevocationApproved", "approvers[].email", "contacts.*.email", "subjectId")
	f.Add("T", "a", "a", "")
	f.Add("T", "a", "b.[]", "a.x")
	f.Add("T", "a", "", "b[]")
	f.Fuzz(func(t *testing.T, typ, p1, p2, subject string) {
		in := strata.EventSchema{Type: typ, Sensitive: []string{p1}, Subject: subject}
		if p2 != "" {
			in.Sensitive = append(in.Sensitive, p2)
		}
		out, err := strata.PrepareEventSchema("fuzz", in)
		if err != nil {
			if strata.ErrorCode(err) != strata.Invalid {
				t.Fatalf("%+v: %v is not Invalid", in, err)
			}
			return
		}
		for _, p := range append(slices.Clone(out.Sensitive), out.Subject) {
			if p == "" {
				continue
			}
			if _, err := strata.ParseFieldPath("fuzz", p); err != nil {
				t.Fatalf("%+v accepted, but path %q: %v", in, p, err)
			}
		}
		if again, err := strata.PrepareEventSchema("fuzz", out); err != nil || !slices.Equal(again.Sensitive, out.Sensitive) || again.Subject != out.Subject {
			t.Fatalf("%+v does not validate again: %+v, %v", out, again, err)
		}
	})
}

// FuzzRetentionCursor checks that a retention cursor is an Invalid error or re-encodes to itself.
func FuzzRetentionCursor(f *testing.F) {
	f.Add("")
	f.Add(strata.QueryCursor{RecordedAt: time.Unix(1700000000, 0).UTC(), Position: strata.Position{Commit: 3, Event: 4}}.Encode())
	f.Add("AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
	f.Fuzz(func(t *testing.T, s string) {
		c, ok, err := strata.RetentionCursor("fuzz", strata.RetentionSelect{Cursor: s})
		if err != nil {
			if strata.ErrorCode(err) != strata.Invalid {
				t.Fatalf("%q: %v is not Invalid", s, err)
			}
			return
		}
		if ok != (s != "") || ok && c.Encode() != s {
			t.Fatalf("%q: %+v, %v", s, c, ok)
		}
	})
}
