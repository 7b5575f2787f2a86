package postgres

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/strata-events/strata"
)

// fail maps an error of pgx or PostgreSQL to a *strata.Error of op, keeping it as the cause.
// It classifies by behaviour and SQLSTATE, never by message text.
func (s *Store) fail(op string, err error) error {
	if err == nil {
		return nil
	}
	var se *strata.Error
	if errors.As(err, &se) {
		return err
	}
	if s.closed.Load() {
		return strata.ClosedError(op)
	}
	code := classify(err)
	return &strata.Error{Code: code, Op: op, Msg: messages[code], Err: err}
}

var messages = map[strata.Code]string{
	strata.Unavailable:  "PostgreSQL is unavailable",
	strata.Unauthorized: "PostgreSQL rejected the credentials",
	strata.Forbidden:    "PostgreSQL denied access",
	strata.Invalid:      "PostgreSQL rejected the input",
	strata.Internal:     "PostgreSQL failed",
}

func classify(err error) strata.Code {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return strata.Unavailable
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return classifySQLState(pgErr.Code)
	}
	var parseErr *pgconn.ParseConfigError
	if errors.As(err, &parseErr) {
		return strata.Invalid
	}
	var (
		connectErr *pgconn.ConnectError
		netErr     net.Error
	)
	switch {
	case pgconn.SafeToRetry(err), pgconn.Timeout(err),
		errors.As(err, &connectErr), errors.As(err, &netErr),
		errors.Is(err, pgconn.ErrConnClosed), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, net.ErrClosed):
		return strata.Unavailable
	}
	return strata.Internal
}

// classifySQLState maps the server's error classes
// (https://www.postgresql.org/docs/current/errcodes-appendix.html).
func classifySQLState(code string) strata.Code {
	switch {
	case strings.HasPrefix(code, "08"), // connection exception
		strings.HasPrefix(code, "53"),    // insufficient resources, e.g. too many connections
		strings.HasPrefix(code, "57P"),   // shutdown, cannot connect now
		code == "57014",                  // query canceled
		code == "40001", code == "40P01", // serialization failure, deadlock: retry
		code == "25006", // read-only transaction: a standby after failover
		code == "55P03": // lock not available
		return strata.Unavailable
	case strings.HasPrefix(code, "28"): // invalid authorization
		return strata.Unauthorized
	case code == "42501": // insufficient privilege
		return strata.Forbidden
	case strings.HasPrefix(code, "22"): // data exception: a value the database cannot hold
		return strata.Invalid
	}
	return strata.Internal
}
