package strata_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/strata-events/strata"
)

func TestPrepareEventQuery(t *testing.T) {
	q, _, ok, err := strata.PrepareEventQuery("q", strata.EventQuery{Tenant: "acme"})
	if err != nil || ok || q.Limit != strata.DefaultQueryLimit {
		t.Fatalf("defaults: %+v, %v, %v", q, ok, err)
	}
	c := strata.QueryCursor{RecordedAt: time.Date(2023, 3, 14, 9, 0, 0, 1000, time.UTC), Position: strata.Position{Commit: 1017, Event: 42}}
	_, got, ok, err := strata.PrepareEventQuery("q", strata.EventQuery{Tenant: "acme", Cursor: c.Encode()})
	if err != nil || !ok || got != c {
		t.Fatalf("cursor round trip: %+v, %v, %v", got, ok, err)
	}
	if _, _, _, err := strata.PrepareEventQuery("q", strata.EventQuery{}); !errors.Is(err, strata.ErrInvalid) {
		t.Fatalf("no tenant: %v", err)
	}
}

func TestPrefixEnd(t *testing.T) {
	for p, want := range map[string]string{"a": "b", "certificate-": "certificate.", "é": "ê", "a\U0010FFFF": "b", "\uD7FF": "\uE000"} {
		got, ok := strata.PrefixEnd(p)
		if !ok || got != want {
			t.Errorf("PrefixEnd(%q) = %q, %v; want %q", p, got, ok, want)
		}
		if !strings.HasPrefix(p+"zzz", p) || !(p+"zzz" < got) || !(p >= p) {
			t.Errorf("%q: range does not cover its extensions", p)
		}
	}
	if _, ok := strata.PrefixEnd("\U0010FFFF"); ok {
		t.Error("PrefixEnd of the top code point has a bound")
	}
}

func FuzzDecodeQueryCursor(f *testing.F) {
	f.Add(strata.QueryCursor{RecordedAt: time.Unix(1700000000, 123000).UTC(), Position: strata.Position{Commit: 7, Event: 9}}.Encode())
	f.Add("")
	f.Add("AAAA")
	f.Fuzz(func(t *testing.T, s string) {
		c, ok, err := strata.DecodeQueryCursor(s)
		if err != nil {
			if !errors.Is(err, strata.ErrInvalid) {
				t.Fatalf("%q: %v is not Invalid", s, err)
			}
			return
		}
		if ok && c.Encode() != s {
			t.Fatalf("%q decodes to %+v, which encodes to %q", s, c, c.Encode())
		}
	})
}
