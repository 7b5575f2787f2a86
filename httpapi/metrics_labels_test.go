package httpapi_test

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
)

// TestRequestMetricsMethodLabelIsBounded: a client chooses the request method, and any token
// reaches the catch-all /v1/ route; each made-up method must not become a time series of its
// own in strata_http_requests_total.
func TestRequestMetricsMethodLabelIsBounded(t *testing.T) {
	e := newEnv(t, openSQLite(t))
	for i := range 20 {
		req, err := http.NewRequest(fmt.Sprintf("X%d", i), e.srv.URL+"/v1/streams/s/events", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := e.srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	m := string(e.do("GET", "/metrics", "", nil).body)
	series := 0
	for _, l := range strings.Split(m, "\n") {
		if strings.HasPrefix(l, "strata_http_requests_total{") {
			series++
			if strings.Contains(l, `method="X`) {
				t.Errorf("a client's made-up method is a label value: %s", l)
			}
		}
	}
	if series > 5 {
		t.Errorf("%d series of strata_http_requests_total after 20 requests with made-up methods", series)
	}
}
