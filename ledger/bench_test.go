package ledger_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/strata-events/strata"
	"github.com/strata-events/strata/internal/testenv"
	"github.com/strata-events/strata/ledger"
	"github.com/strata-events/strata/postgres"
	"github.com/strata-events/strata/sqlite"
)

// benchN is the log size of the benchmarks: STRATA_BENCH_LEDGER_N, default 1,000,000.
func benchN(def int) int {
	if v, err := strconv.Atoi(os.Getenv("STRATA_BENCH_LEDGER_N")); err == nil && v > 0 {
		return v
	}
	return def
}

// fill appends n certificate-shaped events in batches of 1,000.
func fill(b *testing.B, st strata.Store, n int) {
	ctx := context.Background()
	for i := 0; i < n; i += 1000 {
		evs := make([]strata.EventData, 0, 1000)
		for j := i; j < min(n, i+1000); j++ {
			evs = append(evs, strata.EventData{Type: "CertificateIssued",
				Data: fmt.Appendf(nil, `{"serial":"%08X","subjectDN":"CN=host-%d.example.com,O=Example GmbH,C=DE","validFrom":"2024-01-01T00:00:00Z"}`, j, j),
				Meta: strata.Metadata{Principal: "operator:jdoe", Correlation: fmt.Sprint("req-", j)}})
		}
		if _, err := st.Append(ctx, fmt.Sprintf("certificate-%06d", i/1000), strata.NoStream, evs...); err != nil {
			b.Fatal(err)
		}
	}
}

func benchSeal(b *testing.B, open func(b *testing.B) strata.Store, n int) {
	var total time.Duration
	for range b.N {
		b.StopTimer()
		st := open(b)
		fill(b, st, n)
		s, err := ledger.NewSealer(st)
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		start := time.Now()
		sealed, _, err := s.SealOnce(context.Background())
		total += time.Since(start)
		if err != nil || sealed != n {
			b.Fatalf("sealed %d of %d: %v", sealed, n, err)
		}
	}
	b.ReportMetric(float64(n*b.N)/total.Seconds(), "leaves/s")
}

func openSQLite(b *testing.B) strata.Store {
	st, err := sqlite.Open(context.Background(), filepath.Join(b.TempDir(), "bench.db"), sqlite.WithSynchronous(sqlite.SyncNormal))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	return st
}

// BenchmarkSealSQLite seals a log of 200,000 events (STRATA_BENCH_LEDGER_N) in one SealOnce.
func BenchmarkSealSQLite(b *testing.B) { benchSeal(b, openSQLite, benchN(200_000)) }

// BenchmarkSealPostgres seals a log of 200,000 events (STRATA_BENCH_LEDGER_N) in one SealOnce.
func BenchmarkSealPostgres(b *testing.B) {
	dsn := testenv.Postgres(b)
	benchSeal(b, func(b *testing.B) strata.Store {
		st, err := postgres.Open(context.Background(), dsn, postgres.WithSchema(testenv.PostgresSchema(b, dsn)))
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { st.Close() })
		return st
	}, benchN(200_000))
}

// BenchmarkProveAndVerify1M builds a sealed log of 1,000,000 events on SQLite (set
// STRATA_BENCH_LEDGER_N for another size), then measures inclusion proofs at random leaves
// (p50 and p99 over 20,000 proofs) and a full audit, with the peak heap it used.
func BenchmarkProveAndVerify1M(b *testing.B) {
	n := benchN(1_000_000)
	st := openSQLite(b)
	fill(b, st, n)
	ctx := context.Background()
	s, _ := ledger.NewSealer(st)
	start := time.Now()
	if _, _, err := s.SealOnce(ctx); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(n)/time.Since(start).Seconds(), "seal-leaves/s")
	p, _ := ledger.NewProver(st)
	rng := rand.New(rand.NewPCG(1, 2))
	b.ResetTimer()
	for range b.N {
		lat := make([]time.Duration, 20_000)
		for i := range lat {
			t0 := time.Now()
			if _, err := p.Inclusion(ctx, rng.Uint64N(uint64(n)), uint64(n)); err != nil {
				b.Fatal(err)
			}
			lat[i] = time.Since(t0)
		}
		slices.Sort(lat)
		b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "proof-p50-µs")
		b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "proof-p99-µs")

		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		base, peak := ms.HeapInuse, ms.HeapInuse
		t0 := time.Now()
		rep, err := ledger.Audit(ctx, st, ledger.AuditOptions{ProgressEvery: 10_000, Progress: func(ledger.AuditProgress) {
			runtime.ReadMemStats(&ms)
			peak = max(peak, ms.HeapInuse)
		}})
		if err != nil || !rep.OK() {
			b.Fatalf("audit: %+v, %v", rep, err)
		}
		d := time.Since(t0)
		b.ReportMetric(d.Seconds(), "verify-s")
		b.ReportMetric(float64(n)/d.Seconds(), "verify-events/s")
		b.ReportMetric(float64(peak-base)/(1<<20), "verify-heap-MiB")
	}
}
