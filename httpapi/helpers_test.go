package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/strata-events/strata"
	"github.com/strata-events/strata/httpapi"
	"github.com/strata-events/strata/internal/testenv"
	"github.com/strata-events/strata/postgres"
	"github.com/strata-events/strata/sqlite"
)

// backend makes a fresh store for a test.
type backend struct {
	name string
	open func(t testing.TB) strata.Store
}

func openSQLite(t testing.TB) strata.Store {
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "strata.db"))
	if err != nil {
		t.Fatalf("open sqlite: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func openPostgres(t testing.TB) strata.Store {
	dsn := testenv.Postgres(t)
	schema := testenv.PostgresSchema(t, dsn)
	// As many connections as the tests' and benchmarks' clients.
	st, err := postgres.Open(context.Background(), dsn+"&pool_max_conns=40", postgres.WithSchema(schema))
	if err != nil {
		t.Fatalf("open postgres: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

var backends = []backend{
	{"SQLite", openSQLite},
	{"PostgreSQL", openPostgres},
}

// env is a server on a store with one key per role for tenants "acme" and "umbrella".
type env struct {
	t     testing.TB
	store strata.Store
	api   *httpapi.Server
	srv   *httptest.Server
	keys  map[string]string // "acme/writer" → key
	logs  *lockedBuffer
}

func newEnv(t testing.TB, st strata.Store, mod ...func(*httpapi.Config)) *env {
	t.Helper()
	logs := &lockedBuffer{}
	cfg := httpapi.Config{Store: st, Logger: slog.New(slog.NewJSONHandler(logs, nil)), Heartbeat: 50 * time.Millisecond}
	for _, m := range mod {
		m(&cfg)
	}
	api, err := httpapi.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(api.Handler())
	srv.Config.RegisterOnShutdown(api.Close)
	srv.Start()
	t.Cleanup(func() { api.Close(); srv.Close() })
	e := &env{t: t, store: st, api: api, srv: srv, keys: map[string]string{}, logs: logs}
	for _, tenant := range []string{"acme", "umbrella"} {
		for _, role := range strata.Roles {
			e.keys[tenant+"/"+string(role)] = e.newKey(role, tenant)
		}
	}
	return e
}

func (e *env) newKey(role strata.Role, tenant string) string {
	e.t.Helper()
	key, rec, err := httpapi.NewKey(role, tenant, "test")
	if err != nil {
		e.t.Fatal(err)
	}
	if _, err := e.store.(strata.APIKeyStore).CreateAPIKey(context.Background(), rec); err != nil {
		e.t.Fatal(err)
	}
	return key
}

// response is a decoded response.
type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) json(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("decode %s: %v", r.body, err)
	}
}

func (r response) errorCode(t testing.TB) strata.Code {
	t.Helper()
	var b httpapi.ErrorBody
	r.json(t, &b)
	return b.Error.Code
}

// do sends a request with key (none when empty) and a JSON body (none when nil; a string or
// []byte is sent as it is).
func (e *env) do(method, path, key string, body any, hdr ...string) response {
	e.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			e.t.Fatal(err)
		}
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, e.srv.URL+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatalf("%s %s: read body: %v", method, path, err)
	}
	r := response{status: resp.StatusCode, header: resp.Header, body: b}
	validateResponse(e.t, method, path, r)
	return r
}

func appendBody(expected any, evs ...map[string]any) map[string]any {
	b := map[string]any{"events": evs}
	if expected != nil {
		b["expected"] = expected
	}
	return b
}

func event(typ string, data map[string]any) map[string]any {
	return map[string]any{"type": typ, "data": data}
}

// lockedBuffer is a log sink that tests may read while the server writes.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// sleepBriefly yields for a few milliseconds while a test polls for a condition.
func sleepBriefly() { time.Sleep(5 * time.Millisecond) }
