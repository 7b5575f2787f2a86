package transmit

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/strata-events/strata"
)

// CloudEvents 1.0 (https://github.com/cloudevents/spec): every event goes out as a CloudEvent.
// The context attributes of an event:
//
//	specversion      "1.0"
//	id               the event ID (the idempotency key: a redelivery carries the same id)
//	source           the configured source, e.g. "urn:strata:ca.example" (default "strata")
//	type             the event type
//	subject          the stream
//	time             RecordedAt, RFC 3339 with microseconds, UTC
//	datacontenttype  "application/json"
//
// and the extensions, present when set:
//
//	strataposition   the place in the global log ("N" or "C.E")
//	strataversion    the version in the stream (integer)
//	strataschema     the payload's schema version (integer)
//	strataoccurred   OccurredAt (RFC 3339)
//	stratatenant, strataprincipal, stratasession, stratacorrelation, stratacausation,
//	stratasubsystem, stratacategory: the well-known metadata
//	stratameta       the other metadata keys, as a JSON object in a string
//
// In structured mode the message body is the JSON object of all attributes with "data" holding
// the payload (content type application/cloudevents+json). In binary mode the body is the
// payload and every attribute travels as a header named by the transport's binding (ce-id on
// HTTP and NATS, ce_id on Kafka, cloudEvents:id on AMQP).

// Content types of the two modes.
const (
	ContentTypeStructured = "application/cloudevents+json"
	ContentTypeJSON       = "application/json"
	SpecVersion           = "1.0"
	// DefaultSource is the CloudEvents source when the configuration gives none.
	DefaultSource = "strata"
)

// Attr is one CloudEvents attribute: a context attribute or an extension.
type Attr struct {
	Name, Value string
	// Integer is set for attributes of the CloudEvents type Integer (unquoted in JSON).
	Integer bool
}

const ceTime = "2006-01-02T15:04:05.999999Z07:00"

// Attributes returns the CloudEvents attributes of e (all but data), in the order above.
func Attributes(source string, e *strata.Event) []Attr {
	if source == "" {
		source = DefaultSource
	}
	attrs := make([]Attr, 0, 16)
	attrs = append(attrs,
		Attr{Name: "specversion", Value: SpecVersion},
		Attr{Name: "id", Value: e.ID.String()},
		Attr{Name: "source", Value: source},
		Attr{Name: "type", Value: e.Type},
		Attr{Name: "subject", Value: e.Stream},
	)
	if !e.RecordedAt.IsZero() {
		attrs = append(attrs, Attr{Name: "time", Value: e.RecordedAt.UTC().Format(ceTime)})
	}
	attrs = append(attrs,
		Attr{Name: "datacontenttype", Value: ContentTypeJSON},
		Attr{Name: "strataposition", Value: e.Position.String()},
		Attr{Name: "strataversion", Value: strconv.FormatInt(e.Version, 10), Integer: true},
		Attr{Name: "strataschema", Value: strconv.Itoa(max(e.Schema, 1)), Integer: true},
	)
	if !e.OccurredAt.IsZero() && !e.OccurredAt.Equal(e.RecordedAt) {
		attrs = append(attrs, Attr{Name: "strataoccurred", Value: e.OccurredAt.UTC().Format(ceTime)})
	}
	m := e.Meta
	for _, kv := range [...]struct{ name, val string }{
		{"stratatenant", m.Tenant}, {"strataprincipal", m.Principal}, {"stratasession", m.Session},
		{"stratacorrelation", m.Correlation}, {"stratacausation", m.Causation},
		{"stratasubsystem", m.Subsystem}, {"stratacategory", m.Category},
	} {
		if kv.val != "" {
			attrs = append(attrs, Attr{Name: kv.name, Value: kv.val})
		}
	}
	if len(m.Extra) > 0 || m.Subject != "" {
		// The data subject goes with the other keys, where it stood while it was one of them.
		extra, _ := strata.Metadata{Subject: m.Subject, Extra: m.Extra}.MarshalJSON()
		attrs = append(attrs, Attr{Name: "stratameta", Value: string(extra)})
	}
	return attrs
}

// AppendStructured appends the structured-mode JSON of a CloudEvent with attrs and data (JSON;
// empty means null) to dst.
func AppendStructured(dst []byte, attrs []Attr, data []byte) []byte {
	dst = append(dst, '{')
	for i, a := range attrs {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendJSONString(dst, a.Name)
		dst = append(dst, ':')
		if a.Integer {
			dst = append(dst, a.Value...)
		} else {
			dst = appendJSONString(dst, a.Value)
		}
	}
	dst = append(dst, `,"data":`...)
	if len(bytes.TrimSpace(data)) == 0 {
		dst = append(dst, "null"...)
	} else {
		dst = append(dst, data...)
	}
	return append(dst, '}')
}

const hexDigits = "0123456789abcdef"

// appendJSONString appends s as a JSON string, escaping what JSON requires and replacing
// invalid UTF-8 with U+FFFD, as encoding/json does.
func appendJSONString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += n
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += n
			start = i
			continue
		}
		i += n
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// CloudEvent is a decoded structured-mode CloudEvent, as a consumer reads one.
type CloudEvent struct {
	SpecVersion     string
	ID              string
	Source          string
	Type            string
	Subject         string
	Time            time.Time
	DataContentType string
	// Data is the payload's JSON (nil when the event has none).
	Data json.RawMessage
	// Extensions holds every other attribute, integers in their decimal form.
	Extensions map[string]string
}

// ParseStructured decodes a structured-mode CloudEvent (JSON). It requires specversion 1.0 and
// the attributes id, source and type, and rejects attribute values that are objects or arrays.
// Every error is Invalid; it never panics on bad input.
func ParseStructured(b []byte) (CloudEvent, error) {
	const op = "parse cloudevent"
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return CloudEvent{}, strata.Errorf(strata.Invalid, op, "not a JSON object: %w", err)
	}
	ce := CloudEvent{Extensions: map[string]string{}}
	for k, v := range raw {
		if k == "data" {
			if !bytes.Equal(bytes.TrimSpace(v), []byte("null")) {
				ce.Data = v
			}
			continue
		}
		if k == "data_base64" {
			return CloudEvent{}, strata.Errorf(strata.Invalid, op, "binary data (data_base64) is not supported")
		}
		var s string
		if err := json.Unmarshal(v, &s); err != nil {
			var n json.Number
			dec := json.NewDecoder(bytes.NewReader(v))
			dec.UseNumber()
			if err := dec.Decode(&n); err != nil {
				var bl bool
				if err := json.Unmarshal(v, &bl); err != nil {
					return CloudEvent{}, strata.Errorf(strata.Invalid, op, "attribute %q is not a string, number or boolean", k)
				}
				s = strconv.FormatBool(bl)
			} else {
				s = n.String()
			}
		}
		switch k {
		case "specversion":
			ce.SpecVersion = s
		case "id":
			ce.ID = s
		case "source":
			ce.Source = s
		case "type":
			ce.Type = s
		case "subject":
			ce.Subject = s
		case "datacontenttype":
			ce.DataContentType = s
		case "time":
			t, err := time.Parse(time.RFC3339Nano, s)
			if err != nil {
				return CloudEvent{}, strata.Errorf(strata.Invalid, op, "time %q is not RFC 3339", s)
			}
			ce.Time = t
		default:
			ce.Extensions[k] = s
		}
	}
	switch {
	case ce.SpecVersion != SpecVersion:
		return CloudEvent{}, strata.Errorf(strata.Invalid, op, "specversion %q, want %q", ce.SpecVersion, SpecVersion)
	case ce.ID == "" || ce.Source == "" || ce.Type == "":
		return CloudEvent{}, strata.Errorf(strata.Invalid, op, "id, source and type are required")
	}
	return ce, nil
}

// EventID returns the strata event ID the CloudEvent carries.
func (ce CloudEvent) EventID() (uuid.UUID, error) {
	id, err := uuid.Parse(ce.ID)
	if err != nil {
		return uuid.Nil, strata.Errorf(strata.Invalid, "cloudevent id", "%q is not a UUID: %w", ce.ID, err)
	}
	return id, nil
}

// Position returns the strataposition extension.
func (ce CloudEvent) Position() (strata.Position, error) {
	p, ok := ce.Extensions["strataposition"]
	if !ok {
		return strata.Start, strata.Errorf(strata.Invalid, "cloudevent position", "no strataposition extension")
	}
	return strata.ParsePosition(p)
}

// Version returns the strataversion extension.
func (ce CloudEvent) Version() (int64, error) {
	v, err := strconv.ParseInt(ce.Extensions["strataversion"], 10, 64)
	if err != nil {
		return 0, strata.Errorf(strata.Invalid, "cloudevent version", "strataversion: %w", err)
	}
	return v, nil
}

// String names the event for logs.
func (ce CloudEvent) String() string { return fmt.Sprintf("%s %s (%s)", ce.Type, ce.ID, ce.Subject) }
