package httpapi_test

import (
	"bufio"
	"context"
	"fmt"
	"iter"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/strata-events/strata"
	"github.com/strata-events/strata/httpapi"
	"github.com/strata-events/strata/inmem"
	"github.com/strata-events/strata/internal/follow"
)

// countingStore counts the reads of the global log that a store serves: every ReadAll, and
// every read of its Subscribe, which runs the backends' own loop (internal/follow) over the
// counted ReadAll, woken by its appends. One ReadAll stands for one database query of a
// backend's page read.
type countingStore struct {
	*inmem.Store
	reads atomic.Int64
	sig   follow.Signal
	done  chan struct{}
}

func newCountingStore(t testing.TB) *countingStore {
	c := &countingStore{Store: inmem.New(), done: make(chan struct{})}
	t.Cleanup(func() { close(c.done); c.Store.Close() })
	return c
}

func (c *countingStore) ReadAll(ctx context.Context, opts strata.ReadAllOptions) iter.Seq2[strata.Event, error] {
	return func(yield func(strata.Event, error) bool) {
		c.reads.Add(1)
		for e, err := range c.Store.ReadAll(ctx, opts) {
			if !yield(e, err) {
				return
			}
		}
	}
}

func (c *countingStore) Subscribe(ctx context.Context, from strata.Position, f strata.Filter) iter.Seq2[strata.Event, error] {
	return follow.Subscribe(ctx, follow.Source{ReadAll: c.ReadAll, Wake: c.sig.C, Closed: c.done}, "subscribe", from, f)
}

func (c *countingStore) Append(ctx context.Context, stream string, exp strata.ExpectedVersion, evs ...strata.EventData) (strata.AppendResult, error) {
	res, err := c.Store.Append(ctx, stream, exp, evs...)
	c.sig.Notify()
	return res, err
}

// sseSubscribers returns STRATA_TEST_SSE_SUBSCRIBERS, or def.
func sseSubscribers(t testing.TB, def int) int {
	t.Helper()
	if v := os.Getenv("STRATA_TEST_SSE_SUBSCRIBERS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("STRATA_TEST_SSE_SUBSCRIBERS=%q: want a number", v)
		}
		return n
	}
	return def
}

// rawSubscriber opens a subscription on its own connection and counts the events it receives
// into got; ready receives once the subscription is open.
func rawSubscriber(t testing.TB, ctx context.Context, host, key string, got *atomic.Int64, ready chan<- struct{}, wg *sync.WaitGroup) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", host)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(c, "GET /v1/subscribe HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\nAccept: text/event-stream\r\n\r\n", host, key)
	wg.Go(func() {
		resp, err := http.ReadResponse(bufio.NewReaderSize(c, 4096), nil)
		if err != nil {
			if ctx.Err() == nil {
				t.Errorf("subscribe: %v", err)
			}
			ready <- struct{}{}
			return
		}
		br := bufio.NewReaderSize(resp.Body, 4096)
		for {
			line, err := br.ReadSlice('\n')
			if err != nil {
				return
			}
			switch {
			case strings.HasPrefix(string(line), ": subscribed"):
				ready <- struct{}{}
			case strings.HasPrefix(string(line), "id: "):
				got.Add(1)
			}
		}
	})
	return c
}

// TestSSEStoreReadsPerAppend measures how many reads of the store one append costs with many
// live subscribers (1,000 with STRATA_TEST_SSE_SUBSCRIBERS=1000; 100 by default): each append
// is delivered to every subscriber before the next. With one shared follower it is about one
// read per append, whatever the number of subscribers.
func TestSSEStoreReadsPerAppend(t *testing.T) {
	for _, history := range []int{0, 10} {
		t.Run(fmt.Sprintf("%d events before", history), func(t *testing.T) { sseReadsPerAppend(t, history) })
	}
}

func sseReadsPerAppend(t *testing.T, history int) {
	n := sseSubscribers(t, 100)
	const appends = 20
	st := newCountingStore(t)
	for i := range history {
		if _, err := st.Append(context.Background(), "history", strata.Any, strata.EventData{Type: "Tick", Data: []byte(`{"h":` + strconv.Itoa(i) + `}`), Meta: strata.Metadata{Tenant: "acme"}}); err != nil {
			t.Fatal(err)
		}
	}
	e := newEnv(t, st, func(c *httpapi.Config) { c.Logger = discardLogger(); c.Heartbeat = time.Hour })
	u, _ := url.Parse(e.srv.URL)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	defer wg.Wait()
	ready := make(chan struct{}, n)
	counts := make([]atomic.Int64, n)
	for i := range n {
		c := rawSubscriber(t, ctx, u.Host, e.keys["acme/reader"], &counts[i], ready, &wg)
		defer c.Close()
	}
	for range n {
		<-ready
	}
	total := func() int64 {
		var s int64
		for i := range counts {
			s += counts[i].Load()
		}
		return s
	}
	deliver := func(i int) {
		t.Helper()
		if _, err := st.Append(ctx, "ticks", strata.Any, strata.EventData{Type: "Tick", Data: []byte(`{"n":` + strconv.Itoa(i) + `}`), Meta: strata.Metadata{Tenant: "acme"}}); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(time.Minute)
		for total() < int64(n*(history+i+1)) {
			if time.Now().After(deadline) {
				t.Fatalf("append %d: %d of %d deliveries", i, total(), n*(history+i+1))
			}
			time.Sleep(time.Millisecond)
		}
	}
	// The first append after the subscriptions opened on an empty log also starts the shared
	// follower (a subscription that read nothing waits for a committed position to start it
	// after): counted apart, with the reads of the subscriptions' catch-up.
	for total() < int64(n*history) {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond)
	first := int64(0)
	deliver(0)
	time.Sleep(200 * time.Millisecond)
	before := st.reads.Load()
	start := time.Now()
	for i := 1; i <= appends; i++ {
		deliver(i)
	}
	reads := st.reads.Load() - before
	perAppend := float64(reads) / appends
	t.Logf("%d subscribers, %d events before: %d store reads to open them and deliver the first append; then %d appends, each delivered to all in %v on average: %d store reads, %.2f per append",
		n, history, before-first, appends, time.Since(start)/appends, reads, perAppend)
	if perAppend > 3 {
		t.Errorf("%.1f store reads per append with %d subscribers: the subscribers do not share one follower", perAppend, n)
	}
}
