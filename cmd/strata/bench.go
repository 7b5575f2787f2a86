package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/pprof"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/google/uuid"
	"github.com/spf13/cobra"

	"github.com/strata-events/strata"
	"github.com/strata-events/strata/query"
)

// benchOpts are the flags of `strata bench`.
type benchOpts struct {
	clients, batch, events int
	// cpuProfile, if set, is the file for a CPU profile of the run.
	cpuProfile string
}

func newBenchCmd(g *globals, wrap func(*cobra.Command) *cobra.Command) *cobra.Command {
	c := &cobra.Command{
		Use:   "bench append|read|command|protect|retention",
		Short: "Measure strata against raw SQL on the same database",
		Long: `Measure strata and a raw SQL baseline in the same run and print events/s for both and their ratio.
Every workload takes turns with the baseline in four rounds, so that a changing load on the
machine weighs on both alike.

The baseline writes plain INSERTs to, and pages with plain SELECTs through, a table of the same shape
and indexes as the backend's events table, with the same clients and batches. Both run in scratch
space that the bench creates and drops: a temporary directory next to the SQLite file, fresh
schemas in PostgreSQL, fresh databases in MySQL. Your data is never touched. With mem: only strata
runs (there is no SQL to compare with).

  append  --clients goroutines each append batches of --batch events to their own stream, until
          --events events in all. On MySQL, strata's time lasts until the sequencer has stamped
          the last event (read back through ReadAll).
  read    pre-fills --events events, then each of --clients readers pages through the whole log,
          four times, taking turns with the baseline: strata ReadAll against
          SELECT ... WHERE position > ? ORDER BY position LIMIT 1000.
  command --clients goroutines each handle IssueCertificate commands (examples/pki), each to a
          new certificate stream: load, decide, append one event with the expected version;
          against the raw INSERT of one event per transaction. --batch must be 1.
  protect what data protection costs, against its targets (appends at most 20% slower, reads
          at most 25%): the append and read workloads, through the codec, of the same
          certificate issuance twice: plain, and with two fields encrypted (a Protector with a
          key-encryption key made for the run). The two take turns in 16 rounds, in place of
          the baseline, and the overhead is the median of the rounds' ratios; --events must be
          at least 16 × --batch × --clients.
  retention
          pre-fills --events events, a quarter at a time, and removes a quarter a round with a
          retention run (batches of --batch, default ` + strconv.Itoa(query.DefaultBatch) + `; one catch-all policy;
          AllowUnsealed) while --clients writers (default 2; 0 for none) append single events
          to other streams, against the UPDATEs that blank the same rows of the baseline's
          table. Prints the writers' rate alone and during retention too: retention must not
          stop them (target: at least ` + strconv.Itoa(retentionTarget) + ` events removed a second).`,
		Example: `  strata bench append --db sqlite:strata.db --clients 4 --batch 10 --events 10000
  strata bench read --db 'postgres://postgres@127.0.0.1:5432/postgres' --events 100000
  strata bench protect --db sqlite:strata.db   # one client, batches of 100, 80,000 events
  strata bench retention --db 'postgres://postgres@127.0.0.1:5432/postgres' --events 100000`,
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return invalidf("bench", "want a workload: strata bench append, read, command, protect or retention")
			}
			return invalidf("bench", "unknown workload %q: want append, read, command, protect or retention", args[0])
		},
	}
	for _, w := range []string{"append", "read", "command", "protect", "retention"} {
		var o benchOpts // each workload its own: their flags' defaults differ
		wc := &cobra.Command{
			Use:   w,
			Short: "Benchmark " + w + "s (see strata bench --help)",
			Args:  argsExactly(0, "no arguments"),
			RunE: func(cmd *cobra.Command, args []string) error {
				switch {
				case w == "retention" && (o.clients < 0 || o.batch < 1 || o.events < benchRounds):
					return invalidf("bench", "retention: --clients must be 0 (no writers) or more, --batch 1 or more, --events %d or more", benchRounds)
				case w != "retention" && (o.clients < 1 || o.batch < 1 || o.events < 1):
					return invalidf("bench", "--clients, --batch and --events must be 1 or more")
				case w == "protect" && o.events < protectRounds*o.batch*o.clients:
					return invalidf("bench", "protect: --events must be at least %d × --batch × --clients (%d), so that each client appends in every one of the %d rounds",
						protectRounds, protectRounds*o.batch*o.clients, protectRounds)
				}
				if w == "command" && cmd.Flags().Changed("batch") && o.batch != 1 {
					return invalidf("bench", "a command appends one event: --batch must be 1 for the command workload")
				}
				if w == "command" {
					o.batch = 1
				}
				if w == "retention" {
					if o.batch > strata.MaxTombstoneBatch {
						return invalidf("bench", "--batch must be at most %d for retention", strata.MaxTombstoneBatch)
					}
				} else if o.batch > strata.MaxEventsPerAppend {
					return invalidf("bench", "--batch must be at most %d", strata.MaxEventsPerAppend)
				}
				d, err := parseDSN(g.dsn())
				if err != nil {
					return err
				}
				ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
				defer stop()
				if o.cpuProfile != "" {
					f, err := os.Create(o.cpuProfile)
					if err != nil {
						return fmt.Errorf("bench: cpu profile: %w", err)
					}
					defer f.Close()
					if err := pprof.StartCPUProfile(f); err != nil {
						return fmt.Errorf("bench: cpu profile: %w", err)
					}
					defer pprof.StopCPUProfile()
				}
				switch w {
				case "protect":
					return runProtectBench(ctx, cmd.OutOrStdout(), d, o)
				case "retention":
					return runRetentionBench(ctx, cmd.OutOrStdout(), d, o)
				}
				return runBench(ctx, cmd.OutOrStdout(), d, w, o)
			},
		}
		// The flags of the SQL workloads only: bench http has flags of its own.
		f := wc.Flags()
		switch w {
		case "retention":
			f.IntVar(&o.clients, "clients", 2, "writers appending single events to other streams during retention (0: none)")
			f.IntVar(&o.batch, "batch", query.DefaultBatch, "events per retention batch (one transaction)")
		case "command":
			f.IntVar(&o.clients, "clients", 4, "concurrent clients (goroutines, each with its own stream)")
			f.IntVar(&o.batch, "batch", 1, "events per command (must be 1)")
		case "protect":
			// The targets' measurement: one client, batches of 100, and rounds long enough
			// (5,000 events a side) that a disk's uneven fsyncs do not move the median.
			f.IntVar(&o.clients, "clients", 1, "concurrent clients (goroutines, each with its own stream)")
			f.IntVar(&o.batch, "batch", 100, "events per append (one transaction)")
		default:
			f.IntVar(&o.clients, "clients", 4, "concurrent clients (goroutines, each with its own stream)")
			f.IntVar(&o.batch, "batch", 10, "events per append (one transaction)")
		}
		events := 10000
		if w == "protect" {
			events = 80000
		}
		f.IntVar(&o.events, "events", events, "events in all")
		f.StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile of the whole run (strata, baseline and set-up) to this file, for go tool pprof")
		c.AddCommand(wrap(wc))
	}
	return c
}

// benchEnv is a scratch strata store and its raw baseline.
type benchEnv struct {
	st strata.Store
	// raw is the baseline on a table of the events table's shape; nil for mem:.
	raw rawDB
	// stamped, if set, is how strata's append time ends: waiting until the log is readable up to
	// the given number of events (MySQL's sequencer stamps positions after commit).
	stamped bool
	// rawNote, if set, says how the baseline differs from strata's table use.
	rawNote string
	// note, if set, says how strata's store is configured where that matters to the result.
	note string
	// cleanup closes both and drops the scratch space.
	cleanup func() error
}

// setupBench opens strata and its baseline in scratch space of the database d names.
func setupBench(ctx context.Context, d dsn, clients int) (*benchEnv, error) {
	switch d.backend {
	case backendSQLite:
		return setupSQLiteBench(ctx, d, clients)
	case backendPostgres:
		return setupPostgresBench(ctx, d, clients)
	case backendMySQL:
		return setupMySQLBench(ctx, d, clients)
	}
	st, err := d.open(ctx)
	if err != nil {
		return nil, err
	}
	return &benchEnv{st: st, cleanup: st.Close}, nil
}

// rawDB is the plain-SQL baseline of one backend.
type rawDB interface {
	// insert writes evs as versions first, first+1, ... of stream in one transaction, on the
	// connection of client.
	insert(ctx context.Context, client int, stream string, first int64, evs []rawEvent) error
	// readAll pages through the whole table, 1000 rows a query, and returns the rows read.
	readAll(ctx context.Context, client int) (int, error)
	// blank sets the data and metadata of the events ids as retention leaves them, in one
	// transaction, and returns the rows changed.
	blank(ctx context.Context, ids []uuid.UUID, data, meta []byte) (int, error)
}

// rawEvent is one event of the baseline, encoded as the backend stores it.
type rawEvent struct {
	id     uuid.UUID
	typ    string
	schema int
	data   []byte
	meta   []byte // canonical metadata JSON
	tenant string
}

// The event every bench writes: a certificate issuance of typical size.
var (
	benchType = "CertificateIssued"
	benchData = json.RawMessage(`{"serial":"4F2A9C0D7E3B","subjectDN":"CN=host-0001.example.com,O=Example GmbH,C=DE","subjectEmail":"pki@example.com","validFrom":"2023-03-14T00:00:00Z","validTo":"2024-03-14T00:00:00Z"}`)
	benchMeta = strata.Metadata{Tenant: "bench", Principal: "operator:bench", Correlation: "bench"}
)

// benchResult is one row of the table.
type benchResult struct {
	backend, workload     string
	clients, batch, evs   int
	strataRate, rawRate   float64
	strataOnly, stampWait bool
	rawNote, note         string
	// rounds is the ratio of each round (see alternate).
	rounds []float64
}

func runBench(ctx context.Context, out io.Writer, d dsn, workload string, o benchOpts) (err error) {
	env, err := setupBench(ctx, d, o.clients)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := env.cleanup(); cerr != nil && err == nil {
			err = cerr
		}
	}()
	plan := planBatches(o)
	res := benchResult{backend: d.backend, workload: workload, clients: o.clients, batch: o.batch, evs: o.events, strataOnly: env.raw == nil, rawNote: env.rawNote, note: env.note}
	switch workload {
	case "append", "command":
		res.stampWait = env.stamped
		var raw, st workloadRounds
		if env.raw != nil {
			raw = rawAppendRounds(env.raw, plan)
		}
		if workload == "append" {
			st, err = strataAppendRounds(ctx, env, plan)
		} else {
			st, err = strataCommandRounds(ctx, env, plan)
		}
		if err != nil {
			return fmt.Errorf("bench: strata: %w", err)
		}
		if res.rawRate, res.strataRate, res.rounds, err = alternate(ctx, raw, st, o.events); err != nil {
			return err
		}
	case "read":
		if env.raw != nil {
			if _, err := runRounds(ctx, rawAppendRounds(env.raw, plan)); err != nil {
				return fmt.Errorf("bench: raw baseline: pre-fill: %w", err)
			}
		}
		st, err := strataAppendRounds(ctx, env, plan)
		if err == nil {
			_, err = runRounds(ctx, st)
		}
		if err != nil {
			return fmt.Errorf("bench: strata: pre-fill: %w", err)
		}
		// Readers see an event once nothing that sorts before it can still commit; on
		// PostgreSQL any open transaction in the database holds that horizon back for a moment.
		if err := waitVisible(ctx, env.st, o.events); err != nil {
			return fmt.Errorf("bench: strata: pre-fill: %w", err)
		}
		var raw workloadRounds
		if env.raw != nil {
			raw = rawReadRounds(env.raw, o)
		}
		if res.rawRate, res.strataRate, res.rounds, err = alternate(ctx, raw, strataReadRounds(env.st, o), benchRounds*o.clients*o.events); err != nil {
			return err
		}
	}
	printBench(out, res)
	return nil
}

func printBench(out io.Writer, r benchResult) {
	raw, ratio := "-", "-"
	if !r.strataOnly && r.rawRate > 0 {
		raw = strconv.FormatFloat(r.rawRate, 'f', 0, 64)
		ratio = strconv.FormatFloat(r.strataRate/r.rawRate, 'f', 2, 64) + "x"
	}
	printRows(out, [][]string{
		{"backend", "workload", "clients", "batch", "events", "strata ev/s", "raw ev/s", "ratio"},
		{r.backend, r.workload, strconv.Itoa(r.clients), strconv.Itoa(r.batch), strconv.Itoa(r.evs),
			strconv.FormatFloat(r.strataRate, 'f', 0, 64), raw, ratio},
	}, nil)
	if r.strataOnly {
		fmt.Fprintf(out, "(%s: no SQL baseline; strata only)\n", r.backend)
	}
	if len(r.rounds) > 1 {
		fmt.Fprintf(out, "(ratio per round, baseline and strata in turn: %.2fx to %.2fx; a wide spread means the machine's speed changed during the run)\n", slices.Min(r.rounds), slices.Max(r.rounds))
	}
	if r.note != "" {
		fmt.Fprintf(out, "(%s)\n", r.note)
	}
	if r.rawNote != "" {
		fmt.Fprintf(out, "(raw baseline: %s)\n", r.rawNote)
	}
	if r.stampWait {
		fmt.Fprintf(out, "(strata's time includes waiting until the sequencer stamped the last event, read back through ReadAll)\n")
	}
}

// planBatches splits o.events into batches of o.batch and deals them out to the clients in turn:
// plan[c] holds the sizes of client c's batches.
func planBatches(o benchOpts) [][]int {
	plan := make([][]int, o.clients)
	for i, left := 0, o.events; left > 0; i++ {
		n := min(o.batch, left)
		plan[i%o.clients] = append(plan[i%o.clients], n)
		left -= n
	}
	return plan
}

func benchStream(client int) string { return fmt.Sprintf("bench-%04d", client) }

// runClients runs fn for each client at once and returns the time until all are done. The
// first error cancels the others.
func runClients(ctx context.Context, clients int, fn func(ctx context.Context, client int) error) (time.Duration, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg    sync.WaitGroup
		once  sync.Once
		first error
	)
	start := time.Now()
	for c := range clients {
		wg.Go(func() {
			if err := fn(ctx, c); err != nil {
				once.Do(func() { first = err; cancel() })
			}
		})
	}
	wg.Wait()
	return time.Since(start), first
}

func rate(n int, d time.Duration) float64 {
	if d <= 0 {
		d = time.Nanosecond
	}
	return float64(n) / d.Seconds()
}

// benchRounds is how many rounds the workloads take turns in: the baseline and strata each run
// a quarter of their batches (or one whole read) in turn, the baseline first in even rounds,
// so that a load on the machine that changes during the run weighs on both alike.
const benchRounds = 4

// workloadRounds runs round r (0 ≤ r < benchRounds) of a measured workload and returns how
// long it took.
type workloadRounds func(ctx context.Context, r int) (time.Duration, error)

// roundBatches returns the part of n batches that belongs to round r, as [from, to).
func roundBatches(n, r int) (from, to int) { return n * r / benchRounds, n * (r + 1) / benchRounds }

// alternate runs the rounds of raw (which may be nil) and st in turn and returns their rates
// over total events each, and the ratio of strata's rate to the baseline's in each round (nil
// without a baseline): their spread shows how much the machine's speed moved during the run.
func alternate(ctx context.Context, raw, st workloadRounds, total int) (rawRate, strataRate float64, rounds []float64, err error) {
	var rawTime, stTime time.Duration
	for r := range benchRounds {
		rawBefore, stBefore := rawTime, stTime
		steps := []struct {
			run  workloadRounds
			sum  *time.Duration
			name string
		}{{raw, &rawTime, "raw baseline"}, {st, &stTime, "strata"}}
		if r%2 == 1 {
			steps[0], steps[1] = steps[1], steps[0]
		}
		for _, step := range steps {
			if step.run == nil {
				continue
			}
			d, err := step.run(ctx, r)
			if err != nil {
				return 0, 0, nil, fmt.Errorf("bench: %s: %w", step.name, err)
			}
			*step.sum += d
		}
		if raw != nil && stTime > stBefore {
			rounds = append(rounds, float64(rawTime-rawBefore)/float64(stTime-stBefore))
		}
	}
	if raw != nil {
		rawRate = rate(total, rawTime)
	}
	return rawRate, rate(total, stTime), rounds, nil
}

// runRounds runs every round of w, for a pre-fill, and returns the time they took.
func runRounds(ctx context.Context, w workloadRounds) (time.Duration, error) {
	var sum time.Duration
	for r := range benchRounds {
		d, err := w(ctx, r)
		if err != nil {
			return 0, err
		}
		sum += d
	}
	return sum, nil
}

// strataAppendRounds appends the plan's batches, each client to its own stream with the exact
// expected version.
func strataAppendRounds(ctx context.Context, env *benchEnv, plan [][]int) (workloadRounds, error) {
	// Build every batch before the clock starts; IDs are chosen here as the baseline's are.
	batches := make([][][]strata.EventData, len(plan))
	for c, sizes := range plan {
		for _, n := range sizes {
			evs := make([]strata.EventData, n)
			for i := range evs {
				evs[i] = strata.EventData{ID: uuid.Must(uuid.NewV7()), Type: benchType, Data: benchData, Meta: benchMeta}
			}
			batches[c] = append(batches[c], evs)
		}
	}
	versions := make([]int64, len(plan))
	return stampedRounds(ctx, env, plan, func(ctx context.Context, r int) (time.Duration, error) {
		return runClients(ctx, len(plan), func(ctx context.Context, c int) error {
			from, to := roundBatches(len(batches[c]), r)
			for _, evs := range batches[c][from:to] {
				res, err := env.st.Append(ctx, benchStream(c), strata.Exact(versions[c]), evs...)
				if err != nil {
					return err
				}
				versions[c] = res.LastVersion
			}
			return nil
		})
	})
}

// stampedRounds wraps the rounds of a strata workload so that, where the backend stamps
// positions after commit (env.stamped), each round lasts until its last event can be read.
func stampedRounds(ctx context.Context, env *benchEnv, plan [][]int, w workloadRounds) (workloadRounds, error) {
	if !env.stamped {
		return w, nil
	}
	before, err := logLength(ctx, env.st)
	if err != nil {
		return nil, err
	}
	return func(ctx context.Context, r int) (time.Duration, error) {
		start := time.Now()
		if _, err := w(ctx, r); err != nil {
			return 0, err
		}
		done := before
		for _, sizes := range plan {
			_, to := roundBatches(len(sizes), r)
			for _, n := range sizes[:to] {
				done += n
			}
		}
		if err := waitStamped(ctx, env.st, done); err != nil {
			return 0, err
		}
		return time.Since(start), nil
	}, nil
}

// logLength returns the number of events in the (scratch) store.
func logLength(ctx context.Context, st strata.Store) (int, error) {
	n := 0
	for _, err := range st.ReadAll(ctx, strata.ReadAllOptions{}) {
		if err != nil {
			return 0, err
		}
		n++
	}
	return n, nil
}

// waitStamped waits until the n-th event of a log with dense positions can be read through
// ReadAll, that is until the sequencer has stamped every event up to it.
func waitStamped(ctx context.Context, st strata.Store, n int) error {
	after := strata.Position{Commit: uint64(n - 1), Event: uint64(n - 1)}
	for {
		for _, err := range st.ReadAll(ctx, strata.ReadAllOptions{After: after, Limit: 1}) {
			if err != nil {
				return err
			}
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Microsecond):
		}
	}
}

// waitVisible waits until ReadAll returns n events.
func waitVisible(ctx context.Context, st strata.Store, n int) error {
	cursor, seen := strata.Start, 0
	for {
		for e, err := range st.ReadAll(ctx, strata.ReadAllOptions{After: cursor}) {
			if err != nil {
				return err
			}
			cursor = e.Position
			seen++
		}
		if seen >= n {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// strataReadRounds reads the whole log once per client and round, with ReadAll.
func strataReadRounds(st strata.Store, o benchOpts) workloadRounds {
	return readRounds(o, func(ctx context.Context, _ int) (int, error) {
		n := 0
		for _, err := range st.ReadAll(ctx, strata.ReadAllOptions{}) {
			if err != nil {
				return n, err
			}
			n++
		}
		return n, nil
	})
}

// rawReadRounds pages through the baseline's table once per client and round.
func rawReadRounds(raw rawDB, o benchOpts) workloadRounds { return readRounds(o, raw.readAll) }

// readRounds runs read in each of o.clients clients, every round, and checks that each read
// the whole log.
func readRounds(o benchOpts, read func(ctx context.Context, client int) (int, error)) workloadRounds {
	return func(ctx context.Context, _ int) (time.Duration, error) {
		return runClients(ctx, o.clients, func(ctx context.Context, c int) error {
			n, err := read(ctx, c)
			if err != nil {
				return err
			}
			if n != o.events {
				return fmt.Errorf("a reader read %d events, want %d", n, o.events)
			}
			return nil
		})
	}
}

// rawAppendRounds inserts the plan's batches with the baseline, one transaction a batch.
func rawAppendRounds(raw rawDB, plan [][]int) workloadRounds {
	meta, _ := benchMeta.MarshalJSON()
	batches := make([][][]rawEvent, len(plan))
	for c, sizes := range plan {
		for _, n := range sizes {
			evs := make([]rawEvent, n)
			for i := range evs {
				evs[i] = rawEvent{id: uuid.Must(uuid.NewV7()), typ: benchType, schema: 1, data: benchData, meta: meta, tenant: benchMeta.Tenant}
			}
			batches[c] = append(batches[c], evs)
		}
	}
	versions := make([]int64, len(plan))
	for c := range versions {
		versions[c] = 1
	}
	return func(ctx context.Context, r int) (time.Duration, error) {
		return runClients(ctx, len(plan), func(ctx context.Context, c int) error {
			from, to := roundBatches(len(batches[c]), r)
			for _, evs := range batches[c][from:to] {
				if err := raw.insert(ctx, c, benchStream(c), versions[c], evs); err != nil {
					return err
				}
				versions[c] += int64(len(evs))
			}
			return nil
		})
	}
}

// scratchName returns a fresh name for scratch schemas and databases.
func scratchName() string {
	id := uuid.New()
	return fmt.Sprintf("strata_bench_%x", id[:5])
}
