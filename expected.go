package strata

import "strconv"

// ExpectedVersion is the optimistic-concurrency condition of an append. It is a sealed type: build
// it with [Any], [NoStream], [StreamExists] or [Exact]. Its zero value is not a valid condition and
// is rejected, so that every append states what it expects.
type ExpectedVersion struct {
	kind    expectKind
	version int64
}

type expectKind uint8

const (
	expectUnset expectKind = iota
	expectAny
	expectNoStream
	expectStreamExists
	expectExact
)

var (
	// Any appends whatever the stream's version, creating the stream if needed.
	Any = ExpectedVersion{kind: expectAny}
	// NoStream appends only if the stream has no events yet.
	NoStream = ExpectedVersion{kind: expectNoStream}
	// StreamExists appends only if the stream already has events.
	StreamExists = ExpectedVersion{kind: expectStreamExists}
)

// Exact appends only if the stream's version is n: the version of its last event, 0 for a stream
// with no events (Exact(0) is the same as NoStream). A negative n is rejected by Append.
func Exact(n int64) ExpectedVersion {
	if n == 0 {
		return NoStream
	}
	return ExpectedVersion{kind: expectExact, version: n}
}

// IsAny, IsNoStream, IsStreamExists report the condition's kind.
func (e ExpectedVersion) IsAny() bool          { return e.kind == expectAny }
func (e ExpectedVersion) IsNoStream() bool     { return e.kind == expectNoStream }
func (e ExpectedVersion) IsStreamExists() bool { return e.kind == expectStreamExists }

// Version returns n and true for Exact(n) with n > 0, and 0 and false otherwise.
func (e ExpectedVersion) Version() (int64, bool) {
	if e.kind == expectExact {
		return e.version, true
	}
	return 0, false
}

// Valid reports whether e was built by one of the constructors with a non-negative version.
func (e ExpectedVersion) Valid() bool {
	switch e.kind {
	case expectAny, expectNoStream, expectStreamExists:
		return true
	case expectExact:
		return e.version > 0
	}
	return false
}

// Allows reports whether a stream whose current version is current (0: no events) satisfies e.
func (e ExpectedVersion) Allows(current int64) bool {
	switch e.kind {
	case expectAny:
		return true
	case expectNoStream:
		return current == 0
	case expectStreamExists:
		return current > 0
	case expectExact:
		return current == e.version
	}
	return false
}

// String returns "any", "no stream", "stream exists", the version number, or "invalid".
func (e ExpectedVersion) String() string {
	switch e.kind {
	case expectAny:
		return "any"
	case expectNoStream:
		return "no stream"
	case expectStreamExists:
		return "stream exists"
	case expectExact:
		if e.version > 0 {
			return strconv.FormatInt(e.version, 10)
		}
	}
	return "invalid"
}
