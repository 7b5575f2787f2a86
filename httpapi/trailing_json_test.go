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

// TestAppendRefusesRepeatedMembers: a body that has a member twice in one object, which
// encoding/json would let the last one win (and match without regard to case), is 400 and
// writes nothing: "expected", "events", an event's "type" or a metadata key. A payload is
// stored as sent, repeated keys and all, and metadata keys that differ in case are two keys.
func TestAppendRefusesRepeatedMembers(t *testing.T) {
	t.Parallel()
	st := openSQLite(t)
	declareConsent(t, st)
	e := newEnv(t, st, withProtector(t))
	w := e.keys["acme/writer"]
	for _, body := range []string{
		`{"expected":"no-stream","expected":"any","events":[{"type":"T"}]}`,
		`{"events":[{"type":"T"}],"Events":[{"type":"U"}]}`,
		`{"events":[{"type":"T","TYPE":"U"}]}`,
		`{"events":[{"type":"T","meta":{"principal":"a","principal":"b"}}]}`,
		`{"events":[{"type":"T","meta":{"tenant":"umbrella","tenant":"acme"}}]}`,
	} {
		r := e.do("POST", "/v1/streams/s-1/events", w, body)
		if r.status != http.StatusBadRequest || r.errorCode(t) != strata.Invalid {
			t.Errorf("%s: %d %s, want 400 invalid", body, r.status, r.body)
		}
	}
	var page struct{ Events []any }
	e.do("GET", "/v1/events", e.keys["acme/reader"], nil).json(t, &page)
	if len(page.Events) != 0 {
		t.Fatalf("bodies with repeated members wrote %d events", len(page.Events))
	}
	if r := e.do("POST", "/v1/streams/s-1/events", w, `{"events":[{"type":"T","data":{"a":1,"a":2},"meta":{"Ticket":"1","ticket":"2"}}]}`); r.status != http.StatusCreated {
		t.Fatalf("repeated payload keys, metadata keys of two cases: %d %s", r.status, r.body)
	}
	appendConsent(t, e, "acme", "subject-1", "a@acme.example")
	if r := e.do("POST", "/v1/subjects/subject-1/erase", e.keys["acme/admin"], `{"meta":{"ticket":"1","ticket":"2"}}`); r.status != http.StatusBadRequest {
		t.Fatalf("an erasure with a metadata key twice: %d %s, want 400", r.status, r.body)
	}
}
