package httpapi

import (
	"encoding/json"
	"errors"
	"net/http"

	"github.com/strata-events/strata"
)

// Error codes of the HTTP layer only: a request refused before it reaches the store. Every
// other error carries a strata code.
const (
	// CodeTooLarge: the request body is larger than the server accepts.
	CodeTooLarge strata.Code = "too_large"
	// CodeUnsupportedMediaType: a body that is not application/json.
	CodeUnsupportedMediaType strata.Code = "unsupported_media_type"
	// CodeMethodNotAllowed: the path exists, the method does not.
	CodeMethodNotAllowed strata.Code = "method_not_allowed"
)

// statusOf is the one table from error codes to HTTP statuses.
var statusOf = map[strata.Code]int{
	strata.Invalid:           http.StatusBadRequest,
	strata.Unauthorized:      http.StatusUnauthorized,
	strata.Forbidden:         http.StatusForbidden,
	strata.NotFound:          http.StatusNotFound,
	strata.Conflict:          http.StatusConflict,
	strata.Duplicate:         http.StatusConflict,
	CodeMethodNotAllowed:     http.StatusMethodNotAllowed,
	CodeTooLarge:             http.StatusRequestEntityTooLarge,
	CodeUnsupportedMediaType: http.StatusUnsupportedMediaType,
	strata.Unavailable:       http.StatusServiceUnavailable,
	strata.Internal:          http.StatusInternalServerError,
}

// StatusOf returns the HTTP status of an error code: 500 for a code it does not know.
func StatusOf(c strata.Code) int {
	if s, ok := statusOf[c]; ok {
		return s
	}
	return http.StatusInternalServerError
}

// ErrorBody is the JSON body of every error response.
type ErrorBody struct {
	Error ErrorDetail `json:"error"`
}

// ErrorDetail says what went wrong. Stream, Expected and Actual are set on version conflicts.
type ErrorDetail struct {
	Code      strata.Code `json:"code"`
	Message   string      `json:"message"`
	Retryable bool        `json:"retryable,omitempty"`
	Stream    string      `json:"stream,omitempty"`
	Expected  string      `json:"expected,omitempty"`
	Actual    *int64      `json:"actual,omitempty"`
	// Cursor is set when a subscription is cut off: resume after it.
	Cursor string `json:"cursor,omitempty"`
}

// errorDetail turns err into the body's detail. Internal errors keep their message out of the
// response (it may name tables or hosts); the access log has the code.
func errorDetail(err error) ErrorDetail {
	code := strata.ErrorCode(err)
	d := ErrorDetail{Code: code, Message: err.Error()}
	var e *strata.Error
	if errors.As(err, &e) {
		d.Retryable = e.Retryable()
		if e.Code == strata.Conflict && e.Stream != "" {
			d.Stream = e.Stream
			d.Expected = e.Expected.String()
			a := e.Actual
			d.Actual = &a
		}
	}
	if code == strata.Internal {
		d.Message = "strata: internal error"
	}
	return d
}

// writeError writes err as the typed JSON error body with the status of its code.
func writeError(w http.ResponseWriter, r *http.Request, err error) {
	d := errorDetail(err)
	if rec, ok := w.(*recorder); ok {
		rec.code = d.Code
	}
	if d.Code == strata.Unauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="strata"`)
	}
	writeJSON(w, StatusOf(d.Code), ErrorBody{Error: d})
}

// writeJSON writes v with status. Payloads are written as stored: no HTML escaping.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}

func invalidf(op, format string, args ...any) error {
	return strata.Errorf(strata.Invalid, op, format, args...)
}
