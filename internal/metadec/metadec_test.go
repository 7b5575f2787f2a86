package metadec

import (
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
