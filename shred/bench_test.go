package shred_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/strata-events/strata"
	"github.com/strata-events/strata/codec"
	"github.com/strata-events/strata/internal/backends"
	"github.com/strata-events/strata/shred"
)

// certIssued has two sensitive fields, like the certificate domain's CertificateIssued.
type certIssued struct {
	Serial       string    `json:"serial"`
	SubjectID    string    `json:"subjectId" strata:"subject"`
	SubjectDN    string    `json:"subjectDN" strata:"sensitive"`
	SubjectEmail string    `json:"subjectEmail" strata:"sensitive"`
	ValidFrom    time.Time `json:"validFrom"`
	ValidTo      time.Time `json:"validTo"`
}

// certPlain is the same payload with nothing marked.
type certPlain struct {
	Serial       string    `json:"serial"`
	SubjectID    string    `json:"subjectId"`
	SubjectDN    string    `json:"subjectDN"`
	SubjectEmail string    `json:"subjectEmail"`
	ValidFrom    time.Time `json:"validFrom"`
	ValidTo      time.Time `json:"validTo"`
}

// The backends the benchmark runs on (see internal/backends).
var benchBackends = []string{"sqlite", "postgres"}

// BenchmarkProtection appends and reads events with two sensitive fields, and the same events
// with none, through the codec, in batches of 100 over 50 subjects, and reports the cost of
// protection (targets: appends at most 20% slower, reads at most 25%).
func BenchmarkProtection(b *testing.B) {
	ctx := context.Background()
	from := time.Date(2023, 3, 14, 0, 0, 0, 0, time.UTC)
	for _, kind := range benchBackends {
		b.Run(kind, func(b *testing.B) {
			st, _ := backends.Open(b, kind)
			kekText, _ := shred.GenerateKEK()
			kek, _ := shred.ParseKEK(kekText)
			p, err := shred.New(ctx, st, kek)
			if err != nil {
				b.Fatal(err)
			}
			protected, plain := codec.NewRegistry(), codec.NewRegistry()
			if err := codec.Register[certIssued](protected, "CertIssued", 1); err != nil {
				b.Fatal(err)
			}
			if err := codec.Register[certPlain](plain, "CertPlain", 1); err != nil {
				b.Fatal(err)
			}
			protected.Use(p)
			value := func(i int, sensitive bool) any {
				v := certPlain{Serial: fmt.Sprintf("%08X", i), SubjectID: fmt.Sprintf("subject-%d", i%50),
					SubjectDN: "CN=host-0001.example.com,O=Example GmbH,C=DE", SubjectEmail: "pki@example.com", ValidFrom: from, ValidTo: from.AddDate(1, 0, 0)}
				if sensitive {
					return certIssued(v)
				}
				return v
			}
			var perEvent [2][2]time.Duration // [plain, protected][append, read]
			for k, reg := range []*codec.Registry{plain, protected} {
				name := []string{"plain", "protected"}[k]
				stream := "bench-" + name
				b.Run(name+"/append", func(b *testing.B) {
					n := 0
					start := time.Now()
					for b.Loop() {
						batch := make([]strata.EventData, 100)
						for j := range batch {
							d, err := reg.Encode(ctx, value(n, k == 1), strata.Metadata{Tenant: "bench"})
							if err != nil {
								b.Fatal(err)
							}
							batch[j] = d
							n++
						}
						if _, err := st.Append(ctx, stream, strata.Any, batch...); err != nil {
							b.Fatal(err)
						}
					}
					perEvent[k][0] = time.Since(start) / time.Duration(n)
					b.ReportMetric(float64(n)/time.Since(start).Seconds(), "events/s")
				})
				b.Run(name+"/read", func(b *testing.B) {
					n := 0
					start := time.Now()
					for b.Loop() {
						for e, err := range st.ReadStream(ctx, stream, strata.ReadStreamOptions{Limit: 1000}) {
							if err != nil {
								b.Fatal(err)
							}
							if _, err := reg.Decode(ctx, e); err != nil {
								b.Fatal(err)
							}
							n++
						}
					}
					perEvent[k][1] = time.Since(start) / time.Duration(max(n, 1))
					b.ReportMetric(float64(n)/time.Since(start).Seconds(), "events/s")
				})
			}
			if perEvent[0][0] > 0 && perEvent[0][1] > 0 {
				fmt.Printf("BenchmarkProtection/%s: append +%.0f%%, read +%.0f%%\n", kind,
					100*(float64(perEvent[1][0])/float64(perEvent[0][0])-1), 100*(float64(perEvent[1][1])/float64(perEvent[0][1])-1))
			}
		})
	}
}

// BenchmarkProtectionPaired is BenchmarkProtection with the plain and the protected work
// interleaved: each round appends a batch of 100 events of each kind and reads 1000 of each,
// in alternating order, and the overhead is the median of the rounds' ratios (reported as
// append-%, read-%), so that the load of a shared machine, which shifts the sequential
// sub-benchmarks of BenchmarkProtection apart, cancels out. Run it with -benchtime=400x.
func BenchmarkProtectionPaired(b *testing.B) {
	ctx := context.Background()
	for _, kind := range benchBackends {
		b.Run(kind, func(b *testing.B) {
			st, regs := benchRegistries(b, ctx, kind)
			n := 0
			appendBatch := func(k int) time.Duration {
				start := time.Now()
				batch := encodeBatch(b, ctx, regs[k], k == 1, n)
				n += len(batch)
				if _, err := st.Append(ctx, fmt.Sprintf("paired-%d", k), strata.Any, batch...); err != nil {
					b.Fatal(err)
				}
				return time.Since(start)
			}
			read := func(k int) time.Duration {
				start := time.Now()
				for e, err := range st.ReadStream(ctx, fmt.Sprintf("paired-%d", k), strata.ReadStreamOptions{Limit: 1000}) {
					if err != nil {
						b.Fatal(err)
					}
					if _, err := regs[k].Decode(ctx, e); err != nil {
						b.Fatal(err)
					}
				}
				return time.Since(start)
			}
			for range 10 { // 1000 events in each stream to read, and a warm cache
				appendBatch(0)
				appendBatch(1)
			}
			var appends, reads []float64
			round := 0
			for b.Loop() {
				first := round % 2
				var ta, tr [2]time.Duration
				ta[first], ta[1-first] = appendBatch(first), appendBatch(1-first)
				tr[first], tr[1-first] = read(first), read(1-first)
				appends = append(appends, float64(ta[1])/float64(ta[0]))
				reads = append(reads, float64(tr[1])/float64(tr[0]))
				round++
			}
			median := func(x []float64) float64 { slices.Sort(x); return x[len(x)/2] }
			b.ReportMetric(100*(median(appends)-1), "append-%")
			b.ReportMetric(100*(median(reads)-1), "read-%")
		})
	}
}

// encodeBatch encodes 100 certificate issuances through reg, the n-th and those after it, over
// 50 subjects in turn: as certIssued when protected (two sensitive fields), else as certPlain.
func encodeBatch(b *testing.B, ctx context.Context, reg *codec.Registry, protected bool, n int) []strata.EventData {
	b.Helper()
	from := time.Date(2023, 3, 14, 0, 0, 0, 0, time.UTC)
	batch := make([]strata.EventData, 100)
	for j := range batch {
		v := certPlain{Serial: fmt.Sprintf("%08X", n+j), SubjectID: fmt.Sprintf("subject-%d", (n+j)%50),
			SubjectDN: "CN=host-0001.example.com,O=Example GmbH,C=DE", SubjectEmail: "pki@example.com", ValidFrom: from, ValidTo: from.AddDate(1, 0, 0)}
		var value any = v
		if protected {
			value = certIssued(v)
		}
		d, err := reg.Encode(ctx, value, strata.Metadata{Tenant: "bench"})
		if err != nil {
			b.Fatal(err)
		}
		batch[j] = d
	}
	return batch
}

// benchRegistries opens a store of kind and returns it with two registries: one for
// certPlain, and one for certIssued with a Protector installed (a KEK made for the run).
func benchRegistries(b *testing.B, ctx context.Context, kind string) (strata.Store, [2]*codec.Registry) {
	b.Helper()
	st, _ := backends.Open(b, kind)
	kekText, _ := shred.GenerateKEK()
	kek, _ := shred.ParseKEK(kekText)
	p, err := shred.New(ctx, st, kek)
	if err != nil {
		b.Fatal(err)
	}
	regs := [2]*codec.Registry{codec.NewRegistry(), codec.NewRegistry()} // plain, protected
	if err := codec.Register[certPlain](regs[0], "CertPlain", 1); err != nil {
		b.Fatal(err)
	}
	if err := codec.Register[certIssued](regs[1], "CertIssued", 1); err != nil {
		b.Fatal(err)
	}
	regs[1].Use(p)
	return st, regs
}
