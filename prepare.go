package strata

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
)

// Limits that every backend enforces, so that a store can move between backends.
const (
	// MaxStreamNameLen is the longest stream name, in bytes of UTF-8.
	MaxStreamNameLen = 255
	// MaxTypeLen is the longest event type name, in bytes.
	MaxTypeLen = 255
	// MaxEventsPerAppend is the most events one Append or AppendMulti may carry in all.
	MaxEventsPerAppend = 10_000
	// MaxDataLen is the largest payload of one event, in bytes.
	MaxDataLen = 8 << 20
	// MaxSchema is the largest schema version of an event: PostgreSQL stores it as an integer,
	// and a ledger leaf and an event signature as 32 bits, so that no two versions share one.
	MaxSchema = math.MaxInt32
	// MaxMetaLen is the largest encoded metadata of one event, in bytes.
	MaxMetaLen = 64 << 10
)

var emptyObject = json.RawMessage(`{}`)

// PrepareAppend validates a batch and fills in defaults: a UUIDv7 for each zero ID, schema 1 for
// schema 0, {} for nil data. It returns copies and never modifies its input. Every error is
// Invalid and names the offending stream or event, so that nothing is written for bad input.
// Backends call it first in Append and AppendMulti.
func PrepareAppend(op string, appends []StreamAppend) ([]StreamAppend, error) {
	if len(appends) == 0 {
		return nil, Errorf(Invalid, op, "no streams to append to")
	}
	total := 0
	seen := make(map[string]bool, len(appends))
	ids := make(map[uuid.UUID]bool)
	out := make([]StreamAppend, len(appends))
	for i, a := range appends {
		if err := ValidateStreamName(op, a.Stream); err != nil {
			return nil, err
		}
		if seen[a.Stream] {
			return nil, Errorf(Invalid, op, "stream %q appears twice in one append", a.Stream)
		}
		seen[a.Stream] = true
		if !a.Expected.Valid() {
			return nil, Errorf(Invalid, op, "stream %q: unknown expected version %s (use Any, NoStream, StreamExists or Exact(n) with n >= 0)", a.Stream, a.Expected)
		}
		if len(a.Events) == 0 {
			return nil, Errorf(Invalid, op, "stream %q: no events to append", a.Stream)
		}
		total += len(a.Events)
		if total > MaxEventsPerAppend {
			return nil, Errorf(Invalid, op, "too many events in one append: more than %d", MaxEventsPerAppend)
		}
		evs := make([]EventData, len(a.Events))
		for j, e := range a.Events {
			if err := prepareEvent(&e); err != nil {
				return nil, Errorf(Invalid, op, "stream %q event %d: %w", a.Stream, j, err)
			}
			if ids[e.ID] {
				return nil, Errorf(Invalid, op, "stream %q event %d: event ID %s appears twice in one append", a.Stream, j, e.ID)
			}
			ids[e.ID] = true
			evs[j] = e
		}
		out[i] = StreamAppend{Stream: a.Stream, Expected: a.Expected, Events: evs}
	}
	return out, nil
}

// ValidateStreamName returns an Invalid error unless name is non-empty, valid UTF-8, at most
// MaxStreamNameLen bytes, and free of control characters.
func ValidateStreamName(op, name string) error {
	if err := validateName("stream name", name, MaxStreamNameLen); err != nil {
		return Errorf(Invalid, op, "%w", err)
	}
	return nil
}

// ValidateEventType returns an Invalid error unless name is a valid event type name: non-empty,
// valid UTF-8, at most MaxTypeLen bytes, and free of control characters.
func ValidateEventType(op, name string) error {
	if err := validateName("event type", name, MaxTypeLen); err != nil {
		return Errorf(Invalid, op, "%w", err)
	}
	return nil
}

func validateName(what, s string, max int) error {
	switch {
	case s == "":
		return fmt.Errorf("empty %s", what)
	case len(s) > max:
		return fmt.Errorf("%s is %d bytes long, more than %d", what, len(s), max)
	case !utf8.ValidString(s):
		return fmt.Errorf("%s %q is not valid UTF-8", what, s)
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return fmt.Errorf("%s %q contains a control character", what, s)
		}
	}
	return nil
}

// Schema32 is a schema version as ledger leaves and event signatures encode it, in 32 bits. A
// version outside 0 to MaxSchema, which no append stores (a row edited in the database), is
// 0xFFFFFFFF: no stored version has that value, so the edit changes the encoding.
func Schema32(schema int) uint32 {
	if schema < 0 || schema > MaxSchema {
		return math.MaxUint32
	}
	return uint32(schema)
}

func prepareEvent(e *EventData) error {
	if err := validateName("event type", e.Type, MaxTypeLen); err != nil {
		return err
	}
	if e.Schema < 0 || e.Schema > MaxSchema {
		return fmt.Errorf("schema version %d out of range: 1 to %d (0 means 1)", e.Schema, MaxSchema)
	}
	if e.Schema == 0 {
		e.Schema = 1
	}
	if e.Data == nil {
		e.Data = emptyObject
	}
	if len(e.Data) > MaxDataLen {
		return fmt.Errorf("data is %d bytes, more than %d", len(e.Data), MaxDataLen)
	}
	if !json.Valid(e.Data) {
		return fmt.Errorf("data is not valid JSON")
	}
	if bytes.IndexByte(e.Data, 0) >= 0 {
		return fmt.Errorf("data contains a NUL byte")
	}
	for k, v := range e.Meta.Extra {
		if IsWellKnownMetaKey(k) {
			return fmt.Errorf("metadata key %q must be set through its Metadata field", k)
		}
		if k == "" || !utf8.ValidString(k) || !utf8.ValidString(v) {
			return fmt.Errorf("metadata key %q: keys must be non-empty and keys and values valid UTF-8", k)
		}
	}
	for _, f := range e.Meta.fields() {
		if !utf8.ValidString(*f.val) {
			return fmt.Errorf("metadata %s is not valid UTF-8", f.key)
		}
	}
	if m, _ := e.Meta.MarshalJSON(); len(m) > MaxMetaLen {
		return fmt.Errorf("metadata is %d bytes encoded, more than %d", len(m), MaxMetaLen)
	}
	if e.ID == uuid.Nil {
		id, err := uuid.NewV7()
		if err != nil {
			return fmt.Errorf("generate event ID: %w", err)
		}
		e.ID = id
	}
	if !e.OccurredAt.IsZero() {
		e.OccurredAt = Timestamp(e.OccurredAt)
	}
	return nil
}

// Timestamp returns t in UTC truncated to microseconds, the precision every backend stores.
func Timestamp(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

// ResolveReplay decides what an append whose write failed on a uniqueness or version check
// really was. stored holds the already-stored events whose IDs occur in the batch a (looked up by
// the backend). If every event of a is stored, in one consecutive run of a.Stream with the same
// type, schema and data, the append is a retry and ResolveReplay returns the first result with
// Replayed set. If some IDs are stored with other content, or in another stream, it returns a
// Conflict error naming the first such ID and wrapping [ErrEventIDReused]. If none of the IDs
// is stored, it returns ok false: the failure was a genuine version conflict.
func ResolveReplay(op string, a StreamAppend, stored map[uuid.UUID]Event) (res AppendResult, ok bool, err error) {
	if len(stored) == 0 {
		return AppendResult{}, false, nil
	}
	for i, e := range a.Events {
		s, found := stored[e.ID]
		if !found {
			return AppendResult{}, false, Errorf(Conflict, op, "stream %q: event %s was stored before but event %s of the same append was not; a retry must resend the same batch: %w", a.Stream, a.Events[0].ID, e.ID, ErrEventIDReused)
		}
		if s.Stream != a.Stream || s.Type != e.Type || s.Schema != e.Schema || !bytes.Equal(s.Data, e.Data) {
			return AppendResult{}, false, Errorf(Conflict, op, "event ID %s is already stored with other content (stream %q version %d): %w", e.ID, s.Stream, s.Version, ErrEventIDReused)
		}
		if i > 0 && s.Version != stored[a.Events[i-1].ID].Version+1 {
			return AppendResult{}, false, Errorf(Conflict, op, "event ID %s is already stored, but not in the order of this append: %w", e.ID, ErrEventIDReused)
		}
	}
	first := stored[a.Events[0].ID].Version
	return AppendResult{Stream: a.Stream, FirstVersion: first, LastVersion: first + int64(len(a.Events)) - 1, Replayed: true}, true, nil
}

// EventIDs returns the IDs of every event in appends.
func EventIDs(appends []StreamAppend) []uuid.UUID {
	var ids []uuid.UUID
	for _, a := range appends {
		for _, e := range a.Events {
			ids = append(ids, e.ID)
		}
	}
	return ids
}
