package postgres

import (
	"context"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/strata-events/strata"
	"github.com/strata-events/strata/internal/projstore"
	"github.com/strata-events/strata/internal/transmitstore"
)

var _ strata.TransmitStore = (*Store)(nil)

// transmits is the shared implementation of strata.TransmitStore (migrations 0007 and 0010). Its
// calls are transactions on the pool, like the projections..
func (s *Store) transmits() *transmitstore.Store {
	return &transmitstore.Store{B: projBackend{s}, D: transmitstore.Dialect{
		Table:        func(n string) string { return pgx.Identifier{s.schema, n}.Sanitize() },
		Rebind:       rebind,
		Bulk:         bulkDeliveries,
		ForUpdate:    " FOR UPDATE",
		Upsert:       transmitstore.ConflictUpsert,
		InsertIgnore: " ON CONFLICT DO NOTHING",
		ID:           func(id uuid.UUID) any { return [16]byte(id) }, // binary, not uuid.UUID's Valuer text
	}}
}

// bulkDeliveries upserts records with one statement over arrays (unnest): thirteen parameters
// whatever the batch size, so nothing grows with it but the arrays.
func bulkDeliveries(ctx context.Context, conn projstore.Conn, table, transmitter string, ds []strata.Delivery) error {
	n := len(ds)
	ids := make([][16]byte, n)
	pc, pe, ver := make([]int64, n), make([]int64, n), make([]int64, n)
	streams, types, statuses, errs := make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	attempts := make([]int32, n)
	first, last, sent := make([]int64, n), make([]int64, n), make([]int64, n)
	for i, d := range ds {
		ids[i] = d.EventID
		pc[i], pe[i], ver[i] = int64(d.Position.Commit), int64(d.Position.Event), d.Version
		streams[i], types[i], statuses[i], errs[i] = d.Stream, d.Type, string(d.Status), d.LastError
		attempts[i] = int32(d.Attempts)
		first[i], last[i], sent[i] = transmitstore.Micros(d.FirstAttemptAt), transmitstore.Micros(d.LastAttemptAt), transmitstore.Micros(d.SentAt)
	}
	cols := transmitstore.DeliveryColumns()
	q := "INSERT INTO " + table + " (" + strings.Join(cols, ", ") + `)
	SELECT $1, * FROM unnest($2::uuid[], $3::bigint[], $4::bigint[], $5::text[], $6::bigint[], $7::text[], $8::text[],
		$9::integer[], $10::text[], $11::bigint[], $12::bigint[], $13::bigint[])` +
		transmitstore.ConflictUpsert([]string{"transmitter", "event_id"}, cols[2:])
	_, err := conn.Exec(ctx, q, transmitter, ids, pc, pe, streams, ver, types, statuses, attempts, errs, first, last, sent)
	return err
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
