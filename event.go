package strata

import (
	"encoding/json"
	"time"

	"github.com/google/uuid"
)

// Event is a committed event as the store returns it.
type Event struct {
	// ID identifies the event; a client may choose it to make appends idempotent.
	ID uuid.UUID
	// Stream is the unit of consistency, e.g. "certificate-7F3A".
	Stream string
	// Version is the 1-based place of the event in its stream.
	Version int64
	// Position is the place of the event in the global log; see [Position].
	Position Position
	// Type is the event's name, e.g. "CertificateRevoked".
	Type string
	// Schema is the version of the payload's shape (for upcasting); 1 unless the writer said otherwise.
	Schema int
	// Data is the JSON payload exactly as it was appended.
	Data json.RawMessage
	// Meta holds who, why and where: tenant, principal, correlation and free keys.
	Meta Metadata
	// RecordedAt is the store's clock at commit (transaction time), UTC, microsecond precision.
	RecordedAt time.Time
	// OccurredAt is the domain time the writer supplied (valid time); RecordedAt when it supplied none.
	OccurredAt time.Time
}

// EventData is an event proposed to [Store.Append].
type EventData struct {
	// ID, if set, makes the append idempotent: appending the same IDs with the same content again
	// returns the first result and writes nothing. When zero, the store assigns a UUIDv7.
	ID uuid.UUID
	// Type is the event's name; required.
	Type string
	// Schema is the payload version; 0 means 1.
	Schema int
	// Data is the payload; it must be valid JSON. Nil means the JSON object {}.
	Data json.RawMessage
	// Meta is stored with the event.
	Meta Metadata
	// OccurredAt is the domain time of the event; zero means "when it was recorded".
	OccurredAt time.Time
}

// StreamAppend is one stream's part of [Store.AppendMulti].
type StreamAppend struct {
	Stream   string
	Expected ExpectedVersion
	Events   []EventData
}

// AppendResult tells where an append put its events.
type AppendResult struct {
	// Stream is the stream appended to.
	Stream string
	// FirstVersion and LastVersion are the versions of the first and last appended event.
	// LastVersion is the stream's version after the append: pass Exact(LastVersion) next time.
	FirstVersion, LastVersion int64
	// Replayed is true when every event had been appended before with the same IDs and content, so
	// that this call wrote nothing and returned the result of the first append.
	Replayed bool
}

// StreamInfo describes one stream.
type StreamInfo struct {
	Stream string
	// Exists is false for a stream that has no events; the other fields are then zero.
	Exists bool
	// Version is the version of the stream's last event.
	Version int64
	// FirstRecordedAt and LastRecordedAt are the commit times of its first and last events.
	FirstRecordedAt, LastRecordedAt time.Time
}
