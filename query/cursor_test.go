package query_test

import (
	"testing"
	"time"

	"github.com/strata-events/strata"
	"github.com/strata-events/strata/internal/backends"
	"github.com/strata-events/strata/query"
)

// TestCursorTimeOutsideTheYears: a cursor is the sort key of a stored event, whose recording
// time lies in the years strata.MinTimerYear to strata.MaxTimerYear. A cursor edited to hold
// another time is an Invalid error on every backend, for a page of a search and of a retention
// pass alike, instead of an Internal error from the MySQL driver or PostgreSQL, or a page that
// differs between backends (a time past year 294,247 wraps around to a negative one).
func TestCursorTimeOutsideTheYears(t *testing.T) {
	for _, kind := range backends.All {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			ctx := testCtx(t)
			st, _ := backends.Open(t, kind)
			mustAppend(t, st, "certificate-1", strata.EventData{Type: "T", Meta: strata.Metadata{Tenant: "acme"}})
			rs := st.(strata.RetentionStore)
			for _, at := range []time.Time{
				time.Date(999, 12, 31, 0, 0, 0, 0, time.UTC), time.Date(-5, 1, 1, 0, 0, 0, 0, time.UTC),
				time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(300000, 1, 1, 0, 0, 0, 0, time.UTC),
			} {
				c := strata.QueryCursor{RecordedAt: at, Position: strata.Position{Commit: 1, Event: 1}}.Encode()
				p, err := query.Page(ctx, st, strata.EventQuery{Tenant: "acme", Cursor: c})
				if strata.ErrorCode(err) != strata.Invalid {
					t.Errorf("query after a cursor at %v: %d events, %v; want an Invalid error", at, len(p.Events), err)
				}
				rp, err := rs.RetentionCandidates(ctx, strata.RetentionSelect{AnyTenant: true, RecordedBefore: time.Now(), Cursor: c, Limit: 10})
				if strata.ErrorCode(err) != strata.Invalid {
					t.Errorf("retention candidates after a cursor at %v: %d events, %v; want an Invalid error", at, len(rp.Events), err)
				}
			}
		})
	}
}

// TestRetentionCutoffOutsideTheYears: a retention cutoff outside the years
// strata.MinTimerYear to strata.MaxTimerYear is an Invalid error on every backend, as an event
// query's time range is, instead of an Internal error from the MySQL driver, or a pass that
// finds nothing on SQLite and every event in memory (a time past year 294,247 overflows its
// microseconds).
func TestRetentionCutoffOutsideTheYears(t *testing.T) {
	for _, kind := range backends.All {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			ctx := testCtx(t)
			st, _ := backends.Open(t, kind)
			mustAppend(t, st, "certificate-1", strata.EventData{Type: "T", Meta: strata.Metadata{Tenant: "acme"}})
			rs := st.(strata.RetentionStore)
			for _, cutoff := range []time.Time{
				time.Date(999, 12, 31, 0, 0, 0, 0, time.UTC), time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC),
				time.Date(20000, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(300000, 1, 1, 0, 0, 0, 0, time.UTC),
			} {
				for _, sel := range []strata.RetentionSelect{{AnyTenant: true}, {Tenant: "acme"}} {
					sel.RecordedBefore, sel.Limit = cutoff, 10
					p, err := rs.RetentionCandidates(ctx, sel)
					if strata.ErrorCode(err) != strata.Invalid {
						t.Errorf("candidates of %+v before %v: %d events, %v; want an Invalid error", sel, cutoff, len(p.Events), err)
					}
				}
			}
		})
	}
}
