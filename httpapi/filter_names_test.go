package httpapi_test

import (
	"net/http"
	"testing"
)

// TestFilterNamesAreChecked: a prefix or type that no stream or event can have (invalid
// UTF-8, a control character) is a 400 for reads and subscriptions alike, not a subscription
// that answers 200 and ends at its first read.
func TestFilterNamesAreChecked(t *testing.T) {
	t.Parallel()
	e := newEnv(t, openSQLite(t))
	for _, path := range []string{
		"/v1/subscribe?prefix=%ff",
		"/v1/subscribe?type=Cert%00Issued",
		"/v1/events?prefix=%ff",
		"/v1/events?type=%0a",
	} {
		req, err := http.NewRequestWithContext(t.Context(), "GET", e.srv.URL+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+e.keys["acme/reader"])
		resp, err := http.DefaultClient.Do(req) // returns at the headers: a stream is not read
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("GET %s: %d, want 400", path, resp.StatusCode)
		}
	}
}
