// Package mysql is the strata.Store backend for MySQL 8 and MariaDB 10.11+. It keeps the global
// log gap-free by stamping dense, commit-ordered positions on committed events with a
// sequencer, so that writers to different streams never wait for each other.
//
// # Opening
//
//	s, err := mysql.Open(ctx, "mysql://strata:secret@db:3306/strata")
//
// The driver's own DSN form, strata:secret@tcp(db:3306)/strata, works too. The database must
// exist; Open applies the embedded migrations under a GET_LOCK, so several processes may open
// it at once. Sessions run READ COMMITTED in UTC with strict SQL mode. The server's
// max_allowed_packet should be at least 16M (the MariaDB default; MySQL's is 64M), since a
// single event may carry 8 MiB. With binary logging, use ROW format (the MySQL 8 default):
// READ COMMITTED writes are not allowed under STATEMENT.
//
// # Schema
//
// events holds one row per event: seq (AUTO_INCREMENT, insert order, the primary key),
// position (NULL until sequenced, UNIQUE), id, stream, version (UNIQUE with stream), type,
// schema_version, data (LONGBLOB: the exact bytes appended, which a Merkle ledger hashes),
// meta (the canonical Metadata JSON), tenant (indexed with position for tenant-filtered
// reads), recorded_at and occurred_at (DATETIME(6), UTC; occurred_at NULL means "when it was
// recorded"). streams holds each stream's version and first and last recording times; log_head
// holds the last position given out. Names, types and tenants are VARBINARY: they compare byte
// by byte, as strata requires. (utf8mb4_bin, the obvious alternative, is a PAD SPACE collation
// in both servers: under it "a" and "a " are one stream.) Tenants longer than 200 bytes are
// indexed by a prefix and their SHA-256.
//
// # Appending
//
// An append is one transaction on a session with autocommit off (no START TRANSACTION round
// trip). For each stream, in name order, one INSERT ... ON DUPLICATE KEY UPDATE creates or
// moves the stream's row, which locks it until commit, and hands back the new version through
// LAST_INSERT_ID(expr); the expected version is checked against the version before. Then
// multi-row INSERTs, each kept to a quarter of max_allowed_packet (a statement whose text would
// not fit falls back to a prepared statement that sends large payloads in pieces), write the
// events with no position. strata.BeforeCommit runs, and the transaction commits. The
// recording time is the database's UTC_TIMESTAMP(6), one value per transaction. A duplicate
// event ID or a failed expectation rolls back and asks strata.ResolveReplay whether the call
// was a retry; deadlocks and lock wait timeouts are retried a few times, then reported as
// Unavailable.
//
// # The sequencer
//
// MySQL cannot tell a reader which transactions are still in flight, so positions are not
// given out at insert time. Events are inserted with position NULL, and a sequencing pass
// numbers the committed ones afterwards:
//
//  1. SELECT position FROM log_head ... FOR UPDATE — passes in every process queue here.
//  2. SELECT seq FROM events WHERE position IS NULL ORDER BY seq LIMIT n — a plain consistent
//     read, which under READ COMMITTED sees committed rows only and waits for nothing.
//  3. One UPDATE gives those rows, by primary key (an IN list), the positions head+1..head+k
//     in seq order, and moves the head.
//  4. COMMIT.
//
// An insert still in flight is neither seen nor waited for in step 2 or 3; it is numbered by a
// later pass, after it commits, with a higher position than anything already visible. Because
// passes are serialized and each commits its stamps atomically, a reader's statement sees a
// prefix of the passes: reading position > cursor ORDER BY position can never return p+1
// without p. Positions are dense (1, 2, 3, ...), which the ledger relies on, and an event's
// Position is {Commit: p, Event: p}.
//
// Each Store runs passes in a background goroutine, woken after its own appends (wake-ups
// coalesce, and passes start at least 5ms apart so that a stream of appends shares them).
// Every ReadAll call first checks, without locking, whether committed events lack a position,
// and runs a pass if so; ReadStream does the same when a page holds such events. So an event
// appended by one process is read by another at once, even if the writer exited before
// sequencing. Subscribe wakes on this process's passes and polls (200ms by default) for other
// processes' writes.
//
// # Cost
//
// BenchmarkAppend compares, on one server and in one run, strata's Append with raw INSERTs of
// the same rows into a copy of the events table (one transaction per batch, no stream check,
// no positions) and with "serial": raw plus a lock on a head row held to commit, which numbers
// events gap-free by making writers commit one at a time. The strata figures include stamping:
// a block ends when every event has its position. On the shared 2-core development machine
// (MariaDB 10.11, fsync on, other test suites running; two runs, blocks interleaved, so only
// the ratios mean anything):
//
//	                           strata      raw          strata/raw  serial/raw
//	1 event/append, 1 client   420-540/s   630-840/s    0.65-0.66   0.66-0.70
//	1 event/append, 8 clients  750-990/s   1.3-1.7k/s   0.57-0.59   0.40-0.45
//	100/append, 1 client       6.8-11k/s   14-17k/s     0.48-0.64   0.80-0.84
//	100/append, 8 clients      6.5-11k/s   9-21k/s      0.53-0.73   0.79-1.3
//	ReadAll, 20k events        76-89k/s    98-102k/s    0.77-0.87
//
// The append itself costs little more than raw (measured alone, 0.8-1.0×: one more
// statement, the stream's row). The rest is the sequencer, and it is structural: every event
// is written twice, once by its append and once when it is stamped (the stamp updates the row
// and its position and tenant index entries, about as much work as the insert), and a pass is
// a transaction with a commit of its own. On a 2-core machine that work competes with the
// writers; on a server with idle cores it runs beside them, one pass at a time. Serializing
// writers costs less for large batches but holds every writer behind the slowest commit, which
// is what makes it lose with many small concurrent appends. Under a steady stream of appends
// the stamped rows' old index entries linger until InnoDB purges them, and the scan for
// unsequenced rows walks them. Reads pay for following the position index instead of the
// primary key, and for one unsequenced-row check per ReadAll call.
package mysql
