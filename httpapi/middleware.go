package httpapi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/strata-events/strata"
)

// recorder remembers the status and size of a response for the access log and metrics.
type recorder struct {
	http.ResponseWriter
	status int
	bytes  int64
	code   strata.Code // the error code, when the response is an error
}

func (r *recorder) WriteHeader(status int) {
	if r.status == 0 {
		r.status = status
	}
	r.ResponseWriter.WriteHeader(status)
}

func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	n, err := r.ResponseWriter.Write(b)
	r.bytes += int64(n)
	return n, err
}

// Unwrap lets http.ResponseController reach the connection (flush, deadlines).
func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// Hijack is not offered: the API has no use for it.
var _ interface{ Unwrap() http.ResponseWriter } = (*recorder)(nil)

// wrap runs a route with recovery, tracing, timeouts, authentication, the permission check,
// the body limit, metrics and the access log.
func (s *Server) wrap(rt route) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &recorder{ResponseWriter: w}
		ctx := s.prop.Extract(r.Context(), propagation.HeaderCarrier(r.Header))
		ctx, span := s.tracer.Start(ctx, "HTTP "+rt.name, trace.WithSpanKind(trace.SpanKindServer),
			trace.WithAttributes(attribute.String("http.request.method", r.Method), attribute.String("http.route", rt.pattern)))
		defer span.End()
		if !rt.stream {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, s.cfg.RequestTimeout)
			defer cancel()
			_ = http.NewResponseController(w).SetWriteDeadline(start.Add(s.cfg.RequestTimeout + time.Second))
		}
		r = r.WithContext(ctx)
		var p Principal
		defer func() {
			if v := recover(); v != nil {
				s.log.ErrorContext(ctx, "httpapi: panic in handler", "route", rt.name, "panic", fmt.Sprint(v))
				if rec.status == 0 {
					writeError(rec, r, strata.Errorf(strata.Internal, rt.name, "panic"))
				}
			}
			s.finish(ctx, rt, r, rec, p, start, span)
		}()
		if r.Body != nil {
			r.Body = http.MaxBytesReader(rec, r.Body, s.cfg.MaxBodyBytes)
		}
		var err error
		if rt.auth {
			p, err = s.auth.authenticate(r)
			if err == nil && !p.may(rt.perm) {
				err = strata.Errorf(strata.Forbidden, rt.name, "role %s may not %s", p.Role, rt.perm)
			}
		}
		if err == nil {
			// URL.Query, which the handlers read, drops the pairs it cannot parse (or all of
			// them, past net/url's limit): a filter, cursor or limit would be ignored unsaid.
			if _, qerr := url.ParseQuery(r.URL.RawQuery); qerr != nil {
				err = strata.Errorf(strata.Invalid, rt.name, "the query string does not parse: %w", qerr)
			}
		}
		if err == nil {
			err = rt.h(rec, r, p)
		}
		if err != nil {
			err = bodyError(err)
			if rec.status == 0 {
				writeError(rec, r, err)
			} else if rec.code == "" {
				rec.code = strata.ErrorCode(err)
			}
		}
	})
}

// bodyError turns the errors of reading a request body into typed errors.
func bodyError(err error) error {
	var mb *http.MaxBytesError
	if errors.As(err, &mb) {
		return strata.Errorf(CodeTooLarge, "read body", "the request body is larger than %d bytes", mb.Limit)
	}
	return err
}

// methodLabel is the method as a metric label: the client picks the method, so any but the
// standard ones is "other", lest each made-up one become a time series.
func methodLabel(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions, http.MethodConnect, http.MethodTrace:
		return m
	}
	return "other"
}

// finish records the request in metrics, the span and the access log. The log names the route,
// the method, the path, the status, the error code, the key ID and the tenant: never the key,
// a query string (which may hold filters naming people) or a payload.
func (s *Server) finish(ctx context.Context, rt route, r *http.Request, rec *recorder, p Principal, start time.Time, span trace.Span) {
	if rec.status == 0 {
		rec.status = http.StatusOK
	}
	d := time.Since(start)
	status := fmt.Sprint(rec.status)
	s.metrics.requests.WithLabelValues(rt.name, methodLabel(r.Method), status).Inc()
	if !rt.stream {
		s.metrics.latency.WithLabelValues(rt.name).Observe(d.Seconds())
	}
	span.SetAttributes(attribute.Int("http.response.status_code", rec.status))
	if rec.status >= 500 {
		span.SetStatus(codes.Error, string(rec.code))
	}
	attrs := []slog.Attr{
		slog.String("route", rt.name), slog.String("method", r.Method), slog.String("path", r.URL.Path),
		slog.Int("status", rec.status), slog.Int64("bytes", rec.bytes), slog.Duration("duration", d),
		slog.String("remote", r.RemoteAddr),
	}
	if rec.code != "" {
		attrs = append(attrs, slog.String("error", string(rec.code)))
	}
	if p.KeyID != "" {
		attrs = append(attrs, slog.String("key", p.KeyID), slog.String("tenant", p.Tenant))
	}
	if sc := span.SpanContext(); sc.HasTraceID() {
		attrs = append(attrs, slog.String("trace", sc.TraceID().String()))
	}
	level := slog.LevelInfo
	if rec.status >= 500 {
		level = slog.LevelError
	}
	s.log.LogAttrs(ctx, level, "http", attrs...)
}
