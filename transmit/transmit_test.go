package transmit_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/strata-events/strata"
	"github.com/strata-events/strata/codec"
	"github.com/strata-events/strata/hub"
	"github.com/strata-events/strata/inmem"
	"github.com/strata-events/strata/shred"
	"github.com/strata-events/strata/transmit"
	"github.com/strata-events/strata/transmit/transmittest"
)

func sampleEvent() strata.Event {
	at := time.Date(2023, 3, 14, 9, 0, 0, 123456000, time.UTC)
	return strata.Event{
		ID: uuid.MustParse("01890a5d-ac96-774b-bcce-b302099a8057"), Stream: "certificate-7F3A", Version: 2,
		Position: strata.Position{Commit: 1017, Event: 42}, Type: "CertificateRevoked", Schema: 1,
		Data:       json.RawMessage(`{"reason":"keyCompromise","note":"<\"ü\">"}`),
		Meta:       strata.Metadata{Tenant: "acme", Subject: "subject-42", Principal: "ops\nlead", Correlation: "req-1", Extra: map[string]string{"ticket": "T-9"}},
		RecordedAt: at, OccurredAt: at.Add(-time.Hour),
	}
}

func TestCloudEventStructured(t *testing.T) {
	m := transmit.NewMessage("urn:strata:ca.example", sampleEvent())
	body := m.Structured()
	var generic map[string]any
	if err := json.Unmarshal(body, &generic); err != nil {
		t.Fatalf("structured body is not JSON: %v\n%s", err, body)
	}
	for k, want := range map[string]any{
		"specversion": "1.0", "id": "01890a5d-ac96-774b-bcce-b302099a8057", "source": "urn:strata:ca.example",
		"type": "CertificateRevoked", "subject": "certificate-7F3A", "time": "2023-03-14T09:00:00.123456Z",
		"datacontenttype": "application/json", "strataposition": "1017.42", "strataversion": 2.0, "strataschema": 1.0,
		"strataoccurred": "2023-03-14T08:00:00.123456Z", "stratatenant": "acme", "strataprincipal": "ops\nlead",
		// The data subject travels in stratameta, where it stood while it was an extra key.
		"stratacorrelation": "req-1", "stratameta": `{"subject":"subject-42","ticket":"T-9"}`,
	} {
		if generic[k] != want {
			t.Errorf("%s = %#v, want %#v", k, generic[k], want)
		}
	}
	for k := range generic {
		if k != "data" && (len(k) > 20 || strings.ToLower(k) != k) {
			t.Errorf("attribute name %q breaks the CloudEvents naming rules", k)
		}
	}
	ce, err := transmit.ParseStructured(body)
	if err != nil {
		t.Fatal(err)
	}
	if string(ce.Data) != string(sampleEvent().Data) || ce.Subject != "certificate-7F3A" || !ce.Time.Equal(sampleEvent().RecordedAt) {
		t.Fatalf("round trip: %+v", ce)
	}
	if p, err := ce.Position(); err != nil || p != sampleEvent().Position {
		t.Fatalf("position %v, %v", p, err)
	}
	if m.ID() != sampleEvent().ID.String() {
		t.Fatalf("ID() = %s", m.ID())
	}
	body2, ct := m.Body(transmit.Binary)
	if string(body2) != string(sampleEvent().Data) || ct != "application/json" {
		t.Fatalf("binary body %s (%s)", body2, ct)
	}
	for _, h := range m.Headers("ce-") {
		if h.Name == "ce-datacontenttype" {
			t.Fatal("datacontenttype travels as the content type, not a ce- header")
		}
	}
}

func TestParseStructuredRejects(t *testing.T) {
	for _, bad := range []string{``, `[]`, `{"specversion":"0.3","id":"1","source":"s","type":"t"}`, `{"specversion":"1.0","source":"s","type":"t"}`,
		`{"specversion":"1.0","id":"1","source":"s","type":"t","time":"yesterday"}`, `{"specversion":"1.0","id":"1","source":"s","type":"t","x":{"a":1}}`,
		`{"specversion":"1.0","id":"1","source":"s","type":"t","data_base64":"AA=="}`} {
		if _, err := transmit.ParseStructured([]byte(bad)); strata.ErrorCode(err) != strata.Invalid {
			t.Errorf("ParseStructured(%s) = %v, want Invalid", bad, err)
		}
	}
}

func FuzzParseStructured(f *testing.F) {
	f.Add(transmit.NewMessage("", sampleEvent()).Structured())
	f.Add([]byte(`{"specversion":"1.0","id":"x","source":"s","type":"t","n":1,"b":true,"data":null}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		ce, err := transmit.ParseStructured(b)
		if err != nil {
			if strata.ErrorCode(err) != strata.Invalid {
				t.Fatalf("error %v is not Invalid", err)
			}
			return
		}
		ce.EventID()
		ce.Position()
		ce.Version()
	})
}

// FuzzStructuredRoundTrip: whatever strings the event holds, the structured body is valid JSON
// that decodes back to them.
func FuzzStructuredRoundTrip(f *testing.F) {
	f.Add("certificate-7F3A", "CertificateRevoked", "acme", "T-9")
	f.Add("s\x00\xff\u2028", "t\"\\", "<&>", "\t\n")
	f.Fuzz(func(t *testing.T, stream, typ, tenant, extra string) {
		e := sampleEvent()
		e.Stream, e.Type, e.Meta.Tenant, e.Meta.Extra = stream, typ, tenant, map[string]string{"k": extra}
		body := transmit.NewMessage("src", e).Structured()
		var v map[string]any
		if err := json.Unmarshal(body, &v); err != nil {
			t.Fatalf("invalid JSON for %q %q: %v\n%s", stream, typ, err, body)
		}
		want, _ := json.Marshal(stream) // encoding/json's own treatment of invalid UTF-8
		var ws string
		json.Unmarshal(want, &ws)
		if v["subject"] != ws {
			t.Fatalf("subject %q, want %q", v["subject"], ws)
		}
	})
}

func TestParseConfig(t *testing.T) {
	cfg, err := transmit.ParseConfig([]byte(`{
		"source": "urn:strata:ca.example",
		"transmitters": [
			{"name": "revocations-to-nats", "type": "nats", "filter": {"types": ["CertificateRevoked"]},
			 "maxRetries": 3, "retryDelay": "250ms", "maxDelay": "30s", "exponentialBackoff": false,
			 "options": {"url": "nats://127.0.0.1:4222"}},
			{"name": "hooks", "type": "webhook", "enabled": false, "batchSize": 50, "mode": "binary", "payload": "redacted", "retryDelay": 2}
		]}`))
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Transmitters) != 2 || cfg.Source != "urn:strata:ca.example" || cfg.Transmitters[1].IsEnabled() || !cfg.Transmitters[0].IsEnabled() ||
		time.Duration(cfg.Transmitters[0].RetryDelay) != 250*time.Millisecond || time.Duration(cfg.Transmitters[1].RetryDelay) != 2*time.Second {
		t.Fatalf("config: %+v", cfg)
	}
	for name, bad := range map[string]string{
		"unknown field":   `{"transmitters": [{"name": "a", "type": "nats", "typo": 1}]}`,
		"no name":         `{"transmitters": [{"type": "nats"}]}`,
		"no type":         `{"transmitters": [{"name": "a"}]}`,
		"twice":           `{"transmitters": [{"name": "a", "type": "nats"}, {"name": "a", "type": "redis"}]}`,
		"batch":           `{"transmitters": [{"name": "a", "type": "nats", "batchSize": 100000}]}`,
		"retries":         `{"transmitters": [{"name": "a", "type": "nats", "maxRetries": -1}]}`,
		"delay":           `{"transmitters": [{"name": "a", "type": "nats", "retryDelay": "soon"}]}`,
		"max below delay": `{"transmitters": [{"name": "a", "type": "nats", "retryDelay": "1m", "maxDelay": "1s"}]}`,
		"mode":            `{"transmitters": [{"name": "a", "type": "nats", "mode": "chunked"}]}`,
		"payload":         `{"transmitters": [{"name": "a", "type": "nats", "payload": "clear"}]}`,
		"filter":          `{"transmitters": [{"name": "a", "type": "nats", "filter": {"types": []}}]}`,
		"trailing":        `{"transmitters": []} {}`,
		"not json":        `transmitters: []`,
	} {
		if _, err := transmit.ParseConfig([]byte(bad)); strata.ErrorCode(err) != strata.Invalid {
			t.Errorf("%s: ParseConfig = %v, want Invalid", name, err)
		}
	}
	path := filepath.Join(t.TempDir(), "transmitters.json")
	os.WriteFile(path, []byte(`{"transmitters": [{"name": "a", "type": "redis"}]}`), 0o600)
	if cfg, err := transmit.LoadConfig(path); err != nil || len(cfg.Transmitters) != 1 {
		t.Fatalf("LoadConfig = %+v, %v", cfg, err)
	}
	if _, err := transmit.LoadConfig(path + ".missing"); strata.ErrorCode(err) != strata.Invalid {
		t.Fatalf("LoadConfig of a missing file = %v", err)
	}
}

func FuzzParseConfig(f *testing.F) {
	f.Add([]byte(`{"transmitters": [{"name": "a", "type": "nats", "filter": {"types": ["A*"]}, "retryDelay": "1s"}]}`))
	f.Add([]byte(`{"source": "s", "transmitters": [{"name": "b", "type": "webhook", "maxRetries": 0, "options": {"url": "x"}}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		cfg, err := transmit.ParseConfig(b)
		if err != nil {
			if strata.ErrorCode(err) != strata.Invalid {
				t.Fatalf("error %v is not Invalid", err)
			}
			return
		}
		if err := cfg.Validate(); err != nil {
			t.Fatalf("a parsed config does not validate: %v", err)
		}
	})
}

// memSink records what it is sent; fail, when set, decides a message's error.
type memSink struct {
	mu   sync.Mutex
	got  []*transmit.Message
	fail func(m *transmit.Message) error
}

func (s *memSink) Send(_ context.Context, batch []*transmit.Message) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var be *transmit.BatchError
	for i, m := range batch {
		if s.fail != nil {
			if err := s.fail(m); err != nil {
				be = be.Fail(i, err)
				continue
			}
		}
		s.got = append(s.got, m)
	}
	return be.Err()
}

func (s *memSink) Close() error { return nil }

func (s *memSink) received() []*transmit.Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*transmit.Message(nil), s.got...)
}

func (s *memSink) Next(ctx context.Context) ([]transmittest.Received, error) { return nil, nil }

// TestFilterAndCheckpoint: only selected events go out, and the checkpoint passes the others.
func TestFilterAndCheckpoint(t *testing.T) {
	st := inmem.New()
	defer st.Close()
	ctx := context.Background()
	for i := range 10 {
		typ := "CertificateIssued"
		if i%3 == 0 {
			typ = "CertificateRevoked"
		}
		st.Append(ctx, "certificate-1", strata.Any, strata.EventData{Type: typ})
	}
	sink := &memSink{}
	tr, err := transmit.New(st, "revocations", sink, transmit.WithFilter(hub.Type("*Revoked")), transmittest.Quiet())
	if err != nil {
		t.Fatal(err)
	}
	stop := transmittest.Start(t, tr)
	transmittest.WaitState(t, st, "revocations", "4 sent", func(s strata.TransmitterState) bool { return s.Sent == 4 })
	// Events after the last revocation are not selected; the checkpoint still passes them.
	st.Append(ctx, "certificate-2", strata.Any, strata.EventData{Type: "CertificateIssued"})
	transmittest.WaitState(t, st, "revocations", "checkpoint at 11", func(s strata.TransmitterState) bool {
		return s.Checkpoint == strata.Position{Commit: 11, Event: 11}
	})
	stop()
	for _, m := range sink.received() {
		if m.Event.Type != "CertificateRevoked" {
			t.Fatalf("sent %s", m.Event.Type)
		}
	}
	if n := len(sink.received()); n != 4 {
		t.Fatalf("%d sent, want 4", n)
	}
}

// TestTransientFailuresNeverDeadLetter: failures that are not rejections are retried past the
// retry limit, and are recorded as failed meanwhile.
func TestTransientFailuresNeverDeadLetter(t *testing.T) {
	st := inmem.New()
	defer st.Close()
	st.Append(context.Background(), "certificate-1", strata.NoStream, strata.EventData{Type: "CertificateIssued"})
	var mu sync.Mutex
	tries := 0
	sink := &memSink{fail: func(*transmit.Message) error {
		mu.Lock()
		defer mu.Unlock()
		tries++
		if tries <= 8 {
			return transmit.Unavailable("test", errors.New("connection refused"))
		}
		return nil
	}}
	tr, _ := transmit.New(st, "flaky", sink, transmit.WithRetry(1, time.Millisecond, 2*time.Millisecond, true), transmittest.Quiet())
	transmittest.Start(t, tr)
	transmittest.WaitState(t, st, "flaky", "sent", func(s strata.TransmitterState) bool { return s.Sent == 1 })
	ds, _ := st.Deliveries(context.Background(), strata.DeliveryQuery{Transmitter: "flaky"})
	if len(ds) != 1 || ds[0].Attempts != 9 || ds[0].Status != strata.DeliverySent || !strings.Contains(ds[0].LastError, "connection refused") || ds[0].SentAt.IsZero() {
		t.Fatalf("record: %+v", ds)
	}
}

// TestRedacted: with payload "redacted" (through the Manager) encrypted fields leave as
// redaction markers; with "stored" they leave as ciphertext; never in clear.
func TestPayloadPolicies(t *testing.T) {
	ctx := context.Background()
	st := inmem.New()
	defer st.Close()
	kek, _ := shred.NewLocalKEK(make([]byte, 32))
	p, err := shred.New(ctx, st, kek)
	if err != nil {
		t.Fatal(err)
	}
	reg := codec.NewRegistry()
	reg.Use(p)
	if err := p.Declare(ctx, strata.EventSchema{Type: "CertificateIssued", Sensitive: []string{"subjectDN", "age"}, Subject: "subjectId"}); err != nil {
		t.Fatal(err)
	}
	e := strata.EventData{Type: "CertificateIssued", Data: []byte(`{"serial":"7F3A","subjectId":"subject-4711","subjectDN":"CN=Alice","age":42}`)}
	if err := p.Protect(ctx, &e); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Append(ctx, "certificate-7F3A", strata.NoStream, e); err != nil {
		t.Fatal(err)
	}
	sinks := map[string]*memSink{"stored": {}, "redacted": {}, "revealed": {}}
	cfg, err := transmit.ParseConfig([]byte(`{"transmitters": [
		{"name": "stored", "type": "mem-stored"},
		{"name": "redacted", "type": "mem-redacted", "payload": "redacted"},
		{"name": "revealed", "type": "mem-revealed", "payload": "revealed"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	factories := map[string]transmit.SinkFactory{}
	for name, s := range sinks {
		factories["mem-"+name] = func(context.Context, transmit.SinkConfig) (transmit.Sink, error) { return s, nil }
	}
	if _, err := transmit.NewManager(st, cfg, transmit.WithSinks(factories)); strata.ErrorCode(err) != strata.Invalid {
		t.Fatalf("a revealed payload without a reveal transform = %v, want Invalid", err)
	}
	m, err := transmit.NewManager(st, cfg, transmit.WithSinks(factories), transmit.WithReveal(p.Reveal),
		transmit.WithManagerLogger(transmitQuietLogger()))
	if err != nil {
		t.Fatal(err)
	}
	mctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- m.Run(mctx) }()
	for name := range sinks {
		transmittest.WaitState(t, st, name, "sent", func(s strata.TransmitterState) bool { return s.Sent == 1 })
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	body := func(name string) string { return string(sinks[name].received()[0].Structured()) }
	if b := body("stored"); strings.Contains(b, "Alice") || !strings.Contains(b, "strata:enc:v1:") {
		t.Fatalf("stored payload: %s", b)
	}
	if b := body("redacted"); strings.Contains(b, "Alice") || strings.Contains(b, "strata:enc:") || !strings.Contains(b, `"subjectDN":"[redacted]"`) || !strings.Contains(b, `"age":null`) || !strings.Contains(b, `"serial":"7F3A"`) {
		t.Fatalf("redacted payload: %s", b)
	}
	if b := body("revealed"); !strings.Contains(b, `"subjectDN":"CN=Alice"`) {
		t.Fatalf("revealed payload: %s", b)
	}
}

func TestNewManagerRejects(t *testing.T) {
	st := inmem.New()
	defer st.Close()
	cfg, _ := transmit.ParseConfig([]byte(`{"transmitters": [{"name": "a", "type": "carrier-pigeon"}]}`))
	if _, err := transmit.NewManager(st, cfg); strata.ErrorCode(err) != strata.Invalid || !strings.Contains(err.Error(), "carrier-pigeon") {
		t.Fatalf("unknown type: %v", err)
	}
	if _, err := transmit.New(st, "", &memSink{}); strata.ErrorCode(err) != strata.Invalid {
		t.Fatalf("empty name: %v", err)
	}
	if _, err := transmit.New(st, "a", nil); strata.ErrorCode(err) != strata.Invalid {
		t.Fatalf("no sink: %v", err)
	}
}

func transmitQuietLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// FuzzDuration checks the durations of a transmitters file: an error, or a duration that
// reads back from its JSON form.
func FuzzDuration(f *testing.F) {
	for _, s := range []string{`"1s"`, `"250ms"`, `"7d"`, `"-1s"`, `30`, `1.5`, `-1`, `1e10`, `"d"`, `null`, `"100001d"`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var d transmit.Duration
		if err := json.Unmarshal(b, &d); err != nil {
			return
		}
		out, err := json.Marshal(d)
		if err != nil {
			t.Fatalf("%s: marshal %v", b, err)
		}
		var back transmit.Duration
		if err := json.Unmarshal(out, &back); err != nil || back != d {
			t.Fatalf("%s → %s → %s, %v", b, out, time.Duration(back), err)
		}
	})
}
