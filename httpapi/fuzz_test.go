package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/strata-events/strata"
	"github.com/strata-events/strata/httpapi"
	"github.com/strata-events/strata/inmem"
)

func discardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// FuzzHandlers sends arbitrary bodies, paths and queries to the API: no input may cause a 5xx
// or a panic, and every error is the typed JSON body with the status of its code.
func FuzzHandlers(f *testing.F) {
	st := inmem.New()
	api, err := httpapi.New(httpapi.Config{Store: st, Logger: discardLogger(), MaxBodyBytes: 1 << 20})
	if err != nil {
		f.Fatal(err)
	}
	key, rec, _ := httpapi.NewKey(strata.RoleAdmin, "acme", "")
	if _, err := st.CreateAPIKey(context.Background(), rec); err != nil {
		f.Fatal(err)
	}
	h := api.Handler()
	f.Add("POST", "/v1/streams/s/events", "", []byte(`{"expected":"any","events":[{"type":"T","data":{"a":1},"meta":{"principal":"p"}}]}`))
	f.Add("POST", "/v1/streams/s/events", "", []byte(`{"expected":3,"events":[{"id":"0190e3c2-0000-7000-8000-000000000001","type":"T","occurredAt":"2023-03-14T09:00:00Z"}]}`))
	f.Add("GET", "/v1/events", "after=1.2&type=T&limit=5", []byte(nil))
	f.Add("GET", "/v1/streams/s/events", "from=2&backward=true", []byte(nil))
	f.Add("GET", "/v1/streams", "prefix=s&after=a&limit=0", []byte(nil))
	f.Add("POST", "/v1/subjects/x/erase", "", []byte(`{"meta":{}}`))
	f.Add("GET", "/v1/events/0190e3c2-0000-7000-8000-000000000001/proof", "", []byte(nil))
	f.Add("GET", "/v1/streams/s/state", "at=2023-03-15&knownAt=now&validField=invalidSince", []byte(nil))
	f.Add("GET", "/v1/streams/s/history", "from=-90d&to=now&after=1&limit=2", []byte(nil))
	f.Add("GET", "/v1/history", "entity=A1&field=serial&prefix=s&after=AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA&limit=1", []byte(nil))
	f.Add("GET", "/v1/query", "type=T&principal=p&correlation=c&prefix=s&from=2023-03-14&to=2023-03-15T09:00&cursor=&limit=10", []byte(nil))
	f.Add("GET", "/v1/query/count", "tenant=acme&session=x&subsystem=y&category=z&causation=w", []byte(nil))
	f.Fuzz(func(t *testing.T, method, path, query string, body []byte) {
		switch method {
		case "GET", "POST", "PUT", "DELETE":
		default:
			return
		}
		req, err := http.NewRequest(method, "http://strata.test/", bytes.NewReader(body))
		if err != nil {
			return
		}
		req.URL.Path, req.URL.RawQuery = path, query
		if path == "" || path[0] != '/' || path == "/v1/subscribe" {
			return // subscriptions stream until cancelled; tested elsewhere
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+key)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code >= 500 {
			t.Fatalf("%s %s?%s %q: status %d: %s", method, path, query, body, w.Code, w.Body)
		}
		if w.Code >= 400 && w.Header().Get("Content-Type") == "application/json" {
			var eb httpapi.ErrorBody
			if err := json.Unmarshal(w.Body.Bytes(), &eb); err != nil || httpapi.StatusOf(eb.Error.Code) != w.Code {
				t.Fatalf("%s %s: error body %s does not match status %d", method, path, w.Body, w.Code)
			}
		}
	})
}
