package mysql

import (
	"database/sql"
	"testing"

	"github.com/google/uuid"

	"github.com/strata-events/strata"
	"github.com/strata-events/strata/ledger/ledgertest"
)

func rawExec(t testing.TB, st strata.Store, stmts ...string) func(args ...[]any) {
	t.Helper()
	return func(args ...[]any) {
		db, err := sql.Open("mysql", st.(*Store).dsn)
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
	serverConfig(t)
	newStore := func(t testing.TB) strata.Store { return newStore(t) }
	ledgertest.Run(t, newStore)
	ledgertest.RunTamper(t, newStore, ledgertest.Tamper{
		EditData: func(t testing.TB, st strata.Store, e strata.Event, data []byte) {
			rawExec(t, st, "UPDATE events SET data = ? WHERE id = ?")([]any{data, e.ID[:]})
		},
		CopyMeta: func(t testing.TB, st strata.Store, to, from strata.Event) {
			rawExec(t, st, "UPDATE events e JOIN events f ON f.id = ? SET e.meta = f.meta WHERE e.id = ?")([]any{from.ID[:], to.ID[:]})
		},
		Delete: func(t testing.TB, st strata.Store, e strata.Event) {
			rawExec(t, st, "DELETE FROM events WHERE id = ?")([]any{e.ID[:]})
		},
		Swap: func(t testing.TB, st strata.Store, a, b strata.Event) {
			pa, pb := a.Position.Event, b.Position.Event
			rawExec(t, st,
				"UPDATE events SET position = -1 WHERE position = ?",
				"UPDATE events SET position = ? WHERE position = ?",
				"UPDATE events SET position = ? WHERE position = -1",
			)([]any{pa}, []any{pa, pb}, []any{pb})
		},
		InsertAfter: func(t testing.TB, st strata.Store, after strata.Event, id uuid.UUID) {
			p := after.Position.Event
			rawExec(t, st,
				"UPDATE events SET position = position + 1 WHERE position > ? ORDER BY position DESC",
				"UPDATE log_head SET position = position + 1 WHERE id = 1",
				"INSERT INTO events (position, id, stream, version, type, schema_version, data, meta, tenant, recorded_at, occurred_at)"+
					" SELECT position + 1, ?, 'certificate-EVIL', 1, type, schema_version, data, meta, tenant, recorded_at, occurred_at FROM events WHERE position = ?",
			)([]any{p}, nil, []any{id[:], p})
		},
	})
}
