package postgres_test

import (
	"sync"
	"testing"

	"github.com/google/uuid"

	"github.com/strata-events/strata"
	"github.com/strata-events/strata/ledger/ledgertest"
)

func TestLedger(t *testing.T) {
	var envs sync.Map // strata.Store → *env
	newStore := func(t testing.TB) strata.Store {
		e := newEnv(t)
		s := e.open()
		envs.Store(strata.Store(s), e)
		return s
	}
	envOf := func(st strata.Store) *env {
		e, _ := envs.Load(st)
		return e.(*env)
	}
	ledgertest.Run(t, newStore)
	ledgertest.RunTamper(t, newStore, ledgertest.Tamper{
		EditData: func(t testing.TB, st strata.Store, e strata.Event, data []byte) {
			envOf(st).exec(`UPDATE events SET data = $1 WHERE id = $2`, data, e.ID)
		},
		CopyMeta: func(t testing.TB, st strata.Store, to, from strata.Event) {
			envOf(st).exec(`UPDATE events SET meta = (SELECT meta FROM events WHERE id = $1) WHERE id = $2`, from.ID, to.ID)
		},
		Delete: func(t testing.TB, st strata.Store, e strata.Event) {
			envOf(st).exec(`DELETE FROM events WHERE id = $1`, e.ID)
		},
		Swap: func(t testing.TB, st strata.Store, a, b strata.Event) {
			// The events come from separate appends, so their tx differ: exchanging tx
			// exchanges their places in (tx, seq) order.
			envOf(st).exec(`UPDATE events SET tx = CASE id WHEN $1::uuid THEN $4::bigint ELSE $3::bigint END WHERE id IN ($1, $2)`,
				a.ID, b.ID, int64(a.Position.Commit), int64(b.Position.Commit))
		},
		InsertAfter: func(t testing.TB, st strata.Store, after strata.Event, id uuid.UUID) {
			envOf(st).exec(`INSERT INTO events (seq, tx, version, recorded_at, occurred_at, id, schema, stream, type, tenant, meta, data)
				OVERRIDING SYSTEM VALUE
				SELECT seq + 1000000, tx, 1, recorded_at, occurred_at, $1, schema, 'certificate-EVIL', type, tenant, meta, data FROM events WHERE id = $2`, id, after.ID)
		},
	})
}
