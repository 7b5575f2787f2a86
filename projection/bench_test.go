package projection_test

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/strata-events/strata"
	"github.com/strata-events/strata/internal/backends"
	"github.com/strata-events/strata/projection"
)

// fill appends n events in batches of 1000 to 100 streams.
func fill(b *testing.B, ctx context.Context, s strata.Store, n int) {
	b.Helper()
	batch := make([]strata.EventData, 1000)
	for i := range batch {
		batch[i] = strata.EventData{Type: "CertificateIssued", Data: []byte(`{"serial":"x"}`)}
	}
	for i := 0; i < n; i += len(batch) {
		if _, err := s.Append(ctx, "certificate-"+strconv.Itoa(i/len(batch)%100), strata.Any, batch[:min(len(batch), n-i)]...); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCatchup measures catch-up with a no-op handler: events/s from the start of the log
// to its end, batches committed with the checkpoint.
func BenchmarkCatchup(b *testing.B) {
	for _, kind := range []string{"sqlite", "postgres", "mysql", "inmem"} {
		b.Run(kind, func(b *testing.B) {
			ctx := context.Background()
			s, _ := backends.Open(b, kind)
			const n = 200_000
			fill(b, ctx, s, n)
			noop := func(context.Context, *projection.Context, strata.Event) error { return nil }
			// The same run's raw gap-free read of the log, for the ratio.
			t0 := time.Now()
			for _, err := range s.ReadAll(ctx, strata.ReadAllOptions{Filter: strata.Filter{Types: []string{"CertificateIssued"}}}) {
				if err != nil {
					b.Fatal(err)
				}
			}
			raw := float64(n) / time.Since(t0).Seconds()
			b.ResetTimer()
			for i := range b.N {
				p := projection.Projection{Name: "bench", Version: i + 1, Handlers: map[string]projection.Handler{"CertificateIssued": noop}}
				w, err := projection.NewWorker(s, p, projection.WithoutPromotion())
				if err != nil {
					b.Fatal(err)
				}
				if err := w.Catchup(ctx); err != nil {
					b.Fatal(err)
				}
			}
			rate := float64(n) * float64(b.N) / b.Elapsed().Seconds()
			b.ReportMetric(rate, "events/s")
			b.ReportMetric(raw, "readall-same-filter-events/s")
			b.ReportMetric(rate/raw, "x-readall")
		})
	}
}

// BenchmarkLatency appends single events at about 1,000 a second to a live projection and
// reports the append-to-handler latency percentiles.
func BenchmarkLatency(b *testing.B) {
	for _, kind := range []string{"postgres", "sqlite"} {
		b.Run(kind, func(b *testing.B) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			s, _ := backends.Open(b, kind)
			var mu sync.Mutex
			var lat []time.Duration
			h := func(_ context.Context, _ *projection.Context, e strata.Event) error {
				sent, _ := strconv.ParseInt(string(e.Data), 10, 64)
				mu.Lock()
				lat = append(lat, time.Since(time.Unix(0, sent)))
				mu.Unlock()
				return nil
			}
			w, _ := projection.NewWorker(s, projection.Projection{Name: "latency", Handlers: map[string]projection.Handler{"Ping": h}})
			done := make(chan struct{})
			go func() { defer close(done); w.Run(ctx) }()
			time.Sleep(200 * time.Millisecond)
			total := max(b.N, 3000)
			b.ResetTimer()
			tick := time.NewTicker(time.Millisecond)
			var wg sync.WaitGroup
			for i := range total {
				<-tick.C
				wg.Add(1)
				go func() {
					defer wg.Done()
					data := strconv.AppendInt(nil, time.Now().UnixNano(), 10)
					if _, err := s.Append(ctx, "ping-"+strconv.Itoa(i%50), strata.Any, strata.EventData{Type: "Ping", Data: data}); err != nil {
						b.Error(err)
					}
				}()
			}
			wg.Wait()
			tick.Stop()
			deadline := time.Now().Add(30 * time.Second)
			for {
				mu.Lock()
				n := len(lat)
				mu.Unlock()
				if n >= total || time.Now().After(deadline) {
					break
				}
				time.Sleep(10 * time.Millisecond)
			}
			b.StopTimer()
			cancel()
			<-done
			mu.Lock()
			defer mu.Unlock()
			slices.Sort(lat)
			pct := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))].Microseconds()) / 1000 }
			b.ReportMetric(pct(0.5), "p50-ms")
			b.ReportMetric(pct(0.99), "p99-ms")
			b.ReportMetric(float64(len(lat))/float64(total), "delivered")
		})
	}
}

// BenchmarkPartitionedRebuild rebuilds a two-partition projection whose handler writes a row
// per event, with one worker (one partition at a time) and with two.
func BenchmarkPartitionedRebuild(b *testing.B) {
	for _, kind := range []string{"postgres", "sqlite"} {
		for _, workers := range []int{1, 2} {
			b.Run(fmt.Sprintf("%s/workers=%d", kind, workers), func(b *testing.B) {
				ctx := context.Background()
				s, _ := backends.Open(b, kind)
				const n = 50_000
				fill(b, ctx, s, n)
				b.ResetTimer()
				for i := range b.N {
					m := newModel(s, i+1)
					d := m.def("rebuild", i+1, 2, "CertificateIssued")
					// Per-row work that a second worker can overlap: the version check and insert.
					var wg sync.WaitGroup
					errs := make([]error, workers)
					for j := range workers {
						w, err := projection.NewWorker(s, d, projection.WithOwner("w"+strconv.Itoa(j)), projection.WithMaxPartitions(1),
							projection.WithoutPromotion(), projection.WithLease(time.Second))
						if err != nil {
							b.Fatal(err)
						}
						wg.Add(1)
						go func() { defer wg.Done(); errs[j] = w.Catchup(ctx) }()
					}
					wg.Wait()
					for _, err := range errs {
						if err != nil {
							b.Fatal(err)
						}
					}
				}
				b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "events/s")
			})
		}
	}
}
