package transmittest

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/strata-events/strata"
	"github.com/strata-events/strata/internal/testenv"
	"github.com/strata-events/strata/postgres"
	"github.com/strata-events/strata/transmit"
)

// BenchEvents is how many events one iteration of BenchFromPostgres delivers.
const BenchEvents = 20_000

// BenchFromPostgres measures delivery from PostgreSQL to the target: each iteration appends
// BenchEvents events over 20 streams (not timed), then times a new transmitter from the start
// of the log until the store records every one as sent, in batches of 1000 events
// (STRATA_BENCH_BATCH overrides) (reads, sends, confirmations and the
// delivery records with the checkpoint, all included). It reports events/s.
func BenchFromPostgres(b *testing.B, tg Target) {
	dsn := testenv.Postgres(b)
	st, err := postgres.Open(context.Background(), dsn, postgres.WithSchema(testenv.PostgresSchema(b, dsn)))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	sink := tg.Sink(b, tg.Addr)
	b.Cleanup(func() { sink.Close() })
	var total int
	var elapsed time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		AppendEvents(b, st, fmt.Sprintf("bench-%d", i), BenchEvents, 20)
		name := fmt.Sprintf("bench-%d", i)
		tr, err := transmit.New(st, name, sink, transmit.WithBatchSize(benchBatch()), Quiet())
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		start := time.Now()
		stop := Start(b, tr)
		want := int64(BenchEvents * (i + 1)) // every transmitter reads the whole log
		waitSent(b, st, name, want)
		elapsed += time.Since(start)
		total += int(want)
		b.StopTimer()
		if err := stop(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(total)/elapsed.Seconds(), "events/s")
}

// benchBatch is the batch size of the benchmark: 1000, or STRATA_BENCH_BATCH.
func benchBatch() int {
	if n, err := strconv.Atoi(os.Getenv("STRATA_BENCH_BATCH")); err == nil && n > 0 {
		return n
	}
	return 1000
}

func waitSent(b *testing.B, ts strata.TransmitStore, name string, want int64) {
	deadline := time.Now().Add(5 * time.Minute)
	for {
		sts, err := ts.TransmitterStates(context.Background())
		if err != nil {
			b.Fatal(err)
		}
		for _, s := range sts {
			if s.Name == name && s.Sent >= want {
				return
			}
		}
		if time.Now().After(deadline) {
			b.Fatalf("transmitter %s: not all %d sent in time", name, want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
