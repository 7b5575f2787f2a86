package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/strata-events/strata"
)

func (s suite) testAppendAndReadBack(t *testing.T) {
	ctx := testContext(t)
	st := s.newStore(t)
	id := uuid.Must(uuid.NewV7())
	occurred := time.Date(2023, 3, 14, 9, 0, 0, 123456789, time.FixedZone("CET", 3600))
	issued := strata.EventData{
		ID: id, Type: "CertificateIssued", Schema: 2,
		Data: []byte(`{"serial":"7F3A",  "subjectDN":"CN=Alice"}`), // odd spacing must survive byte for byte
		Meta: strata.Metadata{
			Tenant: "acme", Principal: "alice", Session: "s-1", Correlation: "corr-1", Causation: "cmd-1",
			Subsystem: "pki", Category: "certificate", Extra: map[string]string{"ticket": "T-9"},
		},
		OccurredAt: occurred,
	}
	before := time.Now().Add(-time.Minute)
	res := mustAppend(t, ctx, st, "certificate-7F3A", strata.NoStream, issued, ev("CertificateRevoked", map[string]string{"reason": "keyCompromise"}))
	if res.Stream != "certificate-7F3A" || res.FirstVersion != 1 || res.LastVersion != 2 || res.Replayed {
		t.Fatalf("append result %+v, want versions 1..2 not replayed", res)
	}
	got := mustCollect(t, st.ReadStream(ctx, "certificate-7F3A", strata.ReadStreamOptions{}))
	if len(got) != 2 {
		t.Fatalf("read %d events, want 2", len(got))
	}
	e := got[0]
	if e.ID != id || e.Stream != "certificate-7F3A" || e.Version != 1 || e.Type != "CertificateIssued" || e.Schema != 2 {
		t.Fatalf("first event %+v does not match what was appended", e)
	}
	if !bytes.Equal(e.Data, issued.Data) {
		t.Fatalf("data %q, want the exact bytes %q", e.Data, issued.Data)
	}
	if !e.Meta.Equal(issued.Meta) {
		t.Fatalf("meta %+v, want %+v", e.Meta, issued.Meta)
	}
	if !e.OccurredAt.Equal(strata.Timestamp(occurred)) || e.OccurredAt.Location() != time.UTC {
		t.Fatalf("occurredAt %v, want %v in UTC with microsecond precision", e.OccurredAt, strata.Timestamp(occurred))
	}
	if e.RecordedAt.Before(before) || e.RecordedAt.Location() != time.UTC || e.RecordedAt.Nanosecond()%1000 != 0 {
		t.Fatalf("recordedAt %v: want a recent UTC time with microsecond precision", e.RecordedAt)
	}
	r := got[1]
	if r.Version != 2 || r.Schema != 1 || r.ID == uuid.Nil || r.ID.Version() != 7 {
		t.Fatalf("second event %+v: want version 2, schema 1 and a UUIDv7", r)
	}
	if !r.OccurredAt.Equal(r.RecordedAt) {
		t.Fatalf("occurredAt %v should default to recordedAt %v", r.OccurredAt, r.RecordedAt)
	}
	if !e.Position.Less(r.Position) || e.Position.IsZero() {
		t.Fatalf("positions %s, %s: want increasing and non-zero", e.Position, r.Position)
	}
	all := allEvents(t, ctx, st)
	if len(all) != 2 || all[0].ID != e.ID || all[1].ID != r.ID || all[0].Position != e.Position {
		t.Fatalf("global log does not hold the same two events in order: %+v", all)
	}
	// Nil data is stored as {}.
	mustAppend(t, ctx, st, "empty-data", strata.Any, strata.EventData{Type: "Pinged"})
	got = mustCollect(t, st.ReadStream(ctx, "empty-data", strata.ReadStreamOptions{}))
	if string(got[0].Data) != "{}" {
		t.Fatalf("nil data read back as %q, want {}", got[0].Data)
	}
}

func (s suite) testExpectedVersion(t *testing.T) {
	ctx := testContext(t)
	st := s.newStore(t)
	const stream = "certificate-EV"
	one := func() strata.EventData { return ev("CertificateRenewed", map[string]int{"n": 1}) }

	_, err := st.Append(ctx, stream, strata.StreamExists, one())
	wantCode(t, err, strata.Conflict, "StreamExists on a missing stream")
	_, err = st.Append(ctx, stream, strata.Exact(3), one())
	wantCode(t, err, strata.Conflict, "Exact(3) on a missing stream")
	var se *strata.Error
	if !errors.As(err, &se) || se.Stream != stream || se.Actual != 0 || se.Expected != strata.Exact(3) {
		t.Fatalf("conflict error should carry stream, expected and actual: %+v", se)
	}
	if !errors.Is(err, strata.ErrConflict) {
		t.Fatalf("errors.Is(err, ErrConflict) = false for %v", err)
	}

	mustAppend(t, ctx, st, stream, strata.NoStream, one())
	_, err = st.Append(ctx, stream, strata.NoStream, one())
	wantCode(t, err, strata.Conflict, "NoStream on an existing stream")
	mustAppend(t, ctx, st, stream, strata.StreamExists, one())
	res := mustAppend(t, ctx, st, stream, strata.Exact(2), one(), one())
	if res.FirstVersion != 3 || res.LastVersion != 4 {
		t.Fatalf("Exact(2) append gave %+v, want 3..4", res)
	}
	_, err = st.Append(ctx, stream, strata.Exact(2), one())
	wantCode(t, err, strata.Conflict, "stale Exact(2)")
	if errors.As(err, &se); se.Actual != 4 {
		t.Fatalf("conflict reports actual version %d, want 4", se.Actual)
	}
	// An expected version ahead of the stream is as stale as one behind it: the writer has not
	// seen the version it names.
	_, err = st.Append(ctx, stream, strata.Exact(5), one())
	wantCode(t, err, strata.Conflict, "Exact(5) on a stream at version 4")
	if errors.As(err, &se); se.Actual != 4 {
		t.Fatalf("conflict reports actual version %d, want 4", se.Actual)
	}
	_, err = st.AppendMulti(ctx, strata.StreamAppend{Stream: stream, Expected: strata.Exact(5), Events: []strata.EventData{one()}})
	wantCode(t, err, strata.Conflict, "multi-append with Exact(5) on a stream at version 4")
	mustAppend(t, ctx, st, stream, strata.Any, one())
	mustAppend(t, ctx, st, "fresh-any", strata.Any, one())
	if n := len(mustCollect(t, st.ReadStream(ctx, stream, strata.ReadStreamOptions{}))); n != 5 {
		t.Fatalf("stream has %d events, want 5 (failed appends must write nothing)", n)
	}
}

func (s suite) testConcurrentExact(t *testing.T) {
	ctx := testContext(t)
	st := s.newStore(t)
	const (
		stream  = "certificate-RACE"
		writers = 8
		rounds  = 10
	)
	// In every round, all writers try to append version v+1 after v; exactly one may win.
	for round := range rounds {
		var wins atomic.Int64
		var wg sync.WaitGroup
		for w := range writers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, err := st.Append(ctx, stream, strata.Exact(int64(round)), ev("Attempt", map[string]int{"writer": w, "round": round}))
				switch {
				case err == nil:
					wins.Add(1)
				case strata.ErrorCode(err) != strata.Conflict:
					t.Errorf("round %d writer %d: %v, want success or Conflict", round, w, err)
				}
			}()
		}
		wg.Wait()
		if wins.Load() != 1 {
			t.Fatalf("round %d: %d writers won version %d, want exactly 1", round, wins.Load(), round+1)
		}
	}
	evs := mustCollect(t, st.ReadStream(ctx, stream, strata.ReadStreamOptions{}))
	if len(evs) != rounds {
		t.Fatalf("stream has %d events, want %d", len(evs), rounds)
	}
	for i, e := range evs {
		if e.Version != int64(i+1) {
			t.Fatalf("event %d has version %d", i, e.Version)
		}
	}
}

func (s suite) testConcurrentAny(t *testing.T) {
	ctx := testContext(t)
	st := s.newStore(t)
	const (
		stream  = "certificate-ANY"
		writers = 8
		each    = 15
	)
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				if _, err := st.Append(ctx, stream, strata.Any, ev("Tick", map[string]int{"w": w, "i": i})); err != nil {
					t.Errorf("writer %d append %d with Any: %v", w, i, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	evs := mustCollect(t, st.ReadStream(ctx, stream, strata.ReadStreamOptions{}))
	if len(evs) != writers*each {
		t.Fatalf("stream has %d events, want %d", len(evs), writers*each)
	}
	for i, e := range evs {
		if e.Version != int64(i+1) {
			t.Fatalf("versions not contiguous: event %d has version %d", i, e.Version)
		}
	}
	info, err := st.StreamInfo(ctx, stream)
	if err != nil || info.Version != writers*each {
		t.Fatalf("stream info %+v, %v: want version %d", info, err, writers*each)
	}
	checkVersionsInLogOrder(t, ctx, st, stream, writers*each)
}

// checkVersionsInLogOrder checks that the global log holds versions 1..n of stream in version
// order, as a projection applying them as read needs, however concurrently they were appended.
func checkVersionsInLogOrder(t *testing.T, ctx context.Context, st strata.Store, stream string, n int64) {
	t.Helper()
	var last int64
	for e, err := range st.ReadAll(ctx, strata.ReadAllOptions{Filter: strata.Filter{StreamPrefix: stream}}) {
		if err != nil {
			t.Fatalf("read all: %v", err)
		}
		if e.Stream != stream {
			continue
		}
		if e.Version != last+1 {
			t.Fatalf("the global log has %s@%d after version %d", stream, e.Version, last)
		}
		last = e.Version
	}
	if last != n {
		t.Fatalf("the global log has %d events of %s, want %d", last, stream, n)
	}
}

func (s suite) testIdempotentRetry(t *testing.T) {
	ctx := testContext(t)
	st := s.newStore(t)
	const stream = "certificate-IDEM"
	a := ev("CertificateIssued", map[string]string{"serial": "01"})
	a.ID = uuid.Must(uuid.NewV7())
	b := ev("CertificateRevoked", map[string]string{"reason": "superseded"})
	b.ID = uuid.Must(uuid.NewV7())

	first := mustAppend(t, ctx, st, stream, strata.NoStream, a, b)
	mustAppend(t, ctx, st, stream, strata.Exact(2), ev("CertificateRenewed", nil))

	// The same batch again, with the now stale expected version: the first result, nothing new.
	for _, exp := range []strata.ExpectedVersion{strata.NoStream, strata.Any, strata.Exact(2), strata.StreamExists} {
		again, err := st.Append(ctx, stream, exp, a, b)
		if err != nil {
			t.Fatalf("retry with expected %s: %v", exp, err)
		}
		if !again.Replayed || again.FirstVersion != first.FirstVersion || again.LastVersion != first.LastVersion {
			t.Fatalf("retry with expected %s gave %+v, want the first result %+v replayed", exp, again, first)
		}
	}
	// Concurrent retries of one new batch: all succeed with the same versions, one write.
	c := ev("CertificateSuspended", nil)
	c.ID = uuid.Must(uuid.NewV7())
	var wg sync.WaitGroup
	results := make([]strata.AppendResult, 6)
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := st.Append(ctx, stream, strata.Any, c)
			if err != nil {
				t.Errorf("concurrent retry %d: %v", i, err)
			}
			results[i] = r
		}()
	}
	wg.Wait()
	for _, r := range results {
		if r.FirstVersion != 4 {
			t.Fatalf("concurrent retries disagree: %+v", results)
		}
	}

	// The same ID with other content is a conflict.
	changed := a
	changed.Data = []byte(`{"serial":"02"}`)
	_, err := st.Append(ctx, stream, strata.Any, changed)
	wantCode(t, err, strata.Conflict, "same ID, other data")
	elsewhere := a
	_, err = st.Append(ctx, "certificate-OTHER", strata.Any, elsewhere)
	wantCode(t, err, strata.Conflict, "same ID, other stream")
	// A batch that repeats one stored ID next to a new one is a conflict, not a partial write.
	fresh := ev("CertificateRenewed", nil)
	_, err = st.Append(ctx, stream, strata.Any, a, fresh)
	wantCode(t, err, strata.Conflict, "stored ID next to a new one")

	if n := len(mustCollect(t, st.ReadStream(ctx, stream, strata.ReadStreamOptions{}))); n != 4 {
		t.Fatalf("stream has %d events after retries, want 4", n)
	}
	if n := len(allEvents(t, ctx, st)); n != 4 {
		t.Fatalf("global log has %d events after retries, want 4", n)
	}
}

func (s suite) testAppendMulti(t *testing.T) {
	ctx := testContext(t)
	st := s.newStore(t)
	mustAppend(t, ctx, st, "approval-1", strata.NoStream, ev("ApprovalRequested", nil))

	// One failing expectation: nothing is written anywhere.
	_, err := st.AppendMulti(ctx,
		strata.StreamAppend{Stream: "certificate-M1", Expected: strata.NoStream, Events: []strata.EventData{ev("CertificateRevoked", nil)}},
		strata.StreamAppend{Stream: "approval-1", Expected: strata.Exact(5), Events: []strata.EventData{ev("ApprovalCompleted", nil)}},
	)
	wantCode(t, err, strata.Conflict, "multi-append with one stale stream")
	if info, _ := st.StreamInfo(ctx, "certificate-M1"); info.Exists {
		t.Fatalf("a failed multi-append wrote to certificate-M1")
	}

	res, err := st.AppendMulti(ctx,
		strata.StreamAppend{Stream: "certificate-M1", Expected: strata.NoStream, Events: []strata.EventData{ev("CertificateRevoked", nil), ev("CertificateNoted", nil)}},
		strata.StreamAppend{Stream: "approval-1", Expected: strata.Exact(1), Events: []strata.EventData{ev("ApprovalCompleted", nil)}},
	)
	if err != nil {
		t.Fatalf("multi-append: %v", err)
	}
	if len(res) != 2 || res[0].Stream != "certificate-M1" || res[0].LastVersion != 2 || res[1].Stream != "approval-1" || res[1].FirstVersion != 2 {
		t.Fatalf("multi-append results %+v", res)
	}
	all := allEvents(t, ctx, st)
	if len(all) != 4 {
		t.Fatalf("global log has %d events, want 4", len(all))
	}
	checkAscending(t, all)

	// Streams in opposite orders from concurrent callers must not deadlock or lose events.
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			x, y := "pair-a", "pair-b"
			if i%2 == 1 {
				x, y = y, x
			}
			_, err := st.AppendMulti(ctx,
				strata.StreamAppend{Stream: x, Expected: strata.Any, Events: []strata.EventData{ev("Linked", nil)}},
				strata.StreamAppend{Stream: y, Expected: strata.Any, Events: []strata.EventData{ev("Linked", nil)}},
			)
			if err != nil {
				t.Errorf("crossed multi-append %d: %v", i, err)
			}
		}()
	}
	wg.Wait()
	for _, name := range []string{"pair-a", "pair-b"} {
		if info, err := st.StreamInfo(ctx, name); err != nil || info.Version != 8 {
			t.Fatalf("%s: %+v %v, want version 8", name, info, err)
		}
		checkVersionsInLogOrder(t, ctx, st, name, 8)
	}
}

// testPartlyStoredMultiAppend re-sends a multi-append of which one stream's events were stored
// by another batch and another's were not: a Conflict wrapping strata.ErrEventIDReused (the
// IDs are stored, so a retry of the same command must not be taken for a version conflict),
// and nothing written.
func (s suite) testPartlyStoredMultiAppend(t *testing.T) {
	ctx := testContext(t)
	st := s.newStore(t)
	issued := ev("CertificateIssued", nil)
	issued.ID = uuid.Must(uuid.NewV7())
	mustAppend(t, ctx, st, "certificate-PS", strata.NoStream, issued)
	logged := ev("CommandSucceeded", nil)
	logged.ID = uuid.Must(uuid.NewV7())
	for _, exp := range []strata.ExpectedVersion{strata.NoStream, strata.Any} {
		_, err := st.AppendMulti(ctx,
			strata.StreamAppend{Stream: "certificate-PS", Expected: exp, Events: []strata.EventData{issued}},
			strata.StreamAppend{Stream: "commands-PS", Expected: strata.NoStream, Events: []strata.EventData{logged}})
		wantCode(t, err, strata.Conflict, "multi-append whose first stream is stored")
		if !errors.Is(err, strata.ErrEventIDReused) {
			t.Fatalf("expected %s: %v, want it to wrap strata.ErrEventIDReused", exp, err)
		}
	}
	if info, _ := st.StreamInfo(ctx, "commands-PS"); info.Exists {
		t.Fatalf("the failed multi-append wrote to commands-PS")
	}
}

// testConcurrentMultiConflicts sends many more conflicting multi-appends at once than a backend
// has connections: each must end with a result or a Conflict, none may wait for ever on the
// lookups that resolve a failed append.
func (s suite) testConcurrentMultiConflicts(t *testing.T) {
	ctx := testContext(t)
	st := s.newStore(t)
	const writers = 32
	var wins atomic.Int64
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			_, err := st.AppendMulti(ctx,
				strata.StreamAppend{Stream: "certificate-MC", Expected: strata.NoStream, Events: []strata.EventData{ev("CertificateRevoked", map[string]int{"writer": w})}},
				strata.StreamAppend{Stream: "commands-certificate-MC", Expected: strata.Any, Events: []strata.EventData{ev("CommandSucceeded", map[string]int{"writer": w})}},
			)
			switch {
			case err == nil:
				wins.Add(1)
			case strata.ErrorCode(err) != strata.Conflict:
				t.Errorf("writer %d: %v, want success or Conflict", w, err)
			}
		})
	}
	wg.Wait()
	if wins.Load() != 1 {
		t.Fatalf("%d writers won, want exactly 1", wins.Load())
	}
	if info, err := st.StreamInfo(ctx, "commands-certificate-MC"); err != nil || info.Version != 1 {
		t.Fatalf("log stream %+v %v: a failed multi-append wrote to it", info, err)
	}
}

// testConcurrentAppendsOwnOutcomes runs many single-stream appends to different streams at
// once, as a backend that commits concurrent appends together (PostgreSQL's group commit) puts
// them in one transaction: each call must get its own stream's outcome. Half the appends state
// a stale expected version: they fail with the stream's actual version and write nothing,
// while the others, perhaps committed alongside them, succeed with their own versions.
func (s suite) testConcurrentAppendsOwnOutcomes(t *testing.T) {
	ctx := testContext(t)
	st := s.newStore(t)
	const (
		writers = 16
		rounds  = 12
	)
	stream := func(w int) string { return fmt.Sprintf("certificate-OWN-%02d", w) }
	// Each stream starts at its own version, so that one stream's outcome is never another's.
	for w := range writers {
		evs := make([]strata.EventData, 1+w)
		for i := range evs {
			evs[i] = ev("CertificateIssued", nil)
		}
		mustAppend(t, ctx, st, stream(w), strata.NoStream, evs...)
	}
	written := make([][]uuid.UUID, writers) // per writer, the IDs it appended, in order
	start := make(chan struct{})
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			<-start
			cur := int64(1 + w)
			for round := range rounds {
				n := 1 + (w+round)%3
				batch := make([]strata.EventData, n)
				for i := range batch {
					batch[i] = ev("CertificateRenewed", map[string]int{"w": w, "round": round, "i": i})
					batch[i].ID = uuid.Must(uuid.NewV7())
				}
				if (w+round)%2 == 1 {
					stale := []strata.ExpectedVersion{strata.Exact(cur - 1), strata.Exact(cur + 1), strata.NoStream}[round%3]
					_, err := st.Append(ctx, stream(w), stale, batch...)
					var se *strata.Error
					if strata.ErrorCode(err) != strata.Conflict || !errors.As(err, &se) || se.Stream != stream(w) || se.Actual != cur {
						t.Errorf("writer %d round %d: append with stale %s to a stream at %d: %v, want a Conflict naming the stream and its actual version", w, round, stale, cur, err)
						return
					}
					continue
				}
				res, err := st.Append(ctx, stream(w), strata.Exact(cur), batch...)
				if err != nil {
					t.Errorf("writer %d round %d: append at %d: %v", w, round, cur, err)
					return
				}
				if res.Stream != stream(w) || res.Replayed || res.FirstVersion != cur+1 || res.LastVersion != cur+int64(n) {
					t.Errorf("writer %d round %d: append of %d events at %d returned %+v, want %s versions %d..%d", w, round, n, cur, res, stream(w), cur+1, cur+int64(n))
					return
				}
				cur = res.LastVersion
				for _, e := range batch {
					written[w] = append(written[w], e.ID)
				}
			}
		})
	}
	close(start)
	wg.Wait()
	if t.Failed() {
		return
	}
	for w := range writers {
		evs := mustCollect(t, st.ReadStream(ctx, stream(w), strata.ReadStreamOptions{From: int64(2 + w)}))
		var got []uuid.UUID
		for _, e := range evs {
			got = append(got, e.ID)
		}
		if !slices.Equal(got, written[w]) {
			t.Fatalf("%s holds %d events after its first, want the %d its successful appends wrote, in order (a failed append wrote, or one stream got another's events)", stream(w), len(got), len(written[w]))
		}
	}
}

// testIdempotentRetryMatches retries appends whose IDs are stored: a retry of a large batch
// (more IDs than a backend looks up at once) is replayed whole, and a retry is a replay only
// with the same content in the same order; otherwise it is a Conflict wrapping
// strata.ErrEventIDReused, and writes nothing.
func (s suite) testIdempotentRetryMatches(t *testing.T) {
	ctx := testContext(t)
	st := s.newStore(t)
	const stream, n = "certificate-IDEM-BIG", 1200
	batch := make([]strata.EventData, n)
	for i := range batch {
		batch[i] = ev("CertificateRenewed", map[string]int{"i": i})
		batch[i].ID = uuid.Must(uuid.NewV7())
	}
	mustAppend(t, ctx, st, "other", strata.NoStream, ev("E", nil))
	first := mustAppend(t, ctx, st, stream, strata.NoStream, batch...)
	again, err := st.Append(ctx, stream, strata.NoStream, batch...)
	if err != nil || !again.Replayed || again.FirstVersion != first.FirstVersion || again.LastVersion != first.LastVersion {
		t.Fatalf("retry of a batch of %d: %+v, %v; want the first result %+v replayed", n, again, err, first)
	}
	multi, err := st.AppendMulti(ctx, strata.StreamAppend{Stream: stream, Expected: strata.Exact(5), Events: batch})
	if err != nil || len(multi) != 1 || !multi[0].Replayed || multi[0].LastVersion != n {
		t.Fatalf("multi-append retry of a batch of %d: %+v, %v; want the first result replayed", n, multi, err)
	}

	a, b := batch[0], batch[1]
	otherType := a
	otherType.Type = "CertificateRevoked"
	otherSchema := a
	otherSchema.Schema = 2
	for _, c := range []struct {
		name string
		evs  []strata.EventData
	}{
		{"the stored events in another order", []strata.EventData{b, a}},
		{"a stored ID with another type", []strata.EventData{otherType}},
		{"a stored ID with another schema", []strata.EventData{otherSchema}},
		{"a batch whose last event is new", append(slices.Clone(batch[:3]), ev("CertificateRenewed", nil))},
	} {
		_, err := st.Append(ctx, stream, strata.Any, c.evs...)
		wantCode(t, err, strata.Conflict, c.name)
		if !errors.Is(err, strata.ErrEventIDReused) {
			t.Fatalf("%s: %v, want it to wrap strata.ErrEventIDReused", c.name, err)
		}
	}
	if info, err := st.StreamInfo(ctx, stream); err != nil || info.Version != n {
		t.Fatalf("stream info %+v, %v: want version %d, nothing written by the retries", info, err, n)
	}
	if all := allEvents(t, ctx, st); len(all) != n+1 {
		t.Fatalf("the global log holds %d events, want %d", len(all), n+1)
	}
}

// testConcurrentAnyRaces appends with Any to one stream from many writers at once by every way
// an append can take: single events and batches too large for a backend to group, one-stream
// appends and multi-appends, and, where the backend can reopen its database, through a second
// Store as a second process would. Writers that race for the stream's next version must retry,
// not fail: every append succeeds, and the stream's versions are contiguous and in log order.
func (s suite) testConcurrentAnyRaces(t *testing.T) {
	ctx := testContext(t)
	st := s.newStore(t)
	stores := s.raceStores(t, st)
	const (
		stream  = "certificate-ANY-RACE"
		writers = 8
		each    = 6
		large   = 33 // more events than a backend groups with other appends
	)
	var total atomic.Int64
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			st := stores[w%len(stores)]
			for i := range each {
				n := 1
				if (w+i)%3 == 0 {
					n = large
				}
				batch := make([]strata.EventData, n)
				for j := range batch {
					batch[j] = ev("CertificateRenewed", map[string]int{"w": w, "i": i, "j": j})
				}
				var beside *strata.StreamAppend
				if (w+i)%4 == 1 {
					beside = &strata.StreamAppend{Stream: fmt.Sprintf("commands-%d", w), Expected: strata.Any, Events: []strata.EventData{ev("CommandSucceeded", nil)}}
				}
				if _, err := raceAppend(ctx, st, strata.StreamAppend{Stream: stream, Expected: strata.Any, Events: batch}, beside); err != nil {
					t.Errorf("writer %d append %d of %d events with Any: %v", w, i, n, err)
					return
				}
				total.Add(int64(n))
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	n := total.Load()
	for i, st := range stores {
		if info, err := st.StreamInfo(ctx, stream); err != nil || info.Version != n {
			t.Fatalf("store %d: stream info %+v, %v: want version %d", i, info, err, n)
		}
	}
	evs := mustCollect(t, st.ReadStream(ctx, stream, strata.ReadStreamOptions{}))
	for i, e := range evs {
		if e.Version != int64(i+1) {
			t.Fatalf("versions not contiguous: event %d has version %d", i, e.Version)
		}
	}
	checkVersionsInLogOrder(t, ctx, st, stream, n)
}

// raceStores returns st and, with Features.Reopen, a second Store on its database, as a second
// process would open it: the race tests' writers take turns between them.
func (s suite) raceStores(t *testing.T, st strata.Store) []strata.Store {
	stores := []strata.Store{st}
	if s.f.Reopen != nil {
		stores = append(stores, s.f.Reopen(t, st))
	}
	return stores
}

// raceAppend appends a with Append, or, when beside is set, with AppendMulti beside it, and
// returns a's result.
func raceAppend(ctx context.Context, st strata.Store, a strata.StreamAppend, beside *strata.StreamAppend) (strata.AppendResult, error) {
	if beside == nil {
		return st.Append(ctx, a.Stream, a.Expected, a.Events...)
	}
	rs, err := st.AppendMulti(ctx, a, *beside)
	if err != nil {
		return strata.AppendResult{}, err
	}
	return rs[0], nil
}

// testConcurrentExactRaces is testConcurrentExact by every way an append can take, as
// testConcurrentAnyRaces: in each round all writers append after the same version, with
// single events, batches too large to group, or multi-appends, through one Store or (with
// Features.Reopen) two. Exactly one may win; a writer that loses the race for the version
// must not retry its append on top of the winner's.
func (s suite) testConcurrentExactRaces(t *testing.T) {
	ctx := testContext(t)
	st := s.newStore(t)
	stores := s.raceStores(t, st)
	const (
		stream  = "certificate-EXACT-RACE"
		writers = 6
		rounds  = 8
		large   = 33
	)
	version := int64(0)
	for round := range rounds {
		var wins atomic.Int64
		var won atomic.Int64
		var wg sync.WaitGroup
		for w := range writers {
			wg.Go(func() {
				st := stores[(w+round)%len(stores)]
				n := 1
				if (w+round)%2 == 0 {
					n = large
				}
				batch := make([]strata.EventData, n)
				for j := range batch {
					batch[j] = ev("Attempt", map[string]int{"w": w, "round": round, "j": j})
				}
				var beside *strata.StreamAppend
				if (w+round)%3 == 1 {
					beside = &strata.StreamAppend{Stream: fmt.Sprintf("commands-%d-%d", round, w), Expected: strata.NoStream, Events: []strata.EventData{ev("CommandSucceeded", nil)}}
				}
				res, err := raceAppend(ctx, st, strata.StreamAppend{Stream: stream, Expected: strata.Exact(version), Events: batch}, beside)
				switch {
				case err == nil:
					wins.Add(1)
					won.Store(res.LastVersion)
					if res.FirstVersion != version+1 || res.LastVersion != version+int64(n) {
						t.Errorf("round %d writer %d: won with %+v, want versions %d..%d", round, w, res, version+1, version+int64(n))
					}
				case strata.ErrorCode(err) != strata.Conflict:
					t.Errorf("round %d writer %d: %v, want success or Conflict", round, w, err)
				}
			})
		}
		wg.Wait()
		if wins.Load() != 1 {
			t.Fatalf("round %d: %d writers won the append after version %d, want exactly 1", round, wins.Load(), version)
		}
		version = won.Load()
		if info, err := st.StreamInfo(ctx, stream); err != nil || info.Version != version {
			t.Fatalf("round %d: stream info %+v, %v: want version %d", round, info, err, version)
		}
	}
	checkVersionsInLogOrder(t, ctx, st, stream, version)
}
