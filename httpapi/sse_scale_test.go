package httpapi_test

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/strata-events/strata"
	"github.com/strata-events/strata/httpapi"
	"github.com/strata-events/strata/internal/follow"
)

// heapInUse returns the live heap after a full collection.
func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}

// TestManySubscribersFlatMemory holds many SSE subscriptions open on one server (1,000 with
// STRATA_TEST_SSE_SUBSCRIBERS=1000; 100 by default, to keep the suite light), appends events
// that every subscriber must receive, and reports the heap: per subscriber when connected, and
// its growth while the events flow, which must stay flat (bounded buffers, no backlog kept).
func TestManySubscribersFlatMemory(t *testing.T) {
	n := 100
	if v := os.Getenv("STRATA_TEST_SSE_SUBSCRIBERS"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 1 {
			t.Fatalf("STRATA_TEST_SSE_SUBSCRIBERS=%q: want a number", v)
		}
	}
	const events = 500
	e := newEnv(t, openSQLite(t), func(c *httpapi.Config) { c.Logger = discardLogger() })
	key := e.keys["acme/reader"]
	u, _ := url.Parse(e.srv.URL)
	base := heapInUse()

	var received atomic.Int64
	var wg sync.WaitGroup
	ready := make(chan struct{}, n)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	conns := make([]net.Conn, n)
	for i := range n {
		c, err := net.Dial("tcp", u.Host)
		if err != nil {
			t.Fatalf("subscriber %d: %v", i, err)
		}
		conns[i] = c
		fmt.Fprintf(c, "GET /v1/subscribe HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\nAccept: text/event-stream\r\n\r\n", u.Host, key)
		wg.Go(func() {
			// The response is chunked: read it through net/http so that chunk headers never
			// split a line.
			resp, err := http.ReadResponse(bufio.NewReaderSize(c, 4096), nil)
			if err != nil {
				t.Errorf("subscriber %d: %v", i, err)
				ready <- struct{}{}
				return
			}
			br := bufio.NewReaderSize(resp.Body, 4096)
			got := 0
			for {
				line, err := br.ReadSlice('\n')
				if err != nil {
					if ctx.Err() == nil {
						t.Errorf("subscriber %d after %d events: %v", i, got, err)
					}
					return
				}
				switch {
				case strings.HasPrefix(string(line), ": subscribed"):
					ready <- struct{}{}
				case strings.HasPrefix(string(line), "id: "):
					got++
					received.Add(1)
					if got == events {
						return
					}
				}
			}
		})
	}
	for range n {
		<-ready
	}
	connected := heapInUse()
	for i := 0; i < events; i += 50 {
		evs := make([]strata.EventData, 50)
		for j := range evs {
			evs[j] = strata.EventData{Type: "Tick", Data: []byte(`{"n":` + strconv.Itoa(i+j) + `,"pad":"` + strings.Repeat("x", 200) + `"}`), Meta: strata.Metadata{Tenant: "acme"}}
		}
		if _, err := e.store.Append(ctx, "ticks", strata.Any, evs...); err != nil {
			t.Fatal(err)
		}
	}
	// Sample the heap now and then while the events flow (a collection in a tight loop would
	// starve the server). The bound is a safety net against a hang, not a speed requirement.
	var peak uint64
	deadline := time.Now().Add(3 * time.Minute)
	for received.Load() < int64(n*events) {
		if h := heapInUse(); h > peak {
			peak = h
		}
		if t.Failed() {
			t.FailNow()
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d events delivered, and no progress to the end", received.Load(), n*events)
		}
		time.Sleep(50 * time.Millisecond)
	}
	wg.Wait()
	after := heapInUse()
	cancel()
	for _, c := range conns {
		c.Close()
	}
	perSub := float64(connected-base) / float64(n)
	t.Logf("%d subscribers, %d events each (%d delivered): heap %.1f MiB idle, %.1f MiB connected (%.1f KiB per subscriber, client side included), peak %.1f MiB while delivering, %.1f MiB after",
		n, events, received.Load(), mib(base), mib(connected), perSub/1024, mib(peak), mib(after))
	// Flat: what a subscription holds is bounded by its read-ahead — one page of the store's
	// catch-up loop (follow.PageSize events) and the SSE channel — whatever the backlog; each
	// event here takes well under 1 KiB in memory.
	bound := int64(n)*int64(follow.PageSize+httpapi.SSEBuffer)<<10 + 32<<20
	if growth := int64(peak) - int64(connected); growth > bound {
		t.Errorf("the heap grew by %.1f MiB while delivering: not flat", float64(growth)/(1<<20))
	}
}

func mib(b uint64) float64 { return float64(b) / (1 << 20) }
