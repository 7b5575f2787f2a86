package transmit

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/strata-events/strata"
	"github.com/strata-events/strata/hub"
)

// Defaults of the forwarding settings.
const (
	DefaultBatchSize  = 500
	DefaultMaxRetries = 5
	DefaultRetryDelay = time.Second
	DefaultMaxDelay   = time.Minute
	// MaxBatchSize is the largest batch a transmitter may be configured with.
	MaxBatchSize = 5000
	// maxConfigSize bounds a configuration file.
	maxConfigSize = 8 << 20
)

// Config is the transmitters file (JSON):
//
//	{
//	  "source": "urn:strata:ca.example",
//	  "leaseTTL": "15s",
//	  "prune": {"sentAfter": "7d", "deadAfter": "30d", "every": "1h"},
//	  "transmitters": [
//	    {
//	      "name": "revocations-to-nats", "type": "nats",
//	      "filter": {"types": ["CertificateRevoked"]},
//	      "maxRetries": 5, "retryDelay": "1s", "exponentialBackoff": true,
//	      "options": {"url": "nats://127.0.0.1:4222", "subject": "pki.{type}"}
//	    }
//	  ]
//	}
type Config struct {
	// Source is the CloudEvents source of every event sent; default "strata".
	Source string `json:"source,omitempty"`
	// LeaseTTL is how long an instance's lease on a transmitter lasts unless renewed (1s to
	// 24h, default DefaultLeaseTTL): a standby takes over about 4/3 of this after the holder
	// died, and within a third of it after a clean stop.
	LeaseTTL Duration `json:"leaseTTL,omitempty"`
	// Prune, when set, makes every transmitter of the file prune its old records while it
	// holds its lease; a transmitter's own Prune replaces it.
	Prune        *PruneConfig        `json:"prune,omitempty"`
	Transmitters []TransmitterConfig `json:"transmitters"`
}

// PruneConfig is a schedule for pruning delivery records: sent records older than SentAfter
// and dead letters older than DeadAfter are deleted every Every. An empty object prunes nothing
// (for a transmitter: it turns off the file's schedule).
type PruneConfig struct {
	// SentAfter is the age (by SentAt) past which sent records are deleted; 0 keeps them.
	SentAfter Duration `json:"sentAfter,omitempty"`
	// DeadAfter is the age (by the last attempt) past which dead letters are deleted; 0 keeps
	// them. A pruned dead letter can no longer be retried.
	DeadAfter Duration `json:"deadAfter,omitempty"`
	// Every is how often to prune (at least 1s); default DefaultPruneEvery. The first prune runs
	// when the transmitter takes its lease.
	Every Duration `json:"every,omitempty"`
}

// TransmitterConfig is one transmitter: where it sends, what, and how it retries.
type TransmitterConfig struct {
	// Name identifies the transmitter: its checkpoint and delivery records are kept under it.
	// Renaming a transmitter starts it again from the beginning of the log.
	Name string `json:"name"`
	// Type names the adapter: nats, amqp, kafka, redis or webhook.
	Type string `json:"type"`
	// Enabled, default true; a disabled transmitter keeps its checkpoint and records.
	Enabled *bool `json:"enabled,omitempty"`
	// Filter selects the events sent (see hub.Spec); empty selects all.
	Filter hub.Spec `json:"filter"`
	// BatchSize is the most events sent and recorded at once; default 500.
	BatchSize int `json:"batchSize,omitempty"`
	// MaxRetries is how often an event the destination rejects is retried before it is
	// dead-lettered; default 5, 0 dead-letters on the first rejection.
	MaxRetries *int `json:"maxRetries,omitempty"`
	// RetryDelay is the first wait before a retry; default 1s.
	RetryDelay Duration `json:"retryDelay,omitempty"`
	// MaxDelay caps the wait between retries; default 1m.
	MaxDelay Duration `json:"maxDelay,omitempty"`
	// ExponentialBackoff doubles the wait after each failed try (with jitter); default true.
	// When false every wait is RetryDelay (with jitter).
	ExponentialBackoff *bool `json:"exponentialBackoff,omitempty"`
	// Mode is "structured" (default) or "binary" (CloudEvents content mode).
	Mode Mode `json:"mode,omitempty"`
	// Payload is "stored" (default: encrypted fields stay encrypted), "redacted" or "revealed".
	Payload Payload `json:"payload,omitempty"`
	// Options are the adapter's settings (see each adapter's Options type).
	Options json.RawMessage `json:"options,omitempty"`
	// Prune, when set, replaces the file's prune schedule for this transmitter.
	Prune *PruneConfig `json:"prune,omitempty"`
}

// IsEnabled reports whether the transmitter runs.
func (c TransmitterConfig) IsEnabled() bool { return c.Enabled == nil || *c.Enabled }

// Duration is a time.Duration written as a Go duration string ("1s", "250ms") in JSON.
type Duration time.Duration

// MarshalJSON writes the duration string.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// UnmarshalJSON reads a duration string ("1s", "36h", or whole days such as "7d"), or a
// number of seconds.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		var secs float64
		if err := json.Unmarshal(b, &secs); err != nil {
			return fmt.Errorf("duration must be a string such as \"1s\" or a number of seconds")
		}
		if secs < 0 || secs > 1e9 {
			return fmt.Errorf("duration %v s is out of range", secs)
		}
		*d = Duration(time.Duration(secs * float64(time.Second)))
		return nil
	}
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.ParseInt(days, 10, 64)
		if err != nil || n < 0 || n > 100_000 {
			return fmt.Errorf("duration %q: want whole days such as \"7d\"", s)
		}
		*d = Duration(time.Duration(n) * 24 * time.Hour)
		return nil
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("duration %q: %w", s, err)
	}
	*d = Duration(v)
	return nil
}

// LoadConfig reads and validates a transmitters file.
func LoadConfig(path string) (Config, error) {
	const op = "load transmitters"
	f, err := os.Open(path)
	if err != nil {
		return Config{}, strata.Errorf(strata.Invalid, op, "%w", err)
	}
	defer f.Close()
	b := make([]byte, 0, 4096)
	buf := bytes.NewBuffer(b)
	if _, err := buf.ReadFrom(&limitReader{f, maxConfigSize + 1}); err != nil {
		return Config{}, strata.Errorf(strata.Invalid, op, "%s: %w", path, err)
	}
	if buf.Len() > maxConfigSize {
		return Config{}, strata.Errorf(strata.Invalid, op, "%s is larger than %d bytes", path, maxConfigSize)
	}
	cfg, err := ParseConfig(buf.Bytes())
	if err != nil {
		return Config{}, fmt.Errorf("%s: %w", path, err)
	}
	return cfg, nil
}

type limitReader struct {
	f interface{ Read([]byte) (int, error) }
	n int
}

func (l *limitReader) Read(p []byte) (int, error) {
	if l.n <= 0 {
		return 0, fmt.Errorf("too large")
	}
	if len(p) > l.n {
		p = p[:l.n]
	}
	n, err := l.f.Read(p)
	l.n -= n
	return n, err
}

// ParseConfig decodes and validates a transmitters configuration. Unknown fields are errors
// (outside each transmitter's "options", which its adapter checks). Every error is Invalid.
func ParseConfig(b []byte) (Config, error) {
	const op = "parse transmitters"
	var cfg Config
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&cfg); err != nil {
		return Config{}, strata.Errorf(strata.Invalid, op, "%w", err)
	}
	// More misses a stray closing bracket; only the end of the input may follow the object.
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return Config{}, strata.Errorf(strata.Invalid, op, "trailing data after the configuration object")
	}
	if err := cfg.Validate(); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

// Validate checks the configuration: unique valid names, a type on each, settings in range,
// filters that compile. Every error is Invalid.
func (c Config) Validate() error {
	const op = "transmitters config"
	if _, err := c.leaseTTL(); err != nil {
		return err
	}
	if c.Prune != nil {
		if _, err := c.Prune.schedule(); err != nil {
			return strata.Errorf(strata.Invalid, op, "prune: %w", err)
		}
	}
	seen := map[string]bool{}
	for i, t := range c.Transmitters {
		if err := strata.ValidateTransmitterName(op, t.Name); err != nil {
			return strata.Errorf(strata.Invalid, op, "transmitter %d: %w", i, err)
		}
		if seen[t.Name] {
			return strata.Errorf(strata.Invalid, op, "transmitter %q appears twice", t.Name)
		}
		seen[t.Name] = true
		if _, err := t.settings(c.Prune); err != nil {
			return err
		}
	}
	return nil
}

// leaseTTL returns the lease duration with its default applied.
func (c Config) leaseTTL() (time.Duration, error) {
	d := time.Duration(c.LeaseTTL)
	switch {
	case d == 0:
		return DefaultLeaseTTL, nil
	case d < time.Second || d > 24*time.Hour:
		return 0, strata.Errorf(strata.Invalid, "transmitters config", "leaseTTL %s is not between 1s and 24h", d)
	}
	return d, nil
}

// pruneSchedule is a PruneConfig with defaults applied; zero ages prune nothing.
type pruneSchedule struct {
	sent, dead, every time.Duration
}

func (p *PruneConfig) schedule() (pruneSchedule, error) {
	if p == nil {
		return pruneSchedule{}, nil
	}
	s := pruneSchedule{sent: time.Duration(p.SentAfter), dead: time.Duration(p.DeadAfter), every: time.Duration(p.Every)}
	switch {
	case s.sent < 0 || s.dead < 0:
		return pruneSchedule{}, fmt.Errorf("negative sentAfter or deadAfter")
	case s.every < 0 || (s.every > 0 && s.every < time.Second):
		return pruneSchedule{}, fmt.Errorf("every %s is shorter than 1s", s.every)
	case s.sent == 0 && s.dead == 0 && s.every != 0:
		return pruneSchedule{}, fmt.Errorf("every is set but neither sentAfter nor deadAfter")
	case s.every == 0:
		s.every = DefaultPruneEvery
	}
	return s, nil
}

// settings are a transmitter's forwarding settings with defaults applied.
type settings struct {
	batch       int
	maxRetries  int
	retryDelay  time.Duration
	maxDelay    time.Duration
	exponential bool
	mode        Mode
	payload     Payload
	filter      hub.Filter
	prune       pruneSchedule
}

// settings returns the transmitter's settings; filePrune is the file's prune schedule.
func (t TransmitterConfig) settings(filePrune *PruneConfig) (settings, error) {
	const op = "transmitters config"
	bad := func(format string, args ...any) (settings, error) {
		return settings{}, strata.Errorf(strata.Invalid, op, "transmitter %q: "+format, append([]any{t.Name}, args...)...)
	}
	s := settings{batch: t.BatchSize, maxRetries: DefaultMaxRetries, retryDelay: time.Duration(t.RetryDelay),
		maxDelay: time.Duration(t.MaxDelay), exponential: true, mode: t.Mode, payload: t.Payload}
	if t.Type == "" {
		return bad("no type (nats, amqp, kafka, redis or webhook)")
	}
	switch {
	case s.batch == 0:
		s.batch = DefaultBatchSize
	case s.batch < 0 || s.batch > MaxBatchSize:
		return bad("batchSize %d is not between 1 and %d", s.batch, MaxBatchSize)
	}
	if t.MaxRetries != nil {
		s.maxRetries = *t.MaxRetries
		if s.maxRetries < 0 || s.maxRetries > 1000 {
			return bad("maxRetries %d is not between 0 and 1000", s.maxRetries)
		}
	}
	switch {
	case s.retryDelay < 0 || s.maxDelay < 0:
		return bad("negative retry delay")
	case s.retryDelay == 0 && t.RetryDelay == 0:
		s.retryDelay = DefaultRetryDelay
	}
	if s.maxDelay == 0 {
		s.maxDelay = max(DefaultMaxDelay, s.retryDelay)
	}
	if s.maxDelay < s.retryDelay {
		return bad("maxDelay %s is shorter than retryDelay %s", s.maxDelay, s.retryDelay)
	}
	if t.ExponentialBackoff != nil {
		s.exponential = *t.ExponentialBackoff
	}
	switch s.mode {
	case "":
		s.mode = Structured
	case Structured, Binary:
	default:
		return bad("mode %q is not structured or binary", s.mode)
	}
	switch s.payload {
	case "":
		s.payload = PayloadStored
	case PayloadStored, PayloadRedacted, PayloadRevealed:
	default:
		return bad("payload %q is not stored, redacted or revealed", s.payload)
	}
	f, err := t.Filter.Compile()
	if err != nil {
		return bad("filter: %w", err)
	}
	s.filter = f
	prune := filePrune
	if t.Prune != nil {
		prune = t.Prune
	}
	if s.prune, err = prune.schedule(); err != nil {
		return bad("prune: %w", err)
	}
	return s, nil
}

// DecodeOptions decodes an adapter's options strictly (unknown fields are errors) into v. An
// empty raw leaves v as it is.
func DecodeOptions(sc SinkConfig, v any) error {
	if len(bytes.TrimSpace(sc.Options)) == 0 {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(sc.Options))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return strata.Errorf(strata.Invalid, "transmitter options", "transmitter %q: %w", sc.Name, err)
	}
	return nil
}
