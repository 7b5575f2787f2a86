package inmem

import (
	"context"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/strata-events/strata"
)

var _ strata.ProjectionStore = (*Store)(nil)

// projections holds projection state. Its own mutex serializes every call, so a commit's apply
// runs alone; apply gets a nil transaction (a read model in memory is as durable as this store).
type projections struct {
	mu      sync.Mutex
	states  map[strata.ProjectionKey]*strata.ProjectionState
	active  map[string]int
	workers map[workerKey]time.Time
}

type workerKey struct {
	name    string
	version int
	owner   string
}

func (s *Store) projLock(ctx context.Context, op string) (*projections, error) {
	if err := ctx.Err(); err != nil {
		return nil, &strata.Error{Code: strata.Unavailable, Op: op, Err: err}
	}
	s.mu.RLock()
	closed := s.closed
	s.mu.RUnlock()
	if closed {
		return nil, strata.ClosedError(op)
	}
	p := &s.proj
	p.mu.Lock()
	if p.states == nil {
		p.states = make(map[strata.ProjectionKey]*strata.ProjectionState)
		p.active = make(map[string]int)
		p.workers = make(map[workerKey]time.Time)
	}
	return p, nil
}

func cloneFilter(f strata.Filter) strata.Filter {
	f.Types = slices.Clone(f.Types)
	return f
}

func cloneState(st *strata.ProjectionState) strata.ProjectionState {
	c := *st
	c.Filter = cloneFilter(st.Filter)
	if st.Failure != nil {
		f := *st.Failure
		c.Failure = &f
	}
	c.Pending = slices.Clone(st.Pending)
	return c
}

func (p *projections) get(op string, k strata.ProjectionKey) (*strata.ProjectionState, error) {
	st, ok := p.states[k]
	if !ok {
		return nil, strata.Errorf(strata.NotFound, op, "projection %q version %d has no partition %d", k.Name, k.Version, k.Partition)
	}
	return st, nil
}

func (p *projections) version(name string, version int) []*strata.ProjectionState {
	var out []*strata.ProjectionState
	for k, st := range p.states {
		if k.Name == name && k.Version == version {
			out = append(out, st)
		}
	}
	return out
}

func now() time.Time { return strata.Timestamp(time.Now()) }

// InitProjection implements strata.ProjectionStore.
func (s *Store) InitProjection(ctx context.Context, in strata.ProjectionInit) error {
	const op = "init projection"
	if err := strata.ValidateProjectionInit(op, in); err != nil {
		return err
	}
	p, err := s.projLock(ctx, op)
	if err != nil {
		return err
	}
	defer p.mu.Unlock()
	for _, st := range p.version(in.Name, in.Version) {
		if st.Partitions != in.Partitions {
			return strata.Errorf(strata.Conflict, op, "projection %q version %d has %d partitions, not %d: build a new version to change the partitioning", in.Name, in.Version, st.Partitions, in.Partitions)
		}
	}
	for i := range in.Partitions {
		k := strata.ProjectionKey{Name: in.Name, Version: in.Version, Partition: i}
		if _, ok := p.states[k]; !ok {
			p.states[k] = &strata.ProjectionState{Key: k, Partitions: in.Partitions, Filter: cloneFilter(in.Filter), Rebuilding: in.Rebuilding, RebuildTarget: in.RebuildTarget, UpdatedAt: now()}
		}
	}
	return nil
}

// ClaimProjection implements strata.ProjectionStore.
func (s *Store) ClaimProjection(ctx context.Context, k strata.ProjectionKey, owner string, ttl time.Duration) (strata.ProjectionState, error) {
	const op = "claim projection"
	if err := strata.ValidateProjectionKey(op, k); err != nil {
		return strata.ProjectionState{}, err
	}
	if err := strata.ValidateProjectionOwner(op, owner); err != nil {
		return strata.ProjectionState{}, err
	}
	if err := strata.ValidateLeaseTTL(op, ttl); err != nil {
		return strata.ProjectionState{}, err
	}
	p, err := s.projLock(ctx, op)
	if err != nil {
		return strata.ProjectionState{}, err
	}
	defer p.mu.Unlock()
	st, err := p.get(op, k)
	if err != nil {
		return strata.ProjectionState{}, err
	}
	t := now()
	if st.Owner != "" && st.Owner != owner && st.LeaseUntil.After(t) {
		return strata.ProjectionState{}, strata.Errorf(strata.Conflict, op, "projection %q version %d partition %d is held by %q until %s", k.Name, k.Version, k.Partition, st.Owner, st.LeaseUntil.Format(time.RFC3339Nano))
	}
	st.Owner, st.Epoch, st.LeaseUntil, st.UpdatedAt = owner, st.Epoch+1, strata.Timestamp(t.Add(ttl)), t
	return cloneState(st), nil
}

func (p *projections) leased(op string, l strata.ProjectionLease) (*strata.ProjectionState, error) {
	st, err := p.get(op, l.Key)
	if err != nil {
		return nil, err
	}
	if st.Epoch != l.Epoch || st.Owner != l.Owner {
		return nil, strata.ProjectionLeaseLost(op, l.Key)
	}
	return st, nil
}

// RenewProjectionLease implements strata.ProjectionStore.
func (s *Store) RenewProjectionLease(ctx context.Context, l strata.ProjectionLease, ttl time.Duration) (strata.ProjectionState, error) {
	const op = "renew projection lease"
	if err := strata.ValidateProjectionKey(op, l.Key); err != nil {
		return strata.ProjectionState{}, err
	}
	if err := strata.ValidateLeaseTTL(op, ttl); err != nil {
		return strata.ProjectionState{}, err
	}
	p, err := s.projLock(ctx, op)
	if err != nil {
		return strata.ProjectionState{}, err
	}
	defer p.mu.Unlock()
	st, err := p.leased(op, l)
	if err != nil {
		return strata.ProjectionState{}, err
	}
	st.LeaseUntil = strata.Timestamp(now().Add(ttl))
	return cloneState(st), nil
}

// ReleaseProjectionLease implements strata.ProjectionStore.
func (s *Store) ReleaseProjectionLease(ctx context.Context, l strata.ProjectionLease) error {
	const op = "release projection lease"
	if err := strata.ValidateProjectionKey(op, l.Key); err != nil {
		return err
	}
	p, err := s.projLock(ctx, op)
	if err != nil {
		return err
	}
	defer p.mu.Unlock()
	if st, err := p.leased(op, l); err == nil {
		st.Owner, st.LeaseUntil = "", time.Time{}
	}
	return nil
}

// CommitProjection implements strata.ProjectionStore; apply gets a nil transaction.
func (s *Store) CommitProjection(ctx context.Context, c strata.ProjectionCommit, apply func(tx any) error) error {
	const op = "commit projection"
	k := c.Lease.Key
	if err := strata.ValidateProjectionKey(op, k); err != nil {
		return err
	}
	if c.To.Less(c.From) {
		return strata.Errorf(strata.Invalid, op, "projection %q: checkpoint would move back from %s to %s", k.Name, c.From, c.To)
	}
	if len(c.Pending) > strata.MaxDataLen {
		return strata.Errorf(strata.Invalid, op, "projection %q: %d bytes of pending events, more than %d", k.Name, len(c.Pending), strata.MaxDataLen)
	}
	p, err := s.projLock(ctx, op)
	if err != nil {
		return err
	}
	defer p.mu.Unlock()
	st, err := p.leased(op, c.Lease)
	if err != nil {
		return err
	}
	if st.Position != c.From {
		return strata.Errorf(strata.Conflict, op, "projection %q version %d partition %d is at %s, not %s", k.Name, k.Version, k.Partition, st.Position, c.From)
	}
	if apply != nil {
		if err := apply(nil); err != nil {
			return err
		}
	}
	if c.Emitted != nil {
		var err error
		if c.Pending, err = c.Emitted(); err != nil {
			return err
		}
		if len(c.Pending) > strata.MaxDataLen {
			return strata.Errorf(strata.Invalid, op, "projection %q: %d bytes of pending events, more than %d", k.Name, len(c.Pending), strata.MaxDataLen)
		}
	}
	st.Position, st.Processed, st.Rebuilding = c.To, c.Processed, c.Rebuilding
	st.Failure = nil
	if c.Failure != nil {
		f := *c.Failure
		f.Error = strata.TruncateProjectionError(f.Error)
		st.Failure = &f
	}
	st.Pending = nil
	if len(c.Pending) > 0 {
		st.Pending = slices.Clone(c.Pending)
	}
	st.UpdatedAt = now()
	return nil
}

// ProjectionStates implements strata.ProjectionStore.
func (s *Store) ProjectionStates(ctx context.Context, name string) ([]strata.ProjectionState, error) {
	const op = "projection states"
	if name != "" {
		if err := strata.ValidateProjectionName(op, name); err != nil {
			return nil, err
		}
	}
	p, err := s.projLock(ctx, op)
	if err != nil {
		return nil, err
	}
	defer p.mu.Unlock()
	var out []strata.ProjectionState
	for k, st := range p.states {
		if name == "" || k.Name == name {
			out = append(out, cloneState(st))
		}
	}
	slices.SortFunc(out, func(a, b strata.ProjectionState) int {
		if c := strings.Compare(a.Key.Name, b.Key.Name); c != 0 {
			return c
		}
		if a.Key.Version != b.Key.Version {
			return a.Key.Version - b.Key.Version
		}
		return a.Key.Partition - b.Key.Partition
	})
	return out, nil
}

// ControlProjection implements strata.ProjectionStore.
func (s *Store) ControlProjection(ctx context.Context, name string, version int, ctl strata.ProjectionControl) error {
	const op = "control projection"
	if err := strata.ValidateProjectionKey(op, strata.ProjectionKey{Name: name, Version: version}); err != nil {
		return err
	}
	p, err := s.projLock(ctx, op)
	if err != nil {
		return err
	}
	defer p.mu.Unlock()
	sts := p.version(name, version)
	if len(sts) == 0 {
		return strata.ProjectionNotFound(op, name, version)
	}
	t := now()
	for _, st := range sts {
		if ctl.Pause != nil {
			st.Paused = *ctl.Pause
		}
		if ctl.Reset {
			st.Position, st.Processed, st.Failure = strata.Start, 0, nil
			st.Rebuilding, st.RebuildTarget = !ctl.RebuildTarget.IsZero(), ctl.RebuildTarget
			st.Owner, st.LeaseUntil, st.Epoch = "", time.Time{}, st.Epoch+1
		}
		st.UpdatedAt = t
	}
	return nil
}

// DropProjection implements strata.ProjectionStore; apply gets a nil transaction.
func (s *Store) DropProjection(ctx context.Context, name string, version int, apply func(tx any) error) error {
	const op = "drop projection"
	if err := strata.ValidateProjectionKey(op, strata.ProjectionKey{Name: name, Version: version}); err != nil {
		return err
	}
	p, err := s.projLock(ctx, op)
	if err != nil {
		return err
	}
	defer p.mu.Unlock()
	if p.active[name] == version {
		return strata.Errorf(strata.Conflict, op, "projection %q version %d is the active version: activate another before dropping it", name, version)
	}
	if apply != nil {
		if err := apply(nil); err != nil {
			return err
		}
	}
	for k := range p.states {
		if k.Name == name && k.Version == version {
			delete(p.states, k)
		}
	}
	for k := range p.workers {
		if k.name == name && k.version == version {
			delete(p.workers, k)
		}
	}
	return nil
}

// ActivateProjection implements strata.ProjectionStore.
func (s *Store) ActivateProjection(ctx context.Context, name string, version int, onlyNewer bool) (bool, error) {
	const op = "activate projection"
	if err := strata.ValidateProjectionKey(op, strata.ProjectionKey{Name: name, Version: version}); err != nil {
		return false, err
	}
	p, err := s.projLock(ctx, op)
	if err != nil {
		return false, err
	}
	defer p.mu.Unlock()
	if len(p.version(name, version)) == 0 {
		return false, strata.ProjectionNotFound(op, name, version)
	}
	cur := p.active[name]
	if cur == version || (onlyNewer && cur > version) {
		return false, nil
	}
	p.active[name] = version
	return true, nil
}

// ActiveProjection implements strata.ProjectionStore.
func (s *Store) ActiveProjection(ctx context.Context, name string) (int, error) {
	const op = "active projection"
	if err := strata.ValidateProjectionName(op, name); err != nil {
		return 0, err
	}
	p, err := s.projLock(ctx, op)
	if err != nil {
		return 0, err
	}
	defer p.mu.Unlock()
	return p.active[name], nil
}

// ProjectionHeartbeat implements strata.ProjectionStore.
func (s *Store) ProjectionHeartbeat(ctx context.Context, name string, version int, owner string, ttl time.Duration) ([]string, error) {
	const op = "projection heartbeat"
	if err := strata.ValidateProjectionKey(op, strata.ProjectionKey{Name: name, Version: version}); err != nil {
		return nil, err
	}
	if err := strata.ValidateProjectionOwner(op, owner); err != nil {
		return nil, err
	}
	if err := strata.ValidateLeaseTTL(op, ttl); err != nil {
		return nil, err
	}
	p, err := s.projLock(ctx, op)
	if err != nil {
		return nil, err
	}
	defer p.mu.Unlock()
	t := now()
	p.workers[workerKey{name, version, owner}] = t.Add(ttl)
	var live []string
	for k, until := range p.workers {
		if k.name != name || k.version != version {
			continue
		}
		if until.Before(t) {
			delete(p.workers, k)
			continue
		}
		live = append(live, k.owner)
	}
	slices.Sort(live)
	return live, nil
}

// ProjectionLag implements strata.ProjectionStore.
func (s *Store) ProjectionLag(ctx context.Context, after strata.Position, f strata.Filter) (strata.ProjectionLag, error) {
	const op = "projection lag"
	if err := s.rlock(ctx, op); err != nil {
		return strata.ProjectionLag{}, err
	}
	defer s.mu.RUnlock()
	lag := strata.ProjectionLag{Last: after}
	for i := int(min(after.Event, uint64(len(s.log)))); i < len(s.log); i++ {
		if e := &s.log[i]; f.Match(e) {
			lag.Events++
			lag.Last = e.Position
		}
	}
	return lag, nil
}

// QueryProjection implements strata.ProjectionStore; fn gets a nil transaction.
func (s *Store) QueryProjection(ctx context.Context, fn func(tx any) error) error {
	const op = "query projection"
	if fn == nil {
		return strata.Errorf(strata.Invalid, op, "no function to run")
	}
	p, err := s.projLock(ctx, op)
	if err != nil {
		return err
	}
	defer p.mu.Unlock()
	return fn(nil)
}
