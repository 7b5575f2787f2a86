package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/strata-events/strata"
)

// RunQuery runs the section of the suite for the query capabilities (query_capability.go):
// strata.QueryStore (tenant isolation under every filter, keyset pages that stay stable while
// events are appended, counts, bad input), strata.TemporalSnapshotStore and
// strata.RetentionStore (candidates, tombstones, legal holds). [Run] calls it; a store that does
// not implement an interface skips its tests, or fails them when f.Capabilities is set.
func RunQuery(t *testing.T, newStore NewStore, f Features) {
	suite{newStore: newStore, f: f}.runQuery(t)
}

func (s suite) runQuery(t *testing.T) {
	runParallel(t, []subtest{
		{"TenantIsolationEveryFilter", s.testQueryIsolation},
		{"PagesStableUnderAppends", s.testQueryPagination},
		{"BadInputRejected", s.testQueryBadInput},
		{"OddMetadataThroughIndexes", s.testQueryOddMetadata},
		{"TemporalSnapshots", s.testTemporalSnapshots},
		{"TombstonesAndLegalHolds", s.testTombstones},
		{"TombstonesOfOddTenants", s.testTombstoneOddTenants},
		{"LargeTombstoneBatchesAtOnce", s.testTombstoneLargeBatches},
		{"RepeatedTombstonesLastWins", s.testTombstoneRepeated},
	})
}

// queryFixture appends the same shape of events for tenants "acme" and "beta" and returns
// every event appended.
func queryFixture(t *testing.T, s strata.Store) []strata.Event {
	ctx := testContext(t)
	for _, tenant := range []string{"acme", "beta"} {
		for i := range 12 {
			m := strata.Metadata{
				Tenant: tenant, Principal: fmt.Sprintf("op-%d", i%3), Session: fmt.Sprintf("sess-%d", i%4),
				Correlation: fmt.Sprintf("req-%d", i%5), Causation: fmt.Sprintf("cmd-%d", i%2),
				Subsystem: []string{"ca", "ra"}[i%2], Category: []string{"issuance", "revocation", "audit"}[i%3],
			}
			typ := []string{"CertificateIssued", "CertificateRevoked"}[i%2]
			stream := fmt.Sprintf("certificate-%s-%d", tenant, i%3)
			if i%4 == 3 {
				stream = fmt.Sprintf("revocation-%s-%d", tenant, i)
			}
			mustAppend(t, ctx, s, stream, strata.Any, strata.EventData{Type: typ, Data: []byte(fmt.Sprintf(`{"i":%d}`, i)), Meta: m})
		}
	}
	// An event without a tenant is never found by any query.
	mustAppend(t, ctx, s, "certificate-acme-0", strata.Any, strata.EventData{Type: "CertificateIssued", Meta: strata.Metadata{Principal: "op-0"}})
	return allEvents(t, ctx, s)
}

func (s suite) testQueryIsolation(t *testing.T) {
	ctx := testContext(t)
	st, qs := capability[strata.QueryStore](t, s)
	all := queryFixture(t, st)
	mid := all[len(all)/3].RecordedAt
	queries := map[string]strata.EventQuery{
		"none":        {},
		"type":        {Types: []string{"CertificateRevoked"}},
		"types":       {Types: []string{"CertificateRevoked", "CertificateIssued"}},
		"subsystem":   {Subsystem: "ra"},
		"category":    {Category: "audit"},
		"principal":   {Principal: "op-1"},
		"session":     {Session: "sess-2"},
		"correlation": {Correlation: "req-3"},
		"causation":   {Causation: "cmd-0"},
		"prefix":      {StreamPrefix: "revocation-"},
		"from":        {RecordedFrom: mid},
		"to":          {RecordedTo: mid.Add(time.Microsecond)},
		"combined":    {Types: []string{"CertificateIssued"}, Principal: "op-0", StreamPrefix: "certificate-"},
		"no match":    {Principal: "nobody"},
	}
	check := func() {
		for name, q := range queries {
			s.checkQuery(t, qs, all, name, q)
		}
	}
	check()
	if ix, ok := st.(strata.QueryIndexer); ok {
		// The same answers through the search indexes.
		if err := ix.CreateQueryIndexes(ctx); err != nil {
			t.Fatalf("create query indexes: %v", err)
		}
		if err := ix.CreateQueryIndexes(ctx); err != nil {
			t.Fatalf("create query indexes again: %v", err)
		}
		check()
	}
	// A page carries the events as stored.
	p, err := qs.QueryEvents(ctx, strata.EventQuery{Tenant: "acme", Limit: 1})
	if err != nil || len(p.Events) != 1 {
		t.Fatalf("first page: %v, %v", p, err)
	}
	for _, e := range all {
		if e.ID == p.Events[0].ID && (!bytes.Equal(e.Data, p.Events[0].Data) || !e.Meta.Equal(p.Events[0].Meta) || e.Position != p.Events[0].Position || e.Stream != p.Events[0].Stream) {
			t.Fatalf("query returned %+v, the log holds %+v", p.Events[0], e)
		}
	}
}

func (s suite) checkQuery(t *testing.T, qs strata.QueryStore, all []strata.Event, name string, q strata.EventQuery) {
	ctx := testContext(t)
	{
		for _, tenant := range []string{"acme", "beta", "gamma"} {
			q.Tenant = tenant
			var want []strata.Event
			for i := range all {
				if q.Match(&all[i]) {
					want = append(want, all[i])
				}
			}
			slices.SortFunc(want, func(a, b strata.Event) int { return strata.CompareQueryOrder(&a, &b) })
			for _, limit := range []int{0, 1, 5} {
				q.Limit, q.Cursor = limit, ""
				var got []strata.Event
				for pages := 0; ; pages++ {
					p, err := qs.QueryEvents(ctx, q)
					if err != nil {
						t.Fatalf("%s, tenant %s: %v", name, tenant, err)
					}
					if pages > 100 {
						t.Fatalf("%s: endless pages", name)
					}
					for _, e := range p.Events {
						if e.Meta.Tenant != tenant {
							t.Fatalf("query %s for tenant %s returned an event of tenant %q", name, tenant, e.Meta.Tenant)
						}
					}
					got = append(got, p.Events...)
					if limit > 0 && len(p.Events) > limit {
						t.Fatalf("%s: page of %d events, limit %d", name, len(p.Events), limit)
					}
					if p.Next == "" {
						break
					}
					q.Cursor = p.Next
				}
				if !sameIDs(got, want) {
					t.Fatalf("query %s, tenant %s, limit %d: got %s, want %s", name, tenant, limit, ids(got), ids(want))
				}
			}
			q.Cursor, q.Limit = "", 0
			n, err := qs.CountEvents(ctx, q)
			if err != nil || n != int64(len(want)) {
				t.Fatalf("count %s, tenant %s: %d, %v; want %d", name, tenant, n, err, len(want))
			}
		}
	}
}

func ids(evs []strata.Event) string {
	var b strings.Builder
	for _, e := range evs {
		fmt.Fprintf(&b, "%s v%d@%s ", e.Stream, e.Version, e.Position)
	}
	return "[" + strings.TrimSpace(b.String()) + "]"
}

func (s suite) testQueryPagination(t *testing.T) {
	ctx := testContext(t)
	st, qs := capability[strata.QueryStore](t, s)
	for i := range 40 {
		mustAppend(t, ctx, st, certStream(i%5), strata.Any, strata.EventData{Type: "CertificateIssued", Meta: strata.Metadata{Tenant: "acme", Principal: "op"}})
	}
	before := allEvents(t, ctx, st)
	// Writers append to the same tenant and filter while the reader pages.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var werr error
	var mu sync.Mutex
	for w := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := st.Append(ctx, fmt.Sprintf("certificate-w%d", w), strata.Any, strata.EventData{Type: "CertificateIssued", Meta: strata.Metadata{Tenant: "acme", Principal: "op"}}); err != nil {
					mu.Lock()
					werr = err
					mu.Unlock()
					return
				}
				if i > 200 {
					return
				}
			}
		}()
	}
	seen := map[uuid.UUID]bool{}
	q := strata.EventQuery{Tenant: "acme", Principal: "op", Limit: 3}
	var got []strata.Event
	for pages := 0; pages < 1000; pages++ {
		p, err := qs.QueryEvents(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range p.Events {
			if seen[e.ID] {
				t.Fatalf("page %d repeats %s v%d", pages, e.Stream, e.Version)
			}
			seen[e.ID] = true
		}
		got = append(got, p.Events...)
		if p.Next == "" {
			break
		}
		q.Cursor = p.Next
	}
	close(stop)
	wg.Wait()
	if werr != nil {
		t.Fatalf("writer: %v", werr)
	}
	for _, e := range before {
		if !seen[e.ID] {
			t.Fatalf("pages skipped %s v%d, committed before the first page", e.Stream, e.Version)
		}
	}
	for i := 1; i < len(got); i++ {
		if strata.CompareQueryOrder(&got[i-1], &got[i]) >= 0 {
			t.Fatalf("pages out of order at %d", i)
		}
	}
}

func (s suite) testQueryBadInput(t *testing.T) {
	ctx := testContext(t)
	_, qs := capability[strata.QueryStore](t, s)
	for name, q := range map[string]strata.EventQuery{
		"no tenant":    {Principal: "op"},
		"bad cursor":   {Tenant: "acme", Cursor: "not-a-cursor"},
		"big limit":    {Tenant: "acme", Limit: strata.MaxQueryLimit + 1},
		"neg limit":    {Tenant: "acme", Limit: -1},
		"empty range":  {Tenant: "acme", RecordedFrom: time.Unix(100, 0), RecordedTo: time.Unix(100, 0)},
		"empty type":   {Tenant: "acme", Types: []string{""}},
		"year 0":       {Tenant: "acme", RecordedFrom: time.Date(1, 1, 1, 0, 0, 0, 1, time.UTC)},
		"cursor bytes": {Tenant: "acme", Cursor: "AAAA"},
	} {
		_, err := qs.QueryEvents(ctx, q)
		wantCode(t, err, strata.Invalid, "query "+name)
		if name == "no tenant" {
			_, err := qs.CountEvents(ctx, q)
			wantCode(t, err, strata.Invalid, "count "+name)
		}
	}
}

func (s suite) testTemporalSnapshots(t *testing.T) {
	ctx := testContext(t)
	_, ts := capability[strata.TemporalSnapshotStore](t, s)
	day := func(d int) time.Time { return time.Date(2023, 3, d, 9, 0, 0, 0, time.UTC) }
	if _, err := ts.TemporalSnapshotAt(ctx, "certificate-1", "m/1", day(30), time.Time{}); !errors.Is(err, strata.ErrNotFound) {
		t.Fatalf("no snapshots: %v, want NotFound", err)
	}
	for v, d := range map[int64][2]int{10: {10, 10}, 20: {14, 20}, 30: {20, 22}} {
		if err := ts.SaveTemporalSnapshot(ctx, strata.TemporalSnapshot{Stream: "certificate-1", Model: "m/1", Version: v, RecordedUpTo: day(d[1]), OccurredUpTo: day(d[0]), Data: []byte(fmt.Sprint(v))}); err != nil {
			t.Fatal(err)
		}
	}
	// Another model and another stream are kept apart.
	if err := ts.SaveTemporalSnapshot(ctx, strata.TemporalSnapshot{Stream: "certificate-1", Model: "m/2", Version: 40, RecordedUpTo: day(1), OccurredUpTo: day(1), Data: []byte("x")}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		rec, occ time.Time
		want     int64
	}{
		{day(30), time.Time{}, 30}, {day(21), time.Time{}, 20}, {day(20), time.Time{}, 20}, {day(11), time.Time{}, 10},
		{day(9), time.Time{}, 0}, {day(30), day(21), 30}, {day(30), day(19), 20}, {day(30), day(13), 10}, {day(30), day(9), 0},
	} {
		got, err := ts.TemporalSnapshotAt(ctx, "certificate-1", "m/1", c.rec, c.occ)
		if c.want == 0 {
			if !errors.Is(err, strata.ErrNotFound) {
				t.Fatalf("snapshot at %s/%s: %+v, %v; want NotFound", c.rec, c.occ, got, err)
			}
			continue
		}
		if err != nil || got.Version != c.want || string(got.Data) != fmt.Sprint(c.want) || got.Model != "m/1" || got.Stream != "certificate-1" {
			t.Fatalf("snapshot at %s/%s: %+v, %v; want version %d", c.rec, c.occ, got, err, c.want)
		}
		if c.want == 20 && (!got.RecordedUpTo.Equal(day(20)) || !got.OccurredUpTo.Equal(day(14))) {
			t.Fatalf("snapshot times: %+v", got)
		}
	}
	// Saving a version again replaces it.
	if err := ts.SaveTemporalSnapshot(ctx, strata.TemporalSnapshot{Stream: "certificate-1", Model: "m/1", Version: 30, RecordedUpTo: day(20), OccurredUpTo: day(22), Data: []byte("new")}); err != nil {
		t.Fatal(err)
	}
	if got, err := ts.TemporalSnapshotAt(ctx, "certificate-1", "m/1", day(30), time.Time{}); err != nil || string(got.Data) != "new" {
		t.Fatalf("replaced snapshot: %+v, %v", got, err)
	}
	for name, bad := range map[string]strata.TemporalSnapshot{
		"no model":   {Stream: "s", Version: 1, RecordedUpTo: day(1), OccurredUpTo: day(1)},
		"version 0":  {Stream: "s", Model: "m", RecordedUpTo: day(1), OccurredUpTo: day(1)},
		"no times":   {Stream: "s", Model: "m", Version: 1},
		"bad stream": {Stream: "", Model: "m", Version: 1, RecordedUpTo: day(1), OccurredUpTo: day(1)},
	} {
		wantCode(t, ts.SaveTemporalSnapshot(ctx, bad), strata.Invalid, name)
	}
}

func (s suite) testTombstones(t *testing.T) {
	ctx := testContext(t)
	st, rs := capability[strata.RetentionStore](t, s)
	for i := range 6 {
		mustAppend(t, ctx, st, certStream(i%3), strata.Any, strata.EventData{Type: "CertificateIssued", Data: []byte(`{"subjectDN":"CN=Alice"}`), Meta: strata.Metadata{Tenant: "acme", Principal: "alice"}})
	}
	mustAppend(t, ctx, st, certStream(9), strata.Any, strata.EventData{Type: "Other", Meta: strata.Metadata{Tenant: "beta"}})
	all := allEvents(t, ctx, st)
	cutoff := all[len(all)-1].RecordedAt.Add(time.Second)
	sel := strata.RetentionSelect{AnyTenant: true, RecordedBefore: cutoff, Limit: 100}
	got, err := candidates(ctx, rs, sel)
	if err != nil || len(got) != len(all) {
		t.Fatalf("candidates: %d, %v; want %d", len(got), err, len(all))
	}
	sel2 := sel
	sel2.AnyTenant, sel2.Tenant, sel2.Types, sel2.Limit = false, "acme", []string{"CertificateIssued"}, 2
	p1, err := rs.RetentionCandidates(ctx, sel2)
	if err != nil || !sameIDs(p1.Events, all[:2]) || p1.Next == "" {
		t.Fatalf("candidates of acme, limit 2: %s, next %q, %v", ids(p1.Events), p1.Next, err)
	}
	sel2.Cursor = p1.Next
	if p2, err := rs.RetentionCandidates(ctx, sel2); err != nil || !sameIDs(p2.Events, all[2:4]) {
		t.Fatalf("candidates after the first page: %s, %v", ids(p2.Events), err)
	}
	// A pass in pages of one returns each candidate once, whatever the backend's order.
	sel4 := sel
	sel4.Limit = 1
	if got, err := candidates(ctx, rs, sel4); err != nil || !sameIDs(sortedByPosition(got), all) {
		t.Fatalf("a pass in pages of 1: %s, %v", ids(got), err)
	}
	sel3 := sel
	sel3.UpTo, sel3.ExcludePrefix, sel3.ExcludeTypes = all[3].Position, certStream(1), []string{"Other"}
	if got, err := candidates(ctx, rs, sel3); err != nil || !sameIDs(sortedByPosition(got), []strata.Event{all[0], all[2], all[3]}) {
		t.Fatalf("candidates up to 4, without %s: %s, %v", certStream(1), ids(got), err)
	}
	sel5 := sel
	sel5.RecordedBefore = all[2].RecordedAt
	if got, err := candidates(ctx, rs, sel5); err != nil || !sameIDs(sortedByPosition(got), eventsBefore(all, all[2].RecordedAt)) {
		t.Fatalf("candidates recorded before the third event: %s, %v", ids(got), err)
	}
	wantCode(t, func() error {
		_, err := rs.RetentionCandidates(ctx, strata.RetentionSelect{AnyTenant: true, RecordedBefore: cutoff, Limit: 1, Cursor: "?"})
		return err
	}(), strata.Invalid, "bad cursor")
	// Hold stream 0, then tombstone everything of acme: stream 0 stays whole.
	if err := rs.PlaceLegalHold(ctx, strata.LegalHold{Stream: certStream(0), Reason: "case 2023-17", HeldBy: "legal"}); err != nil {
		t.Fatal(err)
	}
	holds, err := Collect(rs.LegalHolds(ctx))
	if err != nil || len(holds) != 1 || holds[0].Stream != certStream(0) || holds[0].Reason != "case 2023-17" || holds[0].HeldAt.IsZero() {
		t.Fatalf("holds: %+v, %v", holds, err)
	}
	if got, err := candidates(ctx, rs, sel); err != nil || len(got) != len(all)-2 {
		t.Fatalf("candidates with a hold: %s, %v", ids(got), err)
	}
	run := uuid.New()
	var ts []strata.Tombstone
	for i, e := range all[:6] {
		ts = append(ts, strata.Tombstone{EventID: e.ID, LeafHash: bytes.Repeat([]byte{byte(i + 1)}, 32), Run: run})
	}
	n, err := rs.TombstoneEvents(ctx, ts)
	if err != nil || n != 4 {
		t.Fatalf("tombstone 6 events, 2 held: %d, %v; want 4", n, err)
	}
	if n, err := rs.TombstoneEvents(ctx, ts); err != nil || n != 0 {
		t.Fatalf("tombstone again: %d, %v; want 0", n, err)
	}
	after := allEvents(t, ctx, st)
	if len(after) != len(all) {
		t.Fatalf("tombstoning changed the log's length: %d, want %d", len(after), len(all))
	}
	for i, e := range after {
		held := e.Stream == certStream(0)
		if e.ID != all[i].ID || e.Position != all[i].Position || e.Version != all[i].Version || e.Type != all[i].Type || !e.RecordedAt.Equal(all[i].RecordedAt) {
			t.Fatalf("event %d lost its place: %+v, was %+v", i, e, all[i])
		}
		tomb, err := rs.Tombstone(ctx, e.ID)
		switch {
		case i >= 6 || held:
			if !bytes.Equal(e.Data, all[i].Data) || !e.Meta.Equal(all[i].Meta) {
				t.Fatalf("event %d (held %v) changed", i, held)
			}
			if !errors.Is(err, strata.ErrNotFound) {
				t.Fatalf("tombstone of a kept event: %v, want NotFound", err)
			}
		default:
			if !bytes.Equal(e.Data, strata.TombstoneData) || !e.Meta.Equal(strata.Metadata{Tenant: "acme"}) {
				t.Fatalf("tombstoned event %d holds %s %+v", i, e.Data, e.Meta)
			}
			if err != nil || !bytes.Equal(tomb.LeafHash, ts[i].LeafHash) || tomb.Run != run || tomb.EventID != e.ID || tomb.RemovedAt.IsZero() {
				t.Fatalf("tombstone %d: %+v, %v", i, tomb, err)
			}
		}
	}
	// A stream's version survives: the next append continues after the tombstoned last event.
	if res := mustAppend(t, ctx, st, certStream(1), strata.Exact(2), strata.EventData{Type: "CertificateRevoked"}); res.LastVersion != 3 {
		t.Fatalf("append after tombstones: %+v", res)
	}
	if got, err := candidates(ctx, rs, sel); err != nil || len(got) != 2 {
		t.Fatalf("candidates after tombstoning: %s, %v; want beta's and the new one", ids(got), err)
	}
	acme := sel
	acme.AnyTenant, acme.Tenant = false, "acme"
	if got, err := candidates(ctx, rs, acme); err != nil || len(got) != 0 {
		t.Fatalf("candidates of acme after tombstoning: %s, %v; want none (the rest is held)", ids(got), err)
	}
	if err := rs.ReleaseLegalHold(ctx, certStream(0)); err != nil {
		t.Fatal(err)
	}
	if err := rs.ReleaseLegalHold(ctx, certStream(0)); err != nil {
		t.Fatalf("release twice: %v", err)
	}
	if n, err := rs.TombstoneEvents(ctx, ts); err != nil || n != 2 {
		t.Fatalf("tombstone after release: %d, %v; want 2", n, err)
	}
	wantCode(t, func() error {
		_, err := rs.TombstoneEvents(ctx, []strata.Tombstone{{EventID: all[6].ID, LeafHash: []byte{1}}})
		return err
	}(), strata.Invalid, "short leaf hash")
	wantCode(t, func() error {
		_, err := rs.RetentionCandidates(ctx, strata.RetentionSelect{AnyTenant: true, Limit: 1})
		return err
	}(), strata.Invalid, "no cutoff")
	wantCode(t, func() error {
		_, err := rs.RetentionCandidates(ctx, strata.RetentionSelect{RecordedBefore: cutoff, Limit: 1})
		return err
	}(), strata.Invalid, "no tenant")
	wantCode(t, rs.PlaceLegalHold(ctx, strata.LegalHold{}), strata.Invalid, "hold without a stream")
	if _, err := rs.Tombstone(ctx, uuid.New()); !errors.Is(err, strata.ErrNotFound) {
		t.Fatalf("tombstone of an unknown event: %v", err)
	}
}

// testTombstoneOddTenants tombstones events of tenants whose names JSON escapes: each keeps
// its tenant's metadata alone, exactly, and is no retention candidate any more.
func (s suite) testTombstoneOddTenants(t *testing.T) {
	ctx := testContext(t)
	st, rs := capability[strata.RetentionStore](t, s)
	// And tenants about the 200 bytes past which a backend may key its tenant column by a
	// hash (MySQL does).
	tenants := []string{"plain-tenant", `quote"back\\slash`, "<a>&b", "line\u2028sep", "é", "nul\x00here", "🔏",
		strings.Repeat("t", 200), strings.Repeat("t", 201), strings.Repeat("é", 150)}
	for i, tenant := range tenants {
		mustAppend(t, ctx, st, certStream(i), strata.Any, strata.EventData{Type: "T", Data: []byte(`{"n":1}`), Meta: strata.Metadata{Tenant: tenant, Principal: "p"}})
	}
	all := allEvents(t, ctx, st)
	var ts []strata.Tombstone
	for _, e := range all {
		ts = append(ts, strata.Tombstone{EventID: e.ID, LeafHash: bytes.Repeat([]byte{7}, 32), Run: uuid.New()})
	}
	if n, err := rs.TombstoneEvents(ctx, ts); err != nil || n != len(all) {
		t.Fatalf("tombstone %d events: %d, %v", len(all), n, err)
	}
	for i, e := range allEvents(t, ctx, st) {
		if want := strata.TombstoneMeta(all[i].Meta); !bytes.Equal(e.Data, strata.TombstoneData) || !e.Meta.Equal(want) {
			t.Fatalf("tombstoned event of tenant %q holds %s %+v, want %+v", tenants[i], e.Data, e.Meta, want)
		}
	}
	cutoff := all[len(all)-1].RecordedAt.Add(time.Second)
	if got, err := candidates(ctx, rs, strata.RetentionSelect{AnyTenant: true, RecordedBefore: cutoff, Limit: 100}); err != nil || len(got) != 0 {
		t.Fatalf("candidates after tombstoning: %s, %v; want none", ids(got), err)
	}
}

// testTombstoneLargeBatches removes batches large enough for a backend to cut in parts, of
// plain, escaped and no tenants, with a held stream and repeated events, twice at once: every
// event not held is removed exactly once, by the last of its tombstones in the call that
// removed it, with its tenant's metadata alone; the held stream stays whole.
func (s suite) testTombstoneLargeBatches(t *testing.T) {
	ctx := testContext(t)
	st, rs := capability[strata.RetentionStore](t, s)
	const streams, perStream = 4, 600
	tenants := []string{"acme", `q"uote`, "é", ""}
	for i := range streams {
		for from := 0; from < perStream; from += 300 {
			evs := make([]strata.EventData, 300)
			for j := range evs {
				evs[j] = strata.EventData{Type: "T", Data: []byte(`{"n":1}`), Meta: strata.Metadata{Tenant: tenants[(from+j)%len(tenants)], Principal: "p"}}
			}
			mustAppend(t, ctx, st, certStream(i), strata.Any, evs...)
		}
	}
	held := certStream(2)
	if err := rs.PlaceLegalHold(ctx, strata.LegalHold{Stream: held, Reason: "case", HeldBy: "legal"}); err != nil {
		t.Fatal(err)
	}
	all := allEvents(t, ctx, st)
	// Temporal snapshots of every stream, which the parts of both calls delete at once.
	tss, snapshots := st.(strata.TemporalSnapshotStore)
	at := all[len(all)-1].RecordedAt
	for i := range streams {
		for _, model := range []string{"m/1", "m/2", "m/3"} {
			for v := int64(100); v <= perStream && snapshots; v += 100 {
				if err := tss.SaveTemporalSnapshot(ctx, strata.TemporalSnapshot{Stream: certStream(i), Model: model, Version: v, RecordedUpTo: at, OccurredUpTo: at, Data: []byte("{}")}); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	runA, runB, runC := uuid.New(), uuid.New(), uuid.New()
	var first, second []strata.Tombstone
	for i, e := range all {
		first = append(first, strata.Tombstone{EventID: e.ID, LeafHash: bytes.Repeat([]byte{1}, 32), Run: runA})
		second = append(second, strata.Tombstone{EventID: all[len(all)-1-i].ID, LeafHash: bytes.Repeat([]byte{3}, 32), Run: runC})
	}
	// The first call names its first 100 events again at its end: those tombstones win.
	for _, e := range all[:100] {
		first = append(first, strata.Tombstone{EventID: e.ID, LeafHash: bytes.Repeat([]byte{2}, 32), Run: runB})
	}
	var (
		wg     sync.WaitGroup
		n      [2]int
		errs   [2]error
		calls  = [2][]strata.Tombstone{first, second}
		starts = make(chan struct{})
	)
	for c := range calls {
		wg.Go(func() {
			<-starts
			n[c], errs[c] = rs.TombstoneEvents(ctx, calls[c])
		})
	}
	close(starts)
	wg.Wait()
	if err := errors.Join(errs[:]...); err != nil {
		t.Fatalf("tombstone at once: %v", err)
	}
	removable := (streams - 1) * perStream
	if n[0]+n[1] != removable {
		t.Fatalf("the two calls removed %d and %d events, want %d in all", n[0], n[1], removable)
	}
	byRun := map[uuid.UUID]int{}
	after := allEvents(t, ctx, st)
	for i, e := range after {
		tomb, err := rs.Tombstone(ctx, e.ID)
		if e.Stream == held {
			if !errors.Is(err, strata.ErrNotFound) || !bytes.Equal(e.Data, all[i].Data) || !e.Meta.Equal(all[i].Meta) {
				t.Fatalf("held event %d changed: %s %+v, tombstone %v", i, e.Data, e.Meta, err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("tombstone of event %d: %v", i, err)
		}
		byRun[tomb.Run]++
		if want := strata.TombstoneMeta(all[i].Meta); !bytes.Equal(e.Data, strata.TombstoneData) || !e.Meta.Equal(want) {
			t.Fatalf("tombstoned event %d holds %s %+v, want %+v", i, e.Data, e.Meta, want)
		}
		wantRun, wantHash := runA, byte(1)
		if i < 100 {
			wantRun, wantHash = runB, 2
		}
		if tomb.Run == runC {
			wantRun, wantHash = runC, 3
		}
		if tomb.Run != wantRun || !bytes.Equal(tomb.LeafHash, bytes.Repeat([]byte{wantHash}, 32)) {
			t.Fatalf("event %d has the tombstone of run %s (leaf %x), want run %s", i, tomb.Run, tomb.LeafHash[:1], wantRun)
		}
	}
	if byRun[runA]+byRun[runB] != n[0] || byRun[runC] != n[1] {
		t.Fatalf("tombstones by run: %d + %d and %d, the calls reported %d and %d", byRun[runA], byRun[runB], byRun[runC], n[0], n[1])
	}
	for i := range streams {
		for _, model := range []string{"m/1", "m/2", "m/3"} {
			if !snapshots {
				break
			}
			_, err := tss.TemporalSnapshotAt(ctx, certStream(i), model, at, time.Time{})
			if certStream(i) == held && err != nil {
				t.Fatalf("a temporal snapshot of the held stream: %v", err)
			}
			if certStream(i) != held && !errors.Is(err, strata.ErrNotFound) {
				t.Fatalf("a temporal snapshot of %s (%s) after its events were removed: %v, want NotFound", certStream(i), model, err)
			}
		}
	}
	// The same call again removes nothing, and so leaves the snapshots saved since.
	for i := range streams {
		if snapshots {
			if err := tss.SaveTemporalSnapshot(ctx, strata.TemporalSnapshot{Stream: certStream(i), Model: "m/1", Version: perStream, RecordedUpTo: at, OccurredUpTo: at, Data: []byte("{}")}); err != nil {
				t.Fatal(err)
			}
		}
	}
	if n, err := rs.TombstoneEvents(ctx, first); err != nil || n != 0 {
		t.Fatalf("the first call again: %d, %v; want 0", n, err)
	}
	for i := range streams {
		if snapshots {
			if _, err := tss.TemporalSnapshotAt(ctx, certStream(i), "m/1", at, time.Time{}); err != nil {
				t.Fatalf("the temporal snapshot of %s after a call that removed nothing: %v", certStream(i), err)
			}
		}
	}
}

// testTombstoneRepeated removes, in one call and so without a race deciding, a batch large
// enough for a backend to cut in parts in which some events are named twice, in either half:
// each is removed once, with the last of its tombstones.
func (s suite) testTombstoneRepeated(t *testing.T) {
	ctx := testContext(t)
	st, rs := capability[strata.RetentionStore](t, s)
	const events = 1200
	for from := 0; from < events; from += 300 {
		evs := make([]strata.EventData, 300)
		for j := range evs {
			evs[j] = strata.EventData{Type: "T", Data: []byte(`{"n":1}`), Meta: strata.Metadata{Tenant: "acme"}}
		}
		mustAppend(t, ctx, st, certStream(0), strata.Any, evs...)
	}
	all := allEvents(t, ctx, st)
	runA, runB := uuid.New(), uuid.New()
	var ts []strata.Tombstone
	for _, e := range all {
		ts = append(ts, strata.Tombstone{EventID: e.ID, LeafHash: bytes.Repeat([]byte{1}, 32), Run: runA})
	}
	again := func(i int) bool { return i%7 == 0 }
	for i, e := range all {
		if again(i) {
			ts = append(ts, strata.Tombstone{EventID: e.ID, LeafHash: bytes.Repeat([]byte{2}, 32), Run: runB})
		}
	}
	if n, err := rs.TombstoneEvents(ctx, ts); err != nil || n != events {
		t.Fatalf("tombstone %d events named %d times: %d, %v", events, len(ts), n, err)
	}
	for i, e := range all {
		tomb, err := rs.Tombstone(ctx, e.ID)
		if err != nil {
			t.Fatalf("tombstone of event %d: %v", i, err)
		}
		wantRun, wantHash := runA, byte(1)
		if again(i) {
			wantRun, wantHash = runB, 2
		}
		if tomb.Run != wantRun || !bytes.Equal(tomb.LeafHash, bytes.Repeat([]byte{wantHash}, 32)) {
			t.Fatalf("event %d has the tombstone of run %s (leaf %x), want run %s", i, tomb.Run, tomb.LeafHash[:1], wantRun)
		}
	}
}

// testQueryOddMetadata appends, after the search indexes exist, events whose metadata holds
// what JSON escapes (NUL, quotes, <>&, the text \u0000, line separators, astral characters), and
// finds each by its exact value and never by a near one.
func (s suite) testQueryOddMetadata(t *testing.T) {
	ctx := testContext(t)
	st, qs := capability[strata.QueryStore](t, s)
	if ix, ok := st.(strata.QueryIndexer); ok {
		if err := ix.CreateQueryIndexes(ctx); err != nil {
			t.Fatalf("create query indexes: %v", err)
		}
	}
	odd := []string{"nul\x00here", "nul\ufffdhere", `quote"back\\slash`, "<a>&b", `text \u0000 escape`, "line\u2028sep", "🔏 astral", "é", "e\u0301"}
	for i, v := range odd {
		mustAppend(t, ctx, st, certStream(i), strata.Any, strata.EventData{Type: "T", Meta: strata.Metadata{Tenant: "odd\x00tenant", Principal: v, Correlation: v, Extra: map[string]string{"note": v}}})
	}
	for _, v := range odd {
		for _, q := range []strata.EventQuery{{Principal: v}, {Correlation: v}} {
			q.Tenant = "odd\x00tenant"
			p, err := qs.QueryEvents(ctx, q)
			if err != nil {
				t.Fatalf("query %q: %v", v, err)
			}
			if len(p.Events) != 1 || p.Events[0].Meta.Principal != v {
				t.Fatalf("query %q found %s", v, ids(p.Events))
			}
		}
	}
	if p, err := qs.QueryEvents(ctx, strata.EventQuery{Tenant: "odd"}); err != nil || len(p.Events) != 0 {
		t.Fatalf("a prefix of the tenant found %s, %v", ids(p.Events), err)
	}
}

// candidates reads a whole pass of retention candidates.
func candidates(ctx context.Context, rs strata.RetentionStore, sel strata.RetentionSelect) ([]strata.Event, error) {
	var out []strata.Event
	for range 10_000 {
		p, err := rs.RetentionCandidates(ctx, sel)
		if err != nil {
			return out, err
		}
		out = append(out, p.Events...)
		if p.Next == "" {
			return out, nil
		}
		sel.Cursor = p.Next
	}
	return out, errors.New("a retention pass that never ends")
}

func sortedByPosition(evs []strata.Event) []strata.Event {
	out := slices.Clone(evs)
	slices.SortFunc(out, func(a, b strata.Event) int { return a.Position.Compare(b.Position) })
	return out
}

func eventsBefore(evs []strata.Event, t time.Time) []strata.Event {
	var out []strata.Event
	for _, e := range evs {
		if e.RecordedAt.Before(t) {
			out = append(out, e)
		}
	}
	return out
}
