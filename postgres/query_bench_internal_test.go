package postgres

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/strata-events/strata"
	"github.com/strata-events/strata/internal/testenv"
	"github.com/strata-events/strata/query"
)

// The search benchmark at scale. STRATA_BENCH_QUERY_EVENTS=10000000 loads that many events
// once (COPY, then the search indexes) into the schema strata_bench_query_N, which later runs
// reuse; without the variable the benchmark is skipped. STRATA_BENCH_QUERY_EXPLAIN=1 also
// prints EXPLAIN (ANALYZE, BUFFERS) of each filter's first page, for docs/AUDITOR.md.
//
// The shape: 10 tenants, 1M streams of 10 versions, 8 types, 5 subsystems, 7 categories, 1,000
// principals, 500,000 sessions of 20 events, a correlation per 5 events and a causation per 3,
// one event every 3 s over a year.

const benchStreams = 1_000_000

func benchValue(i int) (tenant, typ, principal, session, correlation, causation, subsystem, category, stream string) {
	return fmt.Sprintf("tenant-%d", i%10),
		[]string{"CertificateIssued", "CertificateRevoked", "CertificateRenewed", "CertificateSuspended", "CertificateReinstated", "RevocationRequested", "RevocationApproved", "CommandSucceeded"}[(i/10)%8],
		fmt.Sprintf("op-%d", (i*7919)%1000),
		fmt.Sprintf("sess-%d", i/20),
		fmt.Sprintf("req-%d", i/5),
		fmt.Sprintf("cmd-%d", i/3),
		[]string{"ra", "ca", "ocsp", "crl", "audit"}[(i*31)%5],
		[]string{"issuance", "revocation", "renewal", "status", "admin", "approval", "audit"}[(i*17)%7],
		fmt.Sprintf("certificate-%06d", i%benchStreams)
}

var benchBase = time.Date(2023, 1, 1, 0, 0, 0, 0, time.UTC)

func benchStore(b *testing.B) (*Store, int) {
	n, _ := strconv.Atoi(os.Getenv("STRATA_BENCH_QUERY_EVENTS"))
	if n <= 0 {
		b.Skip("set STRATA_BENCH_QUERY_EVENTS=10000000 to run the search benchmark (loads once into strata_bench_query_N)")
	}
	dsn := testenv.Postgres(b)
	ctx := context.Background()
	schema := fmt.Sprintf("strata_bench_query_%d", n)
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		b.Fatal(err)
	}
	_ = cfg
	sep := "?"
	if strings.Contains(dsn, "?") {
		sep = "&"
	}
	st, err := Open(ctx, dsn+sep+"maintenance_work_mem=512MB", WithSchema(schema))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	var have int64
	if err := st.pool.QueryRow(ctx, st.sq(`SELECT count(*) FROM (SELECT FROM {schema}.events LIMIT `+strconv.Itoa(n)+`) x`)).Scan(&have); err != nil {
		b.Fatal(err)
	}
	if int(have) < n {
		if have > 0 {
			b.Fatalf("schema %s holds %d events, not %d: drop it and run again", schema, have, n)
		}
		start := time.Now()
		if err := benchLoad(ctx, st, n); err != nil {
			b.Fatal(err)
		}
		b.Logf("loaded %d events in %s", n, time.Since(start).Round(time.Second))
	}
	start := time.Now()
	if err := st.CreateQueryIndexes(ctx); err != nil {
		b.Fatal(err)
	}
	if _, err := st.pool.Exec(ctx, st.sq(`ANALYZE {schema}.events`)); err != nil {
		b.Fatal(err)
	}
	b.Logf("indexes ready in %s", time.Since(start).Round(time.Second))
	return st, n
}

func benchLoad(ctx context.Context, st *Store, n int) error {
	const chunk = 100_000
	for from := 0; from < n; from += chunk {
		rows := make([][]any, 0, chunk)
		for i := from; i < min(from+chunk, n); i++ {
			tenant, typ, principal, session, corr, caus, sub, cat, stream := benchValue(i)
			meta, _ := strata.Metadata{Tenant: tenant, Principal: principal, Session: session, Correlation: corr, Causation: caus, Subsystem: sub, Category: cat}.MarshalJSON()
			at := benchBase.Add(time.Duration(i) * 3 * time.Second)
			id := uuid.Must(uuid.NewV7())
			rows = append(rows, []any{int64(i/100 + 1), int64(i/benchStreams + 1), at, at, id, int32(1), stream, typ, []byte(tenant), meta,
				[]byte(`{"serial":"` + stream[12:] + `"}`)})
		}
		if _, err := st.pool.CopyFrom(ctx, pgx.Identifier{st.schema, "events"},
			[]string{"tx", "version", "recorded_at", "occurred_at", "id", "schema", "stream", "type", "tenant", "meta", "data"}, pgx.CopyFromRows(rows)); err != nil {
			return err
		}
	}
	return nil
}

// BenchmarkQuery10M reads, per filter, a first page of 100 events and the four pages after it
// for a random value of the filter (a random principal, session, day, ...) of one tenant, and
// reports the latency of each page read: p50-ms and p99-ms.
func BenchmarkQuery10M(b *testing.B) {
	st, n := benchStore(b)
	ctx := context.Background()
	rnd := rand.New(rand.NewPCG(1, 2))
	randEvent := func() int { return rnd.IntN(n/10)*10 + 3 } // an event of tenant-3
	filters := []struct {
		name string
		q    func() strata.EventQuery
	}{
		{"tenant", func() strata.EventQuery {
			return strata.EventQuery{RecordedFrom: benchBase.Add(time.Duration(randEvent()) * 3 * time.Second)}
		}},
		{"type", func() strata.EventQuery {
			_, typ, _, _, _, _, _, _, _ := benchValue(randEvent())
			return strata.EventQuery{Types: []string{typ}}
		}},
		{"subsystem", func() strata.EventQuery {
			_, _, _, _, _, _, sub, _, _ := benchValue(randEvent())
			return strata.EventQuery{Subsystem: sub}
		}},
		{"category", func() strata.EventQuery {
			_, _, _, _, _, _, _, cat, _ := benchValue(randEvent())
			return strata.EventQuery{Category: cat}
		}},
		{"principal", func() strata.EventQuery {
			_, _, p, _, _, _, _, _, _ := benchValue(randEvent())
			return strata.EventQuery{Principal: p}
		}},
		{"session", func() strata.EventQuery {
			_, _, _, s, _, _, _, _, _ := benchValue(randEvent())
			return strata.EventQuery{Session: s}
		}},
		{"correlation", func() strata.EventQuery {
			_, _, _, _, c, _, _, _, _ := benchValue(randEvent())
			return strata.EventQuery{Correlation: c}
		}},
		{"causation", func() strata.EventQuery {
			_, _, _, _, _, c, _, _, _ := benchValue(randEvent())
			return strata.EventQuery{Causation: c}
		}},
		{"prefix", func() strata.EventQuery {
			_, _, _, _, _, _, _, _, s := benchValue(randEvent())
			return strata.EventQuery{StreamPrefix: s[:len(s)-2]} // 100 streams
		}},
		{"timerange", func() strata.EventQuery {
			from := benchBase.Add(time.Duration(randEvent()) * 3 * time.Second)
			return strata.EventQuery{RecordedFrom: from, RecordedTo: from.Add(24 * time.Hour)}
		}},
		{"type+principal", func() strata.EventQuery {
			_, typ, p, _, _, _, _, _, _ := benchValue(randEvent())
			return strata.EventQuery{Types: []string{typ}, Principal: p}
		}},
		{"type+timerange", func() strata.EventQuery {
			i := randEvent()
			_, typ, _, _, _, _, _, _, _ := benchValue(i)
			from := benchBase.Add(time.Duration(i) * 3 * time.Second)
			return strata.EventQuery{Types: []string{typ}, RecordedFrom: from, RecordedTo: from.Add(7 * 24 * time.Hour)}
		}},
	}
	if os.Getenv("STRATA_BENCH_QUERY_EXPLAIN") != "" {
		for _, f := range filters {
			q := f.q()
			q.Tenant, q.Limit = "tenant-3", 100
			q, _, _, _ = strata.PrepareEventQuery("explain", q)
			where, args, _ := st.queryWhere(&q)
			args = append(args, q.Limit+1)
			sql := st.sq(`EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) SELECT ` + eventColumns + ` FROM {schema}.events WHERE ` + where +
				fmt.Sprintf(` ORDER BY recorded_at, tx, seq LIMIT $%d`, len(args)))
			rows, _ := st.pool.Query(ctx, sql, args...)
			plan, err := pgx.CollectRows(rows, pgx.RowTo[string])
			if err != nil {
				b.Fatal(err)
			}
			fmt.Printf("### %s\n%s\n\n", f.name, strings.Join(plan, "\n"))
		}
	}
	for _, f := range filters {
		b.Run(f.name, func(b *testing.B) {
			var lat []time.Duration
			events := 0
			for b.Loop() {
				q := f.q()
				q.Tenant, q.Limit = "tenant-3", 100
				for range 5 {
					t0 := time.Now()
					p, err := st.QueryEvents(ctx, q)
					lat = append(lat, time.Since(t0))
					if err != nil {
						b.Fatal(err)
					}
					events += len(p.Events)
					if p.Next == "" {
						break
					}
					q.Cursor = p.Next
				}
			}
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
			b.ReportMetric(float64(events)/float64(len(lat)), "events/page")
		})
	}
}

// BenchmarkRetentionAtScale loads STRATA_BENCH_RETENTION_PG_EVENTS events of the search
// benchmark's shape (skipped without it) into a fresh schema with COPY, creates the search
// indexes (not with STRATA_BENCH_RETENTION_NOINDEX=1), and runs retention with one catch-all
// policy whose cutoff falls a quarter into the events' year, so that a quarter of them are
// removed (batches of STRATA_BENCH_RETENTION_BATCH, default DefaultBatch), while 2 writers
// append single events. It reports removed events/s, the writers' appends/s during the run
// and alone just before, and how many of the run's row updates were HOT.
func BenchmarkRetentionAtScale(b *testing.B) {
	n, _ := strconv.Atoi(os.Getenv("STRATA_BENCH_RETENTION_PG_EVENTS"))
	if n <= 0 {
		b.Skip("set STRATA_BENCH_RETENTION_PG_EVENTS=1000000 to run retention at scale (loads a fresh schema)")
	}
	batch, _ := strconv.Atoi(os.Getenv("STRATA_BENCH_RETENTION_BATCH"))
	dsn := testenv.Postgres(b)
	ctx := context.Background()
	schema := testenv.PostgresSchema(b, dsn)
	sep := "?"
	if strings.Contains(dsn, "?") {
		sep = "&"
	}
	st, err := Open(ctx, dsn+sep+"maintenance_work_mem=256MB", WithSchema(schema))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	start := time.Now()
	if err := benchLoad(ctx, st, n); err != nil {
		b.Fatal(err)
	}
	if os.Getenv("STRATA_BENCH_RETENTION_NOINDEX") == "" {
		if err := st.CreateQueryIndexes(ctx); err != nil {
			b.Fatal(err)
		}
	}
	if _, err := st.pool.Exec(ctx, st.sq(`ANALYZE {schema}.events`)); err != nil {
		b.Fatal(err)
	}
	b.Logf("loaded %d events and indexed them in %s", n, time.Since(start).Round(time.Second))
	cutoff := benchBase.Add(time.Duration(n/4) * 3 * time.Second)
	r := &query.Retention{AllowUnsealed: true, Batch: batch, Now: func() time.Time { return cutoff.Add(query.DefaultMaxAge) }}
	var appended atomic.Int64
	wctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for w := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for wctx.Err() == nil {
				if _, err := st.Append(wctx, fmt.Sprintf("other-%d", w), strata.Any, strata.EventData{Type: "X", Data: []byte(`{}`),
					Meta: strata.Metadata{Tenant: "tenant-0", Principal: "op-1"}}); err == nil {
					appended.Add(1)
				}
			}
		}()
	}
	defer func() { stop(); wg.Wait() }()
	time.Sleep(200 * time.Millisecond)
	a0 := appended.Load()
	time.Sleep(time.Second)
	alone := float64(appended.Load() - a0)
	var removed int64
	var elapsed time.Duration
	var during int64
	var upd0, hot0 int64
	if err := st.pool.QueryRow(ctx, `SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_user_tables WHERE schemaname = $1 AND relname = 'events'`, schema).Scan(&upd0, &hot0); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		a := appended.Load()
		t0 := time.Now()
		rep, err := r.Run(ctx, st)
		elapsed += time.Since(t0)
		during += appended.Load() - a
		if err != nil {
			b.Fatal(err)
		}
		removed += rep.Removed
	}
	time.Sleep(time.Second) // the statistics are sent on idle
	var upd, hot int64
	if err := st.pool.QueryRow(ctx, `SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_user_tables WHERE schemaname = $1 AND relname = 'events'`, schema).Scan(&upd, &hot); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(removed)/elapsed.Seconds(), "events/s")
	b.ReportMetric(float64(during)/elapsed.Seconds(), "appends/s")
	b.ReportMetric(alone, "appends/s-alone")
	b.ReportMetric(float64(removed), "removed")
	b.Logf("row updates %d, HOT %d", upd-upd0, hot-hot0)
}

// BenchmarkRetentionBaseline runs retention against the bare statement it cannot do without,
// in one run: two schemas are loaded with the same STRATA_BENCH_RETENTION_EVENTS events
// (default 100,000; COPY, as BenchmarkRetentionAtScale) and a quarter of each is removed, once
// by query.Retention (finding the events, hashing their leaves, storing tombstones, blanking
// the rows) and once by a plain UPDATE that blanks the same rows in batches of the same size,
// their IDs read beforehand and outside the time. It reports both rates and strata's ratio;
// no writers run, so that the two see the same machine.
func BenchmarkRetentionBaseline(b *testing.B) {
	n, _ := strconv.Atoi(os.Getenv("STRATA_BENCH_RETENTION_EVENTS"))
	if n <= 0 {
		n = 100_000
	}
	batch := query.DefaultBatch
	dsn := testenv.Postgres(b)
	ctx := context.Background()
	cutoff := benchBase.Add(time.Duration(n/4) * 3 * time.Second)
	load := func() *Store {
		st, err := Open(ctx, dsn, WithSchema(testenv.PostgresSchema(b, dsn)))
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { st.Close() })
		if err := benchLoad(ctx, st, n); err != nil {
			b.Fatal(err)
		}
		if _, err := st.pool.Exec(ctx, st.sq(`VACUUM ANALYZE {schema}.events`)); err != nil {
			b.Fatal(err)
		}
		return st
	}
	var strataTime, rawTime time.Duration
	var removed, blanked int64
	round := 0
	for b.Loop() {
		b.StopTimer()
		stStrata, stRaw := load(), load()
		rows, _ := stRaw.pool.Query(ctx, stRaw.sq(`SELECT id FROM {schema}.events WHERE recorded_at < $1 ORDER BY recorded_at, tx, seq`), cutoff)
		ids, err := pgx.CollectRows(rows, pgx.RowTo[[16]byte])
		if err != nil {
			b.Fatal(err)
		}
		runStrata := func() {
			r := &query.Retention{AllowUnsealed: true, Now: func() time.Time { return cutoff.Add(query.DefaultMaxAge) }}
			t0 := time.Now()
			rep, err := r.Run(ctx, stStrata)
			strataTime += time.Since(t0)
			if err != nil {
				b.Fatal(err)
			}
			if rep.Removed != int64(len(ids)) {
				b.Fatalf("retention removed %d events, the baseline blanks %d", rep.Removed, len(ids))
			}
			removed += rep.Removed
		}
		runRaw := func() {
			t0 := time.Now()
			for i := 0; i < len(ids); i += batch {
				tag, err := stRaw.pool.Exec(ctx, stRaw.sq(`UPDATE {schema}.events e SET data = '\x6e756c6c'::bytea, meta = NULL
					FROM unnest($1::uuid[]) AS t(id) WHERE e.id = t.id`), ids[i:min(i+batch, len(ids))])
				if err != nil {
					b.Fatal(err)
				}
				blanked += tag.RowsAffected()
			}
			rawTime += time.Since(t0)
		}
		b.StartTimer()
		if round%2 == 0 {
			runStrata()
			runRaw()
		} else {
			runRaw()
			runStrata()
		}
		if blanked != removed {
			b.Fatalf("the baseline blanked %d rows, retention removed %d events", blanked, removed)
		}
		round++
	}
	rate, raw := float64(removed)/strataTime.Seconds(), float64(blanked)/rawTime.Seconds()
	b.ReportMetric(rate, "events/s")
	b.ReportMetric(raw, "raw-events/s")
	b.ReportMetric(rate/raw, "ratio")
}
