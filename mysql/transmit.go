package mysql

import (
	"context"
	"time"

	"github.com/google/uuid"

	"github.com/strata-events/strata"
	"github.com/strata-events/strata/internal/transmitstore"
)

var _ strata.TransmitStore = (*Store)(nil)

// transmits is the shared implementation of strata.TransmitStore (migrations 0007 and 0009). Its
// transactions run on the write pool, retried on deadlocks like the projections..
func (s *Store) transmits() *transmitstore.Store {
	return &transmitstore.Store{B: projBackend{s}, D: transmitstore.Dialect{
		Table:        func(n string) string { return n },
		ForUpdate:    " FOR UPDATE",
		Upsert:       transmitstore.DuplicateKeyUpsert,
		InsertIgnore: " ON DUPLICATE KEY UPDATE name = name",
		ID:           func(id uuid.UUID) any { return id[:] },
	}}
}

// CommitDeliveries implements strata.TransmitStore.
func (s *Store) CommitDeliveries(ctx context.Context, c strata.DeliveryCommit) error {
	return s.transmits().CommitDeliveries(ctx, c)
}

// TransmitCheckpoint implements strata.TransmitStore.
func (s *Store) TransmitCheckpoint(ctx context.Context, transmitter string) (strata.Position, error) {
	return s.transmits().TransmitCheckpoint(ctx, transmitter)
}

// Deliveries implements strata.TransmitStore.
func (s *Store) Deliveries(ctx context.Context, q strata.DeliveryQuery) ([]strata.Delivery, error) {
	return s.transmits().Deliveries(ctx, q)
}

// RequeueDeliveries implements strata.TransmitStore.
func (s *Store) RequeueDeliveries(ctx context.Context, transmitter string, ids []uuid.UUID) (int64, error) {
	return s.transmits().RequeueDeliveries(ctx, transmitter, ids)
}

// TransmitterStates implements strata.TransmitStore.
func (s *Store) TransmitterStates(ctx context.Context) ([]strata.TransmitterState, error) {
	return s.transmits().TransmitterStates(ctx)
}

// PruneDeliveryRecords implements strata.TransmitStore.
func (s *Store) PruneDeliveryRecords(ctx context.Context, p strata.DeliveryPrune) (strata.PrunedDeliveries, error) {
	return s.transmits().PruneDeliveryRecords(ctx, p)
}

// ClaimTransmitter implements strata.TransmitStore.
func (s *Store) ClaimTransmitter(ctx context.Context, transmitter, owner string, ttl time.Duration) (strata.TransmitLease, error) {
	return s.transmits().ClaimTransmitter(ctx, transmitter, owner, ttl)
}

// RenewTransmitLease implements strata.TransmitStore.
func (s *Store) RenewTransmitLease(ctx context.Context, l strata.TransmitLease, ttl time.Duration) (strata.TransmitLease, error) {
	return s.transmits().RenewTransmitLease(ctx, l, ttl)
}

// ReleaseTransmitLease implements strata.TransmitStore.
func (s *Store) ReleaseTransmitLease(ctx context.Context, l strata.TransmitLease) error {
	return s.transmits().ReleaseTransmitLease(ctx, l)
}
