package httpapi_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/strata-events/strata"
	"github.com/strata-events/strata/httpapi"
)

// BenchmarkAppend compares appends of one event through the HTTP API with direct Store.Append
// calls on the same store, 32 clients, each to its own stream. It reports events/s of both.
// The acceptance figures come from `strata bench http` in a second process (docs/HTTP.md).
func BenchmarkAppend(b *testing.B) {
	for _, be := range backends {
		b.Run(be.name, func(b *testing.B) {
			st := be.open(b)
			e := newEnv(b, st, func(c *httpapi.Config) { c.Logger = discardLogger() })
			key := e.keys["acme/writer"]
			const clients = 32
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: clients}}
			run := func(name string, fn func(c, i int) error) {
				var n atomic.Int64
				var wg sync.WaitGroup
				start := time.Now()
				per := max(b.N/clients, 1)
				for c := range clients {
					wg.Go(func() {
						for i := range per {
							if err := fn(c, i); err != nil {
								b.Error(err)
								return
							}
							n.Add(1)
						}
					})
				}
				wg.Wait()
				b.ReportMetric(float64(n.Load())/time.Since(start).Seconds(), name+"-events/s")
			}
			b.ResetTimer()
			run("direct", func(c, i int) error {
				_, err := st.Append(context.Background(), fmt.Sprintf("direct-%d", c), strata.Any, strata.EventData{Type: "T", Data: []byte(`{"n":1}`), Meta: strata.Metadata{Tenant: "acme"}})
				return err
			})
			versions := make([]int64, clients)
			run("direct-exact", func(c, i int) error {
				res, err := st.Append(context.Background(), fmt.Sprintf("exact-%d", c), strata.Exact(versions[c]), strata.EventData{Type: "T", Data: []byte(`{"n":1}`), Meta: strata.Metadata{Tenant: "acme"}})
				versions[c] = res.LastVersion
				return err
			})
			run("http", func(c, i int) error {
				req, _ := http.NewRequest("POST", fmt.Sprintf("%s/v1/streams/http-%d/events", e.srv.URL, c), bytes.NewReader([]byte(`{"events":[{"type":"T","data":{"n":1}}]}`)))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("Authorization", "Bearer "+key)
				resp, err := client.Do(req)
				if err != nil {
					return err
				}
				io.Copy(io.Discard, resp.Body) // drained, so that the connection is reused
				resp.Body.Close()
				if resp.StatusCode != 201 {
					return fmt.Errorf("status %d", resp.StatusCode)
				}
				return nil
			})
		})
	}
}
