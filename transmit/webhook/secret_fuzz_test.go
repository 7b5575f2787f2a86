package webhook_test

import (
	"encoding/base64"
	"testing"

	"github.com/strata-events/strata"
	"github.com/strata-events/strata/transmit/webhook"
)

// FuzzParseSecret checks signing secrets: an Invalid error, or a key of 16 to 64 bytes whose
// canonical form parses to the same key.
func FuzzParseSecret(f *testing.F) {
	f.Add(webhook.GenerateSecret())
	f.Add("whsec_AAAAAAAAAAAAAAAAAAAAAA==")
	f.Add("whsec_")
	f.Add("whsec_\nAAAAAAAAAAAAAAAAAAAAAA==")
	f.Add("sk_x")
	f.Fuzz(func(t *testing.T, s string) {
		key, err := webhook.ParseSecret(s)
		if err != nil {
			if strata.ErrorCode(err) != strata.Invalid {
				t.Fatalf("%q: %v is not Invalid", s, err)
			}
			return
		}
		if len(key) < 16 || len(key) > 64 {
			t.Fatalf("%q: key of %d bytes", s, len(key))
		}
		back, err := webhook.ParseSecret(webhook.SecretPrefix + base64.StdEncoding.EncodeToString(key))
		if err != nil || string(back) != string(key) {
			t.Fatalf("%q: canonical form %x, %v", s, back, err)
		}
	})
}
