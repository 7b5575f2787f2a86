package postgres_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/strata-events/strata"
	"github.com/strata-events/strata/hub"
	"github.com/strata-events/strata/postgres"
)

// TestHorizonNeverGoesBack holds a foreign transaction with an ID open, so the cluster's xmin
// stays behind every event, and lets the store's readers pass it through the pg_locks horizon.
// The foreign transaction then reads the events table, which puts it among the lock holders
// that horizon is computed from. A read must still return what an earlier read returned: the
// hub hands a subscription over from its catch-up read to the live feed at the head it has
// dispatched, trusting that the read reaches that head, and a read that fell back behind it
// lost the events in between for that subscription for ever.
func TestHorizonNeverGoesBack(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	s := e.open(postgres.WithPoll(20 * time.Millisecond))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	conn, err := pgx.Connect(ctx, e.dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(context.Background())
	if _, err := tx.Exec(ctx, "SELECT pg_current_xact_id()"); err != nil {
		t.Fatal(err)
	}

	h := hub.New(s)
	go h.Run(ctx)
	mustAppend(t, s, "certificate-0001", strata.NoStream, event("CertificateIssued", `{}`))
	if evs := readAll(t, s, strata.ReadAllOptions{}); len(evs) != 1 {
		t.Fatalf("ReadAll held back by a foreign transaction: %d events", len(evs))
	}
	deadline := time.Now().Add(30 * time.Second)
	for h.Head() == strata.Start {
		if time.Now().After(deadline) {
			t.Fatal("the hub did not dispatch the event")
		}
		time.Sleep(10 * time.Millisecond)
	}

	// The foreign transaction now holds a lock on the events table, below the event's tx.
	if _, err := tx.Exec(ctx, "SELECT count(*) FROM "+pgx.Identifier{e.schema, "events"}.Sanitize()); err != nil {
		t.Fatal(err)
	}
	if evs := readAll(t, s, strata.ReadAllOptions{}); len(evs) != 1 {
		t.Errorf("a read after the foreign transaction touched the events table returned %d events, an earlier one 1", len(evs))
	}

	// A subscriber that catches up from the start joins the live feed at the hub's head.
	got := make(chan strata.Event, 4)
	go func() {
		for ev, err := range h.Subscribe(ctx, nil, hub.From(strata.Start)) {
			if err != nil {
				return
			}
			got <- ev
		}
	}()
	time.Sleep(200 * time.Millisecond) // let the catch-up register with the live feed
	mustAppend(t, s, "certificate-0002", strata.NoStream, event("CertificateIssued", `{}`))
	if err := tx.Rollback(ctx); err != nil { // the horizon moves on: the live feed goes on
		t.Fatal(err)
	}
	var streams []string
	for len(streams) < 2 {
		select {
		case ev := <-got:
			streams = append(streams, ev.Stream)
		case <-time.After(30 * time.Second):
			t.Fatalf("hub subscriber from the start saw %v, want certificate-0001 then certificate-0002", streams)
		}
	}
	if streams[0] != "certificate-0001" || streams[1] != "certificate-0002" {
		t.Fatalf("hub subscriber from the start saw %v, want certificate-0001 then certificate-0002 (an event the hub had dispatched was skipped in the handover)", streams)
	}
}
