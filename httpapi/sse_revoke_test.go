package httpapi_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/strata-events/strata"
	"github.com/strata-events/strata/httpapi"
)

// TestSubscriptionEndsWhenKeyRevoked: a revocation takes effect within the key cache's TTL
// for an open subscription too: it ends with an unauthorized end event, and what its tenant
// appends afterwards never reaches it.
func TestSubscriptionEndsWhenKeyRevoked(t *testing.T) {
	t.Parallel()
	const ttl = 50 * time.Millisecond
	e := newEnv(t, openSQLite(t), func(c *httpapi.Config) { c.KeyCacheTTL = ttl })
	w := e.keys["acme/writer"]
	key := e.newKey(strata.RoleReader, "acme")
	id, _ := httpapi.ParseKey(key)
	appendN(t, e, w, "ticks", 0, 1, 0)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := e.subscribe(t, ctx, key, "", "")
	defer c.close()
	if ev, ok := c.next(); !ok || tickOf(t, ev) != 0 {
		t.Fatalf("first event: %+v %v", ev, ok)
	}
	if _, err := e.store.(strata.APIKeyStore).RevokeAPIKey(context.Background(), id); err != nil {
		t.Fatal(err)
	}
	time.Sleep(10 * ttl) // past the cache's TTL: the key is revoked for every request now
	if r := e.do("GET", "/v1/whoami", key, nil); r.status != 401 {
		t.Fatalf("whoami with the revoked key: %d %s", r.status, r.body)
	}
	appendN(t, e, w, "ticks", 1, 1, 0)
	ev, ok := c.next()
	if ok && ev.event == "event" {
		t.Fatalf("the subscription of a key revoked %s ago received event %s", 10*ttl, ev.data)
	}
	if ok {
		var body httpapi.ErrorBody
		json.Unmarshal([]byte(ev.data), &body)
		if ev.event != "end" || body.Error.Code != strata.Unauthorized {
			t.Fatalf("after the revocation: %+v", ev)
		}
	}
}
