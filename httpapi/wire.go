package httpapi

import (
	"bytes"
	"encoding/json"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/google/uuid"

	"github.com/strata-events/strata"
)

// Event is the JSON form of an event, the same as `strata read` prints.
type Event struct {
	ID         uuid.UUID       `json:"id"`
	Stream     string          `json:"stream"`
	Version    int64           `json:"version"`
	Position   string          `json:"position"`
	Type       string          `json:"type"`
	Schema     int             `json:"schema"`
	Data       json.RawMessage `json:"data"`
	Meta       strata.Metadata `json:"meta"`
	RecordedAt string          `json:"recordedAt"`
	OccurredAt string          `json:"occurredAt"`
}

func eventJSON(e strata.Event) Event {
	data := e.Data
	if len(data) == 0 {
		data = json.RawMessage("{}")
	}
	return Event{
		ID: e.ID, Stream: e.Stream, Version: e.Version, Position: e.Position.String(),
		Type: e.Type, Schema: e.Schema, Data: data, Meta: e.Meta,
		RecordedAt: timeString(e.RecordedAt), OccurredAt: timeString(e.OccurredAt),
	}
}

func timeString(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

// AppendRequest is the body of an append.
type AppendRequest struct {
	// Expected is "any" (the default), "no-stream", "exists" or a version number (a JSON number
	// or a string of digits).
	Expected json.RawMessage `json:"expected,omitempty"`
	Events   []NewEvent      `json:"events"`
}

// NewEvent is one event of an [AppendRequest].
type NewEvent struct {
	ID         *uuid.UUID      `json:"id,omitempty"`
	Type       string          `json:"type"`
	Schema     int             `json:"schema,omitempty"`
	Data       json.RawMessage `json:"data,omitempty"`
	Meta       strata.Metadata `json:"meta"`
	OccurredAt string          `json:"occurredAt,omitempty"`
}

// AppendResponse says where an append put its events.
type AppendResponse struct {
	Stream       string `json:"stream"`
	FirstVersion int64  `json:"firstVersion"`
	LastVersion  int64  `json:"lastVersion"`
	Replayed     bool   `json:"replayed"`
}

// EventsPage is a page of events. Next is the cursor to read on from: a version for a stream
// (absent at the end), a position for the global log (always set: poll with it).
type EventsPage struct {
	Events []Event `json:"events"`
	Next   string  `json:"next,omitempty"`
}

// StreamJSON describes a stream.
type StreamJSON struct {
	Name            string `json:"name"`
	Version         int64  `json:"version"`
	FirstRecordedAt string `json:"firstRecordedAt"`
	LastRecordedAt  string `json:"lastRecordedAt"`
}

// StreamsPage is a page of streams; Next, when set, is the name to list after.
type StreamsPage struct {
	Streams []StreamJSON `json:"streams"`
	Next    string       `json:"next,omitempty"`
}

func streamJSON(i strata.StreamInfo) StreamJSON {
	return StreamJSON{Name: i.Stream, Version: i.Version, FirstRecordedAt: timeString(i.FirstRecordedAt), LastRecordedAt: timeString(i.LastRecordedAt)}
}

// parseExpected reads the expected field.
func parseExpected(raw json.RawMessage) (strata.ExpectedVersion, error) {
	const op = "append"
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return strata.Any, nil
	}
	s := string(raw)
	if raw[0] == '"' {
		if err := json.Unmarshal(raw, &s); err != nil {
			return strata.ExpectedVersion{}, invalidf(op, "expected: %v", err)
		}
	}
	switch s {
	case "any":
		return strata.Any, nil
	case "no-stream":
		return strata.NoStream, nil
	case "exists":
		return strata.StreamExists, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return strata.ExpectedVersion{}, invalidf(op, "expected %s: want \"any\", \"no-stream\", \"exists\" or a version number (0 or more)", s)
	}
	return strata.Exact(n), nil
}

// decodeJSON reads a JSON body into v: it must be application/json, one value, with no unknown
// fields and no member that its object has twice (see repeatedMember).
func decodeJSON(r *http.Request, op string, v any) error {
	ct := r.Header.Get("Content-Type")
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil || mt != "application/json" {
		return strata.Errorf(CodeUnsupportedMediaType, op, "the body must be application/json, not %q", ct)
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		if e := bodyError(err); e != err {
			return e
		}
		return invalidf(op, "read the body: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return invalidf(op, "the body is not valid JSON for this request: %s", jsonMessage(err))
	}
	// More would report false for a stray '}' or ']' after the value: read the next token.
	if _, err := dec.Token(); err != io.EOF {
		if err != nil {
			return invalidf(op, "the body is not valid JSON for this request: %s", jsonMessage(err))
		}
		return invalidf(op, "the body holds more than one JSON value")
	}
	name, err := repeatedMember(json.NewDecoder(bytes.NewReader(body)), false)
	if err != nil {
		return invalidf(op, "the body is not valid JSON for this request: %s", jsonMessage(err))
	}
	if name != "" {
		return invalidf(op, "the body has the member %q twice in one object: which one counts is ambiguous", name)
	}
	return nil
}

// repeatedMember returns the first member name of the JSON value dec reads that its object
// already had, and "" when none repeats. encoding/json lets the last of repeated members win,
// and matches struct fields without regard to case: a body with "expected" or "type" twice
// means one thing to the server and perhaps another to a proxy, a log or the client's own
// reading. Names are compared as encoding/json matches fields (case-folded), but exactly in
// objects whose member name is "meta", which are maps of metadata keys. The value of a "data"
// member, a payload stored as it was sent, is not looked into.
func repeatedMember(dec *json.Decoder, exact bool) (string, error) {
	tok, err := dec.Token()
	if err != nil {
		return "", err
	}
	switch tok {
	case json.Delim('['):
		for dec.More() {
			if name, err := repeatedMember(dec, false); name != "" || err != nil {
				return name, err
			}
		}
	case json.Delim('{'):
		seen := make(map[string]bool)
		for dec.More() {
			tok, err := dec.Token()
			if err != nil {
				return "", err
			}
			name, _ := tok.(string)
			key := name
			if !exact {
				key = foldName(name)
			}
			if seen[key] {
				return name, nil
			}
			seen[key] = true
			if strings.EqualFold(name, "data") {
				var skip json.RawMessage
				if err := dec.Decode(&skip); err != nil {
					return "", err
				}
				continue
			}
			if name, err := repeatedMember(dec, strings.EqualFold(name, "meta")); name != "" || err != nil {
				return name, err
			}
		}
	default:
		return "", nil // a scalar
	}
	_, err = dec.Token() // the closing bracket or brace
	return "", err
}

// foldName returns a key under which names that bytes.EqualFold finds equal, as encoding/json
// matches struct fields, are one: each rune replaced by the smallest of its case folds.
func foldName(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	for _, r := range s {
		m := r
		for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
			m = min(m, f)
		}
		b.WriteRune(m)
	}
	return b.String()
}

// jsonMessage is a JSON error without Go type names.
func jsonMessage(err error) string {
	msg := err.Error()
	msg = strings.TrimPrefix(msg, "json: ")
	if i := strings.Index(msg, " of type "); i > 0 {
		msg = msg[:i]
	}
	return msg
}

// intParam reads a query parameter as an integer in [0, max]; def when absent.
func intParam(r *http.Request, op, name string, def, max int64) (int64, error) {
	s := r.URL.Query().Get(name)
	if s == "" {
		return def, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 || n > max {
		return 0, invalidf(op, "%s=%q: want a whole number from 0 to %d", name, s, max)
	}
	return n, nil
}

func limitParam(r *http.Request, op string) (int, error) {
	n, err := intParam(r, op, "limit", DefaultPageLimit, MaxPageLimit)
	if err != nil {
		return 0, err
	}
	if n == 0 {
		n = DefaultPageLimit
	}
	return int(n), nil
}

func boolParam(r *http.Request, op, name string) (bool, error) {
	switch s := r.URL.Query().Get(name); s {
	case "", "false", "0":
		return false, nil
	case "true", "1":
		return true, nil
	default:
		return false, invalidf(op, "%s=%q: want true or false", name, s)
	}
}
