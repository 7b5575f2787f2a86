package postgres_test

import (
	"bytes"
	"context"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/strata-events/strata"
	"github.com/strata-events/strata/postgres"
)

// TestTombstoneMetaBytes checks that the metadata TombstoneEvents writes, in SQL for a plain
// tenant and from Go for the others, is byte for byte strata.Metadata's canonical form, for a
// tenant of every single byte and some longer ones, also on connections with
// standard_conforming_strings off (a pool of the application's, WithPool), where a '\x..'
// literal is read as a string escape.
func TestTombstoneMetaBytes(t *testing.T) {
	t.Parallel()
	tenants := []string{"acme", "a&b", "a<b>", `q"uote`, `back\slash`, "tab\there", "é", "nul\x00here", "\x7f", "a b~!"}
	for c := range 128 { // a tenant is valid UTF-8
		tenants = append(tenants, string([]byte{byte(c)}))
	}
	for _, scs := range []string{"on", "off"} {
		t.Run("standard_conforming_strings="+scs, func(t *testing.T) {
			e := newEnv(t)
			e.open() // creates the schema on a connection of the default settings
			ctx := context.Background()
			pc, err := pgxpool.ParseConfig(e.dsn)
			if err != nil {
				t.Fatal(err)
			}
			pc.ConnConfig.RuntimeParams["standard_conforming_strings"] = scs
			pc.ConnConfig.RuntimeParams["escape_string_warning"] = "off"
			pool, err := pgxpool.NewWithConfig(ctx, pc)
			if err != nil {
				t.Fatal(err)
			}
			defer pool.Close()
			s := e.open(postgres.WithPool(pool))
			var ts []strata.Tombstone
			for _, tenant := range tenants {
				if _, err := s.Append(ctx, "odd-tenants", strata.Any, strata.EventData{Type: "T", Data: []byte(`{"n":1}`), Meta: strata.Metadata{Tenant: tenant, Principal: "p"}}); err != nil {
					t.Fatal(err)
				}
			}
			for ev, err := range s.ReadStream(ctx, "odd-tenants", strata.ReadStreamOptions{}) {
				if err != nil {
					t.Fatal(err)
				}
				ts = append(ts, strata.Tombstone{EventID: ev.ID, LeafHash: bytes.Repeat([]byte{7}, 32), Run: ev.ID})
			}
			if n, err := s.TombstoneEvents(ctx, ts); err != nil || n != len(tenants) {
				t.Fatalf("tombstone %d events: %d, %v", len(tenants), n, err)
			}
			conn, err := pgx.Connect(ctx, e.dsn)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close(ctx)
			rows, _ := conn.Query(ctx, `SELECT tenant, meta FROM `+pgx.Identifier{e.schema, "events"}.Sanitize()+` ORDER BY version`)
			got, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) ([2][]byte, error) {
				var tm [2][]byte
				err := r.Scan(&tm[0], &tm[1])
				return tm, err
			})
			if err != nil || len(got) != len(tenants) {
				t.Fatalf("%d rows, %v", len(got), err)
			}
			for i, tm := range got {
				want, _ := strata.TombstoneMeta(strata.Metadata{Tenant: tenants[i]}).MarshalJSON()
				if string(tm[0]) != tenants[i] || !bytes.Equal(tm[1], want) {
					t.Errorf("tenant %q: metadata %q, want %q", tm[0], tm[1], want)
				}
			}
		})
	}
}
