package webhook_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/google/uuid"

	"github.com/strata-events/strata"
	"github.com/strata-events/strata/transmit"
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

// FuzzFactory checks the webhook options of a transmitters file, with any header and timeout:
// an Invalid error, or a sink that posts an event to the endpoint.
func FuzzFactory(f *testing.F) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) }))
	f.Cleanup(srv.Close)
	f.Add("X-Api-Key", "s3cret", `"5s"`)
	f.Add("Authorization", "Bearer x", `2`)
	f.Add("", "", `null`)
	f.Fuzz(func(t *testing.T, name, value, timeout string) {
		headers, _ := json.Marshal(map[string]string{name: value})
		opts := fmt.Sprintf(`{"url":%q,"secret":%q,"headers":%s,"timeout":%s}`, srv.URL, "whsec_AAAAAAAAAAAAAAAAAAAAAA==", headers, timeout)
		sink, err := webhook.Factory(context.Background(), transmit.SinkConfig{Name: "w", Mode: transmit.Binary, Options: json.RawMessage(opts)})
		if err != nil {
			if strata.ErrorCode(err) != strata.Invalid {
				t.Fatalf("%s: %v is not Invalid", opts, err)
			}
			return
		}
		defer sink.Close()
		e := strata.Event{ID: uuid.New(), Stream: "s", Version: 1, Type: "T", Data: []byte(`{}`)}
		if err := sink.Send(context.Background(), []*transmit.Message{transmit.NewMessage("strata", e)}); err != nil {
			t.Fatalf("%s accepted, but a post fails: %v", opts, err)
		}
	})
}
