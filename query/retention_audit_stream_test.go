package query_test

import (
	"bytes"
	"testing"
	"time"

	"github.com/strata-events/strata"
	"github.com/strata-events/strata/internal/backends"
	"github.com/strata-events/strata/query"
)

// TestRetentionSparesOnlyTheAuditStream: retention never touches its audit stream, and only
// that stream. A tenant's stream whose name merely starts with the audit stream's ("audit" and
// "audit-trail-alice") is removed past its age like any other, and a later run leaves the audit
// stream's own events whole.
func TestRetentionSparesOnlyTheAuditStream(t *testing.T) {
	for _, kind := range backends.All {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			ctx := testCtx(t)
			st, _ := backends.Open(t, kind)
			for _, stream := range []string{"audit-trail-alice", "certificate-1"} {
				mustAppend(t, st, stream, strata.EventData{Type: "Noted", Data: []byte(`{"name":"Alice"}`), Meta: strata.Metadata{Tenant: "acme", Principal: "alice"}})
			}
			for i, days := range []int{100, 200} {
				r := &query.Retention{AllowUnsealed: true, AuditStream: "audit", Now: func() time.Time { return time.Now().Add(time.Duration(days) * 24 * time.Hour) }}
				rep, err := r.Run(ctx, st)
				if err != nil {
					t.Fatal(err)
				}
				if want := []int64{2, 0}[i]; rep.Removed != want {
					t.Errorf("run %d removed %d events, want %d", i+1, rep.Removed, want)
				}
			}
			for e, err := range st.ReadStream(ctx, "audit-trail-alice", strata.ReadStreamOptions{}) {
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(e.Data, strata.TombstoneData) {
					t.Errorf("%s v%d kept its payload %s", e.Stream, e.Version, e.Data)
				}
			}
			n := 0
			for e, err := range st.ReadStream(ctx, "audit", strata.ReadStreamOptions{}) {
				if err != nil {
					t.Fatal(err)
				}
				n++
				if bytes.Equal(e.Data, strata.TombstoneData) {
					t.Errorf("the audit stream's %s (v%d) was removed", e.Type, e.Version)
				}
			}
			if n != 2 {
				t.Errorf("the audit stream holds %d events, want the first run's 2", n)
			}
		})
	}
}
