package hub_test

import (
	"context"
	"iter"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/strata-events/strata"
	"github.com/strata-events/strata/hub"
	"github.com/strata-events/strata/inmem"
)

// wantExactly checks that got holds the positions of want, once each and in order.
func wantExactly(t *testing.T, who string, got []strata.Event, want []strata.Position) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d events, want %d", who, len(got), len(want))
	}
	for i := range want {
		if got[i].Position != want[i] {
			t.Fatalf("%s: event %d at %s, want %s: a gap, a repeat or a swap", who, i, got[i].Position, want[i])
		}
	}
}

// TestHandoverUnderFlood: subscribers of one tenant join from the start, one after another,
// while writers of other tenants flood the log and the tenant's own events keep coming. The hub
// never pauses long enough for an optimistic hand-over, yet every subscriber joins, and each
// gets every event of its tenant exactly once, in order, across the switch from the store to
// the live feed.
func TestHandoverUnderFlood(t *testing.T) {
	t.Parallel()
	st, h := start(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var flood sync.WaitGroup
	for w := range 3 {
		flood.Go(func() {
			for ctx.Err() == nil {
				if _, err := st.Append(ctx, "flood", strata.Any, strata.EventData{Type: "Noise", Meta: strata.Metadata{Tenant: "other"}}); err != nil && ctx.Err() == nil {
					t.Errorf("flood %d: %v", w, err)
					return
				}
			}
		})
	}
	const subscribers, own = 40, 200
	outs := make([]<-chan []strata.Event, subscribers)
	var want []strata.Position
	for i := range own {
		res, err := st.Append(ctx, "acme", strata.Any, strata.EventData{Type: "Tick", Meta: strata.Metadata{Tenant: "acme"}})
		if err != nil {
			t.Fatal(err)
		}
		for e, err := range st.ReadStream(ctx, "acme", strata.ReadStreamOptions{From: res.LastVersion, Limit: 1}) {
			if err != nil {
				t.Fatal(err)
			}
			want = append(want, e.Position)
		}
		if i%(own/subscribers) == 0 {
			outs[i/(own/subscribers)] = collect(ctx, h.Subscribe(ctx, hub.Tenant("acme"), hub.From(strata.Start), hub.Buffer(own)), own)
		}
	}
	for i, out := range outs {
		select {
		case got := <-out:
			wantExactly(t, "subscriber", got, want)
		case <-time.After(time.Minute):
			t.Fatalf("subscriber %d never joined the live feed under the flood", i)
		}
	}
	cancel()
	flood.Wait()
}

// movingStore moves the hub's head past every optimistic catch-up pass: after such a read (no
// limit) it appends events and waits until the hub dispatched them, so that the pass can never
// hand over optimistically.
type movingStore struct {
	*inmem.Store
	h      *hub.Hub
	t      *testing.T
	burst  func(pass int) []strata.EventData
	passes atomic.Int64
	gated  atomic.Int64
}

func (m *movingStore) ReadAll(ctx context.Context, opts strata.ReadAllOptions) iter.Seq2[strata.Event, error] {
	if opts.Limit > 0 {
		m.gated.Add(1)
		return m.Store.ReadAll(ctx, opts)
	}
	return func(yield func(strata.Event, error) bool) {
		for e, err := range m.Store.ReadAll(ctx, opts) {
			if !yield(e, err) {
				return
			}
		}
		evs := m.burst(int(m.passes.Add(1)))
		if len(evs) == 0 {
			return
		}
		res, err := m.Store.Append(ctx, "burst", strata.Any, evs...)
		if err != nil {
			m.t.Error(err)
			return
		}
		for e := range m.Store.ReadStream(ctx, "burst", strata.ReadStreamOptions{From: res.LastVersion, Limit: 1}) {
			waitHead(m.t, m.h, e.Position)
		}
	}
}

// TestHandoverHoldsTheDispatcher: when the head moves during every optimistic pass, the last
// pass holds the dispatcher and hands over exactly; a tail longer than the hand-over's limit is
// yielded and caught up again. Events that commit during the hand-over (the bursts, matching
// the filter) are each delivered once, in order.
func TestHandoverHoldsTheDispatcher(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name      string
		wantGated int64 // the hand-over passes that hold the dispatcher, at least
		burst     func(pass int) []strata.EventData
	}{
		{"one event each pass", 1, func(int) []strata.EventData {
			return []strata.EventData{{Type: "Tick", Meta: strata.Metadata{Tenant: "acme"}}}
		}},
		{"tails longer than the limit", 2, func(pass int) []strata.EventData {
			if pass > 4 {
				return nil
			}
			evs := make([]strata.EventData, 1500)
			for i := range evs {
				evs[i] = strata.EventData{Type: "Tick", Meta: strata.Metadata{Tenant: "acme"}}
			}
			return evs
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			inner := inmem.New()
			defer inner.Close()
			m := &movingStore{Store: inner, t: t, burst: c.burst}
			h := hub.New(m)
			m.h = h
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			go h.Run(ctx)
			for range 10 {
				if _, err := inner.Append(ctx, "history", strata.Any, strata.EventData{Type: "Tick", Meta: strata.Metadata{Tenant: "acme"}}); err != nil {
					t.Fatal(err)
				}
			}
			next, stop := pull(h.Subscribe(ctx, hub.Tenant("acme"), hub.From(strata.Start), hub.Buffer(10_000)))
			defer stop()
			var got []strata.Event
			// Read until registered, then one live event proves the feed. The subscriber may
			// register just after it yielded the last event of its catch-up: with every event
			// read, wait for the registration instead of for an event that may never come.
			for h.Subscribers() == 0 || len(got) < int(countAll(t, inner)) {
				if len(got) >= int(countAll(t, inner)) {
					time.Sleep(time.Millisecond)
					continue
				}
				e, err, ok := next()
				if !ok || err != nil {
					t.Fatalf("subscription ended: %v", err)
				}
				got = append(got, e)
			}
			if m.gated.Load() < c.wantGated {
				t.Fatalf("the hand-over held the dispatcher %d times, want %d or more", m.gated.Load(), c.wantGated)
			}
			if _, err := inner.Append(ctx, "live", strata.Any, strata.EventData{Type: "Tick", Meta: strata.Metadata{Tenant: "acme"}}); err != nil {
				t.Fatal(err)
			}
			e, err, ok := next()
			if !ok || err != nil {
				t.Fatalf("live event: %v", err)
			}
			got = append(got, e)
			var want []strata.Position
			for e, err := range inner.ReadAll(ctx, strata.ReadAllOptions{}) {
				if err != nil {
					t.Fatal(err)
				}
				want = append(want, e.Position)
			}
			wantExactly(t, "subscriber", got, want)
		})
	}
}

func countAll(t *testing.T, st strata.Store) int64 {
	t.Helper()
	var n int64
	for _, err := range st.ReadAll(context.Background(), strata.ReadAllOptions{}) {
		if err != nil {
			t.Fatal(err)
		}
		n++
	}
	return n
}

// TestStopDuringHandoverTailUnregisters: a consumer that stops while a hand-over that held the
// dispatcher yields its tail leaves no subscription behind: the hub does not keep queueing
// events for it (holding them in memory) nor count it as a subscriber.
func TestStopDuringHandoverTailUnregisters(t *testing.T) {
	t.Parallel()
	inner := inmem.New()
	defer inner.Close()
	m := &movingStore{Store: inner, t: t, burst: func(pass int) []strata.EventData {
		if pass > 2 {
			return nil
		}
		return []strata.EventData{{Type: "Tick", Meta: strata.Metadata{Tenant: "acme"}}}
	}}
	h := hub.New(m)
	m.h = h
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go h.Run(ctx)
	for range 10 {
		if _, err := inner.Append(ctx, "history", strata.Any, strata.EventData{Type: "Tick", Meta: strata.Metadata{Tenant: "acme"}}); err != nil {
			t.Fatal(err)
		}
	}
	stopped := false
	for _, err := range h.Subscribe(ctx, hub.Tenant("acme"), hub.From(strata.Start)) {
		if err != nil {
			t.Fatalf("subscription ended: %v", err)
		}
		if m.gated.Load() > 0 { // an event of the tail the locked pass read
			stopped = true
			break
		}
	}
	if !stopped {
		t.Fatal("the hand-over never held the dispatcher")
	}
	if n := h.Subscribers(); n != 0 {
		t.Fatalf("%d subscribers after the only one stopped", n)
	}
}
