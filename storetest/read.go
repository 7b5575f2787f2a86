package storetest

import (
	"bytes"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/strata-events/strata"
)

func (s suite) testReadStream(t *testing.T) {
	ctx := testContext(t)
	st := s.newStore(t)
	const stream, n = "certificate-PAGE", 1234 // more than one page of any backend
	batch := make([]strata.EventData, n)
	for i := range batch {
		batch[i] = ev("Tick", map[string]int{"i": i + 1})
	}
	mustAppend(t, ctx, st, stream, strata.NoStream, batch...)
	mustAppend(t, ctx, st, "other", strata.NoStream, ev("Tick", nil))

	versions := func(opts strata.ReadStreamOptions) []int64 {
		var vs []int64
		for _, e := range mustCollect(t, st.ReadStream(ctx, stream, opts)) {
			if e.Stream != stream {
				t.Fatalf("read of %q returned an event of %q", stream, e.Stream)
			}
			vs = append(vs, e.Version)
		}
		return vs
	}
	seq := func(from, to int64) []int64 {
		var vs []int64
		if from <= to {
			for v := from; v <= to; v++ {
				vs = append(vs, v)
			}
		} else {
			for v := from; v >= to; v-- {
				vs = append(vs, v)
			}
		}
		return vs
	}
	for _, c := range []struct {
		name string
		opts strata.ReadStreamOptions
		want []int64
	}{
		{"all forward", strata.ReadStreamOptions{}, seq(1, n)},
		{"forward from 1000", strata.ReadStreamOptions{From: 1000}, seq(1000, n)},
		{"forward limit", strata.ReadStreamOptions{From: 10, Limit: 3}, seq(10, 12)},
		{"forward limit past a page", strata.ReadStreamOptions{From: 2, Limit: 1100}, seq(2, 1101)},
		{"all backward", strata.ReadStreamOptions{Backward: true}, seq(n, 1)},
		{"backward from 5", strata.ReadStreamOptions{Backward: true, From: 5}, seq(5, 1)},
		{"backward limit", strata.ReadStreamOptions{Backward: true, Limit: 2}, seq(n, n-1)},
		{"backward from beyond the end", strata.ReadStreamOptions{Backward: true, From: n + 50, Limit: 1}, seq(n, n)},
		{"forward from beyond the end", strata.ReadStreamOptions{From: n + 1}, nil},
	} {
		if got := versions(c.opts); !slices.Equal(got, c.want) {
			t.Fatalf("%s: got %d versions %v..., want %d", c.name, len(got), head(got), len(c.want))
		}
	}
	if got := mustCollect(t, st.ReadStream(ctx, "no-such-stream", strata.ReadStreamOptions{})); len(got) != 0 {
		t.Fatalf("reading a missing stream returned %d events", len(got))
	}
	// Stopping early must not break later reads (rows and connections released).
	for range 20 {
		for range st.ReadStream(ctx, stream, strata.ReadStreamOptions{}) {
			break
		}
	}
	if got := versions(strata.ReadStreamOptions{Limit: 1}); !slices.Equal(got, []int64{1}) {
		t.Fatalf("read after early stops: %v", got)
	}
}

func head(vs []int64) []int64 { return vs[:min(len(vs), 5)] }

func (s suite) testReadAll(t *testing.T) {
	ctx := testContext(t)
	st := s.newStore(t)
	// 3 tenants × 4 certificates × (issued, revoked), interleaved, plus noise in another subsystem.
	for round := range 2 {
		for c := range 4 {
			for _, tenant := range []string{"acme", "globex", "initech"} {
				e := ev("CertificateIssued", map[string]int{"c": c})
				if round == 1 {
					e = ev("CertificateRevoked", map[string]int{"c": c})
				}
				e.Meta.Tenant = tenant
				mustAppend(t, ctx, st, fmt.Sprintf("certificate-%s-%d", tenant, c), strata.Any, e)
			}
		}
	}
	for i := range 1100 { // past a page, to exercise paging of global reads
		mustAppend(t, ctx, st, "health-probe", strata.Any, ev("HealthChecked", map[string]int{"i": i}))
	}
	all := allEvents(t, ctx, st)
	if len(all) != 24+1100 {
		t.Fatalf("global log has %d events, want %d", len(all), 24+1100)
	}
	checkAscending(t, all)

	// Resume from every cursor of the first events: the rest follows exactly.
	for _, i := range []int{0, 1, 7, 23, 500} {
		rest := mustCollect(t, st.ReadAll(ctx, strata.ReadAllOptions{After: all[i].Position}))
		if len(rest) != len(all)-i-1 || rest[0].ID != all[i+1].ID {
			t.Fatalf("resume after event %d (%s): %d events, want %d starting with %s", i, all[i].Position, len(rest), len(all)-i-1, all[i+1].Position)
		}
	}
	// A cursor round-trips through its text form.
	p, err := strata.ParsePosition(all[5].Position.String())
	if err != nil || p != all[5].Position {
		t.Fatalf("position %s does not round-trip: %v %v", all[5].Position, p, err)
	}
	if got := mustCollect(t, st.ReadAll(ctx, strata.ReadAllOptions{After: all[2].Position, Limit: 3})); len(got) != 3 || got[0].ID != all[3].ID {
		t.Fatalf("limit 3 after event 2 returned %d events", len(got))
	}
	// A limit past a page ends the read at the limit, not at the end of a page.
	for _, limit := range []int{1000, 1001, 1050} {
		if got := mustCollect(t, st.ReadAll(ctx, strata.ReadAllOptions{After: all[2].Position, Limit: limit})); !sameIDs(got, all[3:3+limit]) {
			t.Fatalf("limit %d after event 2 returned %d events, want %d", limit, len(got), limit)
		}
		health := strata.Filter{Types: []string{"HealthChecked"}}
		if got := mustCollect(t, st.ReadAll(ctx, strata.ReadAllOptions{Filter: health, Limit: limit})); !sameIDs(got, all[24:24+limit]) {
			t.Fatalf("limit %d of a filtered read returned %d events, want %d", limit, len(got), limit)
		}
	}
	if got := mustCollect(t, st.ReadAll(ctx, strata.ReadAllOptions{After: all[len(all)-1].Position})); len(got) != 0 {
		t.Fatalf("read after the last event returned %d events", len(got))
	}

	for _, c := range []struct {
		name   string
		filter strata.Filter
	}{
		{"type", strata.Filter{Types: []string{"CertificateRevoked"}}},
		{"two types", strata.Filter{Types: []string{"CertificateRevoked", "CertificateIssued"}}},
		{"stream prefix", strata.Filter{StreamPrefix: "certificate-globex-"}},
		{"tenant", strata.Filter{Tenant: "initech"}},
		{"tenant and type", strata.Filter{Tenant: "acme", Types: []string{"CertificateIssued"}}},
		{"prefix with LIKE wildcards", strata.Filter{StreamPrefix: "certificate-%"}},
		{"prefix matching nothing", strata.Filter{StreamPrefix: "zzz"}},
		{"prefix that is not UTF-8", strata.Filter{StreamPrefix: "certificate-\xff"}},
		{"prefix with a NUL byte", strata.Filter{StreamPrefix: "certificate-\x00"}},
		{"type that is not UTF-8", strata.Filter{Types: []string{"CertificateRevoked\xff"}}},
		{"tenant with a NUL byte", strata.Filter{Tenant: "acme\x00"}},
		{"type and limit", strata.Filter{Types: []string{"HealthChecked"}}},
	} {
		var want []strata.Event
		for i := range all {
			if c.filter.Match(&all[i]) {
				want = append(want, all[i])
			}
		}
		got := mustCollect(t, st.ReadAll(ctx, strata.ReadAllOptions{Filter: c.filter}))
		if !sameIDs(got, want) {
			t.Fatalf("filter %s: got %d events, want %d", c.name, len(got), len(want))
		}
		// Paging through a filtered log by cursor gives the same events.
		var paged []strata.Event
		after := strata.Start
		for {
			page := mustCollect(t, st.ReadAll(ctx, strata.ReadAllOptions{After: after, Filter: c.filter, Limit: 7}))
			if len(page) == 0 {
				break
			}
			paged = append(paged, page...)
			after = page[len(page)-1].Position
		}
		if !sameIDs(paged, want) {
			t.Fatalf("filter %s paged by 7: got %d events, want %d", c.name, len(paged), len(want))
		}
	}
}

func sameIDs(a, b []strata.Event) bool {
	return slices.EqualFunc(a, b, func(x, y strata.Event) bool { return x.ID == y.ID && x.Position == y.Position })
}

func (s suite) testLargePayload(t *testing.T) {
	ctx := testContext(t)
	st := s.newStore(t)
	big := make([]byte, 0, 1<<20)
	big = append(big, `{"blob":"`...)
	for len(big) < 1<<20-2 {
		big = append(big, "0123456789abcdef"[len(big)%16])
	}
	big = append(big, `"}`...)
	evs := []strata.EventData{{Type: "Blob", Data: big}, {Type: "Blob", Data: big}, {Type: "Small"}}
	mustAppend(t, ctx, st, "blobs", strata.NoStream, evs...)
	got := mustCollect(t, st.ReadStream(ctx, "blobs", strata.ReadStreamOptions{}))
	if len(got) != 3 || !bytes.Equal(got[0].Data, big) || !bytes.Equal(got[1].Data, big) {
		t.Fatalf("1 MiB payloads did not round-trip (%d events)", len(got))
	}
	all := allEvents(t, ctx, st)
	if len(all) != 3 || !bytes.Equal(all[1].Data, big) {
		t.Fatalf("1 MiB payloads did not round-trip through the global log")
	}
}

func (s suite) testUnicode(t *testing.T) {
	ctx := testContext(t)
	st := s.newStore(t)
	names := []string{
		"zertifikat-größe", "証明書-7F3A", "сертификат-1", "cert-🔐-emoji", "e\u0301clair", "\u00e9clair",
		"Cert-CASE", "cert-case", "with space/and:colon", strings.Repeat("ü", strata.MaxStreamNameLen/2),
	}
	for i, name := range names {
		mustAppend(t, ctx, st, name, strata.NoStream, ev("Named", map[string]int{"i": i}))
	}
	for i, name := range names {
		got := mustCollect(t, st.ReadStream(ctx, name, strata.ReadStreamOptions{}))
		if len(got) != 1 || got[0].Stream != name || string(got[0].Data) != fmt.Sprintf(`{"i":%d}`, i) {
			t.Fatalf("stream %q: read %d events %+v; names must be distinct byte-wise (case, normalization)", name, len(got), got)
		}
	}
	listed := mustCollect(t, st.Streams(ctx, strata.ListStreamsOptions{}))
	var got []string
	for _, info := range listed {
		got = append(got, info.Stream)
	}
	want := slices.Clone(names)
	slices.Sort(want) // Go's string order is byte order
	if !slices.Equal(got, want) {
		t.Fatalf("streams listed as %q, want byte order %q", got, want)
	}
	if got := mustCollect(t, st.ReadAll(ctx, strata.ReadAllOptions{Filter: strata.Filter{StreamPrefix: "cert-"}})); len(got) != 2 {
		t.Fatalf("prefix cert- matched %d events, want 2 (case-sensitive)", len(got))
	}
}

func (s suite) testStreams(t *testing.T) {
	ctx := testContext(t)
	st := s.newStore(t)
	for _, name := range []string{"certificate-B", "certificate-A", "approval-1", "certificate-C", "certificatf"} {
		mustAppend(t, ctx, st, name, strata.NoStream, ev("E", nil))
	}
	mustAppend(t, ctx, st, "certificate-A", strata.Exact(1), ev("E", nil), ev("E", nil))

	info, err := st.StreamInfo(ctx, "certificate-A")
	if err != nil || !info.Exists || info.Version != 3 || info.FirstRecordedAt.IsZero() || info.LastRecordedAt.Before(info.FirstRecordedAt) {
		t.Fatalf("stream info %+v, %v", info, err)
	}
	// The times are those of the stream's first and last events, in the info and the listing.
	evs := mustCollect(t, st.ReadStream(ctx, "certificate-A", strata.ReadStreamOptions{}))
	if len(evs) != 3 {
		t.Fatalf("read %d events of certificate-A, want 3", len(evs))
	}
	listed := mustCollect(t, st.Streams(ctx, strata.ListStreamsOptions{Prefix: "certificate-A"}))
	for what, i := range map[string]strata.StreamInfo{"stream info": info, "listing": listed[0]} {
		if !i.FirstRecordedAt.Equal(evs[0].RecordedAt) || !i.LastRecordedAt.Equal(evs[2].RecordedAt) {
			t.Fatalf("%s of certificate-A: first and last recorded at %v and %v, want those of its first and last events, %v and %v",
				what, i.FirstRecordedAt, i.LastRecordedAt, evs[0].RecordedAt, evs[2].RecordedAt)
		}
	}
	missing, err := st.StreamInfo(ctx, "certificate-Z")
	if err != nil || missing.Exists || missing.Version != 0 {
		t.Fatalf("info of a missing stream: %+v, %v", missing, err)
	}
	names := func(opts strata.ListStreamsOptions) []string {
		var out []string
		for _, i := range mustCollect(t, st.Streams(ctx, opts)) {
			out = append(out, i.Stream)
		}
		return out
	}
	for _, c := range []struct {
		opts strata.ListStreamsOptions
		want []string
	}{
		{strata.ListStreamsOptions{}, []string{"approval-1", "certificate-A", "certificate-B", "certificate-C", "certificatf"}},
		{strata.ListStreamsOptions{Prefix: "certificate-"}, []string{"certificate-A", "certificate-B", "certificate-C"}},
		{strata.ListStreamsOptions{Prefix: "certificate-", After: "certificate-A", Limit: 1}, []string{"certificate-B"}},
		{strata.ListStreamsOptions{Prefix: "nothing"}, nil},
		{strata.ListStreamsOptions{Prefix: "certificate_"}, nil}, // _ is not a wildcard
	} {
		if got := names(c.opts); !slices.Equal(got, c.want) {
			t.Fatalf("streams %+v: got %q, want %q", c.opts, got, c.want)
		}
	}
	all := mustCollect(t, st.Streams(ctx, strata.ListStreamsOptions{Prefix: "certificate-A"}))
	if len(all) != 1 || all[0].Version != 3 {
		t.Fatalf("listing carries stream info: %+v", all)
	}
}

// testNoSharedMemory changes what an append was given and what reads returned, as a caller may
// (a writer reusing its buffer, an upcaster rewriting Data in place, a handler adding a metadata
// key): the stored events stay as they were appended, whichever read returns them next.
func (s suite) testNoSharedMemory(t *testing.T) {
	ctx := testContext(t)
	st := s.newStore(t)
	const stream, data = "certificate-7F3A", `{"serial":"7F3A"}`
	buf := []byte(data)
	in := strata.EventData{Type: "CertificateIssued", Data: buf,
		Meta: strata.Metadata{Tenant: "acme", Extra: map[string]string{"ticket": "T-9"}}}
	mustAppend(t, ctx, st, stream, strata.NoStream, in)
	copy(buf, `{"serial":"XXXX"}`)
	in.Meta.Extra["ticket"] = "changed by the writer"

	sub := subscribe(ctx, st, strata.Start, strata.Filter{})
	reads := []struct {
		name string
		read func() strata.Event
	}{
		{"read stream", func() strata.Event {
			return only(t, mustCollect(t, st.ReadStream(ctx, stream, strata.ReadStreamOptions{})))
		}},
		{"read all", func() strata.Event { return only(t, allEvents(t, ctx, st)) }},
		{"read all filtered", func() strata.Event {
			return only(t, mustCollect(t, st.ReadAll(ctx, strata.ReadAllOptions{Filter: strata.Filter{Tenant: "acme"}})))
		}},
		{"subscribe", func() strata.Event { return sub.next(t, ctx) }},
	}
	check := func(when string) {
		t.Helper()
		for _, r := range reads[:3] {
			if e := r.read(); string(e.Data) != data || e.Meta.Extra["ticket"] != "T-9" {
				t.Fatalf("%s, %s returns %s %v, want %s and ticket T-9", when, r.name, e.Data, e.Meta.Extra, data)
			}
		}
	}
	check("after the writer changed its buffers")
	for _, r := range reads {
		e := r.read()
		if len(e.Data) > 2 {
			e.Data[2] = 'X'
		}
		if e.Meta.Extra == nil {
			t.Fatalf("%s returned no metadata keys", r.name)
		}
		e.Meta.Extra["ticket"] = "changed by a reader"
		e.Meta.Extra["added"] = "by a reader"
		check("after a caller changed the event of " + r.name)
	}
}

func only(t testing.TB, evs []strata.Event) strata.Event {
	t.Helper()
	if len(evs) != 1 {
		t.Fatalf("read %d events, want 1", len(evs))
	}
	return evs[0]
}

// testCursorsBetweenEvents reads after cursors that lie strictly between two events of the log,
// as a cursor kept from another store, or made from one of its parts, may: Position{C, E-1},
// Position{C-1, max} and Position{C', max} before an event at {C, E} after one at {C', E'}. A read after one starts with that event: it is
// after the cursor, and nothing between them is. Cursors past the last event read nothing.
func (s suite) testCursorsBetweenEvents(t *testing.T) {
	ctx := testContext(t)
	st := s.newStore(t)
	mustAppend(t, ctx, st, certStream(1), strata.NoStream, ev("CertificateIssued", nil))
	mustAppend(t, ctx, st, certStream(2), strata.NoStream, ev("CertificateIssued", nil), ev("CertificateRenewed", nil), ev("CertificateRevoked", nil))
	mustAppend(t, ctx, st, certStream(1), strata.Exact(1), ev("CertificateRevoked", nil))
	all := allEvents(t, ctx, st)
	if len(all) != 5 {
		t.Fatalf("global log has %d events, want 5", len(all))
	}
	checked := 0
	for i, e := range all {
		prev := strata.Start
		if i > 0 {
			prev = all[i-1].Position
		}
		var between []strata.Position
		if p := e.Position; p.Event > 0 {
			between = append(between, strata.Position{Commit: p.Commit, Event: p.Event - 1})
		}
		if p := e.Position; p.Commit > 0 {
			between = append(between, strata.Position{Commit: p.Commit - 1, Event: math.MaxUint64})
		}
		if prev.Commit < e.Position.Commit {
			between = append(between, strata.Position{Commit: prev.Commit, Event: math.MaxUint64})
		}
		for _, c := range between {
			if c.Less(prev) || !c.Less(e.Position) {
				continue // not between prev and e
			}
			checked++
			got := mustCollect(t, st.ReadAll(ctx, strata.ReadAllOptions{After: c}))
			if !sameIDs(got, all[i:]) {
				t.Fatalf("read after %s (between %s and %s) returned %s, want %s", c, prev, e.Position, describe(got), describe(all[i:]))
			}
			if got := mustCollect(t, st.ReadAll(ctx, strata.ReadAllOptions{After: c, Limit: 1, Filter: strata.Filter{StreamPrefix: "certificate-"}})); !sameIDs(got, all[i:i+1]) {
				t.Fatalf("filtered read of one after %s (between %s and %s) returned %s, want %s", c, prev, e.Position, describe(got), describe(all[i:i+1]))
			}
			sub := subscribe(ctx, st, c, strata.Filter{})
			if got := sub.next(t, ctx); got.ID != e.ID {
				t.Fatalf("subscription after %s (between %s and %s) started with %s@%s, want %s@%s", c, prev, e.Position, got.Type, got.Position, e.Type, e.Position)
			}
			sub.cancel()
		}
	}
	if checked == 0 {
		t.Fatalf("no cursor lies between two events of %s", describe(all))
	}
	last := all[len(all)-1].Position
	for _, c := range []strata.Position{
		{Commit: last.Commit, Event: last.Event + 1},
		{Commit: last.Commit + 1, Event: 0},
		{Commit: math.MaxUint64, Event: math.MaxUint64},
	} {
		if got := mustCollect(t, st.ReadAll(ctx, strata.ReadAllOptions{After: c})); len(got) != 0 {
			t.Fatalf("read after %s, past the last event %s, returned %s", c, last, describe(got))
		}
	}
}

// testStreamsPaging lists more streams than a backend reads in one page: every stream comes
// once, in order, whatever the limit, the cursor or the prefix, and each with its own version.
func (s suite) testStreamsPaging(t *testing.T) {
	ctx := testContext(t)
	st := s.newStore(t)
	const n = 1010 // more than one page of any backend
	var appends []strata.StreamAppend
	var want []string
	versions := map[string]int64{}
	for i := range n {
		name := fmt.Sprintf("certificate-%04d", i)
		evs := make([]strata.EventData, 1+i%3)
		for j := range evs {
			evs[j] = ev("CertificateIssued", nil)
		}
		appends = append(appends, strata.StreamAppend{Stream: name, Expected: strata.NoStream, Events: evs})
		want = append(want, name)
		versions[name] = int64(len(evs))
	}
	for _, name := range []string{"approval-1", "certificatf", "zone-1"} {
		appends = append(appends, strata.StreamAppend{Stream: name, Expected: strata.NoStream, Events: []strata.EventData{ev("E", nil)}})
		versions[name] = 1
	}
	if _, err := st.AppendMulti(ctx, appends...); err != nil {
		t.Fatalf("append to %d streams: %v", len(appends), err)
	}
	list := func(opts strata.ListStreamsOptions) []string {
		t.Helper()
		var names []string
		for _, info := range mustCollect(t, st.Streams(ctx, opts)) {
			if !info.Exists || info.Version != versions[info.Stream] {
				t.Fatalf("listing %+v: %s has version %d, want %d", opts, info.Stream, info.Version, versions[info.Stream])
			}
			names = append(names, info.Stream)
		}
		return names
	}
	all := append(append([]string{"approval-1"}, want...), "certificatf", "zone-1")
	for _, c := range []struct {
		opts strata.ListStreamsOptions
		want []string
	}{
		{strata.ListStreamsOptions{}, all},
		{strata.ListStreamsOptions{Prefix: "certificate-"}, want},
		{strata.ListStreamsOptions{Prefix: "certificate-", Limit: 1001}, want[:1001]},
		{strata.ListStreamsOptions{After: want[5]}, all[7:]},
		{strata.ListStreamsOptions{Prefix: "certificate-1"}, want[1000:]},
	} {
		if got := list(c.opts); !slices.Equal(got, c.want) {
			t.Fatalf("streams %+v: got %d names (%q...), want %d (%q...)", c.opts, len(got), got[:min(len(got), 3)], len(c.want), c.want[:min(len(c.want), 3)])
		}
	}
	// Paging by cursor gives every stream once.
	var paged []string
	for after := ""; ; {
		page := list(strata.ListStreamsOptions{Prefix: "certificate-", After: after, Limit: 400})
		if len(page) == 0 {
			break
		}
		paged = append(paged, page...)
		after = page[len(page)-1]
	}
	if !slices.Equal(paged, want) {
		t.Fatalf("paging by 400 listed %d names, want %d", len(paged), len(want))
	}
}

// testReadsAgree appends events whose metadata, schemas, payloads and times vary from one to
// the next (and metadata that repeats, which a backend's decoder may share between rows), and
// reads them back by every path: each returns every field as appended, and the same event
// from every path. A read path that drops a field, or hands one row's metadata to the next,
// fails here even where the filter it serves picks the right events.
func (s suite) testReadsAgree(t *testing.T) {
	ctx := testContext(t)
	st := s.newStore(t)
	tenants := []string{"acme", "init", "", "acme", "acme", "init"} // same length, repeated, absent
	occurred := time.Date(2024, 2, 29, 12, 0, 0, 1_500, time.UTC)
	var appended []strata.EventData
	var streams []string
	for i := range 30 {
		e := ev([]string{"CertificateIssued", "CertificateRevoked", "CertificateRenewed"}[i%3], map[string]int{"i": i})
		e.ID = uuid.Must(uuid.NewV7())
		e.Schema = 1 + i%4
		e.Meta = strata.Metadata{Tenant: tenants[i%len(tenants)]}
		switch i % 5 {
		case 1:
			e.Meta.Principal = "alice"
		case 2:
			e.Meta.Principal, e.Meta.Correlation, e.Meta.Causation = "bob", fmt.Sprintf("corr-%d", i/2), "cmd"
		case 3:
			e.Meta.Extra = map[string]string{"ticket": fmt.Sprintf("T-%d", i), "n": "1"}
		case 4:
			e.Meta.Subsystem, e.Meta.Category, e.Meta.Session = "pki", "certificate", "s-1"
		}
		if i%2 == 0 {
			e.OccurredAt = occurred.Add(time.Duration(i) * time.Hour)
		}
		appended = append(appended, e)
		streams = append(streams, fmt.Sprintf("certificate-%s-%d", e.Meta.Tenant, i%4))
	}
	// Some one by one, some in batches of one stream, some in one multi-append.
	for i := 0; i < len(appended); {
		switch {
		case i < 10:
			mustAppend(t, ctx, st, streams[i], strata.Any, appended[i])
			i++
		case i < 20:
			var evs []strata.EventData
			start := i
			for ; i < 20 && (i == start || streams[i] == streams[start] || i%3 != 0); i++ {
				streams[i] = streams[start]
				evs = append(evs, appended[i])
			}
			mustAppend(t, ctx, st, streams[start], strata.Any, evs...)
		default:
			byStream := map[string]int{}
			var apps []strata.StreamAppend
			for ; i < len(appended); i++ {
				k, ok := byStream[streams[i]]
				if !ok {
					k = len(apps)
					byStream[streams[i]] = k
					apps = append(apps, strata.StreamAppend{Stream: streams[i], Expected: strata.Any})
				}
				apps[k].Events = append(apps[k].Events, appended[i])
			}
			if _, err := st.AppendMulti(ctx, apps...); err != nil {
				t.Fatalf("multi-append: %v", err)
			}
		}
	}
	want := map[uuid.UUID]int{}
	for i, e := range appended {
		want[e.ID] = i
	}
	log := allEvents(t, ctx, st)
	if len(log) != len(appended) {
		t.Fatalf("the log holds %d events, want %d", len(log), len(appended))
	}
	byID := map[uuid.UUID]strata.Event{}
	for _, e := range log {
		byID[e.ID] = e
	}
	check := func(path string, got []strata.Event) {
		t.Helper()
		for _, e := range got {
			i, ok := want[e.ID]
			if !ok {
				t.Fatalf("%s returned an event that was not appended: %+v", path, e)
			}
			a := appended[i]
			if e.Stream != streams[i] || e.Type != a.Type || e.Schema != a.Schema || !bytes.Equal(e.Data, a.Data) || !e.Meta.Equal(a.Meta) {
				t.Fatalf("%s returned event %d as %s %s schema %d %s %+v, want %s %s schema %d %s %+v", path, i,
					e.Stream, e.Type, e.Schema, e.Data, e.Meta, streams[i], a.Type, a.Schema, a.Data, a.Meta)
			}
			if !a.OccurredAt.IsZero() && !e.OccurredAt.Equal(strata.Timestamp(a.OccurredAt)) || a.OccurredAt.IsZero() && !e.OccurredAt.Equal(e.RecordedAt) {
				t.Fatalf("%s returned event %d occurred at %v (recorded %v), want %v", path, i, e.OccurredAt, e.RecordedAt, a.OccurredAt)
			}
			l := byID[e.ID]
			if e.Position != l.Position || e.Version != l.Version || !e.RecordedAt.Equal(l.RecordedAt) || !e.OccurredAt.Equal(l.OccurredAt) {
				t.Fatalf("%s returned event %d at %s version %d recorded %v, the log at %s version %d recorded %v", path, i,
					e.Position, e.Version, e.RecordedAt, l.Position, l.Version, l.RecordedAt)
			}
		}
	}
	check("read all", log)
	for _, name := range slices.Compact(slices.Sorted(slices.Values(streams))) {
		check("read stream "+name, mustCollect(t, st.ReadStream(ctx, name, strata.ReadStreamOptions{})))
		check("read stream "+name+" backward", mustCollect(t, st.ReadStream(ctx, name, strata.ReadStreamOptions{Backward: true})))
	}
	for _, f := range []strata.Filter{
		{Tenant: "acme"}, {Tenant: "init"}, {Types: []string{"CertificateRevoked"}}, {StreamPrefix: "certificate-init-"},
		{Tenant: "acme", Types: []string{"CertificateIssued", "CertificateRenewed"}},
	} {
		got := mustCollect(t, st.ReadAll(ctx, strata.ReadAllOptions{Filter: f}))
		check(fmt.Sprintf("read all %+v", f), got)
		n := 0
		for i := range log {
			if f.Match(&log[i]) {
				n++
			}
		}
		if len(got) != n {
			t.Fatalf("read all %+v returned %d events, want %d", f, len(got), n)
		}
	}
	var paged []strata.Event
	for after := strata.Start; ; {
		page := mustCollect(t, st.ReadAll(ctx, strata.ReadAllOptions{After: after, Limit: 4}))
		if len(page) == 0 {
			break
		}
		paged = append(paged, page...)
		after = page[len(page)-1].Position
	}
	check("read all by pages of 4", paged)
	sub := subscribe(ctx, st, strata.Start, strata.Filter{})
	var followed []strata.Event
	for range log {
		followed = append(followed, sub.next(t, ctx))
	}
	check("subscribe", followed)
	if !sameIDs(paged, log) || !sameIDs(followed, log) {
		t.Fatalf("paged and followed reads disagree with the log")
	}
}

// testLargePages reads a log of large events, more bytes than a backend holds in one page
// (which then ends a page early, before its row limit): every read returns every event, once
// and in order, across the pages cut short.
func (s suite) testLargePages(t *testing.T) {
	ctx := testContext(t)
	st := s.newStore(t)
	// 6 MiB: past the 4 MiB page of the PostgreSQL and MySQL backends (SQLite's 16 MiB page
	// would make the test several times slower on the others).
	const stream, large = "blobs", 6
	blob := make([]byte, 0, 1<<20)
	blob = append(blob, `{"blob":"`...)
	for len(blob) < 1<<20-2 {
		blob = append(blob, "0123456789abcdef"[len(blob)%16])
	}
	blob = append(blob, `"}`...)
	for i := 0; i < large; i += 3 {
		evs := []strata.EventData{{Type: "Blob", Data: blob}, {Type: "Small"}, {Type: "Blob", Data: blob}, {Type: "Blob", Data: blob}}
		mustAppend(t, ctx, st, stream, strata.Any, evs...)
		mustAppend(t, ctx, st, "other", strata.Any, ev("Small", nil))
	}
	const n = large/3*4 + large/3
	checkAll := func(what string, got []strata.Event, want int) {
		t.Helper()
		if len(got) != want {
			t.Fatalf("%s returned %d events, want %d", what, len(got), want)
		}
		for i, e := range got {
			if e.Type == "Blob" && !bytes.Equal(e.Data, blob) {
				t.Fatalf("%s: event %d has %d bytes of data, want the 1 MiB appended", what, i, len(e.Data))
			}
		}
		checkAscending(t, got)
	}
	all := allEvents(t, ctx, st)
	checkAll("read all", all, n)
	checkAll("read all with a limit", mustCollect(t, st.ReadAll(ctx, strata.ReadAllOptions{Limit: n - 1})), n-1)
	checkAll("read all filtered", mustCollect(t, st.ReadAll(ctx, strata.ReadAllOptions{Filter: strata.Filter{StreamPrefix: stream}})), n-large/3)
	fwd := mustCollect(t, st.ReadStream(ctx, stream, strata.ReadStreamOptions{}))
	checkAll("read stream", fwd, n-large/3)
	back := mustCollect(t, st.ReadStream(ctx, stream, strata.ReadStreamOptions{Backward: true}))
	if len(back) != len(fwd) {
		t.Fatalf("read stream backward returned %d events, want %d", len(back), len(fwd))
	}
	for i, e := range back {
		if e.Version != int64(len(back)-i) {
			t.Fatalf("read stream backward: event %d has version %d, want %d", i, e.Version, len(back)-i)
		}
	}
	sub := subscribe(ctx, st, strata.Start, strata.Filter{})
	var followed []strata.Event
	for range all {
		followed = append(followed, sub.next(t, ctx))
	}
	sub.cancel()
	if !sameIDs(followed, all) {
		t.Fatalf("the subscription delivered %s, the log holds %s", describe(followed), describe(all))
	}
}

// testTenantsAndNamesAreExact filters by tenants and reads streams whose names differ only in
// case, accents, trailing spaces or a long common prefix: a filter or a read matches its own
// byte-wise, as Go compares strings, never a name a database collation would take as equal.
func (s suite) testTenantsAndNamesAreExact(t *testing.T) {
	ctx := testContext(t)
	st := s.newStore(t)
	long := strings.Repeat("t", 300)
	variants := []string{"acme", "ACME", "acme ", "ácme", "acme\u00a0", long + "a", long + "b"}
	name := func(v string) string { return "certificate-" + v[max(0, len(v)-8):] }
	for i, v := range variants {
		e := ev("CertificateIssued", map[string]int{"i": i})
		e.Meta.Tenant = v
		mustAppend(t, ctx, st, name(v), strata.NoStream, e)
	}
	for i, v := range variants {
		got := mustCollect(t, st.ReadAll(ctx, strata.ReadAllOptions{Filter: strata.Filter{Tenant: v}}))
		if len(got) != 1 || got[0].Meta.Tenant != v || string(got[0].Data) != fmt.Sprintf(`{"i":%d}`, i) {
			t.Fatalf("tenant %q: the filter returned %s, want its own event", v, describeTenants(got))
		}
		evs := mustCollect(t, st.ReadStream(ctx, name(v), strata.ReadStreamOptions{}))
		if len(evs) != 1 || evs[0].Stream != name(v) || evs[0].Meta.Tenant != v {
			t.Fatalf("stream %q: read %s, want its own event", name(v), describeTenants(evs))
		}
		if info, err := st.StreamInfo(ctx, name(v)); err != nil || info.Version != 1 {
			t.Fatalf("stream %q: info %+v, %v; want version 1", name(v), info, err)
		}
		names := mustCollect(t, st.Streams(ctx, strata.ListStreamsOptions{Prefix: name(v)}))
		for _, n := range names {
			if !strings.HasPrefix(n.Stream, name(v)) {
				t.Fatalf("listing prefix %q returned %q", name(v), n.Stream)
			}
		}
		prefixed := mustCollect(t, st.ReadAll(ctx, strata.ReadAllOptions{Filter: strata.Filter{StreamPrefix: name(v)}}))
		for _, e := range prefixed {
			if !strings.HasPrefix(e.Stream, name(v)) {
				t.Fatalf("read all with prefix %q returned an event of %q", name(v), e.Stream)
			}
		}
	}
}

// describeTenants lists events as their streams and tenants.
func describeTenants(evs []strata.Event) string {
	var b strings.Builder
	b.WriteString("[")
	for i, e := range evs {
		if i > 0 {
			b.WriteString(" ")
		}
		fmt.Fprintf(&b, "%q of tenant %q", e.Stream, e.Meta.Tenant)
	}
	return b.String() + "]"
}
