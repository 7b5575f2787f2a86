package postgres_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/strata-events/strata"
	"github.com/strata-events/strata/internal/testenv"
	"github.com/strata-events/strata/postgres"
)

// BenchmarkGroupCommit appends single events from 8 and from 32 goroutines, each to its own
// stream, to a store with group commit off and one with it on, in alternating rounds of one
// second, and reports both rates and their ratio. Run it with -benchtime=6x.
func BenchmarkGroupCommit(b *testing.B) {
	ctx := context.Background()
	dsn := testenv.Postgres(b)
	open := func(w int) *postgres.Store {
		st, err := postgres.Open(ctx, dsn, postgres.WithSchema(testenv.PostgresSchema(b, dsn)), postgres.WithGroupCommit(w))
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { st.Close() })
		return st
	}
	for _, clients := range []int{8, 32} {
		b.Run(fmt.Sprint(clients), func(b *testing.B) {
			stores := []*postgres.Store{open(0), open(postgres.DefaultGroupWriters)}
			var counts [2]int64
			var times [2]time.Duration
			round := func(k int) {
				var n atomic.Int64
				var wg sync.WaitGroup
				stop := time.Now().Add(time.Second)
				t0 := time.Now()
				for c := range clients {
					wg.Add(1)
					go func() {
						defer wg.Done()
						for time.Now().Before(stop) {
							if _, err := stores[k].Append(ctx, fmt.Sprintf("s-%d", c), strata.Any, strata.EventData{Type: "T", Data: []byte(`{"a":1}`)}); err != nil {
								b.Error(err)
								return
							}
							n.Add(1)
						}
					}()
				}
				wg.Wait()
				counts[k] += n.Load()
				times[k] += time.Since(t0)
			}
			i := 0
			for b.Loop() {
				round(i % 2)
				round(1 - i%2)
				i++
			}
			off, on := float64(counts[0])/times[0].Seconds(), float64(counts[1])/times[1].Seconds()
			b.ReportMetric(off, "off-ev/s")
			b.ReportMetric(on, "on-ev/s")
			b.ReportMetric(on/off, "ratio")
		})
	}
}
