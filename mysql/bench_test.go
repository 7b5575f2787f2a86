package mysql

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/strata-events/strata"
)

// The benchmarks compare strata's append and read with raw SQL of the same shape on the same
// server in the same run: "raw" inserts the same rows into a copy of the events table (same
// columns and indexes) in one transaction per batch, with no stream check and no sequencer, and
// reads them back by primary key in pages. Only ratios between sub-benchmarks of one run mean
// anything.

var benchData = []byte(`{"serial":"7F3A","subjectDN":"CN=Alice,O=Example","subjectEmail":"alice@example.org","validFrom":"2023-03-14T09:00:00Z","validTo":"2025-03-14T09:00:00Z"}`)

func benchEvents(n int) []strata.EventData {
	evs := make([]strata.EventData, n)
	for i := range evs {
		evs[i] = strata.EventData{Type: "CertificateIssued", Data: benchData, Meta: strata.Metadata{Tenant: "acme", Principal: "alice"}}
	}
	return evs
}

// rawInsert inserts a batch as an application would without strata: one transaction, one
// multi-row INSERT.
func rawInsert(ctx context.Context, db *sql.DB, stream string, first int64, evs []strata.EventData) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	var q strings.Builder
	q.WriteString("INSERT INTO raw_events (id, stream, version, type, schema_version, data, meta, tenant, recorded_at, occurred_at) VALUES ")
	args := make([]any, 0, 10*len(evs))
	now := time.Now().UTC()
	for i, e := range evs {
		if i > 0 {
			q.WriteByte(',')
		}
		q.WriteString("(?,?,?,?,?,?,?,?,?,?)")
		id := uuid.Must(uuid.NewV7())
		meta, _ := e.Meta.MarshalJSON()
		args = append(args, id[:], stream, first+int64(i), e.Type, 1, []byte(e.Data), meta, e.Meta.Tenant, now, now)
	}
	if _, err := tx.ExecContext(ctx, q.String(), args...); err != nil {
		return err
	}
	return tx.Commit()
}

func benchStore(b *testing.B) *Store {
	s := newStore(b)
	for _, stmt := range []string{
		"CREATE TABLE raw_events LIKE events",
		"CREATE TABLE raw_head LIKE log_head",
		"INSERT INTO raw_head VALUES (1, 0)",
	} {
		if _, err := s.db.Exec(stmt); err != nil {
			b.Fatal(err)
		}
	}
	return s
}

// serialInsert is the correct but slow alternative to the sequencer: each append holds the
// log_head row from before its insert to its commit and numbers its events itself, so writers
// commit one at a time in position order.
func serialInsert(ctx context.Context, db *sql.DB, stream string, first int64, evs []strata.EventData) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	var head int64
	if err := tx.QueryRowContext(ctx, "SELECT position FROM raw_head WHERE id = 1 FOR UPDATE").Scan(&head); err != nil {
		return err
	}
	var q strings.Builder
	q.WriteString("INSERT INTO raw_events (position, id, stream, version, type, schema_version, data, meta, tenant, recorded_at, occurred_at) VALUES ")
	args := make([]any, 0, 11*len(evs))
	now := time.Now().UTC()
	for i, e := range evs {
		if i > 0 {
			q.WriteByte(',')
		}
		q.WriteString("(?,?,?,?,?,?,?,?,?,?,?)")
		id := uuid.Must(uuid.NewV7())
		meta, _ := e.Meta.MarshalJSON()
		args = append(args, head+int64(i)+1, id[:], stream, first+int64(i), e.Type, 1, []byte(e.Data), meta, e.Meta.Tenant, now, now)
	}
	if _, err := tx.ExecContext(ctx, q.String(), args...); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, "UPDATE raw_head SET position = ? WHERE id = 1", head+int64(len(evs))); err != nil {
		return err
	}
	return tx.Commit()
}

// BenchmarkAppend appends batches of 1 and 100 events with 1 and 8 clients, each client to its
// own stream, three ways: raw (the rows alone, one transaction per batch), serial (raw plus a
// lock held to commit that numbers the events: gap-free by serializing writers) and strata.
// The machine's speed drifts by tens of percent within seconds, so each iteration runs a block
// of each kind in turn and the figures are summed per kind: ratios are taken under the same
// conditions. A strata block ends when the sequencer has stamped every event of it, so its time
// includes sequencing.
func BenchmarkAppend(b *testing.B) {
	for _, batch := range []int{1, 100} {
		for _, clients := range []int{1, 8} {
			b.Run(fmt.Sprintf("batch=%d/clients=%d", batch, clients), func(b *testing.B) {
				s := benchStore(b)
				ctx := context.Background()
				evs := benchEvents(batch)
				opsPerBlock := max(16, 2000/batch) // per block, over all clients
				const kinds = 3                    // raw, serial, strata
				versions := make([][kinds]int64, clients)
				var elapsed [kinds]time.Duration
				block := func(kind int) {
					start := time.Now()
					var wg sync.WaitGroup
					for c := range clients {
						wg.Go(func() {
							stream := fmt.Sprintf("certificate-%d-%d", kind, c)
							for range opsPerBlock / clients {
								v := &versions[c][kind]
								var err error
								switch kind {
								case 0:
									err = rawInsert(ctx, s.db, stream, *v+1, evs)
								case 1:
									err = serialInsert(ctx, s.db, stream, *v+1, evs)
								default:
									_, err = s.Append(ctx, stream, strata.Exact(*v), evs...)
								}
								if err != nil {
									b.Error(err)
									return
								}
								*v += int64(batch)
							}
						})
					}
					wg.Wait()
					if kind == 2 {
						if err := s.sequence(ctx); err != nil {
							b.Fatal(err)
						}
					}
					elapsed[kind] += time.Since(start)
				}
				for b.Loop() {
					for kind := range kinds {
						block(kind)
					}
				}
				events := float64(b.N * (opsPerBlock / clients) * clients * batch)
				raw := events / elapsed[0].Seconds()
				serial := events / elapsed[1].Seconds()
				str := events / elapsed[2].Seconds()
				b.ReportMetric(str, "events/s")
				b.ReportMetric(raw, "raw-events/s")
				b.ReportMetric(str/raw, "x-raw")
				b.ReportMetric(serial/raw, "serial-x-raw")
			})
		}
	}
}

// BenchmarkReadAll reads a log of 20,000 events from the start, through strata (ReadAll, in
// position order by a secondary index, with the sequencing check before each page) and raw
// (pages by primary key), alternating as BenchmarkAppend does.
func BenchmarkReadAll(b *testing.B) {
	const total = 20_000
	s := benchStore(b)
	ctx := context.Background()
	for i := range total / 1000 {
		if _, err := s.Append(ctx, fmt.Sprintf("certificate-%d", i), strata.NoStream, benchEvents(1000)...); err != nil {
			b.Fatal(err)
		}
	}
	if err := s.sequence(ctx); err != nil {
		b.Fatal(err)
	}
	if _, err := s.db.Exec("INSERT INTO raw_events SELECT * FROM events"); err != nil {
		b.Fatal(err)
	}
	var elapsed [2]time.Duration
	for b.Loop() {
		start := time.Now()
		if n, err := rawReadAll(ctx, s.db); err != nil || n != total {
			b.Fatalf("raw read %d events: %v", n, err)
		}
		elapsed[0] += time.Since(start)
		start = time.Now()
		n := 0
		for _, err := range s.ReadAll(ctx, strata.ReadAllOptions{}) {
			if err != nil {
				b.Fatal(err)
			}
			n++
		}
		if n != total {
			b.Fatalf("read %d events", n)
		}
		elapsed[1] += time.Since(start)
	}
	events := float64(b.N * total)
	raw, str := events/elapsed[0].Seconds(), events/elapsed[1].Seconds()
	b.ReportMetric(raw, "raw-events/s")
	b.ReportMetric(str, "events/s")
	b.ReportMetric(str/raw, "x-raw")
}

// rawReadAll pages through raw_events by primary key, decoding rows as strata does.
func rawReadAll(ctx context.Context, db *sql.DB) (int, error) {
	var after int64
	n := 0
	for {
		rows, err := db.QueryContext(ctx, "SELECT seq, id, stream, version, type, schema_version, data, meta, recorded_at, COALESCE(occurred_at, recorded_at) FROM raw_events WHERE seq > ? ORDER BY seq LIMIT ?", after, pageRows)
		if err != nil {
			return n, err
		}
		var page []strata.Event
		for rows.Next() {
			var e strata.Event
			var id, stream, typ, meta, data []byte
			if err := rows.Scan(&after, &id, &stream, &e.Version, &typ, &e.Schema, &data, &meta, &e.RecordedAt, &e.OccurredAt); err != nil {
				rows.Close()
				return n, err
			}
			e.ID, _ = uuid.FromBytes(id)
			if err := e.Meta.UnmarshalJSON(meta); err != nil {
				rows.Close()
				return n, err
			}
			e.Stream, e.Type, e.Data = string(stream), string(typ), data
			page = append(page, e)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return n, err
		}
		n += len(page)
		if len(page) < pageRows {
			return n, nil
		}
	}
}
