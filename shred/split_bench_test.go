package shred_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/strata-events/strata"
)

// The reads of a round of BenchmarkReadSplit: the plain stream and the protected one, each
// read alone and read and decoded.
const (
	plainRead = iota
	plainDecoded
	protectedRead
	protectedDecoded
	splitReads
)

// BenchmarkReadSplit splits the read overhead of BenchmarkProtectionPaired in two, as the
// medians of paired rounds over 1000 events of each stream, each a share of reading and
// decoding the plain events (so that the two add up to full-%):
//
//   - store-%: the store's part, reading the longer protected rows rather than the plain ones;
//   - codec-%: the codec's part, decoding (opening) the protected events rather than the plain;
//   - full-%: both, as BenchmarkProtectionPaired measures it.
//
// Run it with -benchtime=200x.
func BenchmarkReadSplit(b *testing.B) {
	ctx := context.Background()
	for _, kind := range benchBackends {
		b.Run(kind, func(b *testing.B) {
			st, regs := benchRegistries(b, ctx, kind)
			for k := range 2 {
				for i := range 10 {
					if _, err := st.Append(ctx, fmt.Sprintf("split-%d", k), strata.Any, encodeBatch(b, ctx, regs[k], k == 1, 100*i)...); err != nil {
						b.Fatal(err)
					}
				}
			}
			// read reads stream split-N and decodes with regs[reg], or not for reg -1.
			read := func(stream, reg int) time.Duration {
				start := time.Now()
				for e, err := range st.ReadStream(ctx, fmt.Sprintf("split-%d", stream), strata.ReadStreamOptions{Limit: 1000}) {
					if err != nil {
						b.Fatal(err)
					}
					if reg >= 0 {
						if _, err := regs[reg].Decode(ctx, e); err != nil {
							b.Fatal(err)
						}
					}
				}
				return time.Since(start)
			}
			streamOf := [splitReads]int{0, 0, 1, 1}
			regOf := [splitReads]int{-1, 0, -1, 1}
			var store, codecPart, full []float64
			round := 0
			for b.Loop() {
				var took [splitReads]float64
				for i := range splitReads {
					k := (i + round) % splitReads // an order that turns each round
					took[k] = float64(read(streamOf[k], regOf[k]))
				}
				base := took[plainDecoded]
				store = append(store, (took[protectedRead]-took[plainRead])/base)
				codecPart = append(codecPart, (took[protectedDecoded]-took[protectedRead]-(took[plainDecoded]-took[plainRead]))/base)
				full = append(full, took[protectedDecoded]/base-1)
				round++
			}
			median := func(x []float64) float64 { slices.Sort(x); return x[len(x)/2] }
			b.ReportMetric(100*median(store), "store-%")
			b.ReportMetric(100*median(codecPart), "codec-%")
			b.ReportMetric(100*median(full), "full-%")
		})
	}
}
