package httpapi_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/strata-events/strata"
	"github.com/strata-events/strata/httpapi"
	"github.com/strata-events/strata/query"
)

// seedAudit writes acme's certificate stream for the temporal tests: issued (occurred 1 March),
// then, recorded later, a revocation that occurred on 14 March, plus a revocation request in
// another stream about the same serial, and umbrella's own stream. It returns a time between
// the recording of the issue and of the revocation.
func seedAudit(t *testing.T, e *env) time.Time {
	t.Helper()
	w := e.keys["acme/writer"]
	post := func(stream string, body map[string]any) {
		t.Helper()
		if r := e.do("POST", "/v1/streams/"+stream+"/events", w, body); r.status != http.StatusCreated {
			t.Fatalf("seed %s: %d %s", stream, r.status, r.body)
		}
	}
	post("certificate-A1", map[string]any{"events": []map[string]any{{
		"type": "CertificateIssued", "occurredAt": "2023-03-01T09:00:00Z",
		"data": map[string]any{"serial": "A1", "status": "valid", "note": secret},
		"meta": map[string]string{"principal": "operator:mkim", "session": "s-1", "correlation": "req-1", "subsystem": "ca", "category": "lifecycle"},
	}}})
	time.Sleep(20 * time.Millisecond)
	between := time.Now().UTC()
	time.Sleep(20 * time.Millisecond)
	post("certificate-A1", map[string]any{"events": []map[string]any{{
		"type": "CertificateRevoked", "occurredAt": "2023-03-14T00:00:00Z",
		"data": map[string]any{"status": "revoked", "reason": "keyCompromise"},
		"meta": map[string]string{"principal": "committee:security", "session": "s-2", "correlation": "req-2", "causation": "req-1", "subsystem": "ra", "category": "revocation"},
	}}})
	post("revocation-R1", map[string]any{"events": []map[string]any{{
		"type": "RevocationRequested", "data": map[string]any{"serial": "A1", "note": secret},
		"meta": map[string]string{"principal": "subscriber:alice", "correlation": "req-2", "subsystem": "ra", "category": "revocation"},
	}}})
	if r := e.do("POST", "/v1/streams/certificate-U1/events", e.keys["umbrella/writer"], appendBody(nil,
		event("CertificateIssued", map[string]any{"serial": "A1", "status": "valid"}))); r.status != http.StatusCreated {
		t.Fatalf("seed umbrella: %d %s", r.status, r.body)
	}
	return between
}

func diffString(cs []query.Change) string {
	var out []string
	for _, c := range cs {
		out = append(out, query.FormatChange(c))
	}
	return strings.Join(out, "; ")
}

func q(t time.Time) string { return url.QueryEscape(t.Format(time.RFC3339Nano)) }

// TestTemporalRolesAndTenants calls the state, history and search endpoints with every role
// of the owning tenant and of a foreign one: every role may read; a foreign tenant gets 404 for
// the stream and empty results, never a byte of acme's data.
func TestTemporalRolesAndTenants(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, b.open(t))
			seedAudit(t, e)
			for _, c := range []struct {
				name, path string
				foreign    int
			}{
				{"state", "/v1/streams/certificate-A1/state", 404},
				{"state at", "/v1/streams/certificate-A1/state?at=2023-03-15", 404},
				{"state known at", "/v1/streams/certificate-A1/state?at=2023-03-15&knownAt=now", 404},
				{"history", "/v1/streams/certificate-A1/history", 404},
				{"entity history", "/v1/history?entity=A1&prefix=certificate-&prefix=revocation-", 200},
				{"entity history unbounded", "/v1/history?entity=A1", 200},
				{"query", "/v1/query?type=CertificateIssued", 200},
				{"query by correlation", "/v1/query?correlation=req-2", 200},
				{"query count", "/v1/query/count?prefix=certificate-", 200},
				{"query naming the own tenant", "/v1/query?tenant=acme", 403},
			} {
				for _, tenant := range []string{"acme", "umbrella"} {
					for _, role := range strata.Roles {
						want := 200
						if tenant == "umbrella" {
							want = c.foreign
						}
						r := e.do("GET", c.path, e.keys[tenant+"/"+string(role)], nil)
						if r.status != want {
							t.Errorf("%s as %s/%s: status %d, want %d: %s", c.name, tenant, role, r.status, want, r.body)
						}
						if tenant == "umbrella" && (strings.Contains(string(r.body), secret) || r.status == 200 && strings.Contains(string(r.body), "certificate-A1")) {
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
			// Umbrella's results are umbrella's own, and acme's count never includes them.
			var page httpapi.EventsPage
			e.do("GET", "/v1/query", e.keys["umbrella/reader"], nil).json(t, &page)
			if len(page.Events) != 1 || page.Events[0].Stream != "certificate-U1" {
				t.Errorf("umbrella's search: %+v", page.Events)
			}
			var hist httpapi.HistoryPage
			e.do("GET", "/v1/history?entity=A1", e.keys["umbrella/auditor"], nil).json(t, &hist)
			if len(hist.Entries) != 1 || hist.Entries[0].Stream != "certificate-U1" {
				t.Errorf("umbrella's entity history: %+v", hist.Entries)
			}
			var n httpapi.CountResponse
			e.do("GET", "/v1/query/count", e.keys["acme/reader"], nil).json(t, &n)
			if n.Count != 3 {
				t.Errorf("acme's count %d, want 3", n.Count)
			}
			if r := e.do("GET", "/v1/query?tenant=umbrella", e.keys["acme/admin"], nil); r.status != 403 || r.errorCode(t) != strata.Forbidden {
				t.Errorf("a search naming another tenant: %d %s", r.status, r.body)
			}
			if r := e.do("GET", "/v1/streams/certificate-none/state", e.keys["acme/reader"], nil); r.status != 404 {
				t.Errorf("state of a missing stream: %d %s", r.status, r.body)
			}
			if strings.Contains(e.logs.String(), secret) || strings.Contains(e.logs.String(), "req-2") {
				t.Errorf("the access log holds a payload or a filter")
			}
		})
	}
}

// TestStateAtBitemporal: the state as recorded at a time, and as known at one time about
// another — a revocation recorded late with an earlier occurred time.
func TestStateAtBitemporal(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, b.open(t))
			between := seedAudit(t, e)
			key := e.keys["acme/auditor"]
			state := func(query string) httpapi.StateResponse {
				t.Helper()
				r := e.do("GET", "/v1/streams/certificate-A1/state"+query, key, nil)
				if r.status != 200 {
					t.Fatalf("state%s: %d %s", query, r.status, r.body)
				}
				var s httpapi.StateResponse
				r.json(t, &s)
				return s
			}
			status := func(s httpapi.StateResponse) string {
				var st struct{ Status string }
				if err := json.Unmarshal(s.State, &st); err != nil {
					t.Fatal(err)
				}
				return st.Status
			}
			if s := state(""); status(s) != "revoked" || s.Version != 2 || s.Folded != 2 || s.KnownAt != "" {
				t.Errorf("state now: %+v %s", s, s.State)
			}
			// Transaction time: before the revocation was recorded.
			if s := state("?at=" + q(between)); status(s) != "valid" || s.Version != 1 {
				t.Errorf("state as recorded between: %+v %s", s, s.State)
			}
			// Before anything was recorded: the empty state, version 0.
			if s := state("?at=2020-01-01"); string(s.State) != "{}" || s.Version != 0 || s.Folded != 0 {
				t.Errorf("state before the stream: %+v %s", s, s.State)
			}
			// Bitemporal: about 15 March as known now, revoked (occurred on 14 March) …
			s := state("?at=2023-03-15&knownAt=now")
			if status(s) != "revoked" || s.Version != 2 || s.At != "2023-03-15T00:00:00Z" || s.KnownAt == "" {
				t.Errorf("15 March as known now: %+v %s", s, s.State)
			}
			// … about 10 March as known now, still valid: the revocation occurred later.
			if s := state("?at=2023-03-10&knownAt=now"); status(s) != "valid" || s.Version != 2 || s.Skipped != 1 {
				t.Errorf("10 March as known now: %+v %s", s, s.State)
			}
			// … about 15 March as known before the revocation was recorded: valid.
			if s := state("?at=2023-03-15&knownAt=" + q(between)); status(s) != "valid" || s.Version != 1 {
				t.Errorf("15 March as known between: %+v %s", s, s.State)
			}
		})
	}
}

// TestHistoryAndSearch: a stream's history with who, when, why and diffs, paged; an entity's
// history across streams; every search filter, keyset pagination and count.
func TestHistoryAndSearch(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, b.open(t))
			between := seedAudit(t, e)
			key := e.keys["acme/reader"]
			var h httpapi.HistoryPage
			e.do("GET", "/v1/streams/certificate-A1/history", key, nil).json(t, &h)
			if len(h.Entries) != 2 || h.Next != "" {
				t.Fatalf("history: %+v", h)
			}
			rev := h.Entries[1]
			if rev.Principal != "committee:security" || rev.Session != "s-2" || rev.Correlation != "req-2" || rev.Causation != "req-1" ||
				rev.Reason != "keyCompromise" || rev.OccurredAt != "2023-03-14T00:00:00Z" || rev.RecordedAt == "" || rev.Version != 2 {
				t.Errorf("revocation entry: %+v", rev)
			}
			diff := diffString(rev.Diff)
			if !strings.Contains(diff, "/reason") || !strings.Contains(diff, `replace /status: "valid" → "revoked"`) {
				t.Errorf("revocation diff: %s", diff)
			}
			if d := diffString(h.Entries[0].Diff); d != `add /note: "`+secret+`"; add /serial: "A1"; add /status: "valid"` {
				t.Errorf("issue diff: %s", d)
			}
			// Paged: limit 1, then after the version of the first page; the diff of the second
			// page is still against the true state before it.
			var p1, p2 httpapi.HistoryPage
			e.do("GET", "/v1/streams/certificate-A1/history?limit=1", key, nil).json(t, &p1)
			if len(p1.Entries) != 1 || p1.Next != "1" {
				t.Fatalf("history page 1: %+v", p1)
			}
			e.do("GET", "/v1/streams/certificate-A1/history?limit=1&after="+p1.Next, key, nil).json(t, &p2)
			if len(p2.Entries) != 1 || diffString(p2.Entries[0].Diff) != diff {
				t.Fatalf("history page 2: %+v", p2)
			}
			var hf httpapi.HistoryPage
			e.do("GET", "/v1/streams/certificate-A1/history?from="+q(between), key, nil).json(t, &hf)
			if len(hf.Entries) != 1 || hf.Entries[0].Version != 2 || diffString(hf.Entries[0].Diff) != diff {
				t.Errorf("history from between: %+v", hf)
			}
			// The entity across streams, in recording order, paged by the opaque cursor.
			var ents []string
			after := ""
			for range 5 {
				var p httpapi.HistoryPage
				e.do("GET", "/v1/history?entity=A1&prefix=certificate-&prefix=revocation-&limit=1&after="+after, key, nil).json(t, &p)
				for _, en := range p.Entries {
					ents = append(ents, fmt.Sprintf("%s/%d", en.Stream, en.Version))
				}
				if p.Next == "" {
					break
				}
				after = p.Next
			}
			if fmt.Sprint(ents) != "[certificate-A1/1 revocation-R1/1]" {
				t.Errorf("entity history: %v", ents)
			}
			// Every filter.
			count := func(query string) int64 {
				t.Helper()
				r := e.do("GET", "/v1/query/count?"+query, key, nil)
				var n httpapi.CountResponse
				r.json(t, &n)
				if r.status != 200 {
					t.Fatalf("count %s: %d %s", query, r.status, r.body)
				}
				return n.Count
			}
			search := func(query string) []string {
				t.Helper()
				var out []string
				cursor := ""
				for range 10 {
					var p httpapi.EventsPage
					r := e.do("GET", "/v1/query?limit=1&"+query+"&cursor="+cursor, key, nil)
					if r.status != 200 {
						t.Fatalf("query %s: %d %s", query, r.status, r.body)
					}
					r.json(t, &p)
					for _, ev := range p.Events {
						if ev.Meta.Tenant != "acme" {
							t.Fatalf("query %s returned tenant %q", query, ev.Meta.Tenant)
						}
						out = append(out, fmt.Sprintf("%s/%d", ev.Stream, ev.Version))
					}
					if p.Next == "" {
						break
					}
					cursor = p.Next
				}
				return out
			}
			for query, want := range map[string][]string{
				"":                       {"certificate-A1/1", "certificate-A1/2", "revocation-R1/1"},
				"type=CertificateIssued": {"certificate-A1/1"},
				"type=CertificateIssued&type=RevocationRequested": {"certificate-A1/1", "revocation-R1/1"},
				"subsystem=ra":                     {"certificate-A1/2", "revocation-R1/1"},
				"category=lifecycle":               {"certificate-A1/1"},
				"principal=committee:security":     {"certificate-A1/2"},
				"session=s-1":                      {"certificate-A1/1"},
				"correlation=req-2":                {"certificate-A1/2", "revocation-R1/1"},
				"causation=req-1":                  {"certificate-A1/2"},
				"prefix=revocation-":               {"revocation-R1/1"},
				"from=" + q(between):               {"certificate-A1/2", "revocation-R1/1"},
				"to=" + q(between):                 {"certificate-A1/1"},
				"subsystem=ra&prefix=certificate-": {"certificate-A1/2"},
				"principal=nobody":                 nil,
			} {
				got := search(query)
				if !slices.Equal(got, want) {
					t.Errorf("query %q: %v, want %v", query, got, want)
				}
				if n := count(query); n != int64(len(want)) {
					t.Errorf("count %q: %d, want %d", query, n, len(want))
				}
			}
		})
	}
}

// TestTemporalBadInput: bad times, cursors, limits and missing parameters are 400 with the
// typed error.
func TestTemporalBadInput(t *testing.T) {
	t.Parallel()
	e := newEnv(t, openSQLite(t))
	seedAudit(t, e)
	key := e.keys["acme/reader"]
	for name, path := range map[string]string{
		"bad at":                  "/v1/streams/certificate-A1/state?at=yesterday",
		"unescaped plus":          "/v1/streams/certificate-A1/state?at=2023-03-14T09:00:00+01:00",
		"year out of range":       "/v1/streams/certificate-A1/state?at=0001-01-01",
		"bad knownAt":             "/v1/streams/certificate-A1/state?at=now&knownAt=soon",
		"knownAt without at":      "/v1/streams/certificate-A1/state?knownAt=now",
		"validField alone":        "/v1/streams/certificate-A1/state?validField=invalidSince",
		"bad history from":        "/v1/streams/certificate-A1/history?from=x",
		"empty history range":     "/v1/streams/certificate-A1/history?from=2023-03-02&to=2023-03-01",
		"bad history after":       "/v1/streams/certificate-A1/history?after=v2",
		"bad history limit":       "/v1/streams/certificate-A1/history?limit=-1",
		"no entity":               "/v1/history?prefix=certificate-",
		"empty entity prefix":     "/v1/history?entity=A1&prefix=",
		"bad entity cursor":       "/v1/history?entity=A1&after=nope",
		"bad query cursor":        "/v1/query?cursor=nope",
		"position as cursor":      "/v1/query?cursor=42",
		"bad query from":          "/v1/query?from=tomorrowish",
		"empty query range":       "/v1/query?from=2023-03-02&to=2023-03-01",
		"query limit too big":     "/v1/query?limit=1001",
		"query limit negative":    "/v1/query?limit=-5",
		"empty type":              "/v1/query?type=",
		"bad count time":          "/v1/query/count?to=x",
		"count empty range":       "/v1/query/count?from=now&to=-1d",
		"too many types in count": "/v1/query/count?" + strings.Repeat("type=T&", 65),
	} {
		r := e.do("GET", path, key, nil)
		if r.status != 400 || r.errorCode(t) != strata.Invalid {
			t.Errorf("%s: %d %s, want 400 invalid", name, r.status, r.body)
		}
	}
	if r := e.do("GET", "/v1/query", "", nil); r.status != 401 {
		t.Errorf("query without a key: %d", r.status)
	}
}
