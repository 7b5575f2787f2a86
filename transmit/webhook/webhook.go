// Package webhook is the transmitter adapter for HTTP webhooks signed per the Standard Webhooks
// specification (https://www.standardwebhooks.com): each event is one POST with the headers
//
//	webhook-id:        the event ID (the idempotency key: a redelivery carries the same one)
//	webhook-timestamp: Unix seconds of the attempt
//	webhook-signature: "v1," + base64(HMAC-SHA256(key, id + "." + timestamp + "." + body))
//
// where key is the secret "whsec_" + base64(key). The body is the structured CloudEvent (or,
// in binary mode, the payload with percent-encoded ce- headers). A 2xx answer is delivery;
// redirects are not followed; a 3xx and any 4xx but 408 and 429 is a rejection (counted toward
// the retry limit, then dead-lettered); 408, 429, 5xx and network failures are retried without
// limit. Events of one stream are posted one after another, in order; different streams in
// parallel.
//
// Options (the "options" object of a transmitter of type "webhook"):
//
//	{"url": "https://example.com/hooks/strata", "secretEnv": "STRATA_WEBHOOK_SECRET",
//	 "timeout": "10s", "concurrency": 8}
package webhook

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/strata-events/strata"
	"github.com/strata-events/strata/transmit"
)

// SecretPrefix starts a Standard Webhooks signing secret.
const SecretPrefix = "whsec_"

// Options configure the adapter.
type Options struct {
	// URL receives the POSTs.
	URL string `json:"url"`
	// Secret is the signing secret "whsec_..."; SecretEnv names an environment variable that
	// holds it (preferred: keep secrets out of files). One of them is required.
	Secret    string `json:"secret,omitempty"`
	SecretEnv string `json:"secretEnv,omitempty"`
	// Headers are added to every request.
	Headers map[string]string `json:"headers,omitempty"`
	// Timeout bounds one request; default 10s.
	Timeout transmit.Duration `json:"timeout,omitempty"`
	// Concurrency is how many streams are posted to at once; default 8.
	Concurrency int `json:"concurrency,omitempty"`
	// Mode is set from the transmitter's mode by Factory.
	Mode transmit.Mode `json:"-"`
	// Client, when set, is the HTTP client (tests).
	Client *http.Client `json:"-"`
	// Now, when set, is the clock for webhook-timestamp (tests).
	Now func() time.Time `json:"-"`
}

// Sink posts to a webhook endpoint.
type Sink struct {
	o      Options
	key    []byte
	client *http.Client
	// shown is the URL as errors name it (see shownURL).
	shown string
}

var _ transmit.Sink = (*Sink)(nil)

// Factory opens a Sink from a transmitter configuration.
func Factory(ctx context.Context, sc transmit.SinkConfig) (transmit.Sink, error) {
	var o Options
	if err := transmit.DecodeOptions(sc, &o); err != nil {
		return nil, err
	}
	o.Mode = sc.Mode
	return Open(ctx, o)
}

// GenerateSecret returns a new random signing secret ("whsec_" + base64 of 32 bytes).
func GenerateSecret() string {
	b := make([]byte, 32)
	rand.Read(b)
	return SecretPrefix + base64.StdEncoding.EncodeToString(b)
}

// ParseSecret decodes a "whsec_..." secret into its key.
func ParseSecret(secret string) ([]byte, error) {
	const op = "webhook secret"
	b64, ok := strings.CutPrefix(secret, SecretPrefix)
	if !ok {
		return nil, strata.Errorf(strata.Invalid, op, "a signing secret starts with %q", SecretPrefix)
	}
	key, err := base64.StdEncoding.DecodeString(b64)
	if err != nil || len(key) < 16 || len(key) > 64 {
		return nil, strata.Errorf(strata.Invalid, op, "the secret after %q must be base64 of 16 to 64 bytes", SecretPrefix)
	}
	return key, nil
}

// Open checks the options and returns a Sink; it connects on first use.
func Open(_ context.Context, o Options) (*Sink, error) {
	const op = "webhook open"
	u, err := url.Parse(o.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		shown := "(unparsable)"
		if err == nil {
			shown = shownURL(u)
		}
		return nil, strata.Errorf(strata.Invalid, op, "url %s is not an http(s) URL with a host", shown)
	}
	if o.SecretEnv != "" {
		o.Secret = getenv(o.SecretEnv)
		if o.Secret == "" {
			return nil, strata.Errorf(strata.Invalid, op, "environment variable %s holds no secret", o.SecretEnv)
		}
	}
	key, err := ParseSecret(o.Secret)
	if err != nil {
		return nil, err
	}
	for k, v := range o.Headers {
		if !validHeaderName(k) {
			return nil, strata.Errorf(strata.Invalid, op, "header name %q is not an HTTP token", k)
		}
		if strings.ContainsFunc(v, func(r rune) bool { return r < ' ' && r != '\t' || r == 0x7f }) {
			return nil, strata.Errorf(strata.Invalid, op, "the value of header %s holds a control character", k)
		}
	}
	if o.Timeout <= 0 {
		o.Timeout = transmit.Duration(10 * time.Second)
	}
	if o.Concurrency <= 0 {
		o.Concurrency = 8
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	client := o.Client
	if client == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.MaxIdleConnsPerHost = o.Concurrency
		// A redirect is not delivery: following it would re-post the signed event (and the
		// configured headers) to another URL, or turn it into a GET whose 2xx would count as
		// sent. The 3xx answer itself is returned, and rejected.
		client = &http.Client{Transport: tr, Timeout: time.Duration(o.Timeout),
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	return &Sink{o: o, key: key, client: client, shown: shownURL(u)}, nil
}

// validHeaderName reports whether k is an HTTP header name (an RFC 9110 token), which
// net/http requires of every request header.
func validHeaderName(k string) bool {
	return k != "" && !strings.ContainsFunc(k, func(r rune) bool {
		return r > 0x7e || r <= ' ' || strings.ContainsRune("\"(),/:;<=>?@[\\]{}", r)
	})
}

// Sign returns the webhook-signature value of one message: "v1," + base64 of the HMAC.
func Sign(key []byte, id string, timestamp int64, body []byte) string {
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(id))
	mac.Write([]byte{'.'})
	mac.Write([]byte(strconv.FormatInt(timestamp, 10)))
	mac.Write([]byte{'.'})
	mac.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// Send implements transmit.Sink. Streams are posted to concurrently, each stream's events in
// order; after a failure the rest of that stream's events in the batch are not posted (they
// fail too, so that order holds when they are retried).
func (s *Sink) Send(ctx context.Context, batch []*transmit.Message) error {
	groups := map[string][]int{}
	var order []string
	for i, m := range batch {
		k := m.Event.Stream
		if _, ok := groups[k]; !ok {
			order = append(order, k)
		}
		groups[k] = append(groups[k], i)
	}
	errs := make([]error, len(batch))
	work := make(chan []int)
	var wg sync.WaitGroup
	for range min(s.o.Concurrency, len(order)) {
		wg.Go(func() {
			for idx := range work {
				for n, i := range idx {
					if err := s.post(ctx, batch[i]); err != nil {
						errs[i] = err
						for _, j := range idx[n+1:] {
							errs[j] = transmit.NotSent(fmt.Errorf("not sent: event %s of the same stream failed first", batch[i].ID()))
						}
						break
					}
				}
			}
		})
	}
	for _, k := range order {
		work <- groups[k]
	}
	close(work)
	wg.Wait()
	var be *transmit.BatchError
	for i, err := range errs {
		if err != nil {
			be = be.Fail(i, err)
		}
	}
	return be.Err()
}

func (s *Sink) post(ctx context.Context, m *transmit.Message) error {
	const op = "webhook post"
	body, ct := m.Body(s.o.Mode)
	ts := s.o.Now().Unix()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.o.URL, bytes.NewReader(body))
	if err != nil {
		return transmit.Reject(err)
	}
	for k, v := range s.o.Headers {
		req.Header.Set(k, v)
	}
	req.Header.Set("Content-Type", ct)
	req.Header.Set("User-Agent", "strata-transmit")
	req.Header.Set("webhook-id", m.ID())
	req.Header.Set("webhook-timestamp", strconv.FormatInt(ts, 10))
	req.Header.Set("webhook-signature", Sign(s.key, m.ID(), ts, body))
	if s.o.Mode == transmit.Binary {
		for _, h := range m.Headers("ce-") {
			req.Header.Set(h.Name, headerValue(h.Value))
		}
	}
	resp, err := s.client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = &url.Error{Op: ue.Op, URL: s.shown, Err: ue.Err}
		}
		return transmit.Unavailable(op, err)
	}
	snippet, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	switch code := resp.StatusCode; {
	case code >= 200 && code < 300:
		return nil
	case code == http.StatusRequestTimeout || code == http.StatusTooManyRequests || code >= 500:
		return transmit.Unavailable(op, fmt.Errorf("HTTP %d: %s", code, oneLine(snippet)))
	default:
		return transmit.Reject(fmt.Errorf("HTTP %d: %s", code, oneLine(snippet)))
	}
}

// shownURL is u as error text names it: its scheme and host, with the path and query, which
// often hold the endpoint's token (a Slack or Teams webhook, ?key=...), elided. Error text
// reaches logs, delivery records and the dead-letter queue.
func shownURL(u *url.URL) string {
	shown := u.Scheme + "://" + u.Host
	if u.Path != "" && u.Path != "/" || u.RawQuery != "" || u.Opaque != "" {
		shown += "/…"
	}
	return shown
}

// headerValue percent-encodes an attribute value for a binary-mode header, as the CloudEvents
// HTTP binding requires: space, '"', '%' and every byte outside printable ASCII. Metadata may hold
// control characters, which Go's HTTP client refuses to send (and a retry would not change).
func headerValue(v string) string {
	const hex = "0123456789ABCDEF"
	var b []byte
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c > 0x20 && c < 0x7f && c != '"' && c != '%' {
			if b != nil {
				b = append(b, c)
			}
			continue
		}
		if b == nil {
			b = append(make([]byte, 0, len(v)+16), v[:i]...)
		}
		b = append(b, '%', hex[c>>4], hex[c&0xf])
	}
	if b == nil {
		return v
	}
	return string(b)
}

func oneLine(b []byte) string {
	s := strings.Join(strings.Fields(string(b)), " ")
	if len(s) > 200 {
		s = s[:200]
	}
	return s
}

// Close releases idle connections.
func (s *Sink) Close() error {
	s.client.CloseIdleConnections()
	return nil
}
