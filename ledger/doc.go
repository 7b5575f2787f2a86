// Package ledger makes the global log of a strata.Store tamper-evident: a sealer appends every
// event, in log order, as a leaf of an RFC 6962 Merkle tree whose hashes are stored as C2SP
// tlog-tiles, signs checkpoints of the tree as notes, and proves that an event is in a signed
// checkpoint, or that one checkpoint extends another, to a verifier that holds only a public key.
//
// The leaf encoding, the checkpoint, bundle and tile formats and the trust model are specified
// in docs/LEDGER.md, so that a third party can verify without this code. The store keeps the
// ledger through the optional interface [strata.LedgerStore], which every backend implements.
package ledger
