package httpapi

import (
	"bytes"
	"context"
	"embed"
	"io/fs"
	"log/slog"
	"mime"
	"net/http"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/strata-events/strata"
	"github.com/strata-events/strata/shred"
)

// Defaults of [Config].
const (
	DefaultMaxBodyBytes   = 32 << 20
	DefaultRequestTimeout = 30 * time.Second
	DefaultHeartbeat      = 15 * time.Second
	DefaultSSEWriteWait   = 10 * time.Second
	DefaultKeyCacheTTL    = 5 * time.Second
	// DefaultPageLimit and MaxPageLimit bound the events or streams of one read.
	DefaultPageLimit = 100
	MaxPageLimit     = 10_000
)

// Config configures a [Server]. Store is required; every other field has a default.
type Config struct {
	// Store is the event store served. It must implement strata.APIKeyStore unless Keys is set.
	Store strata.Store
	// Keys checks API keys; the Store's when nil.
	Keys strata.APIKeyStore
	// Protector, when set, encrypts the declared sensitive fields of appended events, decrypts
	// them on reads (redacted after erasure) and serves erasure.
	Protector *shred.Protector
	// Reveal makes reads decrypt sensitive fields with Protector (it needs a key-encryption
	// key), and states and histories fold the decrypted events (from a stream's first event:
	// temporal snapshots hold what the store holds, see query.Revealing); otherwise reads
	// return them as stored, encrypted.
	Reveal bool
	// Logger receives the access log (one line per request, never a key or a payload) and
	// errors; slog.Default when nil.
	Logger *slog.Logger
	// Registerer receives the server's Prometheus metrics and Gatherer serves /metrics; a fresh
	// registry when both are nil.
	Registerer prometheus.Registerer
	Gatherer   prometheus.Gatherer
	// Collectors are further metrics to serve at /metrics, e.g. the transmitters' backlog.
	Collectors []prometheus.Collector
	// TracerProvider makes a span per request; no tracing when nil.
	TracerProvider trace.TracerProvider
	// MaxBodyBytes bounds a request body; DefaultMaxBodyBytes when 0.
	MaxBodyBytes int64
	// RequestTimeout bounds a request other than a subscription; DefaultRequestTimeout when 0.
	RequestTimeout time.Duration
	// Heartbeat is the interval of SSE comments that keep idle subscriptions open.
	Heartbeat time.Duration
	// SSEWriteWait is how long one write to a subscriber may block: a slower client is
	// disconnected and resumes with Last-Event-ID.
	SSEWriteWait time.Duration
	// KeyCacheTTL is how long a key record is cached; a revocation takes effect within it.
	KeyCacheTTL time.Duration
	// Ready, when set, is checked by /readyz besides the store.
	Ready func(ctx context.Context) error
}

// Server is the HTTP API. Create it with [New] and serve [Server.Handler]; call
// [Server.Close] from http.Server.RegisterOnShutdown so that subscriptions end.
type Server struct {
	cfg     Config
	store   strata.Store
	auth    *authenticator
	owners  *ownerCache
	fan     *fanout // the live follower SSE subscriptions share
	log     *slog.Logger
	metrics *metrics
	tracer  trace.Tracer
	prop    propagation.TextMapPropagator
	mux     *http.ServeMux

	closing   chan struct{}
	closeOnce sync.Once
}

//go:embed web
var webFS embed.FS

// New returns a server for cfg.
func New(cfg Config) (*Server, error) {
	const op = "httpapi"
	if cfg.Store == nil {
		return nil, strata.Errorf(strata.Invalid, op, "no store")
	}
	if cfg.Keys == nil {
		ks, ok := cfg.Store.(strata.APIKeyStore)
		if !ok {
			return nil, strata.Errorf(strata.Invalid, op, "%T keeps no API keys (strata.APIKeyStore)", cfg.Store)
		}
		cfg.Keys = ks
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Registerer == nil && cfg.Gatherer == nil {
		reg := prometheus.NewRegistry()
		cfg.Registerer, cfg.Gatherer = reg, reg
	}
	if cfg.TracerProvider == nil {
		cfg.TracerProvider = noop.NewTracerProvider()
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if cfg.RequestTimeout <= 0 {
		cfg.RequestTimeout = DefaultRequestTimeout
	}
	if cfg.Heartbeat <= 0 {
		cfg.Heartbeat = DefaultHeartbeat
	}
	if cfg.SSEWriteWait <= 0 {
		cfg.SSEWriteWait = DefaultSSEWriteWait
	}
	if cfg.KeyCacheTTL <= 0 {
		cfg.KeyCacheTTL = DefaultKeyCacheTTL
	}
	m, err := newMetrics(cfg.Registerer, cfg.Store)
	if err != nil {
		return nil, strata.Errorf(strata.Invalid, op, "metrics: %w", err)
	}
	for _, c := range cfg.Collectors {
		if err := cfg.Registerer.Register(c); err != nil {
			return nil, strata.Errorf(strata.Invalid, op, "metrics: %w", err)
		}
	}
	s := &Server{
		cfg:     cfg,
		store:   cfg.Store,
		auth:    &authenticator{keys: cfg.Keys, ttl: cfg.KeyCacheTTL, now: time.Now, cache: make(map[string]cachedKey)},
		owners:  newOwnerCache(cfg.Store),
		log:     cfg.Logger,
		metrics: m,
		tracer:  cfg.TracerProvider.Tracer("github.com/strata-events/strata/httpapi"),
		prop:    propagation.TraceContext{},
		mux:     http.NewServeMux(),
		closing: make(chan struct{}),
	}
	s.fan = newFanout(cfg.Store, m)
	s.routes()
	return s, nil
}

// Handler returns the server's HTTP handler.
func (s *Server) Handler() http.Handler { return s.mux }

// Close ends every subscription (each with its resumable cursor) and stops the live follower
// they share; other requests finish. Register it with http.Server.RegisterOnShutdown.
func (s *Server) Close() {
	s.closeOnce.Do(func() {
		close(s.closing)
		s.fan.close()
	})
}

// route describes one endpoint.
type route struct {
	pattern string // a ServeMux pattern with method
	name    string // for metrics, logs and spans
	perm    permission
	auth    bool
	stream  bool // a long-lived response: no request timeout, no write deadline
	h       func(w http.ResponseWriter, r *http.Request, p Principal) error
}

func (s *Server) routes() {
	rs := []route{
		{pattern: "POST /v1/streams/{stream}/events", name: "append", perm: permWrite, auth: true, h: s.handleAppend},
		{pattern: "GET /v1/streams/{stream}/events", name: "read_stream", perm: permRead, auth: true, h: s.handleReadStream},
		{pattern: "GET /v1/streams/{stream}", name: "stream_info", perm: permRead, auth: true, h: s.handleStreamInfo},
		{pattern: "GET /v1/streams", name: "streams", perm: permRead, auth: true, h: s.handleStreams},
		{pattern: "GET /v1/streams/{stream}/state", name: "state", perm: permRead, auth: true, h: s.handleState},
		{pattern: "GET /v1/streams/{stream}/history", name: "history", perm: permRead, auth: true, h: s.handleHistory},
		{pattern: "GET /v1/history", name: "entity_history", perm: permRead, auth: true, h: s.handleEntityHistory},
		{pattern: "GET /v1/query", name: "query", perm: permRead, auth: true, h: s.handleQuery},
		{pattern: "GET /v1/query/count", name: "query_count", perm: permRead, auth: true, h: s.handleQueryCount},
		{pattern: "GET /v1/events", name: "read_all", perm: permRead, auth: true, h: s.handleReadAll},
		{pattern: "GET /v1/subscribe", name: "subscribe", perm: permRead, auth: true, stream: true, h: s.handleSubscribe},
		{pattern: "GET /v1/events/{id}/proof", name: "proof", perm: permAudit, auth: true, h: s.handleProof},
		{pattern: "GET /v1/ledger/checkpoint", name: "checkpoint", perm: permAudit, auth: true, h: s.handleCheckpoint},
		{pattern: "GET /v1/projections", name: "projections", perm: permAudit, auth: true, h: s.handleProjections},
		{pattern: "POST /v1/subjects/{subject}/erase", name: "erase", perm: permAdmin, auth: true, h: s.handleErase},
		{pattern: "GET /v1/whoami", name: "whoami", perm: permRead, auth: true, h: s.handleWhoami},
		{pattern: "GET /healthz", name: "healthz", h: s.handleHealthz},
		{pattern: "GET /readyz", name: "readyz", h: s.handleReadyz},
	}
	for _, rt := range rs {
		s.mux.Handle(rt.pattern, s.wrap(rt))
	}
	s.mux.Handle("GET /metrics", s.metricsHandler())
	s.mux.Handle("/", http.HandlerFunc(s.serveWeb))
	// Unknown API paths get the typed error, not the explorer.
	s.mux.Handle("/v1/", s.wrap(route{name: "unknown", h: func(w http.ResponseWriter, r *http.Request, _ Principal) error {
		return strata.Errorf(strata.NotFound, "", "no endpoint %s %s", r.Method, r.URL.Path)
	}}))
}

// serveWeb serves the embedded explorer: index.html at /, the other files by name.
func (s *Server) serveWeb(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		writeError(w, r, strata.Errorf(CodeMethodNotAllowed, "", "%s %s: the explorer is read with GET", r.Method, r.URL.Path))
		return
	}
	name := strings.TrimPrefix(r.URL.Path, "/")
	if name == "" {
		name = "index.html"
	}
	if !fs.ValidPath(name) || strings.HasPrefix(name, ".") {
		writeError(w, r, strata.Errorf(strata.NotFound, "", "no page %q", r.URL.Path))
		return
	}
	b, err := webFS.ReadFile(path.Join("web", name))
	if err != nil {
		writeError(w, r, strata.Errorf(strata.NotFound, "", "no page %q", r.URL.Path))
		return
	}
	h := w.Header()
	if ct := mime.TypeByExtension(path.Ext(name)); ct != "" {
		h.Set("Content-Type", ct)
	}
	h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-cache")
	http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(b))
}
