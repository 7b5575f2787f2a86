package metadec

import (
	"bytes"
	"testing"

	"github.com/strata-events/strata"
)

// FuzzDecoder decodes a page of metadata (the input split at newlines) through one Decoder:
// each result must be what a fresh decode gives, whatever the earlier ones were, and changing
// one result's Extra must not change another's.
func FuzzDecoder(f *testing.F) {
	f.Add([]byte("{\"tenant\":\"a\"}\n{\"tenant\":\"a\"}\n{\"tenant\":\"b\"}\n{\"tenant\":\"a\"}"))
	f.Add([]byte("{\"k\":\"v\"}\n{\"k\":\"v\"}\n{}\n{\"k\":\"v\"}"))
	f.Add([]byte("{\"tenant\":\"a\"}\n{\"tenant\":\n{\"tenant\":\"a\"}"))
	f.Add([]byte("null\n{}\nnull"))
	f.Fuzz(func(t *testing.T, page []byte) {
		var d Decoder
		var got []strata.Metadata
		for _, raw := range bytes.Split(page, []byte("\n")) {
			var m, want strata.Metadata
			err := d.Decode(&m, raw)
			wantErr := want.UnmarshalJSON(raw)
			if (err == nil) != (wantErr == nil) {
				t.Fatalf("%q: %v, fresh %v", raw, err, wantErr)
			}
			if err != nil {
				continue
			}
			if !m.Equal(want) {
				t.Fatalf("%q: %+v, fresh %+v", raw, m, want)
			}
			got = append(got, m)
		}
		for i := range got {
			if got[i].Extra != nil {
				got[i].Extra["\x00fuzz"] = "x"
				for j := range got {
					if j > i && got[j].Extra["\x00fuzz"] != "" {
						t.Fatalf("results %d and %d share an Extra map", i, j)
					}
				}
			}
		}
	})
}
