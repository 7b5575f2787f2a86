package transmit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/strata-events/strata"
)

// Mode is the CloudEvents content mode of a transmitter.
type Mode string

// The modes.
const (
	// Structured: the body is the CloudEvent as JSON (the default).
	Structured Mode = "structured"
	// Binary: the body is the payload; the attributes are headers.
	Binary Mode = "binary"
)

// Message is one event on its way to a destination, with its CloudEvents attributes.
type Message struct {
	// Event is the event as it goes out: after the transmitter's payload transform.
	Event strata.Event
	// Attrs are its CloudEvents attributes (all but data).
	Attrs []Attr
	// Redelivery is set when the event is re-sent from the dead-letter queue.
	Redelivery bool

	structured []byte
}

// NewMessage builds the message of e with the CloudEvents source.
func NewMessage(source string, e strata.Event) *Message {
	return &Message{Event: e, Attrs: Attributes(source, &e)}
}

// ID returns the event ID as a string: the idempotency key every adapter sends.
func (m *Message) ID() string { return m.Attrs[1].Value }

// Structured returns the structured-mode body (built once).
func (m *Message) Structured() []byte {
	if m.structured == nil {
		m.structured = AppendStructured(make([]byte, 0, 256+len(m.Event.Data)), m.Attrs, m.Event.Data)
	}
	return m.structured
}

// Data returns the payload, the binary-mode body ("null" when empty).
func (m *Message) Data() []byte {
	if len(m.Event.Data) == 0 {
		return []byte("null")
	}
	return m.Event.Data
}

// Body returns the body and content type of the message in mode.
func (m *Message) Body(mode Mode) ([]byte, string) {
	if mode == Binary {
		return m.Data(), ContentTypeJSON
	}
	return m.Structured(), ContentTypeStructured
}

// Headers returns the binary-mode headers: every attribute but datacontenttype (which travels
// as the transport's content type), named prefix+name.
func (m *Message) Headers(prefix string) []Attr {
	out := make([]Attr, 0, len(m.Attrs))
	for _, a := range m.Attrs {
		if a.Name == "datacontenttype" {
			continue
		}
		out = append(out, Attr{Name: prefix + a.Name, Value: a.Value})
	}
	return out
}

// Sink delivers messages to one destination. Implementations live in the subpackages (nats,
// amqp, kafka, redis, webhook); a Sink is used by one transmitter goroutine at a time.
type Sink interface {
	// Send delivers batch, in order, and returns when the destination has confirmed every
	// message or failed. It returns nil when all were confirmed; a *BatchError when some failed
	// (the others were confirmed); any other error when none may be assumed delivered (the
	// destination is unreachable, say). Errors for messages the destination refused are marked
	// with Reject; all other failures are retried without limit. After a failure the next Send
	// reconnects as needed.
	Send(ctx context.Context, batch []*Message) error
	// Close releases the connection.
	Close() error
}

// SinkConfig is what a SinkFactory gets from a transmitter's configuration.
type SinkConfig struct {
	// Name is the transmitter's name.
	Name string
	// Mode is the CloudEvents content mode.
	Mode Mode
	// Options is the "options" object of the transmitter, for the adapter to decode.
	Options json.RawMessage
}

// SinkFactory opens a Sink from a configuration. Adapters export one (e.g. nats.Factory).
type SinkFactory func(ctx context.Context, sc SinkConfig) (Sink, error)

// BatchError reports the messages of a batch that failed, by index in the batch; every other
// message of the batch was delivered.
type BatchError struct {
	Errors map[int]error
}

// Error lists the failures.
func (e *BatchError) Error() string {
	idx := make([]int, 0, len(e.Errors))
	for i := range e.Errors {
		idx = append(idx, i)
	}
	sort.Ints(idx)
	var b strings.Builder
	fmt.Fprintf(&b, "%d message(s) failed", len(idx))
	for n, i := range idx {
		if n == 3 {
			b.WriteString("; ...")
			break
		}
		fmt.Fprintf(&b, "; #%d: %v", i, e.Errors[i])
	}
	return b.String()
}

// Fail records err for message i, creating the error when be is nil, and returns it.
func (e *BatchError) Fail(i int, err error) *BatchError {
	if e == nil {
		e = &BatchError{Errors: map[int]error{}}
	}
	e.Errors[i] = err
	return e
}

// Err returns e as an error, nil when e is nil or empty.
func (e *BatchError) Err() error {
	if e == nil || len(e.Errors) == 0 {
		return nil
	}
	return e
}

type rejection struct{ err error }

func (r *rejection) Error() string { return "rejected: " + r.err.Error() }
func (r *rejection) Unwrap() error { return r.err }

// Reject marks err as the destination's refusal of one message (too large, malformed, a 4xx
// answer): such failures count toward the transmitter's retry limit, after which the event is
// dead-lettered. Unmarked failures (unreachable, timed out) are retried without limit.
func Reject(err error) error {
	if err == nil {
		return nil
	}
	return &rejection{err}
}

// IsRejection reports whether err was marked with Reject.
func IsRejection(err error) bool {
	var r *rejection
	return errors.As(err, &r)
}

type notSent struct{ err error }

func (n *notSent) Error() string { return n.err.Error() }
func (n *notSent) Unwrap() error { return n.err }

// NotSent marks the error of a message the sink did not try to send (an earlier message it
// must follow failed): the transmitter retries it without counting an attempt.
func NotSent(err error) error {
	if err == nil {
		return nil
	}
	return &notSent{err}
}

func isNotSent(err error) bool {
	var n *notSent
	return errors.As(err, &n)
}

// Unavailable wraps a transport failure of op as an Unavailable *strata.Error.
func Unavailable(op string, err error) error {
	if err == nil {
		return nil
	}
	var se *strata.Error
	if errors.As(err, &se) {
		return err
	}
	return &strata.Error{Code: strata.Unavailable, Op: op, Err: err}
}

// Expand fills a destination template (a subject, routing key, topic, stream key) for m:
// {type}, {stream}, {tenant}, {category} and {subsystem} become the event's, each passed
// through clean (nil keeps them as they are), so that an adapter can keep its separators out.
func Expand(template string, m *Message, clean func(string) string) string {
	if !strings.Contains(template, "{") {
		return template
	}
	if clean == nil {
		clean = func(s string) string { return s }
	}
	e := &m.Event
	value := func(name string) (string, bool) {
		switch name {
		case "{type}":
			return e.Type, true
		case "{stream}":
			return e.Stream, true
		case "{tenant}":
			return e.Meta.Tenant, true
		case "{category}":
			return e.Meta.Category, true
		case "{subsystem}":
			return e.Meta.Subsystem, true
		}
		return "", false
	}
	if v, ok := value(template); ok {
		return clean(v) // the common template: one placeholder and nothing else
	}
	// One pass, left to right, like strings.Replacer; an unknown {name} stays as it is.
	var b strings.Builder
	b.Grow(len(template) + 32)
	rest := template
	for {
		i := strings.IndexByte(rest, '{')
		if i < 0 {
			b.WriteString(rest)
			return b.String()
		}
		b.WriteString(rest[:i])
		rest = rest[i:]
		j := strings.IndexByte(rest, '}')
		if j < 0 {
			b.WriteString(rest)
			return b.String()
		}
		if v, ok := value(rest[:j+1]); ok {
			b.WriteString(clean(v))
			rest = rest[j+1:]
			continue
		}
		// Not a placeholder: keep the brace and look for the next one after it.
		b.WriteByte('{')
		rest = rest[1:]
	}
}
