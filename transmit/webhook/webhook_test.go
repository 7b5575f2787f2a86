package webhook_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/strata-events/strata"
	"github.com/strata-events/strata/inmem"
	"github.com/strata-events/strata/sqlite"
	"github.com/strata-events/strata/transmit"
	"github.com/strata-events/strata/transmit/transmittest"
	"github.com/strata-events/strata/transmit/webhook"
)

// verify checks a Standard Webhooks request the way a receiver would, written from the
// specification and sharing no code with the signer: the signed content is
// "{webhook-id}.{webhook-timestamp}.{body}", the key is the base64 after "whsec_", the MAC is
// HMAC-SHA256, and webhook-signature holds space-separated "v1,{base64 MAC}" entries, any of
// which may match. The timestamp must be within five minutes of now.
func verify(secret string, h http.Header, body []byte, now time.Time) error {
	id, ts, sigs := h.Get("webhook-id"), h.Get("webhook-timestamp"), h.Get("webhook-signature")
	if id == "" || ts == "" || sigs == "" {
		return fmt.Errorf("missing webhook headers")
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return fmt.Errorf("bad timestamp %q", ts)
	}
	if d := now.Sub(time.Unix(sec, 0)); d > 5*time.Minute || d < -5*time.Minute {
		return fmt.Errorf("timestamp %s too far from now", ts)
	}
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil {
		return err
	}
	mac := hmac.New(sha256.New, key)
	io.WriteString(mac, id+"."+ts+".")
	mac.Write(body)
	want := mac.Sum(nil)
	for _, s := range strings.Split(sigs, " ") {
		version, b64, ok := strings.Cut(s, ",")
		if !ok || version != "v1" {
			continue
		}
		got, err := base64.StdEncoding.DecodeString(b64)
		if err == nil && hmac.Equal(got, want) {
			return nil
		}
	}
	return fmt.Errorf("no valid signature")
}

// receiver is a webhook endpoint that verifies every request and records what it accepts.
type receiver struct {
	t      testing.TB
	secret string
	srv    *httptest.Server

	mu       sync.Mutex
	got      []transmittest.Received
	next     int
	bad      atomic.Int64
	refuse   func(id string) int // status to answer instead of 200; 0 accepts
	onAccept func(n int)
	arrived  chan struct{}
}

func newReceiver(t testing.TB) *receiver {
	r := &receiver{t: t, secret: webhook.GenerateSecret(), arrived: make(chan struct{}, 1)}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) serve(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	if err := verify(r.secret, req.Header, body, time.Now()); err != nil {
		r.bad.Add(1)
		http.Error(w, err.Error(), http.StatusUnauthorized)
		return
	}
	if r.refuse != nil {
		if code := r.refuse(req.Header.Get("webhook-id")); code != 0 {
			http.Error(w, "refused", code)
			return
		}
	}
	rec, err := transmittest.FromStructured(body)
	if err != nil || rec.ID.String() != req.Header.Get("webhook-id") {
		r.bad.Add(1)
		http.Error(w, fmt.Sprint("bad body: ", err), http.StatusBadRequest)
		return
	}
	r.mu.Lock()
	r.got = append(r.got, rec)
	n := len(r.got)
	r.mu.Unlock()
	if r.onAccept != nil {
		r.onAccept(n)
	}
	select {
	case r.arrived <- struct{}{}:
	default:
	}
	w.WriteHeader(http.StatusNoContent)
}

func (r *receiver) Next(ctx context.Context) ([]transmittest.Received, error) {
	for {
		r.mu.Lock()
		out := r.got[r.next:]
		r.next = len(r.got)
		r.mu.Unlock()
		if len(out) > 0 {
			return out, nil
		}
		select {
		case <-r.arrived:
		case <-time.After(100 * time.Millisecond):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

func (r *receiver) target() transmittest.Target {
	return transmittest.Target{
		Addr: r.srv.Listener.Addr().String(),
		Sink: func(t testing.TB, addr string) transmit.Sink {
			s, err := webhook.Open(context.Background(), webhook.Options{URL: "http://" + addr + "/hooks/strata", Secret: r.secret,
				Timeout: transmit.Duration(2 * time.Second), Concurrency: 8})
			if err != nil {
				t.Fatal(err)
			}
			return s
		},
		Consumer: func(testing.TB) transmittest.Consumer { return r },
	}
}

func TestDeliver(t *testing.T) {
	t.Parallel()
	r := newReceiver(t)
	transmittest.Deliver(t, r.target(), transmittest.Count(t), 20)
	if n := r.bad.Load(); n != 0 {
		t.Fatalf("%d requests failed verification", n)
	}
}

func TestOutage(t *testing.T) {
	t.Parallel()
	r := newReceiver(t)
	transmittest.Outage(t, r.target(), 2000)
	if n := r.bad.Load(); n != 0 {
		t.Fatalf("%d requests failed verification", n)
	}
}

func TestPoison(t *testing.T) {
	t.Parallel()
	transmittest.Poison(t, newReceiver(t).target())
}

// TestRejectedByEndpoint: an endpoint that answers 422 for one event makes it a dead letter
// after the retry limit; 503 answers are retried without limit and never dead-letter.
func TestRejectedByEndpoint(t *testing.T) {
	t.Parallel()
	r := newReceiver(t)
	st := inmem.New()
	defer st.Close()
	sent := transmittest.AppendEvents(t, st, "certificate-7F3A", 30, 3)
	var flaky atomic.Int64
	r.refuse = func(id string) int {
		switch {
		case id == sent[4].ID.String():
			return http.StatusUnprocessableEntity
		case flaky.Add(1) <= 10:
			return http.StatusServiceUnavailable
		}
		return 0
	}
	sink := r.target().Sink(t, r.target().Addr)
	tr, err := transmit.New(st, "hooks", sink, transmit.WithRetry(1, time.Millisecond, 5*time.Millisecond, true), transmittest.Quiet())
	if err != nil {
		t.Fatal(err)
	}
	transmittest.Start(t, tr)
	state := transmittest.WaitState(t, st, "hooks", "29 sent, 1 dead", func(s strata.TransmitterState) bool { return s.Sent == 29 && s.Dead == 1 })
	dead, _ := st.Deliveries(context.Background(), strata.DeliveryQuery{Transmitter: "hooks", Status: strata.DeliveryDead})
	if len(dead) != 1 || dead[0].EventID != sent[4].ID || !strings.Contains(dead[0].LastError, "422") || dead[0].Attempts < 2 {
		t.Fatalf("dead letters %+v (state %+v)", dead, state)
	}
}

// TestSignatureVerifies checks the signer against the independent verifier, and that a changed
// body, id or timestamp, or another secret, fails it.
func TestSignatureVerifies(t *testing.T) {
	secret := webhook.GenerateSecret()
	key, err := webhook.ParseSecret(secret)
	if err != nil {
		t.Fatal(err)
	}
	body := []byte(`{"specversion":"1.0","id":"x"}`)
	now := time.Now()
	h := http.Header{}
	h.Set("webhook-id", "msg_1")
	h.Set("webhook-timestamp", strconv.FormatInt(now.Unix(), 10))
	h.Set("webhook-signature", webhook.Sign(key, "msg_1", now.Unix(), body))
	if err := verify(secret, h, body, now); err != nil {
		t.Fatalf("valid signature rejected: %v", err)
	}
	// The specification's example: secret, id, timestamp and payload from standard-webhooks.
	ex := http.Header{}
	ex.Set("webhook-id", "msg_p5jXN8AQM9LWM0D4loKWxJek")
	ex.Set("webhook-timestamp", "1614265330")
	exKey, _ := webhook.ParseSecret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
	exBody := []byte(`{"test": 2432232314}`)
	ex.Set("webhook-signature", webhook.Sign(exKey, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, exBody))
	if got := ex.Get("webhook-signature"); got != "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=" {
		t.Fatalf("specification example signs as %s", got)
	}
	if err := verify("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", ex, exBody, time.Unix(1614265330, 0)); err != nil {
		t.Fatalf("specification example: %v", err)
	}
	for name, mut := range map[string]func(h http.Header) ([]byte, string){
		"body": func(h http.Header) ([]byte, string) { return []byte(`{"specversion":"1.0","id":"y"}`), secret },
		"id":   func(h http.Header) ([]byte, string) { h.Set("webhook-id", "msg_2"); return body, secret },
		"timestamp": func(h http.Header) ([]byte, string) {
			h.Set("webhook-timestamp", strconv.FormatInt(now.Unix()+1, 10))
			return body, secret
		},
		"secret": func(h http.Header) ([]byte, string) { return body, webhook.GenerateSecret() },
	} {
		h2 := h.Clone()
		b, s := mut(h2)
		if verify(s, h2, b, now) == nil {
			t.Errorf("a changed %s still verifies", name)
		}
	}
	for _, bad := range []string{"", "whsec_", "whsec_!!!", "sk_abc", "whsec_" + base64.StdEncoding.EncodeToString([]byte("short"))} {
		if _, err := webhook.ParseSecret(bad); strata.ErrorCode(err) != strata.Invalid {
			t.Errorf("ParseSecret(%q) = %v, want Invalid", bad, err)
		}
	}
}

// The SIGKILL test runs a transmitter in a child process (this test binary again), kills it
// with SIGKILL in the middle of the log, and resumes in this process once the dead child's
// lease expires: every event arrives, and only what the child had not recorded is sent twice.
const (
	childDB  = "STRATA_TRANSMIT_CHILD_DB"
	childURL = "STRATA_TRANSMIT_CHILD_URL"
	childKey = "STRATA_TRANSMIT_CHILD_SECRET"
)

func TestMain(m *testing.M) {
	if path := os.Getenv(childDB); path != "" {
		os.Exit(runChild(path))
	}
	os.Exit(m.Run())
}

func runChild(path string) int {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, path)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	sink, err := webhook.Open(ctx, webhook.Options{URL: os.Getenv(childURL), Secret: os.Getenv(childKey)})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	// A short lease: the test's own transmitter takes over soon after the kill.
	tr, err := transmit.New(st, "resume", sink, transmit.WithBatchSize(100), transmit.WithLease("", 2*time.Second))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Fprintln(os.Stderr, tr.Run(ctx)) // runs until killed
	return 1
}

func TestSIGKILLResume(t *testing.T) {
	t.Parallel()
	const n = 3000
	path := filepath.Join(t.TempDir(), "strata.db")
	ctx := context.Background()
	st, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	sent := transmittest.AppendEvents(t, st, "certificate", n, 10)

	r := newReceiver(t)
	// Once 1000 events arrived, the endpoint stalls every request until the child is dead:
	// the child is then certainly in the middle of the log, with some batches recorded.
	stall := make(chan struct{})
	var stallOnce sync.Once
	var stalling atomic.Bool
	stalling.Store(true)
	r.onAccept = func(k int) {
		if k >= 1000 && stalling.Load() {
			<-stall
		}
	}
	t.Cleanup(func() { stallOnce.Do(func() { close(stall) }) })

	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childDB+"="+path, childURL+"="+r.srv.URL+"/hooks", childKey+"="+r.secret)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "1000 events at the endpoint", func() bool {
		r.mu.Lock()
		defer r.mu.Unlock()
		return len(r.got) >= 1000
	})
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	stalling.Store(false)
	stallOnce.Do(func() { close(stall) })

	cp, err := st.TransmitCheckpoint(ctx, "resume")
	if err != nil {
		t.Fatal(err)
	}
	if cp.IsZero() {
		t.Fatal("the child recorded no checkpoint before it was killed")
	}
	r.mu.Lock()
	before := len(r.got)
	r.mu.Unlock()

	sink := r.target().Sink(t, r.target().Addr)
	tr, err := transmit.New(st, "resume", sink, transmit.WithBatchSize(100), transmittest.Quiet())
	if err != nil {
		t.Fatal(err)
	}
	transmittest.Start(t, tr)
	transmittest.WaitState(t, st, "resume", "all sent", func(s strata.TransmitterState) bool { return s.Sent == n })
	got := transmittest.Collect(t, r, sent)
	r.mu.Lock()
	all := append([]transmittest.Received(nil), r.got...)
	r.mu.Unlock()
	transmittest.Check(t, sent, all)
	seen := map[uuid.UUID]int{}
	for _, g := range all {
		seen[g.ID]++
	}
	dups := len(all) - len(seen)
	// Resumed from the checkpoint, not from the start: at most the unrecorded batches (the one
	// in flight and the ones queued behind the stall) come twice.
	if dups >= before {
		t.Fatalf("%d duplicates of %d sent before the kill: the transmitter started over", dups, before)
	}
	t.Logf("killed at checkpoint %s after %d deliveries; %d duplicates after the resume (%d collected)", cp, before, dups, len(got))
}

func waitUntil(t testing.TB, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func BenchmarkDeliverFromPostgres(b *testing.B) {
	transmittest.BenchFromPostgres(b, newReceiver(b).target())
}

// TestRedirectNotFollowed checks that a redirect is not delivery: a 302 to another host would
// turn the POST into a GET there (whose 2xx must not count), and a 307 would re-post the signed
// event, with its headers, to a host nobody configured.
func TestRedirectNotFollowed(t *testing.T) {
	t.Parallel()
	var elsewhere atomic.Int64
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		elsewhere.Add(1)
		w.WriteHeader(http.StatusOK)
	}))
	defer other.Close()
	for _, code := range []int{http.StatusFound, http.StatusTemporaryRedirect} {
		hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			http.Redirect(w, req, other.URL+"/elsewhere", code)
		}))
		defer hook.Close()
		sink, err := webhook.Open(context.Background(), webhook.Options{URL: hook.URL, Secret: webhook.GenerateSecret(),
			Headers: map[string]string{"X-Api-Key": "s3cret"}})
		if err != nil {
			t.Fatal(err)
		}
		defer sink.Close()
		e := strata.Event{ID: uuid.New(), Stream: "certificate-7F3A", Version: 1, Type: "CertificateIssued", Data: []byte(`{}`)}
		err = sink.Send(context.Background(), []*transmit.Message{transmit.NewMessage("strata", e)})
		if err == nil {
			t.Errorf("HTTP %d to another host counted as delivered", code)
		}
	}
	if n := elsewhere.Load(); n != 0 {
		t.Errorf("the redirect target got %d request(s)", n)
	}
}

// TestBinaryHeaderValues: in binary mode the attributes are HTTP headers, percent-encoded as
// the CloudEvents HTTP binding requires. Metadata may hold any valid UTF-8, control characters
// included: such an event is still posted (a value Go's HTTP client refuses to send would be
// retried for ever, holding up the transmitter), and the receiver decodes the original value.
func TestBinaryHeaderValues(t *testing.T) {
	t.Parallel()
	got := make(chan http.Header, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		select {
		case got <- req.Header.Clone():
		default:
		}
	}))
	defer srv.Close()
	sink, err := webhook.Open(context.Background(), webhook.Options{URL: srv.URL, Secret: webhook.GenerateSecret(), Mode: transmit.Binary})
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	e := strata.Event{ID: uuid.New(), Stream: "certificate-7F3A", Version: 1, Type: "CertificateIssued", Data: []byte(`{}`),
		Meta: strata.Metadata{Correlation: "req-1\r\nX-Injected: yes", Principal: "Zoë 100%"}}
	if err := sink.Send(context.Background(), []*transmit.Message{transmit.NewMessage("strata", e)}); err != nil {
		t.Fatalf("send: %v", err)
	}
	h := <-got
	if h.Get("X-Injected") != "" {
		t.Fatal("a metadata value injected a header")
	}
	for name, want := range map[string]string{"ce-stratacorrelation": e.Meta.Correlation, "ce-strataprincipal": e.Meta.Principal, "ce-id": e.ID.String()} {
		v, err := url.PathUnescape(h.Get(name))
		if err != nil || v != want {
			t.Errorf("%s: %q decodes to %q (%v), want %q", name, h.Get(name), v, err, want)
		}
	}
}

// TestURLTokensStayOutOfErrors: the path and query of the webhook's URL, where endpoints keep
// their tokens, appear in no error text (which reaches logs, delivery records and the
// dead-letter queue); the scheme and host do, to say where the post went.
func TestURLTokensStayOutOfErrors(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens: the post fails to connect
	s, err := webhook.Open(context.Background(), webhook.Options{URL: "http://" + addr + "/services/T0/B0/PATHTOKEN?key=QUERYTOKEN", Secret: webhook.GenerateSecret()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ev := strata.Event{ID: uuid.New(), Stream: "certificate-7F3A", Version: 1, Type: "CertificateIssued", Data: []byte(`{}`), RecordedAt: time.Now()}
	err = s.Send(context.Background(), []*transmit.Message{transmit.NewMessage("urn:test", ev)})
	if err == nil || strings.Contains(err.Error(), "TOKEN") || !strings.Contains(err.Error(), addr) {
		t.Fatalf("send to a closed port: %v, want an error naming %s without the tokens", err, addr)
	}
	_, err = webhook.Open(context.Background(), webhook.Options{URL: "ftp://example.org/PATHTOKEN", Secret: webhook.GenerateSecret()})
	if err == nil || strings.Contains(err.Error(), "TOKEN") {
		t.Fatalf("open with an ftp URL: %v, want an error without the token", err)
	}
}
