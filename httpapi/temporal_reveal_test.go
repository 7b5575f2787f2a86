package httpapi_test

import (
	"strings"
	"testing"
)

// TestTemporalReveals: a server that reveals personal data shows it in states, stream histories
// and entity histories as its reads do, where the store holds only ciphertext.
func TestTemporalReveals(t *testing.T) {
	t.Parallel()
	st := openSQLite(t)
	declareConsent(t, st)
	e := newEnv(t, st, withProtector(t))
	stream := appendConsent(t, e, "acme", "subject-4711", "alice@acme.example")
	for _, path := range []string{
		"/v1/streams/" + stream + "/state",
		"/v1/streams/" + stream + "/history",
		"/v1/history?entity=subject-4711&field=subjectId&prefix=consent-",
	} {
		r := e.do("GET", path, e.keys["acme/auditor"], nil)
		if r.status != 200 || !strings.Contains(string(r.body), "alice@acme.example") {
			t.Errorf("GET %s: %d %s, want the e-mail in clear", path, r.status, r.body)
		}
	}
}
