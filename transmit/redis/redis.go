// Package redis is the transmitter adapter for Redis Streams: each event becomes one entry,
// added with XADD in a pipeline per batch. Redis assigns the entry ID; the event ID travels in
// the field "id", the idempotency key a consumer deduplicates on.
//
// Options (the "options" object of a transmitter of type "redis"):
//
//	{"addr": "127.0.0.1:6379", "stream": "strata:{type}", "maxLen": 1000000}
//
// In structured mode an entry has the fields id, type, subject, position and cloudevent (the
// structured JSON); in binary mode one field per CloudEvents attribute plus data.
package redis

import (
	"context"
	"errors"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/strata-events/strata"
	"github.com/strata-events/strata/transmit"
)

// Options configure the adapter.
type Options struct {
	// Addr is host:port; default 127.0.0.1:6379. URL (redis://...) overrides it; Password and
	// DB, when set, override the URL's.
	Addr     string `json:"addr,omitempty"`
	URL      string `json:"url,omitempty"`
	Password string `json:"password,omitempty"`
	// PasswordEnv names an environment variable holding the password.
	PasswordEnv string `json:"passwordEnv,omitempty"`
	DB          int    `json:"db,omitempty"`
	// Stream is the key template; default "strata:events".
	Stream string `json:"stream,omitempty"`
	// MaxLen, when positive, trims each stream to about this many entries (XADD MAXLEN ~).
	MaxLen int64 `json:"maxLen,omitempty"`
	// Timeout bounds one batch; default 10s.
	Timeout transmit.Duration `json:"timeout,omitempty"`
	// Mode is set from the transmitter's mode by Factory.
	Mode transmit.Mode `json:"-"`
}

// Sink adds entries to Redis streams.
type Sink struct {
	o Options
	c *goredis.Client
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

// Open makes a client; it connects on first use and reconnects as needed.
func Open(_ context.Context, o Options) (*Sink, error) {
	var opts *goredis.Options
	if o.URL != "" {
		var err error
		if opts, err = goredis.ParseURL(o.URL); err != nil {
			return nil, strata.Errorf(strata.Invalid, "redis open", "url: %w", err)
		}
		// The url replaces addr; the password and db options still apply.
		if o.Password != "" {
			opts.Password = o.Password
		}
		if o.DB != 0 {
			opts.DB = o.DB
		}
	} else {
		if o.Addr == "" {
			o.Addr = "127.0.0.1:6379"
		}
		opts = &goredis.Options{Addr: o.Addr, Password: o.Password, DB: o.DB}
	}
	if o.PasswordEnv != "" {
		opts.Password = getenv(o.PasswordEnv)
	}
	if o.Stream == "" {
		o.Stream = "strata:events"
	}
	if o.Timeout <= 0 {
		o.Timeout = transmit.Duration(10 * time.Second)
	}
	opts.MaxRetries = -1 // the transmitter retries; a pipeline must not be re-sent half way
	opts.DialTimeout = 2 * time.Second
	return &Sink{o: o, c: goredis.NewClient(opts)}, nil
}

// Send implements transmit.Sink.
func (s *Sink) Send(ctx context.Context, batch []*transmit.Message) error {
	const op = "redis xadd"
	ctx, cancel := context.WithTimeout(ctx, time.Duration(s.o.Timeout))
	defer cancel()
	pipe := s.c.Pipeline()
	cmds := make([]*goredis.StringCmd, len(batch))
	for i, m := range batch {
		var values []any
		if s.o.Mode == transmit.Binary {
			values = make([]any, 0, 2*len(m.Attrs)+2)
			for _, a := range m.Attrs {
				values = append(values, a.Name, a.Value)
			}
			values = append(values, "data", m.Data())
		} else {
			values = []any{"id", m.ID(), "type", m.Event.Type, "subject", m.Event.Stream,
				"position", m.Event.Position.String(), "cloudevent", m.Structured()}
		}
		args := &goredis.XAddArgs{Stream: transmit.Expand(s.o.Stream, m, nil), Values: values}
		if s.o.MaxLen > 0 {
			args.MaxLen, args.Approx = s.o.MaxLen, true
		}
		cmds[i] = pipe.XAdd(ctx, args)
	}
	_, err := pipe.Exec(ctx)
	if err == nil {
		return nil
	}
	var be *transmit.BatchError
	for i, c := range cmds {
		cerr := c.Err()
		if cerr == nil {
			continue
		}
		var rerr goredis.Error
		if !errors.As(cerr, &rerr) {
			// Not an answer of the server: the connection failed, and with it the pipeline.
			return transmit.Unavailable(op, cerr)
		}
		if transient(cerr.Error()) {
			be = be.Fail(i, transmit.Unavailable(op, cerr))
			continue
		}
		be = be.Fail(i, transmit.Reject(cerr))
	}
	if be.Err() == nil {
		return transmit.Unavailable(op, err)
	}
	return be
}

// transient reports whether a server error is about the server's state, not the entry.
func transient(msg string) bool {
	for _, p := range []string{"LOADING", "BUSY", "OOM", "READONLY", "MASTERDOWN", "TRYAGAIN", "CLUSTERDOWN", "NOREPLICAS", "MOVED", "ASK"} {
		if strings.HasPrefix(msg, p) {
			return true
		}
	}
	return false
}

// Close closes the client.
func (s *Sink) Close() error { return s.c.Close() }
