package query_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/strata-events/strata"
	"github.com/strata-events/strata/internal/backends"
	"github.com/strata-events/strata/query"
)

// BenchmarkStateAt10k asks for the state of a 10,000-event stream at random past times, from
// temporal snapshots taken every 100 versions (the target: < 5 ms), and without snapshots
// for comparison. Events are appended in batches of 100, each batch with its own recording
// time.
func BenchmarkStateAt10k(b *testing.B) {
	for _, kind := range []string{"sqlite", "postgres", "mysql", "inmem"} {
		b.Run(kind, func(b *testing.B) {
			ctx := context.Background()
			st, _ := backends.Open(b, kind)
			var times []time.Time
			for batch := range 100 {
				evs := make([]strata.EventData, 100)
				for i := range evs {
					evs[i] = strata.EventData{Type: "Counted", Data: []byte(fmt.Sprintf(`{"n":%d,"batch":%d}`, batch*100+i+1, batch))}
				}
				if _, err := st.Append(ctx, "counter-1", strata.Any, evs...); err != nil {
					b.Fatal(err)
				}
			}
			for e, err := range st.ReadStream(ctx, "counter-1", strata.ReadStreamOptions{}) {
				if err != nil {
					b.Fatal(err)
				}
				if e.Version%100 == 1 {
					times = append(times, e.RecordedAt)
				}
			}
			m := query.JSONModel()
			ask := func(b *testing.B) {
				rnd := rand.New(rand.NewPCG(1, 2))
				for b.Loop() {
					if _, err := query.StateAt(ctx, st, m, "counter-1", query.At{Recorded: times[rnd.IntN(len(times))].Add(time.Microsecond)}); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/state")
			}
			b.Run("full-fold", ask)
			if _, err := query.TakeSnapshots(ctx, st, m, "counter-1", 100); err != nil {
				b.Fatal(err)
			}
			b.Run("snapshots", ask)
		})
	}
}

// BenchmarkRetention removes the payloads of 20,000 sealed-or-not events (AllowUnsealed;
// STRATA_BENCH_RETENTION_EVENTS sets another count, STRATA_BENCH_RETENTION_BATCH the batch,
// default DefaultBatch) while 2 writers append to other streams, and reports removed events/s
// and the appends that completed meanwhile (appends/s) next to the writers' rate alone just
// before (appends/s-alone): retention must not block them. ms/rerun is the time of the run
// that follows, which finds nothing left to remove.
func BenchmarkRetention(b *testing.B) {
	total, _ := strconv.Atoi(os.Getenv("STRATA_BENCH_RETENTION_EVENTS"))
	if total <= 0 {
		total = 20_000
	}
	batch, _ := strconv.Atoi(os.Getenv("STRATA_BENCH_RETENTION_BATCH"))
	for _, kind := range []string{"sqlite", "postgres", "mysql"} {
		b.Run(kind, func(b *testing.B) {
			ctx := context.Background()
			var removed, appended, idle, duringAll atomic.Int64
			var elapsed, idleFor, rerun time.Duration
			runs := 0
			for b.Loop() {
				b.StopTimer()
				st, _ := backends.Open(b, kind)
				for s := range (total + 99) / 100 {
					evs := make([]strata.EventData, 100)
					for i := range evs {
						evs[i] = strata.EventData{Type: "CertificateIssued", Data: []byte(`{"subjectDN":"CN=someone","serial":"x"}`), Meta: strata.Metadata{Tenant: "acme", Principal: "op"}}
					}
					if _, err := st.Append(ctx, fmt.Sprintf("certificate-%d", s), strata.Any, evs...); err != nil {
						b.Fatal(err)
					}
				}
				r := &query.Retention{AllowUnsealed: true, Batch: batch, Now: func() time.Time { return time.Now().Add(91 * 24 * time.Hour) },
					Policies: []query.Policy{{Name: "acme", Tenant: "acme"}}}
				wctx, stop := context.WithCancel(ctx)
				var wg sync.WaitGroup
				for w := range 2 {
					wg.Add(1)
					go func() {
						defer wg.Done()
						for wctx.Err() == nil {
							if _, err := st.Append(wctx, fmt.Sprintf("other-%d", w), strata.Any, strata.EventData{Type: "X", Meta: strata.Metadata{Tenant: "beta"}}); err == nil {
								appended.Add(1)
							}
						}
					}()
				}
				// The writers alone first, for the rate retention must not cut.
				time.Sleep(100 * time.Millisecond)
				before := appended.Load()
				time.Sleep(500 * time.Millisecond)
				idle.Add(appended.Load() - before)
				idleFor += 500 * time.Millisecond
				during := appended.Load()
				b.StartTimer()
				t0 := time.Now()
				rep, err := r.Run(ctx, st)
				elapsed += time.Since(t0)
				b.StopTimer()
				appendedDuring := appended.Load() - during
				stop()
				wg.Wait()
				duringAll.Add(appendedDuring)
				if err != nil {
					b.Fatal(err)
				}
				removed.Add(rep.Removed)
				// The next run finds nothing to remove: what every later run pays for the
				// history removed before.
				t1 := time.Now()
				if rep, err := r.Run(ctx, st); err != nil || rep.Removed != 0 {
					b.Fatalf("second run: %+v, %v", rep, err)
				}
				rerun += time.Since(t1)
				runs++
				st.Close()
				b.StartTimer()
			}
			b.ReportMetric(float64(removed.Load())/elapsed.Seconds(), "events/s")
			b.ReportMetric(float64(duringAll.Load())/elapsed.Seconds(), "appends/s")
			b.ReportMetric(float64(idle.Load())/idleFor.Seconds(), "appends/s-alone")
			b.ReportMetric(float64(rerun.Milliseconds())/float64(runs), "ms/rerun")
		})
	}
}

// BenchmarkAppendQueryIndexes measures what the search indexes cost appends of a tenant's
// events (batches of 100, one writer): events/s without them and with them, in one run.
func BenchmarkAppendQueryIndexes(b *testing.B) {
	for _, kind := range []string{"sqlite", "postgres", "mysql"} {
		for _, ix := range []bool{false, true} {
			b.Run(fmt.Sprintf("%s/indexes=%v", kind, ix), func(b *testing.B) {
				ctx := context.Background()
				st, _ := backends.Open(b, kind)
				if ix {
					if err := st.(strata.QueryIndexer).CreateQueryIndexes(ctx); err != nil {
						b.Fatal(err)
					}
				}
				evs := make([]strata.EventData, 100)
				for i := range evs {
					evs[i] = strata.EventData{Type: "CertificateIssued", Data: []byte(`{"serial":"7F3A"}`),
						Meta: strata.Metadata{Tenant: "acme", Principal: "operator:mkim", Session: "sess-1", Correlation: fmt.Sprintf("req-%d", i), Causation: "cmd-1", Subsystem: "ra", Category: "pki"}}
				}
				n := 0
				for b.Loop() {
					if _, err := st.Append(ctx, fmt.Sprintf("certificate-%d", n%50), strata.Any, evs...); err != nil {
						b.Fatal(err)
					}
					n++
				}
				b.ReportMetric(float64(n*len(evs))/b.Elapsed().Seconds(), "events/s")
			})
		}
	}
}
