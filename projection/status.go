package projection

import (
	"context"
	"time"

	"github.com/strata-events/strata"
)

// State is what a partition is doing.
type State string

// The states of a partition, in the order a status report ranks them (worst first).
const (
	// Failed: stopped on an event after its retries; restart a worker after fixing the handler.
	Failed State = "failed"
	// Paused: stopped by an operator (Pause); Resume continues it.
	Paused State = "paused"
	// Stopped: no live worker holds the partition.
	Stopped State = "stopped"
	// Rebuilding: replaying history after a reset or as a new version; emission is suppressed.
	Rebuilding State = "rebuilding"
	// CatchingUp: running, with events older than a second still to handle.
	CatchingUp State = "catching up"
	// Running: running and caught up.
	Running State = "running"
)

var stateRank = map[State]int{Failed: 0, Paused: 1, Stopped: 2, Rebuilding: 3, CatchingUp: 4, Running: 5}

// Worse reports whether s ranks before t in a report.
func (s State) Worse(t State) bool { return stateRank[s] < stateRank[t] }

// Status describes one partition.
type Status struct {
	Key        strata.ProjectionKey
	Partitions int
	State      State
	// Active is set when Key.Version is the version readers use.
	Active     bool
	Checkpoint strata.Position
	// Processed counts the events the partition read since it was created or reset.
	Processed int64
	// LagEvents counts events the partition has still to read; LagSeconds is how long the oldest
	// of them has waited.
	LagEvents     int64
	LagSeconds    float64
	RebuildTarget strata.Position
	Owner         string
	LeaseUntil    time.Time
	Failure       *strata.ProjectionFailure
	UpdatedAt     time.Time
}

// Progress returns the share of the log the partition has read, from 0 to 1.
func (s Status) Progress() float64 {
	total := s.Processed + s.LagEvents
	if total == 0 {
		return 1
	}
	return float64(s.Processed) / float64(total)
}

// Statuses reports every partition of name (every projection when name is empty), ordered by
// name, version and partition.
func Statuses(ctx context.Context, store strata.Store, name string) ([]Status, error) {
	const op = "projection status"
	ps, err := projectionStore(op, store)
	if err != nil {
		return nil, err
	}
	sts, err := ps.ProjectionStates(ctx, name)
	if err != nil {
		return nil, err
	}
	active := map[string]int{}
	now := time.Now()
	out := make([]Status, 0, len(sts))
	for _, st := range sts {
		if _, ok := active[st.Key.Name]; !ok {
			if active[st.Key.Name], err = ps.ActiveProjection(ctx, st.Key.Name); err != nil {
				return nil, err
			}
		}
		s := Status{Key: st.Key, Partitions: st.Partitions, Active: active[st.Key.Name] == st.Key.Version, Checkpoint: st.Position,
			Processed: st.Processed, RebuildTarget: st.RebuildTarget, Owner: st.Owner, LeaseUntil: st.LeaseUntil, Failure: st.Failure, UpdatedAt: st.UpdatedAt}
		lag, err := ps.ProjectionLag(ctx, st.Position, st.Filter)
		if err != nil {
			return nil, err
		}
		s.LagEvents = lag.Events
		if lag.Events > 0 {
			for e, err := range store.ReadAll(ctx, strata.ReadAllOptions{After: st.Position, Filter: st.Filter, Limit: 1}) {
				if err != nil {
					return nil, err
				}
				s.LagSeconds = max(0, now.Sub(e.RecordedAt).Seconds())
			}
		}
		live := st.Owner != "" && st.LeaseUntil.After(now)
		switch {
		case st.Failure != nil && !live:
			s.State = Failed
		case st.Paused:
			s.State = Paused
		case !live:
			s.State = Stopped
		case st.Failure != nil:
			s.State = Failed // a worker is retrying it
		case st.Rebuilding:
			s.State = Rebuilding
		case s.LagEvents > 0 && s.LagSeconds >= 1:
			s.State = CatchingUp
		default:
			s.State = Running
		}
		out = append(out, s)
	}
	return out, nil
}

// Pause stops every partition of name at version at its next lease renewal; Resume lets it go
// on.
func Pause(ctx context.Context, store strata.Store, name string, version int) error {
	return setPause(ctx, store, name, version, true)
}

// Resume undoes Pause.
func Resume(ctx context.Context, store strata.Store, name string, version int) error {
	return setPause(ctx, store, name, version, false)
}

func setPause(ctx context.Context, store strata.Store, name string, version int, pause bool) error {
	ps, err := projectionStore("projection pause", store)
	if err != nil {
		return err
	}
	return ps.ControlProjection(ctx, name, version, strata.ProjectionControl{Pause: &pause})
}

// Reset moves every partition of name at version back to the start of the log in rebuild
// mode, ending every lease: running workers stop committing, claim again and replay history
// into the read model, calling the projection's Clear first and emitting nothing for the
// history that was emitted before: the events up to the checkpoint of the partition that is
// furthest behind (or, for one still rebuilding, its rebuild target). Events no partition had
// handled at the reset (appended while the workers were down or behind, or after a failure)
// are emitted as they are replayed; the others of partitions further ahead are emitted again
// under the same IDs, which the store appends once.
func Reset(ctx context.Context, store strata.Store, name string, version int) error {
	const op = "projection reset"
	ps, err := projectionStore(op, store)
	if err != nil {
		return err
	}
	sts, err := ps.ProjectionStates(ctx, name)
	if err != nil {
		return err
	}
	found := false
	var target strata.Position
	for _, st := range sts {
		if st.Key.Version != version {
			continue
		}
		// The partition has emitted for the events up to its checkpoint, and a rebuilding one
		// counts the events up to its target as emitted before.
		done := st.Position
		if st.Rebuilding && done.Less(st.RebuildTarget) {
			done = st.RebuildTarget
		}
		if !found || done.Less(target) {
			target = done
		}
		found = true
	}
	if !found {
		return strata.ProjectionNotFound(op, name, version)
	}
	return ps.ControlProjection(ctx, name, version, strata.ProjectionControl{Reset: true, RebuildTarget: target})
}

// Activate makes version the one readers of name use (blue-green switch): one atomic update.
func Activate(ctx context.Context, store strata.Store, name string, version int) error {
	ps, err := projectionStore("projection activate", store)
	if err != nil {
		return err
	}
	_, err = ps.ActivateProjection(ctx, name, version, false)
	return err
}

// Active returns the version readers of name use, 0 when none was activated yet.
func Active(ctx context.Context, store strata.Store, name string) (int, error) {
	ps, err := projectionStore("projection active", store)
	if err != nil {
		return 0, err
	}
	return ps.ActiveProjection(ctx, name)
}

// Drop removes version p.Version of p: its read model (p.Drop, in the same transaction) and its
// state. The active version cannot be dropped; stop its workers first.
func Drop(ctx context.Context, store strata.Store, p Projection) error {
	const op = "projection drop"
	ps, err := projectionStore(op, store)
	if err != nil {
		return err
	}
	if p.Version == 0 {
		p.Version = 1
	}
	var apply func(tx any) error
	if p.Drop != nil {
		apply = func(tx any) error { return p.Drop(ctx, tx) }
	}
	return ps.DropProjection(ctx, p.Name, p.Version, apply)
}

// promoteMark is the end of the log that promote noted once the version's partitions looked
// caught up, and their epochs then.
type promoteMark struct {
	end    strata.Position
	epochs map[int]int64 // nil: end is given (Catchup's), not noted
}

// promote activates the worker's version when every partition has caught up, unless a newer
// version is active. Past its rebuild target is not enough: a Reset sets that target to the
// checkpoint of the partition that was furthest behind, short of the end of the log. So once
// the partitions look caught up, promote notes the end of the log (and the partitions' epochs,
// which a Reset or a claim raises) in mark, and activates the version when every partition has
// reached it with no epoch changed meanwhile.
func (w *Worker) promote(ctx context.Context, mark *promoteMark) error {
	sts, err := w.states(ctx)
	if err != nil {
		return err
	}
	if len(sts) != w.p.Partitions {
		return nil
	}
	for _, st := range sts {
		// Position short of RebuildTarget: a first build WithEmitHistory, which replays history
		// without rebuild mode, has not caught up yet.
		if st.Rebuilding || st.Failure != nil || st.Position.Less(st.RebuildTarget) {
			if mark.epochs != nil {
				*mark = promoteMark{}
			}
			return nil
		}
	}
	if mark.epochs == nil && mark.end.IsZero() || mark.epochs != nil && !sameEpochs(mark.epochs, sts) {
		// Counted after the partition furthest behind: only what the version has still to read.
		least := sts[0].Position
		for _, st := range sts[1:] {
			if st.Position.Less(least) {
				least = st.Position
			}
		}
		lag, err := w.ps.ProjectionLag(ctx, least, w.f)
		if err != nil {
			return err
		}
		*mark = promoteMark{end: lag.Last, epochs: make(map[int]int64, len(sts))}
		for _, st := range sts {
			mark.epochs[st.Key.Partition] = st.Epoch
		}
	}
	for _, st := range sts {
		if st.Position.Less(mark.end) {
			return nil
		}
	}
	_, err = w.ps.ActivateProjection(ctx, w.p.Name, w.p.Version, true)
	return err
}

func sameEpochs(epochs map[int]int64, sts []strata.ProjectionState) bool {
	for _, st := range sts {
		if e, ok := epochs[st.Key.Partition]; !ok || e != st.Epoch {
			return false
		}
	}
	return true
}
