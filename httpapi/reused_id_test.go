package httpapi_test

import (
	"strings"
	"testing"
)

// An append that reuses an event ID stored before, maybe by another tenant, is a Conflict that
// does not say where the ID is stored: no probe for foreign IDs learns a stream name.
func TestReusedIDNamesNoStream(t *testing.T) {
	e := newEnv(t, openSQLite(t))
	id := "0190e3c2-0000-7000-8000-00000000abcd"
	ev := map[string]any{"id": id, "type": "PatientAdmitted", "data": map[string]any{"ward": "oncology"}}
	if r := e.do("POST", "/v1/streams/patient-jane-doe/events", e.keys["umbrella/writer"], appendBody(nil, ev)); r.status != 201 {
		t.Fatalf("umbrella append: %d %s", r.status, r.body)
	}
	probe := map[string]any{"id": id, "type": "Probe", "data": map[string]any{}}
	r := e.do("POST", "/v1/streams/acme-probe/events", e.keys["acme/writer"], appendBody(nil, probe))
	if r.status != 409 || strings.Contains(string(r.body), "patient-jane-doe") {
		t.Errorf("acme's append of umbrella's event ID: %d %s; want 409 naming no stream", r.status, r.body)
	}
}
