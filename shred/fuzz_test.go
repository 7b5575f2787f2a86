package shred

import (
	"bytes"
	"encoding/json"
	"testing"
)

// FuzzRewrite checks the JSON walker on arbitrary input: it never panics, refuses what is not
// JSON, and an identity rewrite of valid JSON returns the document unchanged.
func FuzzRewrite(f *testing.F) {
	for _, s := range []string{`{"a":{"b":"c"},"d":[1,{"e":"f"}]}`, `[]`, `"x"`, `{"a":"strata:enc:v1:s:AAAA"}`, `{"a" : 1 , "b" : [ ] }`, `{"\u0061":"\"}"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		// Replacing every value by itself keeps the document valid.
		all, err := rewrite(data, func([][]byte, []byte) bool { return true }, func(_ [][]byte, raw []byte) ([]byte, error) { return raw, nil })
		if err == nil && !json.Valid(all) {
			t.Fatalf("rewrite of %q made invalid JSON %q", data, all)
		}
		// Replacing nothing compacts it.
		out, err := rewrite(data, func([][]byte, []byte) bool { return false }, nil)
		valid := json.Valid(data)
		if valid && err != nil {
			t.Fatalf("valid JSON %q refused: %v", data, err)
		}
		if !valid && err == nil {
			t.Fatalf("invalid JSON %q accepted as %q", data, out)
		}
		if err == nil && !bytes.Equal(out, stripSpace(t, data)) {
			t.Fatalf("identity rewrite of %q gave %q, want the compacted document", data, out)
		}
	})
}

// stripSpace returns data compacted, which is what rewrite writes between tokens.
func stripSpace(t *testing.T, data []byte) []byte {
	var b bytes.Buffer
	if err := json.Compact(&b, data); err != nil {
		return data
	}
	return b.Bytes()
}

// FuzzParseEnvelope feeds arbitrary strings to the envelope parser: no panic, and what parses
// formats back to the same bytes.
func FuzzParseEnvelope(f *testing.F) {
	f.Add([]byte(`"strata:enc:v1:s:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"`))
	f.Add([]byte(`"strata:enc:v1:j:"`))
	f.Add([]byte(`"strata:enc:v1:x:AAAA"`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		e, err := parseEnvelope(raw)
		if err != nil {
			return
		}
		if got := e.format(); !bytes.Equal(got, raw) {
			// base64 without padding has one canonical form per byte string; a differing form
			// must at least parse to the same envelope.
			again, err := parseEnvelope(got)
			if err != nil || !bytes.Equal(again.box, e.box) || !bytes.Equal(again.nonce, e.nonce) || again.kind != e.kind {
				t.Fatalf("%q formats as %q", raw, got)
			}
		}
	})
}
