package sqlite_test

import (
	"database/sql"
	"testing"

	"github.com/google/uuid"

	"github.com/strata-events/strata"
	"github.com/strata-events/strata/ledger/ledgertest"
	"github.com/strata-events/strata/sqlite"
)

// rawExec runs statements on the store's file through a connection of its own, as an attacker
// with the file would.
func rawExec(t testing.TB, st strata.Store, stmts ...string) func(args ...[]any) {
	t.Helper()
	return func(args ...[]any) {
		db, err := sql.Open("sqlite", st.(*sqlite.Store).Path()+"?_pragma=busy_timeout(10000)")
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		for i, q := range stmts {
			var a []any
			if i < len(args) {
				a = args[i]
			}
			if _, err := db.Exec(q, a...); err != nil {
				t.Fatalf("%s: %v", q, err)
			}
		}
	}
}

func TestLedger(t *testing.T) {
	newStore := func(t testing.TB) strata.Store { return open(t) }
	ledgertest.Run(t, newStore)
	ledgertest.RunTamper(t, newStore, ledgertest.Tamper{
		EditData: func(t testing.TB, st strata.Store, e strata.Event, data []byte) {
			rawExec(t, st, `UPDATE events SET data = ? WHERE id = ?`)([]any{data, e.ID[:]})
		},
		CopyMeta: func(t testing.TB, st strata.Store, to, from strata.Event) {
			rawExec(t, st, `UPDATE events SET meta = (SELECT meta FROM events WHERE id = ?) WHERE id = ?`)([]any{from.ID[:], to.ID[:]})
		},
		Delete: func(t testing.TB, st strata.Store, e strata.Event) {
			rawExec(t, st, `DELETE FROM events WHERE id = ?`)([]any{e.ID[:]})
		},
		Swap: func(t testing.TB, st strata.Store, a, b strata.Event) {
			pa, pb := int64(a.Position.Event), int64(b.Position.Event)
			rawExec(t, st,
				`UPDATE events SET position = -1 WHERE position = ?`,
				`UPDATE events SET position = ? WHERE position = ?`,
				`UPDATE events SET position = ? WHERE position = -1`,
			)([]any{pa}, []any{pa, pb}, []any{pb})
		},
		InsertAfter: func(t testing.TB, st strata.Store, after strata.Event, id uuid.UUID) {
			p := int64(after.Position.Event)
			rawExec(t, st,
				`UPDATE events SET position = -(position + 1) WHERE position > ?`,
				`UPDATE events SET position = -position WHERE position < 0`,
				`INSERT INTO events (position, id, stream, version, type, schema, data, meta, tenant, recorded_at, occurred_at)
					SELECT position + 1, ?, 'certificate-EVIL', 1, type, schema, data, meta, tenant, recorded_at, occurred_at FROM events WHERE position = ?`,
			)([]any{p}, nil, []any{id[:], p})
		},
	})
}
