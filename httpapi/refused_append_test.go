package httpapi_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/strata-events/strata"
)

// TestRefusedAppendMakesNoDataKey: an append that is refused (malformed, invalid for the
// store, or to another tenant's stream) writes nothing, also no data key of the subjects of its
// personal data: the subject stays unknown to the tenant, so that erasing it is 404 and writes
// no tombstone, and the tenant may write it later.
func TestRefusedAppendMakesNoDataKey(t *testing.T) {
	t.Parallel()
	st := openSQLite(t)
	declareConsent(t, st)
	e := newEnv(t, st, withProtector(t))
	w := e.keys["acme/writer"]
	if r := e.do("POST", "/v1/streams/umbrella-1/events", e.keys["umbrella/writer"], appendBody(nil, event("Opened", nil))); r.status != http.StatusCreated {
		t.Fatalf("umbrella's append: %d %s", r.status, r.body)
	}
	consent := func(subject string) map[string]any {
		return event("ConsentGiven", map[string]any{"subjectId": subject, "email": subject + "@acme.example"})
	}
	for _, c := range []struct {
		name, stream, subject string
		second                map[string]any
		want                  int
	}{
		{"a bad occurredAt", "consent-1", "subject-a", map[string]any{"type": "T", "occurredAt": "yesterday"}, http.StatusBadRequest},
		{"a bad type", "consent-2", "subject-b", map[string]any{"type": ""}, http.StatusBadRequest},
		{"a bad schema", "consent-3", "subject-c", map[string]any{"type": "T", "schema": -1}, http.StatusBadRequest},
		{"another tenant's stream", "umbrella-1", "subject-d", event("T", nil), http.StatusForbidden},
	} {
		r := e.do("POST", "/v1/streams/"+c.stream+"/events", w, appendBody(nil, consent(c.subject), c.second))
		if r.status != c.want {
			t.Fatalf("%s: %d %s, want %d", c.name, r.status, r.body, c.want)
		}
		if k, err := st.(strata.KeyStore).SubjectKey(context.Background(), "acme", c.subject); strata.ErrorCode(err) != strata.NotFound {
			t.Errorf("%s: the refused append made a data key of %s: %+v %v", c.name, c.subject, k, err)
		}
		if r := e.do("POST", "/v1/subjects/"+c.subject+"/erase", e.keys["acme/admin"], nil); r.status != http.StatusNotFound {
			t.Errorf("%s: erasing %s, of which nothing was written: %d %s, want 404", c.name, c.subject, r.status, r.body)
		}
		if r := e.do("POST", "/v1/streams/consent-ok-"+c.subject+"/events", w, appendBody(nil, consent(c.subject))); r.status != http.StatusCreated {
			t.Errorf("%s: acme writes %s afterwards: %d %s", c.name, c.subject, r.status, r.body)
		}
	}
}
