package httpapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/strata-events/strata"
	"github.com/strata-events/strata/httpapi"
)

// positionsOf returns the positions of the tenant's events after cursor, from the store.
func positionsOf(t testing.TB, st strata.Store, tenant string, after strata.Position) []string {
	t.Helper()
	var out []string
	for e, err := range st.ReadAll(context.Background(), strata.ReadAllOptions{After: after, Filter: strata.Filter{Tenant: tenant}}) {
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, e.Position.String())
	}
	return out
}

// readUntilDone reads a subscription until the event of type Done and returns the ids (the
// positions) of everything before it; each event must be acme's.
func readUntilDone(t testing.TB, c *sseClient) ([]string, error) {
	var ids []string
	for {
		ev, ok := c.next()
		if !ok {
			return ids, fmt.Errorf("the subscription ended after %d events", len(ids))
		}
		if ev.event != "event" {
			return ids, fmt.Errorf("%s event: %s", ev.event, ev.data)
		}
		var e httpapi.Event
		if err := json.Unmarshal([]byte(ev.data), &e); err != nil {
			return ids, err
		}
		if e.Meta.Tenant != "acme" {
			return ids, fmt.Errorf("event %s of tenant %q", ev.id, e.Meta.Tenant)
		}
		if e.Type == "Done" {
			return ids, nil
		}
		ids = append(ids, ev.id)
	}
}

// TestSubscribersJoinWhileAppending: many subscribers join the shared live feed one after
// another, from the start, from cursors in the middle and from the end, while writers of two
// tenants append without pause, so that events commit during every subscriber's hand-over
// from its catch-up to the live feed. Each subscriber must see every position of its tenant
// after its cursor exactly once, in order, and nothing of the other tenant.
func TestSubscribersJoinWhileAppending(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, b.open(t), func(c *httpapi.Config) { c.Logger = discardLogger() })
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			tick := func(tenant string, n int) strata.EventData {
				return strata.EventData{Type: "Tick", Data: []byte(fmt.Sprintf(`{"n":%d}`, n)), Meta: strata.Metadata{Tenant: tenant}}
			}
			for i := range 20 {
				if _, err := e.store.Append(ctx, "acme-history", strata.Any, tick("acme", i)); err != nil {
					t.Fatal(err)
				}
			}
			stopWriters := make(chan struct{})
			var writers sync.WaitGroup
			for w, tenant := range []string{"acme", "umbrella", "acme"} {
				writers.Go(func() {
					for i := 0; ; i++ {
						select {
						case <-stopWriters:
							return
						default:
						}
						evs := []strata.EventData{tick(tenant, i)}
						if i%7 == 0 { // a batch now and then: several events of one commit
							evs = append(evs, tick(tenant, i), tick(tenant, i))
						}
						if _, err := e.store.Append(ctx, fmt.Sprintf("%s-%d", tenant, w), strata.Any, evs...); err != nil {
							t.Error(err)
							return
						}
						time.Sleep(time.Millisecond)
					}
				})
			}
			const subscribers = 24
			type result struct {
				after string
				ids   []string
				err   error
			}
			results := make([]result, subscribers)
			var subs sync.WaitGroup
			for i := range subscribers {
				// Cursors: the start, the middle of what exists now, the end of it.
				cursor := ""
				if existing := positionsOf(t, e.store, "acme", strata.Start); i%3 == 1 {
					cursor = existing[len(existing)/2]
				} else if i%3 == 2 {
					cursor = existing[len(existing)-1]
				}
				results[i].after = cursor
				c := e.subscribe(t, ctx, e.keys["acme/reader"], "", cursor)
				subs.Go(func() {
					defer c.close()
					results[i].ids, results[i].err = readUntilDone(t, c)
				})
				time.Sleep(10 * time.Millisecond)
			}
			time.Sleep(100 * time.Millisecond)
			close(stopWriters)
			writers.Wait()
			if _, err := e.store.Append(ctx, "acme-done", strata.Any, strata.EventData{Type: "Done", Meta: strata.Metadata{Tenant: "acme"}}); err != nil {
				t.Fatal(err)
			}
			subs.Wait()
			for i, r := range results {
				if r.err != nil {
					t.Fatalf("subscriber %d: %v", i, r.err)
				}
				after := strata.Start
				if r.after != "" {
					var err error
					if after, err = strata.ParsePosition(r.after); err != nil {
						t.Fatal(err)
					}
				}
				want := positionsOf(t, e.store, "acme", after)
				want = want[:len(want)-1] // Done
				if len(r.ids) != len(want) {
					t.Fatalf("subscriber %d after %q: %d events, want %d", i, r.after, len(r.ids), len(want))
				}
				for j := range want {
					if r.ids[j] != want[j] {
						t.Fatalf("subscriber %d after %q: event %d is %s, want %s: lost, repeated or out of order", i, r.after, j, r.ids[j], want[j])
					}
				}
			}
			if m := string(e.do("GET", "/metrics", "", nil).body); !strings.Contains(m, "strata_sse_followers 1") {
				t.Errorf("not one shared follower:\n%s", grepLines(m, "strata_sse_"))
			}
		})
	}
}

// TestSlowSubscriberRejoinsLiveFeed: a subscriber that stops reading while a burst larger than
// its live buffer is delivered is cut from the shared feed, reads the gap from the store and
// joins again, without a gap or a repeat; the fast subscribers are not held up.
func TestSlowSubscriberRejoinsLiveFeed(t *testing.T) {
	t.Parallel()
	// The slow subscriber takes no write until the fast one has read the whole burst: on a
	// loaded machine that took longer than the default SSEWriteWait (10 s), which disconnects
	// it (TestSlowSubscriberDisconnectedResumable's case, not this one's).
	e := newEnv(t, openSQLite(t), func(c *httpapi.Config) {
		c.Logger = discardLogger()
		c.SSEWriteWait = 5 * time.Minute
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if _, err := e.store.Append(ctx, "ticks", strata.Any, strata.EventData{Type: "Tick", Meta: strata.Metadata{Tenant: "acme"}}); err != nil {
		t.Fatal(err)
	}
	// The slow subscriber's socket buffers are kept small, so that the burst is sure to fill
	// them and its live buffer.
	slow := e.subscribeWith(t, ctx, smallBufferClient(t), e.keys["acme/reader"], "", "")
	defer slow.close()
	fast := e.subscribe(t, ctx, e.keys["acme/reader"], "", "")
	defer fast.close()
	for _, c := range []*sseClient{slow, fast} {
		if ev, ok := c.next(); !ok || ev.event != "event" {
			t.Fatalf("first event: %+v %v", ev, ok)
		}
	}
	// A burst far beyond what the live buffer (SSELiveBuffer events), the read-ahead and the
	// socket buffers hold: the server's send buffer alone may grow to 4 MiB, a thousand of
	// these events.
	const bursts, per, pad = 16, 250, 4 << 10
	for range bursts {
		evs := make([]strata.EventData, per)
		for j := range evs {
			evs[j] = strata.EventData{Type: "Tick", Data: []byte(`{"pad":"` + strings.Repeat("x", pad) + `"}`), Meta: strata.Metadata{Tenant: "acme"}}
		}
		if _, err := e.store.Append(ctx, "ticks", strata.Any, evs...); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.store.Append(ctx, "ticks", strata.Any, strata.EventData{Type: "Done", Meta: strata.Metadata{Tenant: "acme"}}); err != nil {
		t.Fatal(err)
	}
	fastIDs, err := readUntilDone(t, fast)
	if err != nil {
		t.Fatal(err)
	}
	slowIDs, err := readUntilDone(t, slow)
	if err != nil {
		t.Fatal(err)
	}
	want := positionsOf(t, e.store, "acme", strata.Start)
	want = want[1 : len(want)-1]
	for name, got := range map[string][]string{"fast": fastIDs, "slow": slowIDs} {
		if strings.Join(got, ",") != strings.Join(want, ",") {
			t.Fatalf("the %s subscriber got %d events, want the %d after the first, each once and in order", name, len(got), len(want))
		}
	}
	if m := string(e.do("GET", "/metrics", "", nil).body); strings.Contains(m, "strata_sse_rejoined_total 0") {
		t.Errorf("no subscriber fell behind the live feed: the burst did not test the rejoin\n%s", grepLines(m, "strata_sse_"))
	}
}

func grepLines(s, prefix string) string {
	var out []string
	for line := range strings.Lines(s) {
		if strings.HasPrefix(line, prefix) {
			out = append(out, strings.TrimSpace(line))
		}
	}
	return strings.Join(out, "\n")
}
