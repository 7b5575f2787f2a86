package query_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/strata-events/strata"
	"github.com/strata-events/strata/internal/backends"
	"github.com/strata-events/strata/query"
)

// TestSnapshotsAfterRetention: once retention removed a stream's payloads, a state from a
// temporal snapshot taken before is the state of a replay (the removed data is gone from it).
func TestSnapshotsAfterRetention(t *testing.T) {
	for _, kind := range backends.All {
		t.Run(kind, func(t *testing.T) {
			ctx := testCtx(t)
			st, _ := backends.Open(t, kind)
			mustAppend(t, st, "certificate-1",
				strata.EventData{Type: "CertificateIssued", Data: []byte(`{"subjectDN":"CN=Alice"}`), Meta: strata.Metadata{Tenant: "acme"}},
				strata.EventData{Type: "CertificateRenewed", Data: []byte(`{"validTo":"2030"}`), Meta: strata.Metadata{Tenant: "acme"}})
			m := query.JSONModel()
			if _, err := query.TakeSnapshots(ctx, st, m, "certificate-1", 1); err != nil {
				t.Fatal(err)
			}
			r := &query.Retention{AllowUnsealed: true, Now: func() time.Time { return time.Now().Add(100 * 24 * time.Hour) }}
			if rep, err := r.Run(ctx, st); err != nil || rep.Removed != 2 {
				t.Fatalf("run: %+v, %v", rep, err)
			}
			s, err := query.StateAt(ctx, st, m, "certificate-1", query.At{})
			if err != nil {
				t.Fatal(err)
			}
			if b, _ := json.Marshal(s.State); string(b) != `{}` {
				t.Fatalf("state after retention: %s (from snapshot %d)", b, s.FromSnapshot)
			}
		})
	}
}
