package strata

import (
	"errors"
	"fmt"
	"strings"
)

// Code classifies an [Error]. The HTTP API maps each code to one status.
type Code string

// The error codes.
const (
	// Conflict: an optimistic-concurrency check failed, or an event ID was reused with other content.
	Conflict Code = "conflict"
	// NotFound: the thing asked for does not exist.
	NotFound Code = "not_found"
	// Invalid: the input was rejected before anything was written.
	Invalid Code = "invalid"
	// Duplicate: something that must be unique already exists.
	Duplicate Code = "duplicate"
	// Unauthorized: no valid credentials were presented.
	Unauthorized Code = "unauthorized"
	// Forbidden: the credentials do not allow the operation.
	Forbidden Code = "forbidden"
	// Unavailable: the store cannot serve now (closed, unreachable); retrying later may succeed.
	Unavailable Code = "unavailable"
	// Internal: a bug or an unexpected state of the database.
	Internal Code = "internal"
)

// Sentinels for errors.Is: errors.Is(err, strata.ErrConflict) is true for any *Error whose Code is
// Conflict, wherever it was raised.
var (
	ErrConflict     = &Error{Code: Conflict}
	ErrNotFound     = &Error{Code: NotFound}
	ErrInvalid      = &Error{Code: Invalid}
	ErrDuplicate    = &Error{Code: Duplicate}
	ErrUnavailable  = &Error{Code: Unavailable}
	ErrInternal     = &Error{Code: Internal}
	ErrUnauthorized = &Error{Code: Unauthorized}
	ErrForbidden    = &Error{Code: Forbidden}
)

// ErrClosed is wrapped by the Unavailable error that every call on a closed Store returns.
var ErrClosed = errors.New("store is closed")

// ErrEventIDReused is wrapped by the Conflict error of an append whose event IDs are already
// stored with other content or in another batch: the append is not a retry of the first one.
// Command handlers that derive event IDs from command IDs read it as "this command was handled
// before".
var ErrEventIDReused = errors.New("event ID already stored")

// Error is the one error type of strata. Op names the operation ("append", "read stream", ...),
// Msg says what went wrong in words a user can act on, and Err is the underlying cause, if any.
// For a version conflict, Stream, Expected and Actual say which stream and versions disagreed.
type Error struct {
	Code Code
	Op   string
	Msg  string
	Err  error

	// Stream, Expected and Actual are set on concurrency conflicts: the stream, the version the
	// caller expected and the version the store held (0 when the stream does not exist).
	Stream   string
	Expected ExpectedVersion
	Actual   int64
}

// Error formats as "strata: OP: MSG: ERR", leaving out empty parts.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("strata: ")
	if e.Op != "" {
		b.WriteString(e.Op)
		b.WriteString(": ")
	}
	if e.Msg != "" {
		b.WriteString(e.Msg)
	} else {
		b.WriteString(string(e.Code))
	}
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// Is reports whether target is a bare code sentinel such as [ErrConflict] with the same Code.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Op == "" && t.Msg == "" && t.Err == nil && t.Code == e.Code
}

// Retryable reports whether repeating the same call later may succeed: true for Unavailable
// errors other than a closed store.
func (e *Error) Retryable() bool {
	return e.Code == Unavailable && !errors.Is(e.Err, ErrClosed)
}

// ErrorCode returns the Code of the first *Error in err's chain, Internal for any other non-nil
// error, and "" for nil.
func ErrorCode(err error) Code {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return Internal
}

// Errorf returns an *Error with a formatted message. A %w verb in format becomes Err.
func Errorf(code Code, op, format string, args ...any) *Error {
	wrapped := fmt.Errorf(format, args...)
	e := &Error{Code: code, Op: op, Msg: wrapped.Error()}
	if u := errors.Unwrap(wrapped); u != nil {
		// Keep the cause reachable for errors.Is/As but print the message once.
		e.Msg = strings.TrimSuffix(e.Msg, ": "+u.Error())
		e.Err = u
	}
	return e
}

// closedError is what every backend returns after Close.
func closedError(op string) *Error {
	return &Error{Code: Unavailable, Op: op, Err: ErrClosed}
}

// ClosedError returns the error for a call made on a closed Store.
func ClosedError(op string) error { return closedError(op) }

// VersionConflict returns the Conflict error for a failed expected-version check.
func VersionConflict(op, stream string, expected ExpectedVersion, actual int64) *Error {
	return &Error{
		Code: Conflict, Op: op,
		Msg:    fmt.Sprintf("stream %q is at version %d, expected %s", stream, actual, expected),
		Stream: stream, Expected: expected, Actual: actual,
	}
}
