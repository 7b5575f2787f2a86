package main

import (
	"bufio"
	"encoding/json"
	"io"
	"time"

	"github.com/google/uuid"

	"github.com/strata-events/strata"
)

// eventLine is the one JSON form of an event that the CLI prints: one object per line.
type eventLine struct {
	ID         uuid.UUID       `json:"id"`
	Stream     string          `json:"stream"`
	Version    int64           `json:"version"`
	Position   string          `json:"position"` // strata.Position.String: "42" or "1017.42"
	Type       string          `json:"type"`
	Schema     int             `json:"schema"`
	Data       json.RawMessage `json:"data"` // the payload as JSON, not a string
	Meta       strata.Metadata `json:"meta"`
	RecordedAt string          `json:"recordedAt"` // RFC 3339, UTC
	OccurredAt string          `json:"occurredAt"`
}

func newEventLine(e strata.Event) eventLine {
	return eventLine{
		ID: e.ID, Stream: e.Stream, Version: e.Version, Position: e.Position.String(),
		Type: e.Type, Schema: e.Schema, Data: e.Data, Meta: e.Meta,
		RecordedAt: timeString(e.RecordedAt), OccurredAt: timeString(e.OccurredAt),
	}
}

// appendLine is the result of `strata append`.
type appendLine struct {
	Stream       string `json:"stream"`
	FirstVersion int64  `json:"firstVersion"`
	LastVersion  int64  `json:"lastVersion"`
	Replayed     bool   `json:"replayed"`
}

// streamLine is one stream of `strata streams`.
type streamLine struct {
	Name            string `json:"name"`
	Version         int64  `json:"version"`
	FirstRecordedAt string `json:"firstRecordedAt"`
	LastRecordedAt  string `json:"lastRecordedAt"`
}

func timeString(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

// lineWriter writes JSON lines through a buffer. Payloads are written as stored: no HTML
// escaping, compacted to one line.
type lineWriter struct {
	buf *bufio.Writer
	enc *json.Encoder
}

func newLineWriter(w io.Writer) *lineWriter {
	buf := bufio.NewWriterSize(w, 64<<10)
	enc := json.NewEncoder(buf)
	enc.SetEscapeHTML(false)
	return &lineWriter{buf: buf, enc: enc}
}

// write encodes v as one line.
func (w *lineWriter) write(v any) error { return w.enc.Encode(v) }

func (w *lineWriter) flush() error { return w.buf.Flush() }
