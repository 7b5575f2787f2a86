// Package query answers the auditor: the state of a stream as recorded at a time and as known
// at one time about another (bitemporal), histories with who, when, why and a JSON diff of each
// change, tenant-scoped searches with keyset pagination, and retention that removes old payloads
// while keeping tombstones that the ledger audit still verifies.
//
// It reaches storage through the root's optional interfaces strata.QueryStore,
// strata.TemporalSnapshotStore and strata.RetentionStore, which every backend implements.
package query
