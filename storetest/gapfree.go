package storetest

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/strata-events/strata"
)

// subscriber follows a store in a goroutine and hands over what it sees.
type subscriber struct {
	events chan strata.Event
	errs   chan error
	cancel context.CancelFunc
}

func subscribe(ctx context.Context, st strata.Store, from strata.Position, f strata.Filter) *subscriber {
	ctx, cancel := context.WithCancel(ctx)
	s := &subscriber{events: make(chan strata.Event, 1<<16), errs: make(chan error, 1), cancel: cancel}
	go func() {
		for e, err := range st.Subscribe(ctx, from, f) {
			if err != nil {
				s.errs <- err
				return
			}
			s.events <- e
		}
		s.errs <- errors.New("subscription ended without an error")
	}()
	return s
}

// next returns the subscriber's next event, failing the test if the subscription ends first.
func (s *subscriber) next(t testing.TB, ctx context.Context) strata.Event {
	t.Helper()
	select {
	case e := <-s.events:
		return e
	case err := <-s.errs:
		t.Fatalf("subscription ended: %v", err)
	case <-ctx.Done():
		t.Fatalf("no event from the subscription before the test's deadline: %v", ctx.Err())
	}
	return strata.Event{}
}

// until collects events up to and including the one with ID id.
func (s *subscriber) until(t testing.TB, ctx context.Context, id uuid.UUID) []strata.Event {
	t.Helper()
	var got []strata.Event
	for {
		e := s.next(t, ctx)
		got = append(got, e)
		if e.ID == id {
			return got
		}
	}
}

func sentinel() strata.EventData {
	e := ev("Sentinel", nil)
	e.ID = uuid.Must(uuid.NewV7())
	return e
}

// testOutOfOrderCommit is the lost-revocation scenario of DESIGN §3 made deterministic: writer A
// (the revocation) writes first and stalls before commit; writer B (an issuance) commits in the
// meantime; then A commits. No reader may ever pass A.
func (s suite) testOutOfOrderCommit(t *testing.T) {
	ctx := testContext(t)
	st := s.newStore(t)
	mustAppend(t, ctx, st, "certificate-0000", strata.NoStream, ev("CertificateIssued", map[string]string{"serial": "0000"}))
	before := allEvents(t, ctx, st)
	if len(before) != 1 {
		t.Fatalf("global log has %d events after one append, want 1", len(before))
	}
	sub := subscribe(ctx, st, strata.Start, strata.Filter{})
	if e := sub.next(t, ctx); e.ID != before[0].ID {
		t.Fatalf("subscription started with %s", e.ID)
	}

	held, release := make(chan struct{}), make(chan struct{})
	holdCtx := strata.WithBeforeCommit(ctx, func(context.Context) error {
		close(held)
		select {
		case <-release:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	})
	revocation := ev("CertificateRevoked", map[string]string{"serial": "7F3A", "reason": "keyCompromise"})
	revocation.ID = uuid.Must(uuid.NewV7())
	aDone := make(chan error, 1)
	go func() { _, err := st.Append(holdCtx, "certificate-7F3A", strata.Any, revocation); aDone <- err }()
	select {
	case <-held:
	case err := <-aDone:
		t.Fatalf("writer A finished before its commit hook ran: %v", err)
	}

	issuance := ev("CertificateIssued", map[string]string{"serial": "0B1C"})
	issuance.ID = uuid.Must(uuid.NewV7())
	bDone := make(chan error, 1)
	go func() { _, err := st.Append(ctx, "certificate-0B1C", strata.Any, issuance); bDone <- err }()

	// What a reader sees while A is still open. The cursor it reaches is where a careless
	// reader would move on from.
	probeCursor := before[0].Position
	var probed []strata.Event
	if !s.f.SerialWriters {
		if err := <-bDone; err != nil {
			t.Fatalf("writer B: %v", err)
		}
		probed = mustCollect(t, st.ReadAll(ctx, strata.ReadAllOptions{After: probeCursor}))
		for _, e := range probed {
			if e.ID == revocation.ID {
				t.Fatalf("the uncommitted revocation is visible to readers")
			}
			probeCursor = e.Position
		}
		// Give the live subscriber a chance to read in this window too; what it sees is checked below.
		time.Sleep(50 * time.Millisecond)
	}
	// With serial writers B waits for A, and a read may wait for A too (it must not return A
	// before A commits). A read that returns while A is still open must show neither.
	type probe struct {
		evs []strata.Event
		err error
	}
	var serialProbe chan probe
	if s.f.SerialWriters {
		serialProbe = make(chan probe, 1)
		go func() {
			evs, err := Collect(st.ReadAll(ctx, strata.ReadAllOptions{After: probeCursor}))
			serialProbe <- probe{evs, err}
		}()
		select {
		case p := <-serialProbe:
			if p.err != nil {
				t.Fatalf("read while the revocation was open: %v", p.err)
			}
			for _, e := range p.evs {
				if e.ID == revocation.ID || e.ID == issuance.ID {
					t.Fatalf("a read that returned while the revocation was open saw %s, which cannot have committed yet", e.Type)
				}
			}
			serialProbe <- p
		case <-time.After(100 * time.Millisecond):
		}
	}
	close(release)
	if err := <-aDone; err != nil {
		t.Fatalf("writer A: %v", err)
	}
	if s.f.SerialWriters {
		if err := <-bDone; err != nil {
			t.Fatalf("writer B: %v", err)
		}
		p := <-serialProbe
		if p.err != nil {
			t.Fatalf("read while the revocation was open: %v", p.err)
		}
		probed = p.evs
		for _, e := range probed {
			probeCursor = e.Position
		}
	}

	rest := mustCollect(t, st.ReadAll(ctx, strata.ReadAllOptions{After: probeCursor}))
	seen := map[uuid.UUID]int{}
	for _, e := range append(probed, rest...) {
		seen[e.ID]++
	}
	if seen[revocation.ID] != 1 || seen[issuance.ID] != 1 || len(seen) != 2 {
		t.Fatalf("a reader that read while the revocation was open and then resumed from %s saw %v; want the revocation and the issuance once each (the lost revocation)", probeCursor, seen)
	}

	// The subscriber started before both sees both, before anything appended later, in the order
	// every reader sees.
	last := sentinel()
	mustAppend(t, ctx, st, "certificate-0000", strata.Any, last)
	got := sub.until(t, ctx, last.ID)
	full := allEvents(t, ctx, st)
	if !sameIDs(got, full[1:]) {
		t.Fatalf("subscriber saw %s, the log holds %s: the subscriber skipped or reordered an event", describe(got), describe(full[1:]))
	}
}

func describe(evs []strata.Event) string {
	s := "["
	for i, e := range evs {
		if i > 0 {
			s += " "
		}
		s += fmt.Sprintf("%s@%s", e.Type, e.Position)
	}
	return s + "]"
}

// testConcurrentWritersSubscriber appends from many writers at once while a subscriber and a
// polling reader follow the log; both must end with exactly the log.
func (s suite) testConcurrentWritersSubscriber(t *testing.T) {
	ctx := testContext(t)
	st := s.newStore(t)
	sub := subscribe(ctx, st, strata.Start, strata.Filter{})

	const writers, appends = 8, 40
	var polled []strata.Event
	stopPolling := make(chan struct{})
	pollDone := make(chan error, 1)
	go func() { // a reader that pages the log by cursor as fast as it can, like a projection
		cursor := strata.Start
		for {
			select {
			case <-stopPolling:
				pollDone <- nil
				return
			default:
			}
			page, err := Collect(st.ReadAll(ctx, strata.ReadAllOptions{After: cursor, Limit: 50}))
			if err != nil {
				pollDone <- err
				return
			}
			for _, e := range page {
				polled = append(polled, e)
				cursor = e.Position
			}
		}
	}()
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(w), 42))
			for i := range appends {
				n := 1 + r.IntN(3)
				batch := make([]strata.EventData, n)
				for j := range batch {
					batch[j] = ev("CertificateRenewed", map[string]int{"w": w, "i": i, "j": j})
				}
				if _, err := st.Append(ctx, certStream(r.IntN(5)), strata.Any, batch...); err != nil {
					t.Errorf("writer %d: %v", w, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(stopPolling)
	if err := <-pollDone; err != nil {
		t.Fatalf("polling reader: %v", err)
	}
	last := sentinel()
	mustAppend(t, ctx, st, "end", strata.NoStream, last)
	full := allEvents(t, ctx, st)
	checkAscending(t, full)

	got := sub.until(t, ctx, last.ID)
	if !sameIDs(got, full) {
		t.Fatalf("subscriber saw %d events, the log holds %d: events were skipped, repeated or reordered", len(got), len(full))
	}
	cursor := strata.Start
	if len(polled) > 0 {
		cursor = polled[len(polled)-1].Position
	}
	polled = append(polled, mustCollect(t, st.ReadAll(ctx, strata.ReadAllOptions{After: cursor}))...)
	if !sameIDs(polled, full) {
		t.Fatalf("the polling reader saw %d events, the log holds %d: a page skipped an event that committed late", len(polled), len(full))
	}
}

func (s suite) testSubscribe(t *testing.T) {
	ctx := testContext(t)
	st := s.newStore(t)
	for i := range 5 {
		mustAppend(t, ctx, st, certStream(i), strata.NoStream, ev("CertificateIssued", map[string]int{"i": i}))
	}
	all := allEvents(t, ctx, st)
	if len(all) != 5 {
		t.Fatalf("global log has %d events after five appends, want 5", len(all))
	}
	sub := subscribe(ctx, st, strata.Start, strata.Filter{})
	revokes := subscribe(ctx, st, strata.Start, strata.Filter{Types: []string{"CertificateRevoked"}})
	for i := range 5 {
		if e := sub.next(t, ctx); e.ID != all[i].ID {
			t.Fatalf("catch-up event %d is %s, want %s", i, e.Position, all[i].Position)
		}
	}
	// Live: each append reaches the subscriber.
	for i := range 3 {
		last := sentinel()
		last.Type = "CertificateRevoked"
		mustAppend(t, ctx, st, certStream(i), strata.Exact(1), last)
		if e := sub.next(t, ctx); e.ID != last.ID {
			t.Fatalf("live event %d: got %s", i, e.Type)
		}
		if e := revokes.next(t, ctx); e.ID != last.ID {
			t.Fatalf("filtered subscription got %s, want the revocation", e.Type)
		}
	}
	// Resuming from a cursor continues right after it.
	resumed := subscribe(ctx, st, all[2].Position, strata.Filter{})
	if e := resumed.next(t, ctx); e.ID != all[3].ID {
		t.Fatalf("resumed subscription started at %s, want %s", e.Position, all[3].Position)
	}
	// Cancelling ends the subscription with the context's error.
	sub.cancel()
	for {
		select {
		case <-sub.events:
			continue
		case err := <-sub.errs:
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("cancelled subscription ended with %v, want context.Canceled", err)
			}
			return
		case <-ctx.Done():
			t.Fatalf("cancelled subscription did not end")
		}
	}
}

func (s suite) testResumeAfterRestart(t *testing.T) {
	if s.f.Reopen == nil {
		t.Skip("the backend keeps nothing across restarts (Features.Reopen is nil)")
	}
	ctx := testContext(t)
	st := s.newStore(t)
	for i := range 10 {
		mustAppend(t, ctx, st, certStream(i%3), strata.Any, ev("CertificateRenewed", map[string]int{"i": i}))
	}
	sub := subscribe(ctx, st, strata.Start, strata.Filter{})
	var cursor strata.Position
	for range 4 {
		cursor = sub.next(t, ctx).Position
	}
	sub.cancel()
	if err := st.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	// The process restarts with only the cursor it saved.
	saved, err := strata.ParsePosition(cursor.String())
	if err != nil {
		t.Fatal(err)
	}
	st2 := s.f.Reopen(t, st)
	for i := range 3 {
		mustAppend(t, ctx, st2, certStream(i), strata.StreamExists, ev("CertificateRevoked", map[string]int{"i": i}))
	}
	want := mustCollect(t, st2.ReadAll(ctx, strata.ReadAllOptions{After: saved}))
	if len(want) != 6+3 {
		t.Fatalf("after the restart the log holds %d events after the cursor, want 9", len(want))
	}
	resumed := subscribe(ctx, st2, saved, strata.Filter{})
	var got []strata.Event
	for range want {
		got = append(got, resumed.next(t, ctx))
	}
	if !sameIDs(got, want) {
		t.Fatalf("resumed subscription saw %s, want %s", describe(got), describe(want))
	}
}

// testOutOfOrderCommitFiltered is testOutOfOrderCommit for filtered readers: a reader that
// selects by tenant, type or stream prefix must not pass the open revocation either, even
// though the filter is applied where the backend reads.
func (s suite) testOutOfOrderCommitFiltered(t *testing.T) {
	ctx := testContext(t)
	st := s.newStore(t)
	acme := func(e strata.EventData) strata.EventData {
		e.ID = uuid.Must(uuid.NewV7())
		e.Meta.Tenant = "acme"
		return e
	}
	seed := acme(ev("CertificateIssued", map[string]string{"serial": "0000"}))
	mustAppend(t, ctx, st, "certificate-0000", strata.NoStream, seed)
	// Events no filter selects, between the seed and the revocation: a backend that reads a
	// filtered page by its keys does so when the page's events lie far apart.
	noise := make([]strata.EventData, 20)
	for i := range noise {
		noise[i] = ev("HealthChecked", map[string]int{"i": i})
	}
	mustAppend(t, ctx, st, "noise", strata.NoStream, noise...)
	filters := []strata.Filter{
		{Tenant: "acme"},
		{Types: []string{"CertificateRevoked", "CertificateIssued"}},
		{StreamPrefix: "certificate-"},
		{Tenant: "acme", Types: []string{"CertificateRevoked", "CertificateIssued"}, StreamPrefix: "certificate-"},
	}
	cursors := make([]strata.Position, len(filters))
	subs := make([]*subscriber, len(filters))
	for i, f := range filters {
		got := mustCollect(t, st.ReadAll(ctx, strata.ReadAllOptions{Filter: f}))
		if len(got) != 1 || got[0].ID != seed.ID {
			t.Fatalf("filter %+v: read %s, want the seed", f, describe(got))
		}
		cursors[i] = got[0].Position
		subs[i] = subscribe(ctx, st, strata.Start, f)
		if e := subs[i].next(t, ctx); e.ID != seed.ID {
			t.Fatalf("filter %+v: the subscription started with %s", f, e.Type)
		}
	}

	held, release := make(chan struct{}), make(chan struct{})
	holdCtx := strata.WithBeforeCommit(ctx, func(context.Context) error {
		close(held)
		select {
		case <-release:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	})
	revocation := acme(ev("CertificateRevoked", map[string]string{"serial": "7F3A"}))
	aDone := make(chan error, 1)
	go func() { _, err := st.Append(holdCtx, "certificate-7F3A", strata.Any, revocation); aDone <- err }()
	select {
	case <-held:
	case err := <-aDone:
		t.Fatalf("writer A finished before its commit hook ran: %v", err)
	}
	issuance := acme(ev("CertificateIssued", map[string]string{"serial": "0B1C"}))
	bDone := make(chan error, 1)
	go func() { _, err := st.Append(ctx, "certificate-0B1C", strata.Any, issuance); bDone <- err }()

	seen := make([]map[uuid.UUID]int, len(filters))
	for i := range seen {
		seen[i] = map[uuid.UUID]int{}
	}
	if !s.f.SerialWriters { // the issuance commits while the revocation is open
		if err := <-bDone; err != nil {
			t.Fatalf("writer B: %v", err)
		}
		for i, f := range filters {
			for _, e := range mustCollect(t, st.ReadAll(ctx, strata.ReadAllOptions{After: cursors[i], Filter: f})) {
				if e.ID == revocation.ID {
					t.Fatalf("filter %+v: the uncommitted revocation is visible", f)
				}
				seen[i][e.ID]++
				cursors[i] = e.Position
			}
		}
	}
	close(release)
	if err := <-aDone; err != nil {
		t.Fatalf("writer A: %v", err)
	}
	if s.f.SerialWriters {
		if err := <-bDone; err != nil {
			t.Fatalf("writer B: %v", err)
		}
	}
	last := acme(sentinel())
	mustAppend(t, ctx, st, "certificate-0000", strata.Any, last)
	full := allEvents(t, ctx, st)
	for i, f := range filters {
		for _, e := range mustCollect(t, st.ReadAll(ctx, strata.ReadAllOptions{After: cursors[i], Filter: f})) {
			seen[i][e.ID]++
		}
		if seen[i][revocation.ID] != 1 || seen[i][issuance.ID] != 1 {
			t.Fatalf("filter %+v: a reader that read while the revocation was open and resumed from %s saw the revocation %d times and the issuance %d times, want once each (the lost revocation)",
				f, cursors[i], seen[i][revocation.ID], seen[i][issuance.ID])
		}
		var want []strata.Event
		for j := range full {
			if f.Match(&full[j]) {
				want = append(want, full[j])
			}
		}
		if got := mustCollect(t, st.ReadAll(ctx, strata.ReadAllOptions{Filter: f})); !sameIDs(got, want) {
			t.Fatalf("filter %+v: a read of the whole log returned %s, the log holds %s in that order", f, describe(got), describe(want))
		}
		want = want[1:] // the subscriber has delivered the seed
		if got := subs[i].until(t, ctx, want[len(want)-1].ID); !sameIDs(got, want) {
			t.Fatalf("filter %+v: the subscriber saw %s, the log holds %s", f, describe(got), describe(want))
		}
	}
}
