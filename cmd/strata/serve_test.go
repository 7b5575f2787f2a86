package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/strata-events/strata"
	"github.com/strata-events/strata/ledger"
	"github.com/strata-events/strata/shred"
)

// startServe runs `strata serve` on a free port and returns its base URL and a function that
// stops it (as SIGTERM would) and returns its exit code and log.
func startServe(t *testing.T, dsn string, args ...string) (string, func() (int, string)) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var out, errb syncBuffer
	done := make(chan int, 1)
	args = append([]string{"serve", "--db", dsn, "--addr", "127.0.0.1:0"}, args...)
	go func() { done <- run(ctx, args, strings.NewReader(""), &out, &errb, func(string) string { return "" }) }()
	re := regexp.MustCompile(`on (https?://[0-9.:]+)`)
	for i := 0; ; i++ {
		if m := re.FindStringSubmatch(out.String()); m != nil {
			var once sync.Once
			var code int
			return m[1], func() (int, string) {
				once.Do(func() { cancel(); code = <-done })
				return code, errb.String()
			}
		}
		select {
		case code := <-done:
			cancel()
			t.Fatalf("serve exited %d: %s", code, errb.String())
		case <-time.After(10 * time.Millisecond):
		}
		if i > 3000 {
			cancel()
			t.Fatal("serve did not start")
		}
	}
}

func httpDo(t *testing.T, method, url, key, body string) (int, string) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestServeQuickStart follows the README: create a key, serve, append and read with curl-like
// requests, list and revoke keys; the ledger sealer runs with --key; the access log never
// holds the key.
func TestServeQuickStart(t *testing.T) {
	dir := t.TempDir()
	dsn := "sqlite:" + filepath.Join(dir, "strata.db")
	skey, _, err := ledger.GenerateKey(rand.Reader, "test.example/log")
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(dir, "log.key")
	if err := os.WriteFile(keyFile, []byte(skey), 0o600); err != nil {
		t.Fatal(err)
	}
	r := cli(t, testContext(t), dsn, "", "apikey", "create", "--role", "writer", "--tenant", "acme-ca", "--name", "quick start")
	if r.code != 0 {
		t.Fatalf("apikey create: %d %s", r.code, r.stderr)
	}
	key := strings.TrimSpace(r.stdout)
	if !strings.HasPrefix(key, "strata_") {
		t.Fatalf("apikey create printed %q", r.stdout)
	}
	if r := cli(t, testContext(t), dsn, "", "apikey", "create", "--role", "root", "--tenant", "x"); r.code != exitInvalid {
		t.Fatalf("bad role: exit %d", r.code)
	}
	url, stop := startServe(t, dsn, "--key", keyFile, "--checkpoint-every", "50ms")
	code, body := httpDo(t, "POST", url+"/v1/streams/certificate-7F3A/events", key,
		`{"expected":"no-stream","events":[{"type":"CertificateIssued","data":{"serial":"7F3A"},"meta":{"principal":"ca-operator"}}]}`)
	if code != 201 {
		t.Fatalf("append: %d %s", code, body)
	}
	code, body = httpDo(t, "GET", url+"/v1/streams/certificate-7F3A/events", key, "")
	var page struct {
		Events []struct {
			Type string
			Meta map[string]string
		}
	}
	json.Unmarshal([]byte(body), &page)
	if code != 200 || len(page.Events) != 1 || page.Events[0].Meta["tenant"] != "acme-ca" {
		t.Fatalf("read: %d %s", code, body)
	}
	for _, p := range []string{"/healthz", "/readyz", "/metrics", "/"} {
		if code, body := httpDo(t, "GET", url+p, "", ""); code != 200 {
			t.Fatalf("GET %s: %d %s", p, code, body)
		}
	}
	// The sealer runs: the event gets sealed and a checkpoint signed.
	for i := 0; ; i++ {
		_, m := httpDo(t, "GET", url+"/metrics", "", "")
		if strings.Contains(m, "strata_ledger_leaves 1") {
			break
		}
		if i > 1000 {
			t.Fatal("the sealer never sealed the event")
		}
		time.Sleep(10 * time.Millisecond)
	}
	exit, log := stop()
	if exit != 0 {
		t.Fatalf("serve exited %d: %s", exit, log)
	}
	if strings.Contains(log, key) || strings.Contains(log, key[len(key)-20:]) {
		t.Fatal("the server log holds the API key")
	}
	if !strings.Contains(log, `"route":"append"`) {
		t.Fatalf("no access log line for the append: %s", log)
	}
	list := lines(t, mustCLI(t, dsn, "apikey", "list"))
	if len(list) != 1 || list[0]["role"] != "writer" || list[0]["tenant"] != "acme-ca" {
		t.Fatalf("apikey list: %v", list)
	}
	if strings.Contains(mustCLI(t, dsn, "apikey", "list"), key[len(key)-20:]) {
		t.Fatal("apikey list prints the key")
	}
	mustCLI(t, dsn, "apikey", "revoke", list[0]["id"].(string))
	list = lines(t, mustCLI(t, dsn, "apikey", "list"))
	if list[0]["revokedAt"] == nil {
		t.Fatalf("revoked key listed as %v", list[0])
	}
	if r := cli(t, testContext(t), dsn, "", "apikey", "revoke", "nope"); r.code != exitNotFound {
		t.Fatalf("revoke unknown: exit %d", r.code)
	}
}

// TestBenchHTTP runs the HTTP load generator against strata serve and checks that what it
// counts as acknowledged is in the store: every event, with the payload it sent.
func TestBenchHTTP(t *testing.T) {
	dsn := "sqlite:" + filepath.Join(t.TempDir(), "strata.db")
	key := strings.TrimSpace(mustCLI(t, dsn, "apikey", "create", "--role", "writer", "--tenant", "acme"))
	url, stop := startServe(t, dsn)
	out := mustCLI(t, dsn, "bench", "http", "--url", url, "--key", key, "--clients", "3", "--batch", "4",
		"--payload", "10", "--warmup", "0s", "--duration", "300ms")
	var events int
	if _, err := fmt.Sscanf(out, "http append: %d events acknowledged", &events); err != nil || events == 0 || !strings.Contains(out, " 0 failed") {
		t.Fatalf("bench http printed %q (%v)", out, err)
	}
	if exit, log := stop(); exit != 0 {
		t.Fatalf("serve exited %d: %s", exit, log)
	}
	d, err := parseDSN(dsn)
	if err != nil {
		t.Fatal(err)
	}
	st, err := d.open(testContext(t))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	stored := 0
	for e, err := range st.ReadAll(testContext(t), strata.ReadAllOptions{}) {
		if err != nil {
			t.Fatal(err)
		}
		var data struct {
			N   *int   `json:"n"`
			Pad string `json:"pad"`
		}
		if err := json.Unmarshal(e.Data, &data); err != nil || data.N == nil || data.Pad != strings.Repeat("x", 10) || e.Type != "BenchEvent" || e.Meta.Tenant != "acme" {
			t.Fatalf("stored event %s %s %s: %v", e.Stream, e.Type, e.Data, err)
		}
		stored++
	}
	// Without a warm-up every request is counted, and none failed.
	if stored != events {
		t.Fatalf("the store holds %d events; bench http counted %d acknowledged", stored, events)
	}
}

// TestServeTransmitters: with --transmitters the server delivers appended events (here to a
// webhook) and /metrics reports each transmitter's deliveries and backlog.
func TestServeTransmitters(t *testing.T) {
	dir := t.TempDir()
	dsn := "sqlite:" + filepath.Join(dir, "strata.db")
	var got atomic.Int64
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got.Add(1)
		w.WriteHeader(http.StatusNoContent)
	}))
	defer hook.Close()
	cfg := `{"transmitters":[{"name":"to-hook","type":"webhook","options":{"url":"` + hook.URL + `","secret":"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}}]}`
	file := filepath.Join(dir, "transmitters.json")
	if err := os.WriteFile(file, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	key := strings.TrimSpace(mustCLI(t, dsn, "apikey", "create", "--role", "writer", "--tenant", "acme"))
	url, stop := startServe(t, dsn, "--transmitters", file)
	defer stop()
	if code, body := httpDo(t, "POST", url+"/v1/streams/s-1/events", key, `{"events":[{"type":"T","data":{}}]}`); code != 201 {
		t.Fatalf("append: %d %s", code, body)
	}
	for i := 0; ; i++ {
		_, m := httpDo(t, "GET", url+"/metrics", "", "")
		if strings.Contains(m, `strata_transmitter_sent_total{transmitter="to-hook"} 1`) &&
			strings.Contains(m, `strata_transmitter_backlog_events{transmitter="to-hook"} 0`) {
			break
		}
		if i > 1000 {
			t.Fatalf("no delivery in the metrics (%d posts received):\n%s", got.Load(), m)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if exit, log := stop(); exit != 0 {
		t.Fatalf("serve exited %d: %s", exit, log)
	}
}

// TestServeTLS serves HTTPS with --tls-cert and --tls-key.
func TestServeTLS(t *testing.T) {
	dir := t.TempDir()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "127.0.0.1"},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &priv.PublicKey, priv)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalECPrivateKey(priv)
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600)
	if r := cli(t, testContext(t), tempDB(t), "", "serve", "--tls-cert", certFile); r.code != exitInvalid {
		t.Fatalf("--tls-cert without --tls-key: exit %d", r.code)
	}
	url, stop := startServe(t, "sqlite:"+filepath.Join(dir, "strata.db"), "--tls-cert", certFile, "--tls-key", keyFile)
	defer stop()
	if !strings.HasPrefix(url, "https://") {
		t.Fatalf("serving on %s", url)
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	resp, err := c.Get(url + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("healthz over TLS: %d", resp.StatusCode)
	}
}

// TestServeTraceLog: --trace-log logs every finished span; the access log alone is not that.
func TestServeTraceLog(t *testing.T) {
	t.Parallel()
	url, stop := startServe(t, tempDB(t), "--trace-log")
	if code, body := httpDo(t, "GET", url+"/healthz", "", ""); code != 200 {
		t.Fatalf("healthz: %d %s", code, body)
	}
	code, log := stop()
	if code != 0 {
		t.Fatalf("serve exited %d: %s", code, log)
	}
	if !strings.Contains(log, `"msg":"span"`) {
		t.Errorf("--trace-log logged no span:\n%s", log)
	}
}

// TestServeCheckpointEveryZero: --checkpoint-every 0s with --key is a bad flag (exit 2), not a
// panic of the sealer's goroutine.
func TestServeCheckpointEveryZero(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	skey, _, err := ledger.GenerateKey(rand.Reader, "test.example/log")
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(dir, "log.key")
	if err := os.WriteFile(keyFile, []byte(skey), 0o600); err != nil {
		t.Fatal(err)
	}
	r := cli(t, testContext(t), "sqlite:"+filepath.Join(dir, "s.db"), "", "serve", "--addr", "127.0.0.1:0", "--key", keyFile, "--checkpoint-every", "0s")
	wantErr(t, r, exitInvalid, "checkpoint interval")
}

// TestServeRefusesAnotherLogsKey: serve --key with a key other than the one the log's
// checkpoints are signed with is a bad flag (exit 2, as for strata seal), not a server whose
// sealer fails to sign, and restarts, for as long as it runs.
func TestServeRefusesAnotherLogsKey(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	dsn := "sqlite:" + filepath.Join(dir, "s.db")
	keyFile := func(name string) string {
		skey, _, err := ledger.GenerateKey(rand.Reader, "test.example/"+name)
		if err != nil {
			t.Fatal(err)
		}
		f := filepath.Join(dir, name+".key")
		if err := os.WriteFile(f, []byte(skey), 0o600); err != nil {
			t.Fatal(err)
		}
		return f
	}
	mustCLI(t, dsn, "append", "certificate-7F3A", "CertificateIssued", `{"serial":"7F3A"}`)
	mustCLI(t, dsn, "seal", "--key", keyFile("log"))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	r := cli(t, ctx, dsn, "", "serve", "--addr", "127.0.0.1:0", "--key", keyFile("other"))
	wantErr(t, r, exitInvalid, "signed by another key")
}

// TestServeProtectsSchemasDeclaredWhileRunning: a declaration of personal data made with
// strata schema set while the server runs applies to the server's appends (within
// schemaReloadEvery): the declared field is stored encrypted, not in clear.
func TestServeProtectsSchemasDeclaredWhileRunning(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	dsn := "sqlite:" + filepath.Join(dir, "s.db")
	kek, err := shred.GenerateKEK()
	if err != nil {
		t.Fatal(err)
	}
	kekFile := filepath.Join(dir, "kek")
	if err := os.WriteFile(kekFile, []byte(kek+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	key := strings.TrimSpace(mustCLI(t, dsn, "apikey", "create", "--role", "writer", "--tenant", "acme-ca"))
	url, stop := startServe(t, dsn, "--kek-file", kekFile)
	defer stop()
	mustCLI(t, dsn, "schema", "set", "CertificateIssued", "--sensitive", "subjectDN", "--subject", "subjectId", "--kek-file", kekFile)
	deadline := time.Now().Add(schemaReloadEvery + 10*time.Second)
	for i := 0; ; i++ {
		stream := fmt.Sprintf("certificate-%d", i)
		code, body := httpDo(t, "POST", url+"/v1/streams/"+stream+"/events", key,
			`{"events":[{"type":"CertificateIssued","data":{"subjectId":"subject-4711","subjectDN":"CN=Alice Example"}}]}`)
		if code != 201 {
			t.Fatalf("append: %d %s", code, body)
		}
		stored := mustCLI(t, dsn, "read", stream)
		if !strings.Contains(stored, "CN=Alice Example") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s after strata schema set, the server still stores the declared field in clear: %s", schemaReloadEvery+10*time.Second, stored)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestServeShutdownTimeoutIsNotClean: a request still in flight when --shutdown-timeout ends is
// cut, and serve says so with its exit code rather than exit 0.
func TestServeShutdownTimeoutIsNotClean(t *testing.T) {
	t.Parallel()
	url, stop := startServe(t, tempDB(t), "--shutdown-timeout", "100ms")
	conn, err := net.Dial("tcp", strings.TrimPrefix(url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// A request whose body never finishes keeps its handler, and the shutdown, waiting.
	if _, err := fmt.Fprintf(conn, "POST /v1/streams/s/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"events\":"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond) // the server reads the headers (no duration is asserted)
	if code, stderr := stop(); code != exitUnavailable || !strings.Contains(stderr, "--shutdown-timeout") {
		t.Fatalf("serve exited %d: %s", code, stderr)
	}
}

// TestServeSecondSignalCuts: a second SIGINT during a shutdown that waits for a request in
// flight cuts it at once, and serve says so. Not parallel: the signal goes to the whole test
// process, where no parallel test runs meanwhile.
func TestServeSecondSignalCuts(t *testing.T) {
	var out, errb syncBuffer
	done := make(chan int, 1)
	args := []string{"serve", "--db", tempDB(t), "--addr", "127.0.0.1:0", "--shutdown-timeout", "1h"}
	go func() {
		done <- run(context.Background(), args, strings.NewReader(""), &out, &errb, func(string) string { return "" })
	}()
	re := regexp.MustCompile(`on http://([0-9.:]+)`)
	var addr string
	waitFor := func(what string, ok func() bool) {
		t.Helper()
		for i := 0; !ok(); i++ {
			if i > 3000 {
				t.Fatalf("no %s: %s", what, errb.String())
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	waitFor("start", func() bool {
		m := re.FindStringSubmatch(out.String())
		if m != nil {
			addr = m[1]
		}
		return m != nil
	})
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := fmt.Fprintf(conn, "POST /v1/streams/s/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"events\":"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond) // the server reads the headers (no duration is asserted)
	if err := syscall.Kill(os.Getpid(), syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	waitFor("shutdown", func() bool { return strings.Contains(errb.String(), "shutting down") })
	if err := syscall.Kill(os.Getpid(), syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case code := <-done:
		if code != exitUnavailable || !strings.Contains(errb.String(), "cut by a second signal") {
			t.Fatalf("serve exited %d: %s", code, errb.String())
		}
	case <-time.After(time.Minute):
		t.Fatalf("serve still waits for the request a minute after the second signal: %s", errb.String())
	}
}
