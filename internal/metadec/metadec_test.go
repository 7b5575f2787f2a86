package metadec

import (
	"fmt"
	"reflect"
	"testing"

	"github.com/strata-events/strata"
)

func TestDecoder(t *testing.T) {
	var d Decoder
	decode := func(raw string) strata.Metadata {
		t.Helper()
		var m strata.Metadata
		if err := d.Decode(&m, []byte(raw)); err != nil {
			t.Fatalf("Decode(%s): %v", raw, err)
		}
		return m
	}
	a := decode(`{"principal":"alice","tenant":"acme"}`)
	if b := decode(`{"principal":"alice","tenant":"acme"}`); !reflect.DeepEqual(b, a) || b.Principal != "alice" {
		t.Errorf("repeated metadata decoded to %+v, want %+v", b, a)
	}
	if c := decode(`{"principal":"bob","tenant":"acme"}`); c.Principal != "bob" {
		t.Errorf("changed metadata decoded to %+v", c)
	}
	// Extra keys: a fresh map each time, never one shared by two events.
	x := decode(`{"k":"v"}`)
	y := decode(`{"k":"v"}`)
	x.Extra["k"] = "changed"
	if y.Extra["k"] != "v" {
		t.Errorf("two events share one Extra map")
	}
	// Bad input fails, and the next decode does not reuse what came before it.
	var m strata.Metadata
	if err := d.Decode(&m, []byte(`{"k":`)); err == nil {
		t.Error("invalid metadata decoded without an error")
	}
	if e := decode(`{}`); !reflect.DeepEqual(e, strata.Metadata{}) {
		t.Errorf("empty metadata decoded to %+v", e)
	}
}

// TestDecoderRemembersInterleaved checks the recent results: metadata that alternates (two
// writers', two subjects') decodes to what it says, from the remembered results after the
// first of each, and metadata that keeps changing turns the remembering off.
func TestDecoderRemembersInterleaved(t *testing.T) {
	var d Decoder
	raws := []string{`{"subject":"alice","tenant":"acme"}`, `{"subject":"bob","tenant":"acme"}`, `{"principal":"carol"}`}
	for i := range 300 {
		raw := raws[i%len(raws)]
		var m, want strata.Metadata
		if err := d.Decode(&m, []byte(raw)); err != nil {
			t.Fatal(err)
		}
		if err := want.UnmarshalJSON([]byte(raw)); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(m, want) {
			t.Fatalf("decode %d of %s gave %+v, want %+v", i, raw, m, want)
		}
	}
	if d.off || d.hits == 0 || len(d.recent) != len(raws) {
		t.Fatalf("after 300 decodes of 3 alternating metadata: off %v, %d hits, %d remembered", d.off, d.hits, len(d.recent))
	}

	// Metadata with Extra keys is never remembered: two events never share a map.
	x, y := strata.Metadata{}, strata.Metadata{}
	for _, m := range []*strata.Metadata{&x, &y} {
		if err := d.Decode(m, []byte(`{"k":"v"}`)); err != nil {
			t.Fatal(err)
		}
		if err := d.Decode(&strata.Metadata{}, []byte(raws[0])); err != nil {
			t.Fatal(err)
		}
	}
	x.Extra["k"] = "changed"
	if y.Extra["k"] != "v" {
		t.Error("two events share one Extra map")
	}

	// A correlation per event: nothing repeats, and the remembering stops.
	var u Decoder
	for i := range 2 * probeEvery {
		var m strata.Metadata
		if err := u.Decode(&m, fmt.Appendf(nil, `{"correlation":"c-%d"}`, i)); err != nil {
			t.Fatal(err)
		}
		if m.Correlation != fmt.Sprintf("c-%d", i) {
			t.Fatalf("decode %d gave %+v", i, m)
		}
	}
	if !u.off {
		t.Error("metadata that never repeats is still remembered")
	}

	// More distinct metadata than remembered: the decoder starts afresh and stays right.
	var v Decoder
	for i := range 3 * recentSize {
		raw := fmt.Appendf(nil, `{"subject":"s-%d"}`, i%(recentSize+8))
		var m strata.Metadata
		if err := v.Decode(&m, raw); err != nil {
			t.Fatal(err)
		}
		if m.Subject != fmt.Sprintf("s-%d", i%(recentSize+8)) {
			t.Fatalf("decode %d of %s gave %+v", i, raw, m)
		}
		if len(v.recent) > recentSize {
			t.Fatalf("%d results remembered, at most %d", len(v.recent), recentSize)
		}
	}
}
