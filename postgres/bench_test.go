package postgres_test

import (
	"context"
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/strata-events/strata"
	"github.com/strata-events/strata/postgres"
)

// The benchmarks compare the store with raw statements on a table of the same shape
// (raw_events: LIKE events INCLUDING ALL, so the same columns, identity, constraints and
// indexes) in the same run; only ratios taken side by side mean anything.
//
//	go test -run '^$' -bench . -benchtime 5s ./postgres/

const benchPayload = `{"serial":"7F3A","subjectDN":"CN=Alice,O=Acme","validTo":"2026-03-14T09:00:00Z"}`

var benchMeta = strata.Metadata{Tenant: "acme", Principal: "alice", Correlation: "c-1"}

// benchEnv opens a store and a pool of its own size on a fresh schema with raw_events.
func benchEnv(b *testing.B) (*postgres.Store, *pgxpool.Pool, *env) {
	b.Helper()
	e := newEnv(b)
	newPool := func(searchPath string) *pgxpool.Pool {
		cfg, err := pgxpool.ParseConfig(e.dsn)
		if err != nil {
			b.Fatal(err)
		}
		cfg.MaxConns = 16
		cfg.ConnConfig.RuntimeParams["jit"] = "off"
		if searchPath != "" {
			cfg.ConnConfig.RuntimeParams["search_path"] = searchPath
		}
		pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(pool.Close)
		return pool
	}
	s, err := postgres.Open(context.Background(), "", postgres.WithPool(newPool("")), postgres.WithSchema(e.schema))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	pool := newPool(e.schema)
	e.exec("CREATE TABLE raw_events (LIKE events INCLUDING ALL)")
	return s, pool, e
}

func benchEvents(n int) []strata.EventData {
	evs := make([]strata.EventData, n)
	for i := range evs {
		evs[i] = strata.EventData{Type: "CertificateIssued", Data: []byte(benchPayload), Meta: benchMeta}
	}
	return evs
}

// rawInsert is the baseline: one multi-row INSERT of prepared arrays, as lean as a client can
// write the same rows, in a transaction of its own.
const rawInsert = `INSERT INTO raw_events (tx, version, recorded_at, occurred_at, id, schema, stream, type, tenant, meta, data)
	SELECT pg_current_xact_id()::text::bigint, $2::bigint + u.ord, now(), now(), u.id, 1, $1, 'CertificateIssued', $3, $4, u.data
	FROM unnest($5::uuid[], $6::bytea[]) WITH ORDINALITY AS u(id, data, ord)`

// rawInsertOne is the single-row baseline, sent as one statement (an implicit transaction).
const rawInsertOne = `INSERT INTO raw_events (tx, version, recorded_at, occurred_at, id, schema, stream, type, tenant, meta, data)
	VALUES (pg_current_xact_id()::text::bigint, $2, now(), now(), $3, 1, $1, 'CertificateIssued', $4, $5, $6)`

func rawAppend(ctx context.Context, pool *pgxpool.Pool, stream string, version int64, n int) error {
	meta, _ := benchMeta.MarshalJSON()
	if n == 1 {
		_, err := pool.Exec(ctx, rawInsertOne, stream, version+1, pgtype.UUID{Bytes: uuid.Must(uuid.NewV7()), Valid: true}, []byte(benchMeta.Tenant), meta, []byte(benchPayload))
		return err
	}
	ids := make([]pgtype.UUID, n)
	data := make([][]byte, n)
	for i := range ids {
		ids[i] = pgtype.UUID{Bytes: uuid.Must(uuid.NewV7()), Valid: true}
		data[i] = []byte(benchPayload)
	}
	return pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, rawInsert, stream, version, []byte(benchMeta.Tenant), meta, ids, data)
		return err
	})
}

// BenchmarkAppend appends batches of 1 and 100 events, from 1 and 8 clients each appending
// to its own stream, through the store and raw.
func BenchmarkAppend(b *testing.B) {
	for _, c := range []struct{ batch, clients int }{{1, 1}, {1, 8}, {100, 1}, {100, 8}} {
		for _, raw := range []bool{false, true} {
			name := fmt.Sprintf("store/batch=%d/clients=%d", c.batch, c.clients)
			if raw {
				name = fmt.Sprintf("raw/batch=%d/clients=%d", c.batch, c.clients)
			}
			b.Run(name, func(b *testing.B) {
				s, pool, _ := benchEnv(b)
				ctx := context.Background()
				// Each client appends to its own stream.
				client := func(next func() bool, stream string) {
					evs := benchEvents(c.batch)
					var version int64
					for next() {
						var err error
						if raw {
							err = rawAppend(ctx, pool, stream, version, c.batch)
						} else {
							for i := range evs {
								evs[i].ID = uuid.Nil
							}
							_, err = s.Append(ctx, stream, strata.Exact(version), evs...)
						}
						if err != nil {
							b.Error(err)
							return
						}
						version += int64(c.batch)
					}
				}
				b.ResetTimer()
				if c.clients == 1 {
					client(b.Loop, "bench-1")
				} else {
					var n atomic.Int64
					b.SetParallelism((c.clients + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0))
					b.RunParallel(func(pb *testing.PB) {
						client(pb.Next, fmt.Sprintf("bench-%d", n.Add(1)))
					})
				}
				b.ReportMetric(float64(b.N*c.batch)/b.Elapsed().Seconds(), "events/s")
			})
		}
	}
}

// BenchmarkReadAll reads a log of 100,000 events from the start, through the store and with
// raw paged SELECTs of the same columns.
func BenchmarkReadAll(b *testing.B) {
	const events, batch = 100_000, 1000
	s, pool, e := benchEnv(b)
	ctx := context.Background()
	evs := benchEvents(batch)
	for i := range events / batch {
		for j := range evs {
			evs[j].ID = uuid.Nil
		}
		if _, err := s.Append(ctx, fmt.Sprintf("bench-%d", i%10), strata.Any, evs...); err != nil {
			b.Fatal(err)
		}
	}
	e.exec("VACUUM ANALYZE events")

	b.Run("store", func(b *testing.B) {
		for b.Loop() {
			n := 0
			for _, err := range s.ReadAll(ctx, strata.ReadAllOptions{}) {
				if err != nil {
					b.Fatal(err)
				}
				n++
			}
			if n != events {
				b.Fatalf("read %d events", n)
			}
		}
		b.ReportMetric(float64(b.N*events)/b.Elapsed().Seconds(), "events/s")
	})
	b.Run("raw", func(b *testing.B) {
		for b.Loop() {
			if n := rawReadAll(b, ctx, pool); n != events {
				b.Fatalf("read %d events", n)
			}
		}
		b.ReportMetric(float64(b.N*events)/b.Elapsed().Seconds(), "events/s")
	})
}

// rawReadAll pages through events by (tx, seq) into the same Go types, without a horizon and
// without decoding metadata.
func rawReadAll(b *testing.B, ctx context.Context, pool *pgxpool.Pool) int {
	var tx, seq int64
	n := 0
	for {
		rows, _ := pool.Query(ctx, `SELECT seq, tx, version, recorded_at, occurred_at, id, schema, stream, type, meta, data
			FROM events WHERE (tx, seq) > ($1, $2) ORDER BY tx, seq LIMIT 1000`, tx, seq)
		var (
			page               []strata.Event
			id                 pgtype.UUID
			schema             int32
			meta               []byte
			recorded, occurred time.Time
		)
		for rows.Next() {
			var ev strata.Event
			if err := rows.Scan(&seq, &tx, &ev.Version, &recorded, &occurred, &id, &schema, &ev.Stream, &ev.Type, &meta, (*[]byte)(&ev.Data)); err != nil {
				b.Fatal(err)
			}
			ev.ID = id.Bytes
			ev.RecordedAt, ev.OccurredAt = recorded.UTC(), occurred.UTC()
			page = append(page, ev)
		}
		if err := rows.Err(); err != nil {
			b.Fatal(err)
		}
		n += len(page)
		if len(page) < 1000 {
			return n
		}
	}
}
