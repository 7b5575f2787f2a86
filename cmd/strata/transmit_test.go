package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/strata-events/strata/sqlite"
	"github.com/strata-events/strata/transmit/webhook"
)

// TestTransmitCommands runs `transmit run` against a webhook that refuses one event type, then
// inspects and replays the dead letter with `transmit status`, `dlq list` and `dlq retry`.
func TestTransmitCommands(t *testing.T) {
	db := tempDB(t)
	for _, typ := range []string{"CertificateIssued", "CertificatePoison", "CertificateRevoked"} {
		mustCLI(t, db, "append", "certificate-7F3A", typ, `{"serial":"7F3A"}`)
	}
	var refuse atomic.Bool
	refuse.Store(true)
	var got atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if refuse.Load() && strings.Contains(r.Header.Get("Content-Type"), "cloudevents") {
			var b [4096]byte
			n, _ := r.Body.Read(b[:])
			if strings.Contains(string(b[:n]), "CertificatePoison") {
				http.Error(w, "no", http.StatusBadRequest)
				return
			}
		}
		got.Add(1)
		w.WriteHeader(http.StatusOK)
	}))
	defer srv.Close()
	cfg := filepath.Join(t.TempDir(), "transmitters.json")
	os.WriteFile(cfg, []byte(`{"transmitters": [{"name": "hook", "type": "webhook", "maxRetries": 0, "retryDelay": "1ms",
		"options": {"url": "`+srv.URL+`", "secret": "`+webhook.GenerateSecret()+`"}}]}`), 0o600)

	ctx, cancel := context.WithCancel(testContext(t))
	done := make(chan result, 1)
	go func() { done <- cli(t, ctx, db, "", "transmit", "run", "--transmitters", cfg) }()
	path := strings.TrimPrefix(db, "sqlite:")
	st, err := sqlite.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	waitForState(t, "2 sent, 1 dead", func() bool {
		sts, _ := st.TransmitterStates(context.Background())
		return len(sts) == 1 && sts[0].Sent == 2 && sts[0].Dead == 1
	})
	status := lines(t, mustCLI(t, db, "transmit", "status"))
	if len(status) != 1 || status[0]["name"] != "hook" || status[0]["dead"] != 1.0 || status[0]["sent"] != 2.0 || status[0]["checkpoint"] != "3" {
		t.Fatalf("status: %v", status)
	}
	dead := lines(t, mustCLI(t, db, "transmit", "dlq", "list", "--transmitter", "hook"))
	if len(dead) != 1 || dead[0]["type"] != "CertificatePoison" || dead[0]["version"] != 2.0 || !strings.Contains(dead[0]["lastError"].(string), "400") {
		t.Fatalf("dlq list: %v", dead)
	}
	refuse.Store(false)
	out := lines(t, mustCLI(t, db, "transmit", "dlq", "retry", "--transmitter", "hook", "--all"))
	if len(out) != 1 || out[0]["requeued"] != 1.0 {
		t.Fatalf("dlq retry: %v", out)
	}
	waitForState(t, "3 sent", func() bool {
		sts, _ := st.TransmitterStates(context.Background())
		return len(sts) == 1 && sts[0].Sent == 3 && sts[0].Dead == 0 && sts[0].Pending == 0
	})
	cancel()
	if r := <-done; r.code != 0 {
		t.Fatalf("transmit run: exit %d: %s", r.code, r.stderr)
	}
	if got.Load() < 3 {
		t.Fatalf("the endpoint accepted %d events", got.Load())
	}
	wantErr(t, cli(t, testContext(t), db, "", "transmit", "dlq", "retry", "--transmitter", "hook"), exitInvalid, "--all")
	wantErr(t, cli(t, testContext(t), db, "", "transmit", "dlq", "retry", "--transmitter", "hook", "not-a-uuid"), exitInvalid, "not an event ID")
	wantErr(t, cli(t, testContext(t), db, "", "transmit", "dlq", "list"), exitInvalid, "--transmitter")
	wantErr(t, cli(t, testContext(t), db, "", "transmit", "dlq", "list", "--transmitter", "hook", "--status", "lost"), exitInvalid, "status")
	wantErr(t, cli(t, testContext(t), db, "", "transmit", "run"), exitInvalid, "--transmitters")
	os.WriteFile(cfg, []byte(`{"transmitters": [{"name": "x", "type": "pigeon"}]}`), 0o600)
	wantErr(t, cli(t, testContext(t), db, "", "transmit", "run", "--transmitters", cfg), exitInvalid, "pigeon")
}

func waitForState(t testing.TB, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
