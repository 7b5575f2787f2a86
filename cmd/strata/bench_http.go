package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/google/uuid"
	"github.com/spf13/cobra"

	"github.com/strata-events/strata"
)

// newBenchHTTPCmd is `strata bench http`: a load generator for a running strata serve, meant to
// run as a second process so that client and server do not share a Go runtime.
func newBenchHTTPCmd(g *globals) *cobra.Command {
	var (
		url, key       string
		clients, batch int
		duration, warm time.Duration
		payload        int
	)
	c := &cobra.Command{
		Use:   "http --url URL --key KEY",
		Short: "Load a running strata serve with appends and report acknowledged events/s and latency",
		Long: `Append over HTTP to a running strata serve: --clients connections, each appending --batch events
per request to a stream of its own, for --duration after --warmup. It counts only acknowledged
appends (201) and prints events/s, requests/s and the latency percentiles of the requests.`,
		Example: `  strata bench http --url http://127.0.0.1:8080 --key strata_... --clients 32 --duration 10s`,
		Args:    argsExactly(0, "no arguments"),
		RunE: func(cmd *cobra.Command, args []string) error {
			const op = "bench http"
			if key == "" {
				key = g.getenv("STRATA_API_KEY")
			}
			if url == "" || key == "" {
				return invalidf(op, "name the server with --url and the API key with --key (or STRATA_API_KEY)")
			}
			if clients < 1 || batch < 1 || duration <= 0 {
				return invalidf(op, "--clients, --batch and --duration must be positive")
			}
			if payload < 0 {
				return invalidf(op, "--payload must be 0 or more bytes")
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			r, err := benchHTTP(ctx, strings.TrimRight(url, "/"), key, clients, batch, payload, warm, duration)
			if err != nil {
				return err
			}
			_, err = fmt.Fprintln(cmd.OutOrStdout(), r)
			return err
		},
	}
	f := c.Flags()
	f.StringVar(&url, "url", "", "base URL of strata serve, e.g. http://127.0.0.1:8080")
	f.StringVar(&key, "key", "", "API key of a writer (env STRATA_API_KEY)")
	f.IntVar(&clients, "clients", 32, "concurrent connections, each appending to its own stream")
	f.IntVar(&batch, "batch", 1, "events per request")
	f.IntVar(&payload, "payload", 100, "bytes of payload per event")
	f.DurationVar(&duration, "duration", 10*time.Second, "how long to measure")
	f.DurationVar(&warm, "warmup", 2*time.Second, "how long to run before measuring")
	return c
}

// httpBenchResult is what one run measured.
type httpBenchResult struct {
	Clients, Batch          int
	Requests, Events, Fails int64
	Elapsed                 time.Duration
	P50, P90, P99, Max      time.Duration
}

func (r httpBenchResult) String() string {
	s := r.Elapsed.Seconds()
	return fmt.Sprintf("http append: %d events acknowledged in %.1fs = %.0f events/s (%.0f requests/s; %d clients, batch %d, %d failed); latency p50 %s p90 %s p99 %s max %s",
		r.Events, s, float64(r.Events)/s, float64(r.Requests)/s, r.Clients, r.Batch, r.Fails,
		r.P50.Round(10*time.Microsecond), r.P90.Round(10*time.Microsecond), r.P99.Round(10*time.Microsecond), r.Max.Round(10*time.Microsecond))
}

func benchHTTP(ctx context.Context, url, key string, clients, batch, payload int, warm, duration time.Duration) (httpBenchResult, error) {
	tr := &http.Transport{MaxIdleConns: clients * 2, MaxIdleConnsPerHost: clients * 2, MaxConnsPerHost: clients, IdleConnTimeout: time.Minute}
	client := &http.Client{Transport: tr, Timeout: time.Minute}
	defer tr.CloseIdleConnections()
	run := uuid.Must(uuid.NewV7()).String()[:13]
	pad := strings.Repeat("x", payload)
	start := time.Now()
	measureFrom, measureTo := start.Add(warm), start.Add(warm+duration)
	type clientStats struct {
		lat           []time.Duration
		requests, bad int64
		err           error
		failure       string // why the last request that failed did
	}
	stats := make([]clientStats, clients)
	var wg sync.WaitGroup
	for c := range clients {
		wg.Go(func() {
			st := &stats[c]
			stream := fmt.Sprintf("bench-%s-%03d", run, c)
			var body []byte
			for i := 0; ctx.Err() == nil; i++ {
				t0 := time.Now()
				if !t0.Before(measureTo) {
					return
				}
				// The body is written by hand, not by encoding/json: the load generator shares the
				// machine with the server, and every cycle it spends is one the server lacks.
				body = append(body[:0], `{"events":[`...)
				for j := range batch {
					if j > 0 {
						body = append(body, ',')
					}
					body = append(body, `{"type":"BenchEvent","data":{"n":`...)
					body = strconv.AppendInt(body, int64(i*batch+j), 10)
					body = append(append(append(body, `,"pad":"`...), pad...), `"}}`...)
				}
				body = append(body, `]}`...)
				req, err := http.NewRequestWithContext(ctx, "POST", url+"/v1/streams/"+stream+"/events", bytes.NewReader(body))
				if err != nil {
					st.err = err
					return
				}
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("Authorization", "Bearer "+key)
				resp, err := client.Do(req)
				ok := false
				if err != nil {
					st.failure = err.Error()
				} else {
					ok = resp.StatusCode == http.StatusCreated
					if !ok {
						st.failure = resp.Status
					}
					if !ok && st.err == nil && (resp.StatusCode == 401 || resp.StatusCode == 403) {
						msg, _ := io.ReadAll(resp.Body)
						resp.Body.Close()
						st.err = fmt.Errorf("bench http: %s: %s", resp.Status, bytes.TrimSpace(msg))
						return
					}
					_, _ = io.Copy(io.Discard, resp.Body) // drained, so that the connection is reused
					resp.Body.Close()
				}
				if t0.Before(measureFrom) {
					continue
				}
				if !ok {
					st.bad++
					continue
				}
				st.requests++
				st.lat = append(st.lat, time.Since(t0))
			}
		})
	}
	wg.Wait()
	var all []time.Duration
	r := httpBenchResult{Clients: clients, Batch: batch, Elapsed: duration}
	failure := ""
	for _, st := range stats {
		if st.err != nil {
			return r, st.err
		}
		r.Requests += st.requests
		r.Fails += st.bad
		all = append(all, st.lat...)
		if st.failure != "" {
			failure = st.failure
		}
	}
	if ctx.Err() != nil {
		return r, ctx.Err()
	}
	if r.Requests == 0 && r.Fails > 0 {
		// Nothing was measured but failures: a server that is down or refuses every append.
		return r, strata.Errorf(strata.Unavailable, "bench http", "no append succeeded: %d requests failed, the last with %s", r.Fails, failure)
	}
	r.Events = r.Requests * int64(batch)
	slices.Sort(all)
	pct := func(p float64) time.Duration {
		if len(all) == 0 {
			return 0
		}
		return all[min(len(all)-1, int(p*float64(len(all))))]
	}
	r.P50, r.P90, r.P99 = pct(0.50), pct(0.90), pct(0.99)
	if len(all) > 0 {
		r.Max = all[len(all)-1]
	}
	return r, nil
}
