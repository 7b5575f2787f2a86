package aggregate_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/strata-events/strata"
	"github.com/strata-events/strata/aggregate"
	"github.com/strata-events/strata/internal/backends"
)

// benchStores opens the backends the load benchmark runs on.
// The backends the benchmark runs on (see internal/backends).
var benchStores = []string{"sqlite", "postgres"}

// BenchmarkLoad loads an aggregate of 10,000 events with and without a snapshot, and reports
// the speedup of the snapshot in the same run (target: at least 10x).
func BenchmarkLoad(b *testing.B) {
	const events = 10_000
	for _, kind := range benchStores {
		b.Run(kind, func(b *testing.B) {
			ctx := context.Background()
			st, _ := backends.Open(b, kind)
			for i := 0; i < events; i += 1000 {
				batch := make([]strata.EventData, 1000)
				for j := range batch {
					batch[j] = strata.EventData{Type: "Added", Data: []byte(`{"n":1}`)}
				}
				if _, err := st.Append(ctx, "counter-big", strata.Any, batch...); err != nil {
					b.Fatal(err)
				}
			}
			full, err := aggregate.New(st, counterRegistry(b), counterDecider)
			if err != nil {
				b.Fatal(err)
			}
			snap, err := aggregate.New(st, counterRegistry(b), counterDecider, aggregate.WithSnapshots(1000, 1))
			if err != nil {
				b.Fatal(err)
			}
			if err := snap.SaveSnapshot(ctx, "counter-big"); err != nil {
				b.Fatal(err)
			}
			var perLoad [2]time.Duration
			for i, repo := range []*aggregate.Repository[counter, aggregate.Command, any]{full, snap} {
				name := []string{"without-snapshot", "with-snapshot"}[i]
				b.Run(name, func(b *testing.B) {
					start := time.Now()
					for b.Loop() {
						s, v, err := repo.Load(ctx, "counter-big")
						if err != nil || v != events || s.Total != events {
							b.Fatalf("load: %+v %d %v", s, v, err)
						}
					}
					perLoad[i] = time.Since(start) / time.Duration(b.N)
					b.ReportMetric(float64(events)/perLoad[i].Seconds(), "events-folded/s")
				})
			}
			if perLoad[1] > 0 {
				b.Logf("%s: load of %d events %v without a snapshot, %v with: %.1fx", kind, events, perLoad[0], perLoad[1], float64(perLoad[0])/float64(perLoad[1]))
				fmt.Printf("BenchmarkLoad/%s snapshot speedup %.1fx\n", kind, float64(perLoad[0])/float64(perLoad[1]))
			}
		})
	}
}
