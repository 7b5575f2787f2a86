package strata

import (
	"cmp"
	"fmt"
	"strconv"
	"strings"
)

// Position is a place in the global log. Global reads return events in increasing Position, and
// a reader's cursor is the Position of the last event it handled: reads resume strictly after it.
//
// Commit orders commits and Event orders events: events compare by Commit, then by Event. On
// backends that assign one dense, commit-ordered number per event (in-memory, SQLite, MySQL) both
// parts hold that number. On PostgreSQL, Commit is derived from the writing transaction's ID and
// Event is a unique sequence number, so a transaction that started first sorts first even when it
// commits last — and readers wait until it has either committed or aborted before passing it.
//
// The zero Position, [Start], lies before every event.
type Position struct {
	Commit uint64
	Event  uint64
}

// Start is the Position before the first event of the log.
var Start = Position{}

// Compare returns -1, 0 or +1 as p sorts before, with or after q.
func (p Position) Compare(q Position) int {
	if c := cmp.Compare(p.Commit, q.Commit); c != 0 {
		return c
	}
	return cmp.Compare(p.Event, q.Event)
}

// Less reports whether p sorts before q.
func (p Position) Less(q Position) bool { return p.Compare(q) < 0 }

// IsZero reports whether p is Start.
func (p Position) IsZero() bool { return p == Start }

// String returns "N" when both parts are N, and "C.E" otherwise: "42" on SQLite, "1017.42" on
// PostgreSQL. [ParsePosition] reads either form.
func (p Position) String() string {
	if p.Commit == p.Event {
		return strconv.FormatUint(p.Event, 10)
	}
	return strconv.FormatUint(p.Commit, 10) + "." + strconv.FormatUint(p.Event, 10)
}

// ParsePosition parses the output of [Position.String]. The empty string is Start.
func ParsePosition(s string) (Position, error) {
	if s == "" {
		return Start, nil
	}
	c, e, two := strings.Cut(s, ".")
	commit, err := strconv.ParseUint(c, 10, 64)
	if err != nil {
		return Start, Errorf(Invalid, "parse position", "%q is not a position (want N or C.E)", s)
	}
	if !two {
		return Position{Commit: commit, Event: commit}, nil
	}
	event, err := strconv.ParseUint(e, 10, 64)
	if err != nil {
		return Start, Errorf(Invalid, "parse position", "%q is not a position (want N or C.E)", s)
	}
	return Position{Commit: commit, Event: event}, nil
}

// MarshalText encodes p as its String form.
func (p Position) MarshalText() ([]byte, error) { return []byte(p.String()), nil }

// UnmarshalText decodes the String form.
func (p *Position) UnmarshalText(b []byte) error {
	q, err := ParsePosition(string(b))
	if err != nil {
		return err
	}
	*p = q
	return nil
}

var _ fmt.Stringer = Position{}
