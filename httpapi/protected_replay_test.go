package httpapi_test

import (
	"net/http"
	"testing"

	"github.com/strata-events/strata/httpapi"
)

// TestProtectedAppendRetryReplays: a retry with the same event IDs and content of an append
// whose personal data the server encrypts is 200 replayed, as for any other append, and is
// stored once; the same ID with other content is still 409.
func TestProtectedAppendRetryReplays(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			st := b.open(t)
			declareConsent(t, st)
			e := newEnv(t, st, withProtector(t))
			w := e.keys["acme/writer"]
			const path = "/v1/streams/consent-acme-1/events"
			ev := func(email string) map[string]any {
				return map[string]any{"id": "0190e3c2-0000-7000-8000-0000000000c1", "type": "ConsentGiven",
					"data": map[string]any{"subjectId": "subject-1", "email": email}}
			}
			other := map[string]any{"id": "0190e3c2-0000-7000-8000-0000000000c2", "type": "Noted", "data": map[string]any{"n": 1}}
			if r := e.do("POST", path, w, appendBody("no-stream", ev("a@acme.example"), other)); r.status != http.StatusCreated {
				t.Fatalf("append: %d %s", r.status, r.body)
			}
			for _, exp := range []any{"no-stream", nil} {
				r := e.do("POST", path, w, appendBody(exp, ev("a@acme.example"), other))
				var res httpapi.AppendResponse
				if r.status == http.StatusOK {
					r.json(t, &res)
				}
				if r.status != http.StatusOK || !res.Replayed || res.FirstVersion != 1 || res.LastVersion != 2 {
					t.Fatalf("retry (expected %v): %d %s, want 200 replayed versions 1-2", exp, r.status, r.body)
				}
			}
			if r := e.do("POST", path, w, appendBody(nil, ev("b@acme.example"), other)); r.status != http.StatusConflict {
				t.Fatalf("same IDs, other email: %d %s, want 409", r.status, r.body)
			}
			var page httpapi.EventsPage
			e.do("GET", path, e.keys["acme/reader"], nil).json(t, &page)
			if len(page.Events) != 2 {
				t.Fatalf("the stream holds %d events, want 2", len(page.Events))
			}
		})
	}
}

// TestProtectedAppendRetryReplaysFormattedJSON: the retry of a protected append is recognised
// whatever the whitespace of its payload, which encryption does not keep: the same body sent
// twice is 201, then 200 replayed, for a pretty-printed payload as for a compact one.
func TestProtectedAppendRetryReplaysFormattedJSON(t *testing.T) {
	t.Parallel()
	st := openSQLite(t)
	declareConsent(t, st)
	e := newEnv(t, st, withProtector(t))
	w := e.keys["acme/writer"]
	const body = `{"events": [
  {"id": "0190e3c2-0000-7000-8000-0000000000d1", "type": "ConsentGiven",
   "data": {"subjectId": "subject-1", "email": "a@acme.example", "channels": [ "mail", "web" ]}},
  {"id": "0190e3c2-0000-7000-8000-0000000000d2", "type": "Noted", "data": { "n" : 1 }}
]}`
	const path = "/v1/streams/consent-acme-2/events"
	if r := e.do("POST", path, w, body); r.status != http.StatusCreated {
		t.Fatalf("append: %d %s", r.status, r.body)
	}
	r := e.do("POST", path, w, body)
	var res httpapi.AppendResponse
	if r.status == http.StatusOK {
		r.json(t, &res)
	}
	if r.status != http.StatusOK || !res.Replayed || res.FirstVersion != 1 || res.LastVersion != 2 {
		t.Fatalf("the same body again: %d %s, want 200 replayed versions 1-2", r.status, r.body)
	}
}
