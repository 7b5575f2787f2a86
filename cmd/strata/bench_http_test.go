package main

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

// TestBenchHTTPFailsWhenNothingSucceeds: a server that answered every append with an error (or
// could not be reached) made bench http print "0 events acknowledged ... N failed" and exit 0,
// so a script took a dead server for a measurement.
func TestBenchHTTPFailsWhenNothingSucceeds(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, `{"error":"unavailable"}`, http.StatusServiceUnavailable)
	}))
	defer srv.Close()
	r := cli(t, testContext(t), "", "", "bench", "http", "--url", srv.URL, "--key", "k", "--clients", "1", "--duration", "50ms", "--warmup", "0s")
	wantErr(t, r, exitUnavailable, "503")
	if r.stdout != "" {
		t.Errorf("a result was printed: %s", r.stdout)
	}
}
