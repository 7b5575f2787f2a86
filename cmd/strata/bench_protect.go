package main

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strconv"
	"time"

	"github.com/strata-events/strata"
	"github.com/strata-events/strata/codec"
	"github.com/strata-events/strata/examples/pki"
	"github.com/strata-events/strata/shred"
)

// The targets of data protection (issue #7): what two sensitive fields may add to an append
// and to a read, both through the codec.
const protectAppendTarget, protectReadTarget = 0.20, 0.25

// protectRounds is how many rounds the two sides of the protect bench take turns in. The
// overhead is the median of the rounds' ratios, so that a change in the machine's speed, which
// moves single rounds, moves it little.
const protectRounds = 16

// protectSubjects is how many data subjects the protected events name in turn: each has its
// own data key, all of them in the Protector's cache once warm.
const protectSubjects = 50

// benchCertPlain is examples/pki's CertificateIssued with nothing marked: the protected side
// of the bench is pki.CertificateIssued itself, whose subjectDN and subjectEmail are sensitive.
type benchCertPlain struct {
	Serial       string    `json:"serial"`
	SubjectID    string    `json:"subjectId"`
	SubjectDN    string    `json:"subjectDN"`
	SubjectEmail string    `json:"subjectEmail"`
	ValidFrom    time.Time `json:"validFrom"`
	ValidTo      time.Time `json:"validTo"`
}

// protectKind is one side of the protect bench: a registry, and how to make its values.
type protectKind struct {
	name  string
	reg   *codec.Registry
	value func(i int) any
}

// runProtectBench appends and reads events with two sensitive fields and the same events with
// none, both through the codec, in alternating rounds (as the other workloads take turns with
// their baseline), and prints what protection costs against its targets.
func runProtectBench(ctx context.Context, out io.Writer, d dsn, o benchOpts) (err error) {
	env, err := setupBench(ctx, d, o.clients)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := env.cleanup(); cerr != nil && err == nil {
			err = cerr
		}
	}()
	kekText, err := shred.GenerateKEK()
	if err != nil {
		return fmt.Errorf("bench: key-encryption key: %w", err)
	}
	kek, err := shred.ParseKEK(kekText)
	if err != nil {
		return fmt.Errorf("bench: key-encryption key: %w", err)
	}
	p, err := shred.New(ctx, env.st, kek)
	if err != nil {
		return err
	}
	kinds, err := protectKinds(p)
	if err != nil {
		return err
	}
	// Every subject's data key exists and is cached before the clock starts: creating a key is
	// once per subject, not per event.
	for i := range protectSubjects {
		if _, err := kinds[1].reg.Encode(ctx, kinds[1].value(i), benchMeta); err != nil {
			return fmt.Errorf("bench: protected: %w", err)
		}
	}
	plan := planBatches(o)
	appends := make([]workloadRounds, len(kinds))
	reads := make([]workloadRounds, len(kinds))
	for k, kind := range kinds {
		stream := func(c int) string { return fmt.Sprintf("bench-%s-%04d", kind.name, c) }
		appends[k] = codecAppendRounds(env.st, kind, plan, stream)
		reads[k] = codecReadRounds(env.st, kind, plan, stream)
	}
	var res [2]protectResult // append, read
	if res[0], err = pairRounds(ctx, appends, o.events); err != nil {
		return err
	}
	if err := waitVisible(ctx, env.st, 2*o.events); err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	if res[1], err = pairRounds(ctx, reads, o.events*protectRounds); err != nil {
		return err
	}
	printProtectBench(out, d.backend, o, res)
	if d.backend == backendSQLite {
		fmt.Fprintf(out, "(SQLite as the command line opens it, synchronous=FULL: every commit waits for the disk, so appends cost in proportion to the bytes they write, and a protected row is larger)\n")
	}
	if env.note != "" {
		fmt.Fprintf(out, "(%s)\n", env.note)
	}
	return nil
}

// protectKinds returns the plain and the protected side, the latter through p.
func protectKinds(p *shred.Protector) ([]protectKind, error) {
	plain, protected := codec.NewRegistry(), codec.NewRegistry()
	if err := codec.Register[benchCertPlain](plain, benchType, 1); err != nil {
		return nil, err
	}
	protected.Use(p)
	if err := codec.Register[pki.CertificateIssued](protected, benchType, 1); err != nil {
		return nil, err
	}
	from := time.Date(2023, 3, 14, 9, 0, 0, 0, time.UTC)
	value := func(i int) benchCertPlain {
		return benchCertPlain{Serial: fmt.Sprintf("%012X", i), SubjectID: fmt.Sprintf("subject-%d", i%protectSubjects),
			SubjectDN: "CN=host-0001.example.com,O=Example GmbH,C=DE", SubjectEmail: "pki@example.com", ValidFrom: from, ValidTo: from.AddDate(1, 0, 0)}
	}
	return []protectKind{
		{name: "plain", reg: plain, value: func(i int) any { return value(i) }},
		{name: "protected", reg: protected, value: func(i int) any { return pki.CertificateIssued(value(i)) }},
	}, nil
}

// codecAppendRounds encodes and appends the plan's batches of kind, each client to its own
// stream with the exact expected version: the encoding, where protection happens, is timed.
func codecAppendRounds(st strata.Store, kind protectKind, plan [][]int, stream func(int) string) workloadRounds {
	versions := make([]int64, len(plan))
	return func(ctx context.Context, r int) (time.Duration, error) {
		return runClients(ctx, len(plan), func(ctx context.Context, c int) error {
			from, to := len(plan[c])*r/protectRounds, len(plan[c])*(r+1)/protectRounds
			i := 0
			for _, n := range plan[c][:from] {
				i += n
			}
			for _, n := range plan[c][from:to] {
				evs := make([]strata.EventData, n)
				for j := range evs {
					e, err := kind.reg.Encode(ctx, kind.value(c*1_000_000+i), benchMeta)
					if err != nil {
						return err
					}
					evs[j] = e
					i++
				}
				res, err := st.Append(ctx, stream(c), strata.Exact(versions[c]), evs...)
				if err != nil {
					return err
				}
				versions[c] = res.LastVersion
			}
			return nil
		})
	}
}

// codecReadRounds reads and decodes, in each client, the client's stream of kind, whole, once
// a round.
func codecReadRounds(st strata.Store, kind protectKind, plan [][]int, stream func(int) string) workloadRounds {
	return func(ctx context.Context, _ int) (time.Duration, error) {
		return runClients(ctx, len(plan), func(ctx context.Context, c int) error {
			want := 0
			for _, n := range plan[c] {
				want += n
			}
			n := 0
			for e, err := range st.ReadStream(ctx, stream(c), strata.ReadStreamOptions{}) {
				if err != nil {
					return err
				}
				if _, err := kind.reg.Decode(ctx, e); err != nil {
					return err
				}
				n++
			}
			if n != want {
				return fmt.Errorf("a reader read %d events of %s, want %d", n, stream(c), want)
			}
			return nil
		})
	}
}

// protectResult is one workload of the protect bench: the rates of both sides, and each
// round's ratio of the protected side's time to the plain side's, sorted.
type protectResult struct {
	plain, protected float64
	ratios           []float64
}

// pairRounds runs the protectRounds rounds of the plain side, sides[0], and of the protected
// side, sides[1], in turn (the plain side first in even rounds), over total events each.
func pairRounds(ctx context.Context, sides []workloadRounds, total int) (protectResult, error) {
	var sum [2]time.Duration
	var res protectResult
	for r := range protectRounds {
		var took [2]time.Duration
		for i := range 2 {
			k := (i + r) % 2
			d, err := sides[k](ctx, r)
			if err != nil {
				return protectResult{}, fmt.Errorf("bench: %s: %w", []string{"plain", "protected"}[k], err)
			}
			took[k] = d
			sum[k] += d
		}
		res.ratios = append(res.ratios, float64(took[1])/float64(max(took[0], time.Nanosecond)))
	}
	slices.Sort(res.ratios)
	res.plain, res.protected = rate(total, sum[0]), rate(total, sum[1])
	return res, nil
}

// overhead is how much longer the protected side took: the median of the rounds' ratios.
func (r protectResult) overhead() float64 {
	rs, n := r.ratios, len(r.ratios)
	if n%2 == 1 {
		return rs[n/2] - 1
	}
	return (rs[n/2-1]+rs[n/2])/2 - 1
}

// printProtectBench prints the protect bench's table: both workloads, their overheads and
// targets, and the spread of the rounds.
func printProtectBench(out io.Writer, backend string, o benchOpts, res [2]protectResult) {
	pct := func(f float64) string { return fmt.Sprintf("%+.0f%%", 100*f) }
	rows := [][]string{{"backend", "workload", "clients", "batch", "events", "plain ev/s", "protected ev/s", "overhead", "target", ""}}
	for i, name := range []string{"protect append", "protect read"} {
		target := []float64{protectAppendTarget, protectReadTarget}[i]
		verdict := "met"
		if res[i].overhead() > target {
			verdict = "missed"
		}
		rows = append(rows, []string{backend, name, strconv.Itoa(o.clients), strconv.Itoa(o.batch), strconv.Itoa(o.events),
			strconv.FormatFloat(res[i].plain, 'f', 0, 64), strconv.FormatFloat(res[i].protected, 'f', 0, 64),
			pct(res[i].overhead()), "≤ " + pct(target)[1:], verdict})
	}
	printRows(out, rows, nil)
	for i, name := range []string{"append", "read"} {
		rs := res[i].ratios
		fmt.Fprintf(out, "(%s overhead: the median of %d rounds, the two sides in turn; the middle half of the rounds lie between %s and %s)\n",
			name, len(rs), pct(rs[len(rs)/4]-1), pct(rs[len(rs)*3/4-1]-1))
	}
	fmt.Fprintf(out, "(the same certificate issuance both ways: plain, and with subjectDN and subjectEmail encrypted under %d data subjects' keys; both encode and decode through the codec)\n", protectSubjects)
}
