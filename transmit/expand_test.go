package transmit_test

import (
	"strings"
	"testing"

	"github.com/strata-events/strata"
	"github.com/strata-events/strata/transmit"
)

// expandReference is Expand as strings.Replacer would do it: the behaviour Expand keeps
// without building a Replacer for every message.
func expandReference(template string, e *strata.Event, clean func(string) string) string {
	return strings.NewReplacer(
		"{type}", clean(e.Type), "{stream}", clean(e.Stream), "{tenant}", clean(e.Meta.Tenant),
		"{category}", clean(e.Meta.Category), "{subsystem}", clean(e.Meta.Subsystem),
	).Replace(template)
}

func expandEvent(typ, stream, tenant string) strata.Event {
	return strata.Event{Type: typ, Stream: stream, Meta: strata.Metadata{Tenant: tenant, Category: "pki", Subsystem: "ca"}}
}

func TestExpand(t *testing.T) {
	e := expandEvent("CertificateIssued", "certificate-7F3A", "acme")
	m := transmit.NewMessage("strata", e)
	dots := func(s string) string { return strings.ReplaceAll(s, ".", "_") }
	for _, c := range []struct {
		template string
		clean    func(string) string
		want     string
	}{
		{"{type}", nil, "CertificateIssued"},
		{"events", nil, "events"},
		{"strata.{tenant}.{category}.{type}", nil, "strata.acme.pki.CertificateIssued"},
		{"{stream}/{subsystem}", nil, "certificate-7F3A/ca"},
		{"{unknown}.{type}", nil, "{unknown}.CertificateIssued"},
		{"{{type}}", nil, "{CertificateIssued}"},
		{"{type", nil, "{type"},
		{"}{type}{", nil, "}CertificateIssued{"},
		{"{}", nil, "{}"},
		{"a.{stream}", dots, "a.certificate-7F3A"},
	} {
		if got := transmit.Expand(c.template, m, c.clean); got != c.want {
			t.Errorf("Expand(%q) = %q, want %q", c.template, got, c.want)
		}
	}
	m = transmit.NewMessage("strata", expandEvent("a.b", "s.1", "t.2"))
	if got := transmit.Expand("x.{type}.{stream}.{tenant}", m, dots); got != "x.a_b.s_1.t_2" {
		t.Errorf("clean not applied to every value: %q", got)
	}
}

// FuzzExpand checks Expand against strings.Replacer on any template and values, braces in the
// values too (a value is never expanded again).
func FuzzExpand(f *testing.F) {
	f.Add("strata.{tenant}.{type}", "CertificateIssued", "certificate-1", "acme")
	f.Add("{{type}}{", "{stream}", "{type}", "")
	f.Add("{type}", "", "", "")
	f.Fuzz(func(t *testing.T, template, typ, stream, tenant string) {
		e := expandEvent(typ, stream, tenant)
		clean := func(s string) string { return strings.ToUpper(s) }
		got := transmit.Expand(template, transmit.NewMessage("strata", e), clean)
		if want := expandReference(template, &e, clean); got != want {
			t.Fatalf("Expand(%q) = %q, strings.Replacer makes %q", template, got, want)
		}
	})
}

func BenchmarkExpand(b *testing.B) {
	m := transmit.NewMessage("strata", expandEvent("CertificateIssued", "certificate-7F3A", "acme"))
	for _, template := range []string{"{type}", "strata.{tenant}.{type}"} {
		b.Run(template, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				transmit.Expand(template, m, nil)
			}
		})
	}
}
