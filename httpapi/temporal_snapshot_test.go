package httpapi_test

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"

	"github.com/strata-events/strata/httpapi"
	"github.com/strata-events/strata/query"
)

// TestStateWithValidFieldIgnoresOtherSnapshots: a temporal snapshot says up to which valid time
// its events occurred, by its model's valid time. A snapshot taken by the JSON model (valid time:
// occurredAt) must not serve a state whose valid time is a payload field, where an event that
// occurred on 10 March holds only from 20 March.
func TestStateWithValidFieldIgnoresOtherSnapshots(t *testing.T) {
	e := newEnv(t, openSQLite(t))
	w := e.keys["acme/writer"]
	if r := e.do("POST", "/v1/streams/certificate-V1/events", w, map[string]any{"events": []map[string]any{
		{"type": "CertificateIssued", "occurredAt": "2023-03-01T00:00:00Z", "data": map[string]any{"status": "valid"}},
		{"type": "CertificateRevoked", "occurredAt": "2023-03-10T00:00:00Z", "data": map[string]any{"status": "revoked", "invalidSince": "2023-03-20T00:00:00Z"}},
	}}); r.status != http.StatusCreated {
		t.Fatalf("append: %d %s", r.status, r.body)
	}
	state := func() (string, httpapi.StateResponse) {
		t.Helper()
		r := e.do("GET", "/v1/streams/certificate-V1/state?at=2023-03-15&knownAt=now&validField=invalidSince", e.keys["acme/auditor"], nil)
		if r.status != 200 {
			t.Fatalf("state: %d %s", r.status, r.body)
		}
		var s httpapi.StateResponse
		r.json(t, &s)
		var st struct{ Status string }
		if err := json.Unmarshal(s.State, &st); err != nil {
			t.Fatal(err)
		}
		return st.Status, s
	}
	if st, s := state(); st != "valid" || s.Skipped != 1 {
		t.Fatalf("without snapshots: %s %+v", st, s)
	}
	if _, err := query.TakeSnapshots(context.Background(), e.store, query.JSONModel(), "certificate-V1", 1); err != nil {
		t.Fatal(err)
	}
	if st, s := state(); st != "valid" || s.Skipped != 1 {
		t.Errorf("with the JSON model's snapshots: %s (from snapshot %d, skipped %d), want valid", st, s.FromSnapshot, s.Skipped)
	}
}
