package httpapi_test

import (
	"bufio"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/strata-events/strata"
	"github.com/strata-events/strata/httpapi"
)

// sseEvent is one parsed Server-Sent Event.
type sseEvent struct {
	id, event, data string
}

// sseClient reads a subscription.
type sseClient struct {
	resp    *http.Response
	sc      *bufio.Scanner
	comment []string
}

func (e *env) subscribe(t testing.TB, ctx context.Context, key, query, lastID string) *sseClient {
	t.Helper()
	return e.subscribeWith(t, ctx, e.srv.Client(), key, query, lastID)
}

// smallBufferClient is an HTTP client whose connections take at most 64 KiB into their receive
// buffers: the kernel would otherwise grow a loopback socket's to tens of MiB, and a reader
// that stops reading would not fall behind until all of it is full.
func smallBufferClient(t testing.TB) *http.Client {
	tr := &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		if tc, ok := c.(*net.TCPConn); ok {
			if err := tc.SetReadBuffer(64 << 10); err != nil {
				c.Close()
				return nil, err
			}
		}
		return c, nil
	}}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

// subscribeWith is subscribe through client.
func (e *env) subscribeWith(t testing.TB, ctx context.Context, client *http.Client, key, query, lastID string) *sseClient {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, "GET", e.srv.URL+"/v1/subscribe"+query, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+key)
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		t.Fatalf("subscribe: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	return &sseClient{resp: resp, sc: sc}
}

// next returns the next event (not a comment), or false at the end of the stream.
func (c *sseClient) next() (sseEvent, bool) {
	var ev sseEvent
	for c.sc.Scan() {
		line := c.sc.Text()
		switch {
		case line == "":
			if ev.event != "" || ev.data != "" {
				return ev, true
			}
		case strings.HasPrefix(line, ":"):
			c.comment = append(c.comment, line)
		case strings.HasPrefix(line, "id: "):
			ev.id = line[4:]
		case strings.HasPrefix(line, "event: "):
			ev.event = line[7:]
		case strings.HasPrefix(line, "data: "):
			ev.data = line[6:]
		}
	}
	return ev, false
}

func (c *sseClient) close() { c.resp.Body.Close() }

func appendN(t testing.TB, e *env, key, stream string, from, n int, pad int) {
	t.Helper()
	for i := from; i < from+n; i++ {
		r := e.do("POST", "/v1/streams/"+stream+"/events", key, appendBody(nil, event("Tick", map[string]any{"n": i, "pad": strings.Repeat("x", pad)})))
		if r.status != 201 {
			t.Fatalf("append %d: %d %s", i, r.status, r.body)
		}
	}
}

func tickOf(t testing.TB, ev sseEvent) int {
	t.Helper()
	var e httpapi.Event
	if err := json.Unmarshal([]byte(ev.data), &e); err != nil {
		t.Fatalf("event data %q: %v", ev.data, err)
	}
	if e.Position != ev.id {
		t.Fatalf("SSE id %s is not the event's position %s", ev.id, e.Position)
	}
	var d struct{ N int }
	json.Unmarshal(e.Data, &d)
	return d.N
}

// TestSubscribeResumeLosesNothing: a subscriber that disconnects and resumes with
// Last-Event-ID sees every event of its tenant once, in order; another tenant's events never
// appear; heartbeats keep it open; shutdown ends it with a resumable cursor.
func TestSubscribeResumeLosesNothing(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, b.open(t))
			w, r := e.keys["acme/writer"], e.keys["acme/reader"]
			appendN(t, e, w, "ticks", 0, 10, 0)
			appendN(t, e, e.keys["umbrella/writer"], "other", 0, 3, 0)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			c := e.subscribe(t, ctx, r, "", "")
			var got []int
			last := ""
			for len(got) < 5 {
				ev, ok := c.next()
				if !ok {
					t.Fatal("subscription ended early")
				}
				got = append(got, tickOf(t, ev))
				last = ev.id
			}
			c.close()
			appendN(t, e, w, "ticks", 10, 10, 0)
			appendN(t, e, e.keys["umbrella/writer"], "other", 3, 3, 0)
			c = e.subscribe(t, ctx, r, "?after=0", last) // Last-Event-ID wins over after
			for len(got) < 20 {
				ev, ok := c.next()
				if !ok {
					t.Fatal("resumed subscription ended early")
				}
				got = append(got, tickOf(t, ev))
			}
			for i, n := range got {
				if n != i {
					t.Fatalf("events after resume: %v", got)
				}
			}
			// Live: an append after catch-up arrives, and heartbeats flow while idle.
			go func() {
				_, err := e.store.Append(context.Background(), "ticks", strata.Any, strata.EventData{Type: "Tick", Data: []byte(`{"n":20}`), Meta: strata.Metadata{Tenant: "acme"}})
				if err != nil {
					t.Error(err)
				}
			}()
			ev, ok := c.next()
			if !ok || tickOf(t, ev) != 20 {
				t.Fatalf("live event: %+v %v", ev, ok)
			}
			// Shutdown ends the subscription with an end event naming the cursor.
			e.api.Close()
			ev, ok = c.next()
			if !ok || ev.event != "end" {
				t.Fatalf("after Close: %+v %v", ev, ok)
			}
			var body httpapi.ErrorBody
			json.Unmarshal([]byte(ev.data), &body)
			if body.Error.Cursor == "" || body.Error.Code != "unavailable" {
				t.Fatalf("end event %s", ev.data)
			}
			if len(c.comment) == 0 {
				t.Errorf("no heartbeat or comment seen")
			}
		})
	}
}

// TestSlowSubscriberDisconnectedResumable: a client that stops reading is disconnected once a
// write blocks for SSEWriteWait, without the server buffering the backlog; it then reads what
// reached it and resumes from the last id, losing nothing.
func TestSlowSubscriberDisconnectedResumable(t *testing.T) {
	t.Parallel()
	e := newEnv(t, openSQLite(t), func(c *httpapi.Config) { c.SSEWriteWait = 100e6 })
	w, r := e.keys["acme/writer"], e.keys["acme/reader"]
	const n, pad = 300, 64 << 10 // ~19 MiB: far more than the server's send buffer (4 MiB at most)
	for i := 0; i < n; i += 50 {
		evs := make([]map[string]any, 50)
		for j := range evs {
			evs[j] = event("Tick", map[string]any{"n": i + j, "pad": strings.Repeat("x", pad)})
		}
		if res := e.do("POST", "/v1/streams/ticks/events", w, appendBody(nil, evs...)); res.status != 201 {
			t.Fatalf("append: %d %s", res.status, res.body)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c := e.subscribeWith(t, ctx, smallBufferClient(t), r, "", "")
	// Wait (without reading) until the server gave up on this client.
	for i := 0; ; i++ {
		var m struct{ ok bool }
		body := e.do("GET", "/metrics", "", nil).body
		m.ok = strings.Contains(string(body), "strata_sse_disconnected_slow_total 1")
		if m.ok {
			break
		}
		if i > 600 {
			t.Fatal("the slow client was never disconnected")
		}
		sleepBriefly()
	}
	var got []int
	last := ""
	for {
		ev, ok := c.next()
		if !ok {
			break
		}
		got = append(got, tickOf(t, ev))
		last = ev.id
	}
	c.close()
	cut := len(got)
	if len(got) >= n {
		t.Fatalf("the slow client received all %d events before being cut off; make the backlog larger", len(got))
	}
	// Under the race detector even the resumed reader may be cut off: it resumes again.
	for attempt := 0; len(got) < n; attempt++ {
		if attempt > 100 {
			t.Fatalf("%d reconnects and still %d of %d events", attempt, len(got), n)
		}
		c = e.subscribe(t, ctx, r, "", last)
		for len(got) < n {
			ev, ok := c.next()
			if !ok {
				break
			}
			got = append(got, tickOf(t, ev))
			last = ev.id
		}
		c.close()
	}
	for i, v := range got {
		if v != i {
			t.Fatalf("event %d is tick %d: lost or repeated across the disconnect", i, v)
		}
	}
	t.Logf("cut off after %d of %d events, resumed without loss", cut, n)
}

// TestSubscribeOutlivesReadTimeout: a subscription stays open past the server's ReadTimeout,
// which bounds reading requests, not streaming responses.
func TestSubscribeOutlivesReadTimeout(t *testing.T) {
	t.Parallel()
	e := newEnv(t, openSQLite(t))
	e.srv.Close()
	srv := httptest.NewUnstartedServer(e.api.Handler())
	srv.Config.ReadTimeout = 100 * time.Millisecond
	srv.Start()
	defer srv.Close()
	e.srv = srv
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c := e.subscribe(t, ctx, e.keys["acme/reader"], "", "")
	defer c.close()
	time.Sleep(300 * time.Millisecond) // past the read timeout
	appendN(t, e, e.keys["acme/writer"], "late", 0, 1, 0)
	ev, ok := c.next()
	if !ok || tickOf(t, ev) != 0 {
		t.Fatalf("after the read timeout: %+v %v", ev, ok)
	}
}
