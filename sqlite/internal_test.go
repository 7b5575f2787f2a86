package sqlite

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/strata-events/strata"
	"github.com/strata-events/strata/internal/projstore"
)

func openInternal(t *testing.T, opts ...Option) *Store {
	t.Helper()
	s, err := Open(context.Background(), filepath.Join(t.TempDir(), "strata.db"), opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestPragmas(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		opts []Option
		sync int
	}{
		{nil, 2},
		{[]Option{WithSynchronous(SyncNormal)}, 1},
	} {
		s := openInternal(t, c.opts...)
		ctx := context.Background()
		var mode string
		var sync, fk, busy int
		if err := s.wr.conn.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil || mode != "wal" {
			t.Fatalf("journal mode %q, %v", mode, err)
		}
		if err := s.wr.conn.QueryRowContext(ctx, "PRAGMA synchronous").Scan(&sync); err != nil || sync != c.sync {
			t.Fatalf("synchronous %d, %v; want %d", sync, err, c.sync)
		}
		if err := s.wr.conn.QueryRowContext(ctx, "PRAGMA foreign_keys").Scan(&fk); err != nil || fk != 1 {
			t.Fatalf("foreign keys %d, %v", fk, err)
		}
		if err := s.r.QueryRow("PRAGMA busy_timeout").Scan(&busy); err != nil || busy != 10000 {
			t.Fatalf("busy timeout %d, %v", busy, err)
		}
		if _, err := s.r.Exec("DELETE FROM events"); err == nil {
			t.Fatalf("a read connection could write")
		}
	}
}

// TestQueryPlans checks that no query of the store scans the whole events table.
func TestQueryPlans(t *testing.T) {
	t.Parallel()
	s := openInternal(t)
	all, _ := readAllQuery(strata.Filter{})
	tenant, _ := readAllQuery(strata.Filter{Tenant: "acme", Types: []string{"A"}})
	prefix, _ := readAllQuery(strata.Filter{StreamPrefix: "cert", Types: []string{"A", "B"}})
	for _, q := range []string{
		sqlVersion, all, tenant, prefix,
		streamsQuery(false, false), streamsQuery(true, true),
		`SELECT ` + eventCols + ` FROM events WHERE stream = ? AND version >= ? ORDER BY version LIMIT ?`,
		`SELECT ` + eventCols + ` FROM events WHERE stream = ? AND version <= ? ORDER BY version DESC LIMIT ?`,
	} {
		args := make([]any, 8) // more than any query binds; SQLite ignores the rest
		for i := range args {
			args[i] = "x"
		}
		n := strings.Count(q, "?") - strings.Count(q, "?1") - strings.Count(q, "?2") - strings.Count(q, "?3")
		if strings.Contains(q, "?1") {
			n = 3
		}
		rows, err := s.r.Query("EXPLAIN QUERY PLAN "+q, args[:n]...)
		if err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		var plan []string
		for rows.Next() {
			var id, parent, unused int
			var detail string
			if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
				t.Fatal(err)
			}
			plan = append(plan, detail)
		}
		rows.Close()
		for _, p := range plan {
			if strings.HasPrefix(p, "SCAN events") || strings.Contains(p, "TEMP B-TREE") {
				t.Errorf("query %s\nhas plan %q", strings.Join(strings.Fields(q), " "), plan)
			}
		}
	}
}

// TestWriterReconnects discards the write connection, as abort does when a transaction will not
// roll back: the next append opens a new one.
func TestWriterReconnects(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := openInternal(t)
	if err := s.wr.acquire(ctx, s.closed); err != nil {
		t.Fatal(err)
	}
	if _, err := s.wr.begin.ExecContext(ctx); err != nil {
		t.Fatal(err)
	}
	s.wr.discard() // with a transaction open: it must not hold the write lock after this
	s.wr.release()
	for i := range 2 {
		if _, err := s.Append(ctx, "certificate-1", strata.Any, strata.EventData{Type: "E"}); err != nil {
			t.Fatalf("append %d after discarding the connection: %v", i, err)
		}
	}
	if info, err := s.StreamInfo(ctx, "certificate-1"); err != nil || info.Version != 2 {
		t.Fatalf("stream info %+v, %v", info, err)
	}
}

// TestCancelledProjectionTxLeavesTheNextAlone: a projection transaction whose context ends
// while it runs is rolled back before the writer passes on. database/sql rolls back a
// transaction begun with a context that ends from a goroutine of its own; when that rollback
// ran after the writer had passed on, it ended the next transaction on the connection, whose
// COMMIT then failed with "cannot commit - no transaction is active".
func TestCancelledProjectionTxLeavesTheNextAlone(t *testing.T) {
	t.Parallel()
	s := openInternal(t)
	b := projBackend{s}
	bg := context.Background()
	if err := b.Tx(bg, "test", func(c projstore.Conn) error {
		_, err := c.Exec(bg, "CREATE TABLE tx_race (n INTEGER)")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	for i := range 1000 {
		ctx, cancel := context.WithCancel(bg)
		_ = b.Tx(ctx, "test", func(c projstore.Conn) error {
			if _, err := c.Exec(ctx, "INSERT INTO tx_race VALUES (?)", -1); err != nil {
				return err
			}
			cancel()
			return ctx.Err()
		})
		if err := b.Tx(bg, "test", func(c projstore.Conn) error {
			_, err := c.Exec(bg, "INSERT INTO tx_race VALUES (?)", i)
			return err
		}); err != nil {
			t.Fatalf("round %d: the transaction after a cancelled one: %v", i, err)
		}
	}
	var n, cancelled int
	if err := s.wr.conn.QueryRowContext(bg, "SELECT count(*), count(*) FILTER (WHERE n < 0) FROM tx_race").Scan(&n, &cancelled); err != nil || n != 1000 || cancelled != 0 {
		t.Fatalf("%d rows, %d of cancelled transactions, %v; want 1000 and 0", n, cancelled, err)
	}
}
