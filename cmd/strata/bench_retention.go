package main

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/strata-events/strata"
	"github.com/strata-events/strata/query"
)

// retentionTarget is what retention must remove per second (issue #8), while appends go on.
const retentionTarget = 50_000

// retentionFill is the batch the retention bench pre-fills the two tables with.
const retentionFill = 500

// runRetentionBench fills strata and the baseline with o.events events each, a quarter at a
// time, and removes them a quarter a round: strata with a retention run whose cutoff ends the
// quarter, the baseline with the UPDATEs that blank the same rows, in turn. o.clients writers
// append to other streams of strata's store throughout, so that what retention costs them
// shows. It prints both rates, their ratio and the writers' rate alone and during retention.
func runRetentionBench(ctx context.Context, out io.Writer, d dsn, o benchOpts) (err error) {
	env, err := setupBench(ctx, d, o.clients+1)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := env.cleanup(); cerr != nil && err == nil {
			err = cerr
		}
	}()
	if _, ok := env.st.(strata.RetentionStore); !ok {
		return invalidf("bench", "the %s backend keeps no retention (strata.RetentionStore)", d.backend)
	}
	quarters, err := fillForRetention(ctx, env, o.events)
	if err != nil {
		return err
	}
	cutoffs, err := quarterCutoffs(ctx, env.st, o.events)
	if err != nil {
		return err
	}
	batch := o.batch
	tombstoneMeta, err := strata.TombstoneMeta(benchMeta).MarshalJSON()
	if err != nil {
		return err
	}
	var raw workloadRounds
	if env.raw != nil {
		raw = func(ctx context.Context, r int) (time.Duration, error) {
			start := time.Now()
			ids := quarters[r]
			for i := 0; i < len(ids); i += batch {
				n, err := env.raw.blank(ctx, ids[i:min(i+batch, len(ids))], strata.TombstoneData, tombstoneMeta)
				if err != nil {
					return 0, err
				}
				if want := min(batch, len(ids)-i); n != want {
					return 0, fmt.Errorf("the baseline blanked %d rows of a batch of %d", n, want)
				}
			}
			return time.Since(start), nil
		}
	}

	// The writers, alone for a second, then throughout the rounds.
	wctx, stopWriters := context.WithCancel(ctx)
	var appended atomic.Int64
	var wg sync.WaitGroup
	var writeErr error
	var once sync.Once
	// Each writer keeps the latency of its appends that began while the writers ran alone
	// (phase phaseAlone) or while strata's retention ran (phaseRetention).
	var phase atomic.Int32
	phase.Store(phaseNone)
	latencies := make([][phases][]time.Duration, o.clients)
	for w := range o.clients {
		wg.Go(func() {
			for wctx.Err() == nil {
				p, start := phase.Load(), time.Now()
				_, err := env.st.Append(wctx, fmt.Sprintf("bench-writer-%04d", w), strata.Any, strata.EventData{Type: benchType, Data: benchData, Meta: benchMeta})
				if err != nil {
					if wctx.Err() == nil {
						once.Do(func() { writeErr = err })
					}
					return
				}
				appended.Add(1)
				if p != phaseNone {
					latencies[w][p] = append(latencies[w][p], time.Since(start))
				}
			}
		})
	}
	stop := func() error { stopWriters(); wg.Wait(); return writeErr }
	defer stop()
	var alone float64
	if o.clients > 0 {
		time.Sleep(200 * time.Millisecond)
		phase.Store(phaseAlone)
		a0, t0 := appended.Load(), time.Now()
		time.Sleep(time.Second)
		alone = rate(int(appended.Load()-a0), time.Since(t0))
		phase.Store(phaseNone)
	}
	// Each round of strata's retention counts the appends that completed meanwhile.
	var during int64
	var retaining time.Duration
	st := func(ctx context.Context, r int) (time.Duration, error) {
		ret := &query.Retention{AllowUnsealed: true, Batch: batch, Now: func() time.Time { return cutoffs[r].Add(query.DefaultMaxAge) }}
		a, start := appended.Load(), time.Now()
		phase.Store(phaseRetention)
		rep, err := ret.Run(ctx, env.st)
		phase.Store(phaseNone)
		if err != nil {
			return 0, err
		}
		took := time.Since(start)
		during, retaining = during+appended.Load()-a, retaining+took
		if want := len(quarters[r]); rep.Removed != int64(want) {
			return 0, fmt.Errorf("retention removed %d events in round %d, want the quarter's %d", rep.Removed, r, want)
		}
		return took, nil
	}
	res := retentionResult{backend: d.backend, events: o.events, batch: batch, writers: o.clients, alone: alone, rawNote: env.rawNote}
	if res.raw, res.strata, res.rounds, err = alternate(ctx, raw, st, o.events); err != nil {
		return err
	}
	if err := stop(); err != nil {
		return fmt.Errorf("bench: a writer: %w", err)
	}
	res.during = rate(int(during), retaining)
	for p := range phases {
		var all []time.Duration
		for w := range latencies {
			all = append(all, latencies[w][p]...)
		}
		res.latency[p] = latencyOf(all)
	}
	printRetentionBench(out, res)
	return nil
}

// fillForRetention appends n events to strata's store and inserts n to the baseline's table,
// in four quarters recorded one after another, and returns the baseline's IDs of each quarter.
func fillForRetention(ctx context.Context, env *benchEnv, n int) ([][]uuid.UUID, error) {
	meta, err := benchMeta.MarshalJSON()
	if err != nil {
		return nil, err
	}
	quarters := make([][]uuid.UUID, benchRounds)
	version := int64(0)
	rawVersion := int64(1)
	for q := range benchRounds {
		from, to := roundBatches(n, q)
		for i := from; i < to; i += retentionFill {
			k := min(retentionFill, to-i)
			evs := make([]strata.EventData, k)
			for j := range evs {
				evs[j] = strata.EventData{Type: benchType, Data: benchData, Meta: benchMeta}
			}
			res, err := env.st.Append(ctx, "bench-retained", strata.Exact(version), evs...)
			if err != nil {
				return nil, fmt.Errorf("bench: strata: pre-fill: %w", err)
			}
			version = res.LastVersion
			if env.raw == nil {
				continue
			}
			revs := make([]rawEvent, k)
			for j := range revs {
				revs[j] = rawEvent{id: uuid.Must(uuid.NewV7()), typ: benchType, schema: 1, data: benchData, meta: meta, tenant: benchMeta.Tenant}
				quarters[q] = append(quarters[q], revs[j].id)
			}
			if err := env.raw.insert(ctx, 0, "bench-retained", rawVersion, revs); err != nil {
				return nil, fmt.Errorf("bench: raw baseline: pre-fill: %w", err)
			}
			rawVersion += int64(k)
		}
		if env.raw == nil {
			quarters[q] = make([]uuid.UUID, to-from) // only their number counts
		}
		// The next quarter is recorded strictly later, whatever the clock's resolution.
		time.Sleep(5 * time.Millisecond)
	}
	return quarters, nil
}

// quarterCutoffs returns, for each quarter of the n events strata's store holds, the recording
// time of the next quarter's first event (just after the last one's, for the last quarter): a
// retention cutoff that removes the quarter and what came before it, and nothing after.
func quarterCutoffs(ctx context.Context, st strata.Store, n int) ([]time.Time, error) {
	if err := waitVisible(ctx, st, n); err != nil {
		return nil, fmt.Errorf("bench: strata: pre-fill: %w", err)
	}
	var cutoffs []time.Time
	i := 0
	var last time.Time
	for e, err := range st.ReadAll(ctx, strata.ReadAllOptions{Limit: n}) {
		if err != nil {
			return nil, err
		}
		if i > 0 && len(cutoffs) < benchRounds-1 {
			if from, _ := roundBatches(n, len(cutoffs)+1); i == from {
				cutoffs = append(cutoffs, e.RecordedAt)
			}
		}
		last = e.RecordedAt
		i++
	}
	return append(cutoffs, last.Add(time.Microsecond)), nil
}

// The phases of the retention bench in which the writers' append latencies count.
const (
	phaseNone      = -1
	phaseAlone     = 0 // the writers alone, before the rounds
	phaseRetention = 1 // while strata's retention runs
	phases         = 2
)

// retentionResult is the outcome of the retention bench.
type retentionResult struct {
	backend                string
	events, batch, writers int
	strata, raw            float64 // events/s
	alone, during          float64 // the writers' appends/s
	latency                [phases]latencies
	rounds                 []float64 // strata's rate over the baseline's, per round
	rawNote                string
}

// latencies sums up the latencies of a phase's appends.
type latencies struct {
	n             int
	p50, p99, max time.Duration
}

// latencyOf returns the median, the 99th percentile and the maximum of d, which it sorts.
func latencyOf(d []time.Duration) latencies {
	if len(d) == 0 {
		return latencies{}
	}
	slices.Sort(d)
	return latencies{n: len(d), p50: d[len(d)/2], p99: d[min(len(d)*99/100, len(d)-1)], max: d[len(d)-1]}
}

// String prints the latencies in milliseconds.
func (l latencies) String() string {
	if l.n == 0 {
		return "no appends"
	}
	ms := func(d time.Duration) string {
		return strconv.FormatFloat(float64(d)/float64(time.Millisecond), 'f', 1, 64)
	}
	return fmt.Sprintf("p50 %s ms, p99 %s ms, max %s ms over %d appends", ms(l.p50), ms(l.p99), ms(l.max), l.n)
}

// printRetentionBench prints the retention bench's table: both rates, their ratio, the verdict
// on the target's rate, and the writers' rates.
func printRetentionBench(out io.Writer, r retentionResult) {
	raw, ratio := "-", "-"
	if r.raw > 0 {
		raw = strconv.FormatFloat(r.raw, 'f', 0, 64)
		ratio = strconv.FormatFloat(r.strata/r.raw, 'f', 2, 64) + "x"
	}
	verdict := "met"
	if r.strata < retentionTarget {
		verdict = "missed"
	}
	writers, alone, during := "0", "-", "-"
	if r.writers > 0 {
		writers, alone, during = strconv.Itoa(r.writers), strconv.FormatFloat(r.alone, 'f', 0, 64), strconv.FormatFloat(r.during, 'f', 0, 64)
	}
	printRows(out, [][]string{
		{"backend", "workload", "events", "batch", "strata ev/s", "raw ev/s", "ratio", "target", "", "writers", "appends/s alone", "appends/s during"},
		{r.backend, "retention", strconv.Itoa(r.events), strconv.Itoa(r.batch), strconv.FormatFloat(r.strata, 'f', 0, 64), raw, ratio,
			"≥ " + strconv.Itoa(retentionTarget), verdict, writers, alone, during},
	}, nil)
	if len(r.rounds) > 1 {
		fmt.Fprintf(out, "(ratio per round, baseline and strata in turn: %.2fx to %.2fx; a wide spread means the machine's speed changed during the run)\n", slices.Min(r.rounds), slices.Max(r.rounds))
	}
	fmt.Fprintf(out, "(strata: a retention run per round whose cutoff ends the next quarter of the events, one catch-all policy, AllowUnsealed: it also hashes the leaves of events the ledger has not sealed; raw baseline: one UPDATE per batch that blanks the same rows, data null and metadata the tenant's alone, without finding the events, hashing them or keeping tombstones)\n")
	if r.writers > 0 {
		fmt.Fprintf(out, "(the writers append single events to strata's store, to streams of their own, throughout; appends/s during is their rate while retention ran: the verdict is on the rate alone, whether appends went on shows here)\n")
		fmt.Fprintf(out, "(append latency alone: %s; during retention: %s)\n", r.latency[phaseAlone], r.latency[phaseRetention])
		if r.backend == backendSQLite {
			fmt.Fprintf(out, "(SQLite has one writer at a time: the writers wait for strata's retention, not for the baseline's, which has a file of its own; --clients 0 compares the two alone)\n")
		}
	}
	if r.rawNote != "" {
		fmt.Fprintf(out, "(raw baseline: %s)\n", r.rawNote)
	}
}
