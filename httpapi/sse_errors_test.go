package httpapi_test

import (
	"context"
	"iter"
	"strings"
	"testing"
	"time"

	"github.com/strata-events/strata"
)

// failingReadAll fails every ReadAll with an Internal error whose message names internals.
type failingReadAll struct {
	strata.Store
	strata.APIKeyStore
}

func (s *failingReadAll) ReadAll(ctx context.Context, opts strata.ReadAllOptions) iter.Seq2[strata.Event, error] {
	return func(yield func(strata.Event, error) bool) {
		yield(strata.Event{}, strata.Errorf(strata.Internal, "sqlite read all", "SECRET-INTERNAL: SELECT * FROM events_v3 at /var/lib/strata/ca.db"))
	}
}

// An internal error's message is withheld from a subscription's end event, as from a JSON
// error response.
func TestSSEWithholdsInternalErrors(t *testing.T) {
	base := openSQLite(t)
	e := newEnv(t, &failingReadAll{Store: base, APIKeyStore: base.(strata.APIKeyStore)})
	r := e.do("GET", "/v1/events", e.keys["acme/reader"], nil)
	if strings.Contains(string(r.body), "SECRET-INTERNAL") {
		t.Errorf("JSON read leaks: %s", r.body)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c := e.subscribe(t, ctx, e.keys["acme/reader"], "", "")
	defer c.close()
	ev, ok := c.next()
	if !ok || ev.event != "end" || !strings.Contains(ev.data, "internal error") || strings.Contains(ev.data, "SECRET-INTERNAL") {
		t.Errorf("the SSE end event leaks the internal error message: %s", ev.data)
	}
}
