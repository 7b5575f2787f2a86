package query_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/strata-events/strata"
	"github.com/strata-events/strata/inmem"
	"github.com/strata-events/strata/query"
)

// holdingStore places a legal hold on a stream just before the first batch is tombstoned: a
// hold placed while a run is going.
type holdingStore struct {
	*inmem.Store
	stream string
	done   bool
}

func (s *holdingStore) TombstoneEvents(ctx context.Context, ts []strata.Tombstone) (int, error) {
	if !s.done {
		s.done = true
		if err := s.PlaceLegalHold(ctx, strata.LegalHold{Stream: s.stream, Reason: "placed during the run"}); err != nil {
			return 0, err
		}
	}
	return s.Store.TombstoneEvents(ctx, ts)
}

// TestRetentionCountsOnlyWhatItRemoved: a hold placed during a run keeps its stream's events,
// and the report and the audit event count only the events the run removed.
func TestRetentionCountsOnlyWhatItRemoved(t *testing.T) {
	ctx := testCtx(t)
	st := &holdingStore{Store: inmem.New(), stream: "certificate-2"}
	t.Cleanup(func() { st.Close() })
	for i := range 3 {
		mustAppend(t, st, "certificate-"+string(rune('1'+i)), strata.EventData{Type: "CertificateIssued",
			Data: []byte(`{"subjectDN":"CN=x"}`), Meta: strata.Metadata{Tenant: "acme"}})
	}
	r := &query.Retention{AllowUnsealed: true, Now: func() time.Time { return time.Now().Add(100 * 24 * time.Hour) }}
	rep, err := r.Run(ctx, st)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Removed != 2 || rep.Policies[0].Events != 2 || rep.Policies[0].Streams != 2 {
		t.Fatalf("report of a run that removed 2 of 3 events: removed %d, policies %+v", rep.Removed, rep.Policies)
	}
	var completed []byte
	for e, err := range st.ReadStream(ctx, query.DefaultAuditStream, strata.ReadStreamOptions{}) {
		if err != nil {
			t.Fatal(err)
		}
		if e.Type == query.TypeRetentionCompleted {
			completed = e.Data
		}
	}
	var body struct{ Removed int64 }
	if err := jsonUnmarshal(completed, &body); err != nil || body.Removed != 2 {
		t.Fatalf("RetentionCompleted: %s, %v", completed, err)
	}
}

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }

// TestRetentionCompletesARunAHoldEmptied: a run that recorded RetentionStarted records
// RetentionCompleted even when a hold placed during it left nothing to remove.
func TestRetentionCompletesARunAHoldEmptied(t *testing.T) {
	ctx := testCtx(t)
	st := &holdingStore{Store: inmem.New(), stream: "certificate-1"}
	t.Cleanup(func() { st.Close() })
	mustAppend(t, st, "certificate-1", strata.EventData{Type: "CertificateIssued", Data: []byte(`{}`), Meta: strata.Metadata{Tenant: "acme"}})
	r := &query.Retention{AllowUnsealed: true, Now: func() time.Time { return time.Now().Add(100 * 24 * time.Hour) }}
	rep, err := r.Run(ctx, st)
	if err != nil || rep.Removed != 0 {
		t.Fatalf("run: %+v, %v", rep, err)
	}
	var types []string
	for e, err := range st.ReadStream(ctx, query.DefaultAuditStream, strata.ReadStreamOptions{}) {
		if err != nil {
			t.Fatal(err)
		}
		types = append(types, e.Type)
	}
	if len(types) != 2 || types[0] != query.TypeRetentionStarted || types[1] != query.TypeRetentionCompleted {
		t.Fatalf("audit events: %v", types)
	}
}
