package httpapi_test

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/strata-events/strata"
)

// TestRefusedEraseErasesNothing: an erasure whose metadata the store would not record (an
// empty key, more than strata.MaxMetaLen) is refused with 400 before anything happens: the
// subject's personal data still reads in clear, and a valid erasure afterwards records its
// SubjectErased event.
func TestRefusedEraseErasesNothing(t *testing.T) {
	t.Parallel()
	st := openSQLite(t)
	declareConsent(t, st)
	e := newEnv(t, st, withProtector(t))
	const mail = "alice@acme.example"
	stream := appendConsent(t, e, "acme", "subject-1", mail)
	admin := e.keys["acme/admin"]
	for _, meta := range []map[string]string{
		{"": "no key"},
		{"ticket": strings.Repeat("x", strata.MaxMetaLen)},
	} {
		r := e.do("POST", "/v1/subjects/subject-1/erase", admin, map[string]any{"meta": meta})
		if r.status != http.StatusBadRequest || r.errorCode(t) != strata.Invalid {
			t.Errorf("erase with bad metadata: %d %.200s, want 400 invalid", r.status, r.body)
		}
		if got, status := emailOf(t, e, "acme", stream); got != mail {
			t.Fatalf("after a refused erasure the email reads %q (%d), want it in clear", got, status)
		}
	}
	if r := e.do("POST", "/v1/subjects/subject-1/erase", admin, map[string]any{"meta": map[string]string{"ticket": "GDPR-1"}}); r.status != http.StatusOK {
		t.Fatalf("erase: %d %s", r.status, r.body)
	}
	if r := e.do("GET", "/v1/streams/erasure@acme%2Fsubject-1/events", e.keys["acme/reader"], nil); r.status != http.StatusOK || !strings.Contains(string(r.body), "GDPR-1") {
		t.Fatalf("the erasure record: %d %s", r.status, r.body)
	}
}

// TestEraseWithoutBodyInAnyFraming: the body of an erasure is optional however the request
// frames its absence: no Content-Length, Content-Length 0, or an empty chunked body, which
// clients that stream their bodies send, without a Content-Type.
func TestEraseWithoutBodyInAnyFraming(t *testing.T) {
	t.Parallel()
	st := openSQLite(t)
	declareConsent(t, st)
	e := newEnv(t, st, withProtector(t))
	for i, chunked := range []bool{false, true} {
		subject := fmt.Sprintf("subject-%d", i)
		appendConsent(t, e, "acme", subject, subject+"@acme.example")
		req, err := http.NewRequest("POST", e.srv.URL+"/v1/subjects/"+subject+"/erase", nil)
		if err != nil {
			t.Fatal(err)
		}
		if chunked {
			req.Body = io.NopCloser(strings.NewReader(""))
			req.ContentLength = -1 // unknown: the client sends it chunked
			req.TransferEncoding = []string{"chunked"}
		}
		req.Header.Set("Authorization", "Bearer "+e.keys["acme/admin"])
		resp, err := e.srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("erase without a body (chunked %v): %d %s, want 200", chunked, resp.StatusCode, b)
		}
	}
}
