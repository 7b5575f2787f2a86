package httpapi_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/strata-events/strata"
	"github.com/strata-events/strata/httpapi"
	"github.com/strata-events/strata/ledger"
	"github.com/strata-events/strata/shred"
)

// secret marks acme's payloads: no response to another tenant may contain it.
const secret = "acme-only-7F3A"

// seed writes acme's and umbrella's streams, seals them and signs a checkpoint. It returns the
// ID of acme's first event.
func seed(t *testing.T, e *env) string {
	t.Helper()
	r := e.do("POST", "/v1/streams/certificate-A1/events", e.keys["acme/writer"], appendBody("no-stream",
		event("CertificateIssued", map[string]any{"serial": "A1", "note": secret}),
		event("CertificateRevoked", map[string]any{"reason": "keyCompromise", "note": secret})))
	if r.status != http.StatusCreated {
		t.Fatalf("seed acme: %d %s", r.status, r.body)
	}
	r = e.do("POST", "/v1/streams/certificate-U1/events", e.keys["umbrella/writer"], appendBody(nil,
		event("CertificateIssued", map[string]any{"serial": "U1"})))
	if r.status != http.StatusCreated {
		t.Fatalf("seed umbrella: %d %s", r.status, r.body)
	}
	skey, _, err := ledger.GenerateKey(rand.Reader, "test.example/log")
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ledger.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	s, err := ledger.NewSealer(e.store, ledger.WithSigner(signer))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, _, err := s.SealOnce(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
	var page httpapi.EventsPage
	e.do("GET", "/v1/streams/certificate-A1/events", e.keys["acme/reader"], nil).json(t, &page)
	if len(page.Events) != 2 {
		t.Fatalf("seeded stream reads %d events", len(page.Events))
	}
	return page.Events[0].ID.String()
}

func withProtector(t testing.TB) func(*httpapi.Config) {
	return func(c *httpapi.Config) {
		kek, err := shred.GenerateKEK()
		if err != nil {
			t.Fatal(err)
		}
		k, err := shred.ParseKEK(kek)
		if err != nil {
			t.Fatal(err)
		}
		p, err := shred.New(context.Background(), c.Store, k)
		if err != nil {
			t.Fatal(err)
		}
		c.Protector, c.Reveal = p, true
	}
}

// TestRolesAndTenants calls every endpoint with every role of the owning tenant and of a
// foreign one: the role table decides 2xx or 403, and a foreign tenant gets 403 or 404 and
// never a byte of the owner's data.
func TestRolesAndTenants(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			st := b.open(t)
			declareConsent(t, st)
			e := newEnv(t, st, withProtector(t))
			eventID := seed(t, e)
			appendConsent(t, e, "acme", "subject-4711", "alice@acme.example")
			type call struct {
				name, method, path string
				body               any
				perm               []strata.Role // roles of acme allowed; nil: all
				ok                 int           // status when allowed
				foreign            int           // status for any umbrella key allowed by role
			}
			writers := []strata.Role{strata.RoleWriter, strata.RoleAdmin}
			auditors := []strata.Role{strata.RoleAuditor, strata.RoleAdmin}
			calls := []call{
				{"append", "POST", "/v1/streams/certificate-A1/events", appendBody(nil, event("Renewed", map[string]any{"serial": "A1"})), writers, 201, 403},
				{"read stream", "GET", "/v1/streams/certificate-A1/events", nil, nil, 200, 404},
				{"read stream backward", "GET", "/v1/streams/certificate-A1/events?backward=true&limit=1", nil, nil, 200, 404},
				{"stream info", "GET", "/v1/streams/certificate-A1", nil, nil, 200, 404},
				{"streams", "GET", "/v1/streams?prefix=certificate-", nil, nil, 200, 200},
				{"read all", "GET", "/v1/events?limit=50", nil, nil, 200, 200},
				{"read all by type", "GET", "/v1/events?type=CertificateRevoked", nil, nil, 200, 200},
				{"proof", "GET", "/v1/events/" + eventID + "/proof", nil, auditors, 200, 404},
				{"checkpoint", "GET", "/v1/ledger/checkpoint", nil, auditors, 200, 200},
				{"projections", "GET", "/v1/projections", nil, auditors, 200, 200},
				{"erase", "POST", "/v1/subjects/subject-4711/erase", map[string]any{"meta": map[string]string{"ticket": "GDPR-1"}}, []strata.Role{strata.RoleAdmin}, 200, 404},
				{"whoami", "GET", "/v1/whoami", nil, nil, 200, 200},
			}
			for _, c := range calls {
				for _, tenant := range []string{"acme", "umbrella"} {
					for _, role := range strata.Roles {
						allowed := c.perm == nil || slices.Contains(c.perm, role)
						want := http.StatusForbidden
						switch {
						case allowed && tenant == "acme":
							want = c.ok
						case allowed:
							want = c.foreign
						}
						r := e.do(c.method, c.path, e.keys[tenant+"/"+string(role)], c.body)
						if r.status != want {
							t.Errorf("%s as %s/%s: status %d, want %d: %s", c.name, tenant, role, r.status, want, r.body)
						}
						if tenant == "umbrella" && strings.Contains(string(r.body), secret) {
							t.Errorf("%s as %s/%s: the response holds acme's data: %s", c.name, tenant, role, r.body)
						}
						if r.status >= 400 {
							if code := r.errorCode(t); httpapi.StatusOf(code) != r.status {
								t.Errorf("%s as %s/%s: code %s does not map to status %d", c.name, tenant, role, code, r.status)
							}
						}
					}
				}
			}
			// Reads by acme hold acme's events only, stamped with acme's tenant.
			var page httpapi.EventsPage
			e.do("GET", "/v1/events?limit=1000", e.keys["acme/reader"], nil).json(t, &page)
			for _, ev := range page.Events {
				if ev.Meta.Tenant != "acme" {
					t.Errorf("acme's read of the log returned %s/%d of tenant %q", ev.Stream, ev.Version, ev.Meta.Tenant)
				}
			}
			var streams httpapi.StreamsPage
			e.do("GET", "/v1/streams", e.keys["umbrella/reader"], nil).json(t, &streams)
			for _, s := range streams.Streams {
				if s.Name == "certificate-A1" {
					t.Errorf("umbrella lists acme's stream")
				}
			}
			if strings.Contains(e.logs.String(), "strata_") {
				t.Errorf("the access log holds an API key")
			}
			if strings.Contains(e.logs.String(), secret) {
				t.Errorf("the access log holds a payload")
			}
		})
	}
}

// TestAuthentication: no key, a malformed key, an unknown key, a wrong secret and a revoked key
// are all 401 with the typed error.
func TestAuthentication(t *testing.T) {
	t.Parallel()
	st := openSQLite(t)
	e := newEnv(t, st, func(c *httpapi.Config) { c.KeyCacheTTL = 1 })
	good := e.keys["acme/reader"]
	id, _ := httpapi.ParseKey(good)
	for name, key := range map[string]string{
		"no key":       "",
		"malformed":    "hunter2",
		"unknown":      "strata_0123456789abcdef_AAAA",
		"wrong secret": good[:len(good)-2] + "xx",
	} {
		r := e.do("GET", "/v1/streams", key, nil)
		if r.status != http.StatusUnauthorized || r.errorCode(t) != strata.Unauthorized {
			t.Errorf("%s: %d %s", name, r.status, r.body)
		}
		if r.header.Get("WWW-Authenticate") == "" {
			t.Errorf("%s: no WWW-Authenticate header", name)
		}
	}
	if r := e.do("GET", "/v1/streams", good, nil); r.status != 200 {
		t.Fatalf("good key: %d %s", r.status, r.body)
	}
	if _, err := st.(strata.APIKeyStore).RevokeAPIKey(context.Background(), id); err != nil {
		t.Fatal(err)
	}
	if r := e.do("GET", "/v1/streams", good, nil); r.status != http.StatusUnauthorized {
		t.Fatalf("revoked key: %d %s", r.status, r.body)
	}
}

// TestBadInput: malformed JSON, wrong content types, huge bodies, bad cursors and parameters
// are 4xx with the typed error, and write nothing.
func TestBadInput(t *testing.T) {
	t.Parallel()
	e := newEnv(t, openSQLite(t), func(c *httpapi.Config) { c.MaxBodyBytes = 64 << 10 })
	w := e.keys["acme/writer"]
	const path = "/v1/streams/s-1/events"
	huge := `{"events":[{"type":"T","data":{"x":"` + strings.Repeat("a", 128<<10) + `"}}]}`
	for _, c := range []struct {
		name, method, path string
		body               any
		hdr                []string
		code               strata.Code
	}{
		{"malformed JSON", "POST", path, `{"events":[`, nil, strata.Invalid},
		{"not an object", "POST", path, `[1,2]`, nil, strata.Invalid},
		{"two values", "POST", path, `{"events":[{"type":"T"}]} {}`, nil, strata.Invalid},
		{"unknown field", "POST", path, `{"events":[{"type":"T"}],"expect":"any"}`, nil, strata.Invalid},
		{"no events", "POST", path, `{"events":[]}`, nil, strata.Invalid},
		{"no type", "POST", path, `{"events":[{"data":{}}]}`, nil, strata.Invalid},
		{"bad expected", "POST", path, `{"expected":"maybe","events":[{"type":"T"}]}`, nil, strata.Invalid},
		{"negative expected", "POST", path, `{"expected":-1,"events":[{"type":"T"}]}`, nil, strata.Invalid},
		{"bad id", "POST", path, `{"events":[{"id":"nope","type":"T"}]}`, nil, strata.Invalid},
		{"bad occurredAt", "POST", path, `{"events":[{"type":"T","occurredAt":"yesterday"}]}`, nil, strata.Invalid},
		{"meta not strings", "POST", path, `{"events":[{"type":"T","meta":{"a":1}}]}`, nil, strata.Invalid},
		{"foreign tenant in meta", "POST", path, `{"events":[{"type":"T","meta":{"tenant":"umbrella"}}]}`, nil, strata.Forbidden},
		{"text/plain", "POST", path, `{"events":[{"type":"T"}]}`, []string{"Content-Type", "text/plain"}, httpapi.CodeUnsupportedMediaType},
		{"no content type", "POST", path, `{"events":[{"type":"T"}]}`, []string{"Content-Type", ""}, httpapi.CodeUnsupportedMediaType},
		{"huge body", "POST", path, huge, nil, httpapi.CodeTooLarge},
		{"bad cursor", "GET", "/v1/events?after=abc", nil, nil, strata.Invalid},
		{"bad cursor part", "GET", "/v1/events?after=1.x", nil, nil, strata.Invalid},
		{"bad limit", "GET", "/v1/events?limit=-1", nil, nil, strata.Invalid},
		{"limit too big", "GET", "/v1/events?limit=99999999", nil, nil, strata.Invalid},
		{"bad from", "GET", path + "?from=x", nil, nil, strata.Invalid},
		{"bad backward", "GET", path + "?backward=maybe", nil, nil, strata.Invalid},
		{"bad Last-Event-ID", "GET", "/v1/subscribe", nil, []string{"Last-Event-ID", "zz"}, strata.Invalid},
		{"bad event ID", "GET", "/v1/events/nope/proof", nil, nil, strata.Forbidden},
		{"unknown endpoint", "GET", "/v1/nothing", nil, nil, strata.NotFound},
		{"unknown method", "DELETE", "/v1/streams/s-1", nil, nil, strata.NotFound},
	} {
		r := e.do(c.method, c.path, w, c.body, c.hdr...)
		if r.status < 400 || r.status >= 500 {
			t.Errorf("%s: status %d, want 4xx: %s", c.name, r.status, r.body)
			continue
		}
		if got := r.errorCode(t); got != c.code || httpapi.StatusOf(got) != r.status {
			t.Errorf("%s: %d %s, want code %s", c.name, r.status, r.body, c.code)
		}
	}
	a := e.do("GET", "/v1/events/nope/proof", e.keys["acme/auditor"], nil)
	if a.status != 400 || a.errorCode(t) != strata.Invalid {
		t.Errorf("bad event ID as auditor: %d %s", a.status, a.body)
	}
	var page httpapi.EventsPage
	e.do("GET", "/v1/events", e.keys["acme/reader"], nil).json(t, &page)
	if len(page.Events) != 0 {
		t.Fatalf("bad input wrote %d events", len(page.Events))
	}
}

// TestAppendSemantics: expected versions, conflicts with their details, idempotent retries,
// paging cursors.
func TestAppendSemantics(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, b.open(t))
			w := e.keys["acme/writer"]
			id := "0190e3c2-0000-7000-8000-000000000001"
			body := map[string]any{"expected": "no-stream", "events": []map[string]any{{"id": id, "type": "CertificateIssued", "data": map[string]any{"serial": "7F3A"}, "meta": map[string]string{"principal": "ca-operator"}, "occurredAt": "2023-03-14T09:00:00Z"}}}
			r := e.do("POST", "/v1/streams/certificate-7F3A/events", w, body)
			var res httpapi.AppendResponse
			r.json(t, &res)
			if r.status != 201 || res.FirstVersion != 1 || res.LastVersion != 1 || res.Replayed {
				t.Fatalf("first append: %d %s", r.status, r.body)
			}
			r = e.do("POST", "/v1/streams/certificate-7F3A/events", w, body)
			r.json(t, &res)
			if r.status != 200 || !res.Replayed {
				t.Fatalf("retry: %d %s", r.status, r.body)
			}
			r = e.do("POST", "/v1/streams/certificate-7F3A/events", w, appendBody(5, event("X", nil)))
			var eb httpapi.ErrorBody
			r.json(t, &eb)
			if r.status != 409 || eb.Error.Code != strata.Conflict || eb.Error.Stream != "certificate-7F3A" || eb.Error.Actual == nil || *eb.Error.Actual != 1 || eb.Error.Expected != "5" {
				t.Fatalf("conflict: %d %s", r.status, r.body)
			}
			for i := range 5 {
				if r := e.do("POST", "/v1/streams/certificate-7F3A/events", w, appendBody(fmt.Sprint(i+1), event("Renewed", map[string]any{"n": i}))); r.status != 201 {
					t.Fatalf("append %d: %d %s", i, r.status, r.body)
				}
			}
			var got []int64
			next := ""
			for {
				var page httpapi.EventsPage
				e.do("GET", "/v1/streams/certificate-7F3A/events?limit=4&from="+next, e.keys["acme/reader"], nil).json(t, &page)
				for _, ev := range page.Events {
					got = append(got, ev.Version)
					if ev.Meta.Tenant != "acme" {
						t.Fatalf("event not stamped with the key's tenant: %+v", ev.Meta)
					}
				}
				if page.Next == "" {
					break
				}
				next = page.Next
			}
			if fmt.Sprint(got) != "[1 2 3 4 5 6]" {
				t.Fatalf("paged stream versions %v", got)
			}
			var all []string
			cursor := ""
			for range 10 {
				var page httpapi.EventsPage
				e.do("GET", "/v1/events?limit=2&after="+cursor, e.keys["acme/reader"], nil).json(t, &page)
				if len(page.Events) == 0 {
					break
				}
				for _, ev := range page.Events {
					all = append(all, ev.ID.String())
				}
				cursor = page.Next
			}
			if len(all) != 6 || all[0] != id {
				t.Fatalf("paged global log: %v", all)
			}
			var info httpapi.StreamJSON
			e.do("GET", "/v1/streams/certificate-7F3A", e.keys["acme/reader"], nil).json(t, &info)
			if info.Version != 6 || info.Name != "certificate-7F3A" {
				t.Fatalf("stream info %+v", info)
			}
			if r := e.do("GET", "/v1/streams/certificate-none", e.keys["acme/reader"], nil); r.status != 404 {
				t.Fatalf("missing stream info: %d", r.status)
			}
		})
	}
}
