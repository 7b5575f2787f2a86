package httpapi_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/strata-events/strata"
)

// TestMalformedQueryStringIsRefused: a query string that does not parse (a ';' separator, a bad
// %-escape, more parameters than net/url accepts) is 400 invalid. Go's URL.Query drops such
// pairs, or every pair, without a word: the server would answer as though the filters, cursors
// and limits were not there, with events the client did not ask for.
func TestMalformedQueryStringIsRefused(t *testing.T) {
	t.Parallel()
	e := newEnv(t, openSQLite(t))
	w, rd := e.keys["acme/writer"], e.keys["acme/reader"]
	for _, typ := range []string{"Wanted", "Other"} {
		if r := e.do("POST", "/v1/streams/s-1/events", w, appendBody(nil, event(typ, nil))); r.status != http.StatusCreated {
			t.Fatalf("append: %d %s", r.status, r.body)
		}
	}
	for _, path := range []string{
		"/v1/events?type=Wanted;type=Wanted",
		"/v1/events?type=Wanted&type=%zz",
		"/v1/events?prefix=100%-done",
		"/v1/events?type=Wanted&" + strings.Repeat("x=1&", 10_000),
		"/v1/streams?prefix=s-;limit=1",
		"/v1/streams/s-1/events?from=2;backward=1",
		"/v1/query?type=Wanted;type=Wanted",
		"/v1/query/count?type=%zz",
	} {
		r := e.do("GET", path, rd, nil)
		if r.status != http.StatusBadRequest || r.errorCode(t) != strata.Invalid {
			t.Errorf("%.60s: %d %.200s, want 400 invalid", path, r.status, r.body)
		}
	}
	// A subscription answers its status before it streams: read no further.
	req, err := http.NewRequest("GET", e.srv.URL+"/v1/subscribe?after=1;type=Wanted", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+rd)
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("subscribe with a bad query string: %d, want 400", resp.StatusCode)
	}
	// A well-formed query string still filters.
	var page struct{ Events []struct{ Type string } }
	e.do("GET", "/v1/events?type=Wanted", rd, nil).json(t, &page)
	if len(page.Events) != 1 || page.Events[0].Type != "Wanted" {
		t.Fatalf("type=Wanted returns %+v", page.Events)
	}
}

// TestLogFilterTypesAreBounded: the global log and a subscription take at most
// strata.MaxQueryTypes types, as a search does; more is 400. Every subscription's filter is
// matched against every new event of the log by the one follower all tenants share, under its
// lock: a filter of thousands of types from one key would slow every subscriber's feed.
func TestLogFilterTypesAreBounded(t *testing.T) {
	t.Parallel()
	e := newEnv(t, openSQLite(t))
	rd := e.keys["acme/reader"]
	types := func(n int) string {
		var b strings.Builder
		for i := range n {
			fmt.Fprintf(&b, "&type=T%d", i)
		}
		return b.String()
	}
	if r := e.do("GET", "/v1/events?limit=1"+types(strata.MaxQueryTypes), rd, nil); r.status != http.StatusOK {
		t.Fatalf("%d types: %d %s", strata.MaxQueryTypes, r.status, r.body)
	}
	if r := e.do("GET", "/v1/events?limit=1"+types(strata.MaxQueryTypes+1), rd, nil); r.status != http.StatusBadRequest || r.errorCode(t) != strata.Invalid {
		t.Errorf("/v1/events with %d types: %d %s, want 400 invalid", strata.MaxQueryTypes+1, r.status, r.body)
	}
	req, err := http.NewRequest("GET", e.srv.URL+"/v1/subscribe?after="+types(strata.MaxQueryTypes+1), nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+rd)
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close() // a subscription answers its status before it streams: read no further
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("/v1/subscribe with %d types: %d, want 400", strata.MaxQueryTypes+1, resp.StatusCode)
	}
}
