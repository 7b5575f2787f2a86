package sqlite_test

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/strata-events/strata"
	"github.com/strata-events/strata/sqlite"
)

// The benchmarks measure the store against raw database/sql doing the same work on a file with
// the same settings and the same events table (DESIGN §8). Figures on a shared machine swing
// widely between runs, so each iteration does the store's work and then the raw work, and the
// benchmark reports both rates and their ratio (x-raw; 1 means as fast as raw). The two take turns
// to go first. ns/op is the time of both.

var (
	benchData = []byte(`{"serial":"7F3A91C2","subject_dn":"CN=Alice Example,O=Example Corp,C=DE","subject_email":"alice@example.com","valid_from":"2023-03-14T09:00:00Z","valid_to":"2025-03-14T09:00:00Z"}`)
	benchMeta = strata.Metadata{Tenant: "acme", Principal: "ca-operator-7", Correlation: "c-2f1d9a"}
)

const benchStreams = 100

func benchEvents(n int) []strata.EventData {
	evs := make([]strata.EventData, n)
	for i := range evs {
		evs[i] = strata.EventData{Type: "CertificateIssued", Data: benchData, Meta: benchMeta}
	}
	return evs
}

func benchStream(i int) string { return fmt.Sprintf("certificate-%04d", i%benchStreams) }

// timed runs store and raw, in turn first, adding their times to the totals.
func timed(i int, tStore, tRaw *time.Duration, store, raw func()) {
	first, second, t1, t2 := store, raw, tStore, tRaw
	if i%2 == 1 {
		first, second, t1, t2 = raw, store, tRaw, tStore
	}
	t0 := time.Now()
	first()
	mid := time.Now()
	second()
	*t1 += mid.Sub(t0)
	*t2 += time.Since(mid)
}

func report(b *testing.B, events int, store, raw time.Duration) {
	b.ReportMetric(float64(events)/store.Seconds(), "events/s")
	b.ReportMetric(float64(events)/raw.Seconds(), "raw-events/s")
	b.ReportMetric(raw.Seconds()/store.Seconds(), "x-raw")
}

// rawDSN opens path with the settings the store uses for writing.
const rawDSN = "?_pragma=busy_timeout(10000)&_pragma=foreign_keys(1)&_pragma=synchronous(FULL)&_txlock=immediate"

// rawInserter is the baseline of BenchmarkAppend: the same rows inserted into a copy of the
// store's events table by one prepared statement, one transaction per batch, and nothing else
// (no expected-version check, no validation, values computed in advance).
type rawInserter struct {
	db       *sql.DB
	ins      *sql.Stmt
	meta     string
	versions [benchStreams]int64
	prefix   string
	path     string
}

func newRawInserter(b *testing.B, path, prefix string) *rawInserter {
	if path == "" {
		path = filepath.Join(b.TempDir(), "raw.db")
		st, err := sqlite.Open(context.Background(), path) // creates the schema
		if err != nil {
			b.Fatal(err)
		}
		st.Close()
	}
	db, err := sql.Open("sqlite", "file:"+path+rawDSN)
	if err != nil {
		b.Fatal(err)
	}
	db.SetMaxOpenConns(1)
	b.Cleanup(func() { db.Close() })
	ins, err := db.Prepare(`INSERT INTO events (id, stream, version, type, schema, data, meta, tenant, recorded_at, occurred_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { ins.Close() })
	meta, _ := benchMeta.MarshalJSON()
	return &rawInserter{db: db, ins: ins, meta: string(meta), prefix: prefix, path: path}
}

// ids returns n new event IDs. The raw inserts use UUIDv7 as the store does, so that both insert
// at the end of the ID index of the file they share.
func ids(n int) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		id := uuid.Must(uuid.NewV7())
		out[i] = id[:]
	}
	return out
}

func (r *rawInserter) insert(b *testing.B, ctx context.Context, i int, ids [][]byte) {
	tx, err := r.db.BeginTx(ctx, nil)
	if err != nil {
		b.Fatal(err)
	}
	stmt := tx.StmtContext(ctx, r.ins)
	stream := r.prefix + benchStream(i)
	now := time.Now().UnixMicro()
	for _, id := range ids {
		r.versions[i%benchStreams]++
		if _, err := stmt.ExecContext(ctx, id, stream, r.versions[i%benchStreams], "CertificateIssued", int64(1), benchData, r.meta, benchMeta.Tenant, now, now); err != nil {
			b.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkAppend appends batches of 1 and 100 events with Any to 100 streams, each followed by
// the same rows inserted raw.
func BenchmarkAppend(b *testing.B) {
	for _, batch := range []int{1, 100} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			ctx := context.Background()
			st := open(b)
			raw := newRawInserter(b, st.Path(), "raw-")
			evs := benchEvents(batch)
			var tStore, tRaw time.Duration
			for i := 0; b.Loop(); i++ {
				rawIDs := ids(batch)
				timed(i, &tStore, &tRaw, func() {
					if _, err := st.Append(ctx, benchStream(i), strata.Any, evs...); err != nil {
						b.Fatal(err)
					}
				}, func() { raw.insert(b, ctx, i, rawIDs) })
			}
			report(b, b.N*batch, tStore, tRaw)
		})
	}
}

const readEvents = 50_000

// fill appends readEvents events to st in batches of 1000.
func fill(b *testing.B, st *sqlite.Store) {
	ctx := context.Background()
	evs := benchEvents(1000)
	for i := range readEvents / 1000 {
		if _, err := st.Append(ctx, benchStream(i), strata.Any, evs...); err != nil {
			b.Fatal(err)
		}
	}
}

// rawSelect is the baseline of BenchmarkReadAll: the same rows paged by position with the same
// page size, scanned into plain variables.
func rawSelect(b *testing.B, ctx context.Context, db *sql.DB) int {
	var (
		pos, version, schema, recorded, occurred int64
		id                                       sql.RawBytes
		stream, typ, meta                        string
		data                                     []byte
	)
	n, after := 0, int64(0)
	for {
		rows, err := db.QueryContext(ctx, `SELECT position, id, stream, version, type, schema, data, meta, recorded_at, occurred_at FROM events WHERE position > ? ORDER BY position LIMIT 1000`, after)
		if err != nil {
			b.Fatal(err)
		}
		page := 0
		for rows.Next() {
			if err := rows.Scan(&pos, &id, &stream, &version, &typ, &schema, &data, &meta, &recorded, &occurred); err != nil {
				b.Fatal(err)
			}
			page++
		}
		if err := rows.Close(); err != nil {
			b.Fatal(err)
		}
		n += page
		after = pos
		if page < 1000 {
			return n
		}
	}
}

// BenchmarkReadAll reads a log of 50k events with ReadAll, then with a raw paged SELECT on the
// same file.
func BenchmarkReadAll(b *testing.B) {
	ctx := context.Background()
	st := open(b)
	fill(b, st)
	db, err := sql.Open("sqlite", "file:"+st.Path()+"?_pragma=busy_timeout(10000)&_pragma=query_only(1)")
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	var tStore, tRaw time.Duration
	for i := 0; b.Loop(); i++ {
		var n, m int
		timed(i, &tStore, &tRaw, func() {
			for _, err := range st.ReadAll(ctx, strata.ReadAllOptions{}) {
				if err != nil {
					b.Fatal(err)
				}
				n++
			}
		}, func() { m = rawSelect(b, ctx, db) })
		if n != readEvents || m != readEvents {
			b.Fatalf("read %d and %d events, want %d", n, m, readEvents)
		}
	}
	report(b, b.N*readEvents, tStore, tRaw)
}
