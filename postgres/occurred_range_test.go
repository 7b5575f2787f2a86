package postgres_test

import (
	"context"
	"testing"
	"time"

	"github.com/strata-events/strata"
)

// TestOccurredAtOutOfRange appends events whose domain time lies beyond what the driver encodes
// (microseconds in 64 bits): the append is Invalid and writes nothing, instead of storing
// another time (year -300000 came back as year 284554), as on SQLite.
func TestOccurredAtOutOfRange(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := newEnv(t).open()
	for _, at := range []time.Time{
		time.Date(300000, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(-300000, 1, 1, 0, 0, 0, 0, time.UTC),
	} {
		for _, multi := range []bool{false, true} {
			e := event("CertificateRevoked", `{}`)
			e.OccurredAt = at
			var err error
			if multi {
				_, err = st.AppendMulti(ctx, strata.StreamAppend{Stream: "certificate-1", Expected: strata.Any, Events: []strata.EventData{e}},
					strata.StreamAppend{Stream: "certificate-2", Expected: strata.Any, Events: []strata.EventData{event("CertificateIssued", `{}`)}})
			} else {
				_, err = st.Append(ctx, "certificate-1", strata.Any, e)
			}
			if strata.ErrorCode(err) != strata.Invalid {
				t.Errorf("append occurred at year %d (multi %v): %v, want Invalid", at.Year(), multi, err)
			}
		}
	}
	if evs := readAll(t, st, strata.ReadAllOptions{}); len(evs) != 0 {
		t.Fatalf("the log holds an event occurred at %v", evs[0].OccurredAt)
	}
}
