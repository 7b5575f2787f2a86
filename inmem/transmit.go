package inmem

import (
	"cmp"
	"context"
	"slices"
	"time"

	"github.com/google/uuid"

	"github.com/strata-events/strata"
)

var _ strata.TransmitStore = (*Store)(nil)

// transmits holds strata.TransmitStore's data, guarded by the store's mutex.
type transmits struct {
	state  map[string]*strata.TransmitterState
	recs   map[string]map[uuid.UUID]strata.Delivery // by transmitter, then event
	leases map[string]strata.TransmitLease          // Owner "" once released
}

// CommitDeliveries implements strata.TransmitStore.
func (s *Store) CommitDeliveries(ctx context.Context, c strata.DeliveryCommit) error {
	const op = "commit deliveries"
	c, err := strata.PrepareDeliveryCommit(op, c)
	if err != nil {
		return err
	}
	if err := s.lock(ctx, op); err != nil {
		return err
	}
	defer s.mu.Unlock()
	tm := &s.tm
	if c.Lease != nil {
		if cur, ok := tm.leases[c.Transmitter]; !ok || cur.Owner != c.Lease.Owner || cur.Epoch != c.Lease.Epoch {
			return strata.TransmitLeaseLost(op, *c.Lease)
		}
	}
	if tm.state == nil {
		tm.state = map[string]*strata.TransmitterState{}
		tm.recs = map[string]map[uuid.UUID]strata.Delivery{}
	}
	st := tm.state[c.Transmitter]
	if st == nil {
		st = &strata.TransmitterState{Name: c.Transmitter}
		tm.state[c.Transmitter] = st
		tm.recs[c.Transmitter] = map[uuid.UUID]strata.Delivery{}
	}
	if c.Checkpoint != nil {
		st.Checkpoint = *c.Checkpoint
	}
	st.UpdatedAt = strata.Timestamp(s.now())
	for _, d := range c.Deliveries {
		tm.recs[c.Transmitter][d.EventID] = d
	}
	return nil
}

// TransmitCheckpoint implements strata.TransmitStore.
func (s *Store) TransmitCheckpoint(ctx context.Context, transmitter string) (strata.Position, error) {
	const op = "transmit checkpoint"
	if err := strata.ValidateTransmitterName(op, transmitter); err != nil {
		return strata.Start, err
	}
	if err := s.rlock(ctx, op); err != nil {
		return strata.Start, err
	}
	defer s.mu.RUnlock()
	if st := s.tm.state[transmitter]; st != nil {
		return st.Checkpoint, nil
	}
	return strata.Start, nil
}

// Deliveries implements strata.TransmitStore.
func (s *Store) Deliveries(ctx context.Context, q strata.DeliveryQuery) ([]strata.Delivery, error) {
	const op = "deliveries"
	q, err := strata.PrepareDeliveryQuery(op, q)
	if err != nil {
		return nil, err
	}
	if err := s.rlock(ctx, op); err != nil {
		return nil, err
	}
	defer s.mu.RUnlock()
	var out []strata.Delivery
	for _, d := range s.tm.recs[q.Transmitter] {
		if (q.Status == "" || d.Status == q.Status) && q.After.Less(d.Position) {
			out = append(out, d)
		}
	}
	slices.SortFunc(out, func(a, b strata.Delivery) int {
		return cmp.Or(a.Position.Compare(b.Position), slices.Compare(a.EventID[:], b.EventID[:]))
	})
	if len(out) > q.Limit {
		out = out[:q.Limit]
	}
	return out, nil
}

// RequeueDeliveries implements strata.TransmitStore.
func (s *Store) RequeueDeliveries(ctx context.Context, transmitter string, ids []uuid.UUID) (int64, error) {
	const op = "requeue deliveries"
	if err := strata.PrepareRequeue(op, transmitter, ids); err != nil {
		return 0, err
	}
	if err := s.lock(ctx, op); err != nil {
		return 0, err
	}
	defer s.mu.Unlock()
	var n int64
	recs := s.tm.recs[transmitter]
	for _, id := range ids {
		if d, ok := recs[id]; ok && d.Status == strata.DeliveryDead {
			d.Status = strata.DeliveryPending
			recs[id] = d
			n++
		}
	}
	return n, nil
}

// TransmitterStates implements strata.TransmitStore.
func (s *Store) TransmitterStates(ctx context.Context) ([]strata.TransmitterState, error) {
	const op = "transmitter states"
	if err := s.rlock(ctx, op); err != nil {
		return nil, err
	}
	defer s.mu.RUnlock()
	var out []strata.TransmitterState
	for name, l := range s.tm.leases {
		if s.tm.state[name] == nil {
			out = append(out, strata.TransmitterState{Name: name, Owner: l.Owner, Epoch: l.Epoch, LeaseUntil: l.Until})
		}
	}
	for name, st := range s.tm.state {
		c := *st
		if l, ok := s.tm.leases[name]; ok {
			c.Owner, c.Epoch, c.LeaseUntil = l.Owner, l.Epoch, l.Until
		}
		c.Pending, c.Sent, c.Failed, c.Dead = 0, 0, 0, 0
		for _, d := range s.tm.recs[name] {
			switch d.Status {
			case strata.DeliveryPending:
				c.Pending++
			case strata.DeliverySent:
				c.Sent++
			case strata.DeliveryFailed:
				c.Failed++
			case strata.DeliveryDead:
				c.Dead++
			}
		}
		out = append(out, c)
	}
	slices.SortFunc(out, func(a, b strata.TransmitterState) int { return cmp.Compare(a.Name, b.Name) })
	return out, nil
}

// PruneDeliveryRecords implements strata.TransmitStore.
func (s *Store) PruneDeliveryRecords(ctx context.Context, p strata.DeliveryPrune) (strata.PrunedDeliveries, error) {
	const op = "prune delivery records"
	p, err := strata.PrepareDeliveryPrune(op, p)
	if err != nil {
		return strata.PrunedDeliveries{}, err
	}
	if err := s.lock(ctx, op); err != nil {
		return strata.PrunedDeliveries{}, err
	}
	defer s.mu.Unlock()
	var out strata.PrunedDeliveries
	recs := s.tm.recs[p.Transmitter]
	for id, d := range recs {
		var n *int64
		switch {
		case d.Status == strata.DeliverySent && !p.SentBefore.IsZero() && d.SentAt.Before(p.SentBefore):
			n = &out.Sent
		case d.Status == strata.DeliveryDead && !p.DeadBefore.IsZero() && d.LastAttemptAt.Before(p.DeadBefore):
			n = &out.Dead
		default:
			continue
		}
		*n++
		if !p.DryRun {
			delete(recs, id)
		}
	}
	return out, nil
}

// ClaimTransmitter implements strata.TransmitStore.
func (s *Store) ClaimTransmitter(ctx context.Context, transmitter, owner string, ttl time.Duration) (strata.TransmitLease, error) {
	const op = "claim transmitter"
	if err := strata.ValidateTransmitClaim(op, transmitter, owner, ttl); err != nil {
		return strata.TransmitLease{}, err
	}
	if err := s.lock(ctx, op); err != nil {
		return strata.TransmitLease{}, err
	}
	defer s.mu.Unlock()
	if s.tm.leases == nil {
		s.tm.leases = map[string]strata.TransmitLease{}
	}
	cur := s.tm.leases[transmitter]
	now := strata.Timestamp(s.now())
	if cur.Owner != "" && cur.Owner != owner && cur.Until.After(now) {
		return cur, strata.TransmitterHeld(op, cur)
	}
	l := strata.TransmitLease{Transmitter: transmitter, Owner: owner, Epoch: cur.Epoch + 1, Until: strata.Timestamp(now.Add(ttl))}
	s.tm.leases[transmitter] = l
	return l, nil
}

// RenewTransmitLease implements strata.TransmitStore.
func (s *Store) RenewTransmitLease(ctx context.Context, l strata.TransmitLease, ttl time.Duration) (strata.TransmitLease, error) {
	const op = "renew transmit lease"
	if err := strata.ValidateTransmitLease(op, l); err != nil {
		return strata.TransmitLease{}, err
	}
	if err := strata.ValidateLeaseTTL(op, ttl); err != nil {
		return strata.TransmitLease{}, err
	}
	if err := s.lock(ctx, op); err != nil {
		return strata.TransmitLease{}, err
	}
	defer s.mu.Unlock()
	cur, ok := s.tm.leases[l.Transmitter]
	if !ok || cur.Owner != l.Owner || cur.Epoch != l.Epoch {
		return strata.TransmitLease{}, strata.TransmitLeaseLost(op, l)
	}
	cur.Until = strata.Timestamp(s.now().Add(ttl))
	s.tm.leases[l.Transmitter] = cur
	return cur, nil
}

// ReleaseTransmitLease implements strata.TransmitStore.
func (s *Store) ReleaseTransmitLease(ctx context.Context, l strata.TransmitLease) error {
	const op = "release transmit lease"
	if err := strata.ValidateTransmitLease(op, l); err != nil {
		return err
	}
	if err := s.lock(ctx, op); err != nil {
		return err
	}
	defer s.mu.Unlock()
	if cur, ok := s.tm.leases[l.Transmitter]; ok && cur.Owner == l.Owner && cur.Epoch == l.Epoch {
		cur.Owner, cur.Until = "", time.Time{}
		s.tm.leases[l.Transmitter] = cur
	}
	return nil
}
