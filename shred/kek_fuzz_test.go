package shred

import (
	"context"
	"testing"

	"github.com/strata-events/strata"
)

// FuzzParseKEK checks key-encryption key files: an Invalid error, or a key that wraps and
// unwraps a data key.
func FuzzParseKEK(f *testing.F) {
	f.Add("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\n")
	f.Add(" 000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F ")
	f.Add("0001")
	f.Add("zz")
	f.Fuzz(func(t *testing.T, s string) {
		k, err := ParseKEK(s)
		if err != nil {
			if strata.ErrorCode(err) != strata.Invalid {
				t.Fatalf("%q: %v is not Invalid", s, err)
			}
			return
		}
		dek := make([]byte, 32)
		w, err := k.Wrap(context.Background(), "subject", dek)
		if err != nil {
			t.Fatal(err)
		}
		back, err := k.Unwrap(context.Background(), k.KEK(), "subject", w)
		if err != nil || string(back) != string(dek) {
			t.Fatalf("%q: unwrap %x, %v", s, back, err)
		}
	})
}
