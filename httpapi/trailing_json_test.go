package httpapi_test

import (
	"net/http"
	"testing"

	"github.com/strata-events/strata"
)

// TestAppendRefusesTrailingJSON: a body whose JSON value is followed by a stray '}' or ']' is
// malformed JSON, 400, and writes nothing; trailing whitespace is fine.
func TestAppendRefusesTrailingJSON(t *testing.T) {
	t.Parallel()
	e := newEnv(t, openSQLite(t))
	w := e.keys["acme/writer"]
	for _, body := range []string{
		`{"events":[{"type":"T"}]}}`,
		`{"events":[{"type":"T"}]}]`,
		`{"events":[{"type":"T"}]} ]`,
	} {
		r := e.do("POST", "/v1/streams/s-1/events", w, body)
		if r.status != http.StatusBadRequest || r.errorCode(t) != strata.Invalid {
			t.Errorf("%s: %d %s, want 400 invalid", body, r.status, r.body)
		}
	}
	var page struct{ Events []any }
	e.do("GET", "/v1/events", e.keys["acme/reader"], nil).json(t, &page)
	if len(page.Events) != 0 {
		t.Fatalf("malformed bodies wrote %d events", len(page.Events))
	}
	if r := e.do("POST", "/v1/streams/s-1/events", w, "{\"events\":[{\"type\":\"T\"}]}\r\n \n"); r.status != http.StatusCreated {
		t.Fatalf("trailing whitespace: %d %s", r.status, r.body)
	}
}
