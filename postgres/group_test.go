package postgres_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/google/uuid"

	"github.com/strata-events/strata"
	"github.com/strata-events/strata/postgres"
)

// TestGroupCommit sends many appends at once to a store with one writer, so that most of them
// are committed in groups, and checks that each append gets its own outcome: the ones that fail
// their version check, replay an earlier append or reuse an event ID of another stream do not
// fail the others in their group, and the others are written exactly once.
func TestGroupCommit(t *testing.T) {
	t.Parallel()
	s := newEnv(t).open(postgres.WithGroupCommit(1))
	ctx := context.Background()
	const n = 48
	replay := []strata.EventData{{ID: uuid.New(), Type: "R", Data: json.RawMessage(`{}`)}}
	mustAppend(t, s, "replayed", strata.NoStream, replay...)
	taken := strata.EventData{ID: uuid.New(), Type: "T", Data: json.RawMessage(`{}`)}
	mustAppend(t, s, "taken", strata.NoStream, taken)

	for round := range 5 {
		var (
			wg    sync.WaitGroup
			start = make(chan struct{})
			res   = make([]strata.AppendResult, n)
			errs  = make([]error, n)
		)
		for i := range n {
			wg.Go(func() {
				<-start
				stream := fmt.Sprintf("group-%d-%d", round, i)
				switch i % 6 {
				case 0: // wrong expected version
					res[i], errs[i] = s.Append(ctx, stream, strata.Exact(7), event("E", `{}`))
				case 1: // a retry of an append that committed before
					res[i], errs[i] = s.Append(ctx, "replayed", strata.NoStream, replay...)
				case 2: // an event ID stored in another stream, in odd rounds: it fails its group
					// as a whole, whose appends are then retried one by one
					if round%2 == 1 {
						res[i], errs[i] = s.Append(ctx, stream, strata.Any, taken)
					} else {
						res[i], errs[i] = s.Append(ctx, stream, strata.NoStream, event("E", `{"i":1}`), event("E", `{"i":2}`))
					}
				default:
					res[i], errs[i] = s.Append(ctx, stream, strata.NoStream, event("E", `{"i":1}`), event("E", `{"i":2}`))
				}
			})
		}
		close(start)
		wg.Wait()
		for i := range n {
			stream := fmt.Sprintf("group-%d-%d", round, i)
			kind := i % 6
			if kind == 2 && round%2 == 0 {
				kind = 3
			}
			switch kind {
			case 0, 2:
				if !errors.Is(errs[i], strata.ErrConflict) {
					t.Errorf("round %d, append %d: %+v %v, want a conflict", round, i, res[i], errs[i])
				}
				if info, err := s.StreamInfo(ctx, stream); err != nil || info.Exists {
					t.Errorf("round %d: the failed append wrote %s: %+v %v", round, stream, info, err)
				}
			case 1:
				if want := (strata.AppendResult{Stream: "replayed", FirstVersion: 1, LastVersion: 1, Replayed: true}); errs[i] != nil || res[i] != want {
					t.Errorf("round %d, replay %d: %+v %v, want %+v", round, i, res[i], errs[i], want)
				}
			default:
				if want := (strata.AppendResult{Stream: stream, FirstVersion: 1, LastVersion: 2}); errs[i] != nil || res[i] != want {
					t.Errorf("round %d, append %d: %+v %v, want %+v", round, i, res[i], errs[i], want)
				}
			}
		}
	}

	// Every written stream holds its two events, and some commits held several appends.
	commits := map[uint64]map[string]bool{}
	total := 0
	for e, err := range s.ReadAll(ctx, strata.ReadAllOptions{}) {
		if err != nil {
			t.Fatal(err)
		}
		total++
		if commits[e.Position.Commit] == nil {
			commits[e.Position.Commit] = map[string]bool{}
		}
		commits[e.Position.Commit][e.Stream] = true
	}
	if want := 2 + 5*(n/6)*3*2 + 3*(n/6)*2; total != want {
		t.Errorf("the log holds %d events, want %d", total, want)
	}
	grouped := 0
	for _, streams := range commits {
		if len(streams) > 1 {
			grouped++
		}
	}
	if grouped == 0 {
		t.Errorf("no commit held appends to several streams: nothing was grouped")
	}
	t.Logf("%d events in %d commits, %d of them groups", total, len(commits), grouped)
}
