package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/google/uuid"

	"github.com/strata-events/strata"
	"github.com/strata-events/strata/internal/testenv"
)

// TestGroupSetsAsideStoredIDs writes one group in which one append carries an event ID that
// the log holds already (in another stream, so that it passes its version check and fails the
// group's statement): that append alone is handed back to its caller, to be resolved on its
// own, and the others are still committed together, in one transaction.
func TestGroupSetsAsideStoredIDs(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dsn := testenv.Postgres(t)
	s, err := Open(ctx, dsn, WithSchema(testenv.PostgresSchema(t, dsn)), WithGroupCommit(1))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	retried := []strata.EventData{{ID: uuid.New(), Type: "R", Data: json.RawMessage(`{}`)}}
	if _, err := s.Append(ctx, "retried", strata.NoStream, retried...); err != nil {
		t.Fatal(err)
	}
	request := func(stream string, evs ...strata.EventData) *groupReq {
		t.Helper()
		prepared, err := strata.PrepareAppend("append", []strata.StreamAppend{{Stream: stream, Expected: strata.Any, Events: evs}})
		if err != nil {
			t.Fatal(err)
		}
		return &groupReq{ctx: ctx, op: "append", a: prepared[0], done: make(chan struct{})}
	}
	var batch []*groupReq
	for i := range 4 {
		batch = append(batch, request(fmt.Sprintf("fresh-%d", i), strata.EventData{Type: "E", Data: json.RawMessage(`{}`)}))
		if i == 1 {
			batch = append(batch, request("moved", retried...))
		}
	}
	s.group.write(batch)

	commits := map[uint64]bool{}
	for i, r := range batch {
		<-r.done
		if r.a.Stream == "moved" {
			if !r.alone {
				t.Errorf("the append with a stored ID was not handed back to be resolved alone: %+v %v %v", r.res, r.err, r.conflict)
			}
			continue
		}
		if r.alone || r.err != nil || r.conflict != nil || r.res.LastVersion != 1 {
			t.Errorf("append %d to %s: alone %v, %+v %v %v; want it written in the group", i, r.a.Stream, r.alone, r.res, r.err, r.conflict)
		}
		for e, err := range s.ReadStream(ctx, r.a.Stream, strata.ReadStreamOptions{}) {
			if err != nil {
				t.Fatal(err)
			}
			commits[e.Position.Commit] = true
		}
	}
	if len(commits) != 1 {
		t.Errorf("the fresh appends were committed in %d transactions, want 1", len(commits))
	}
}
