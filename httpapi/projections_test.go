package httpapi_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/strata-events/strata"
	"github.com/strata-events/strata/projection"
)

// TestProjectionStatusKeepsErrorsInside: projections serve every tenant, so the error text of
// a failed one (which may quote any tenant's event) is not shown to a tenant's key; the state,
// the failed event's position and the attempts are.
func TestProjectionStatusKeepsErrorsInside(t *testing.T) {
	t.Parallel()
	st := openSQLite(t)
	e := newEnv(t, st)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := st.Append(ctx, "certificate-U1", strata.Any, strata.EventData{Type: "CertificateIssued", Data: []byte(`{}`), Meta: strata.Metadata{Tenant: "umbrella"}}); err != nil {
		t.Fatal(err)
	}
	const secret = "umbrella's subject Zyxwv Quimby"
	def := projection.Projection{Name: "status", Version: 1, Handlers: map[string]projection.Handler{
		"CertificateIssued": func(context.Context, *projection.Context, strata.Event) error { return errors.New(secret) },
	}}
	w, err := projection.NewWorker(st, def, projection.WithRetry(1, time.Millisecond, time.Millisecond), projection.WithLease(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Run(ctx); !errors.Is(err, projection.ErrFailed) {
		t.Fatalf("run: %v, want the projection to fail", err)
	}
	for _, key := range []string{"acme/auditor", "acme/admin", "umbrella/admin"} {
		r := e.do("GET", "/v1/projections", e.keys[key], nil)
		if r.status != 200 || strings.Contains(string(r.body), "Quimby") || !strings.Contains(string(r.body), `"state":"failed"`) || !strings.Contains(string(r.body), "attempt") {
			t.Errorf("projections as %s: %d %s", key, r.status, r.body)
		}
	}
}
