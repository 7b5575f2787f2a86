// Package postgres is the PostgreSQL backend of strata: a [strata.Store] on a pgx v5 pool, for
// many writers in many processes sharing one database. All its tables live in one schema
// ("strata" unless [WithSchema] says otherwise), created and migrated by [Open] from embedded,
// versioned SQL files, under an advisory lock so that processes opening at once take turns.
// It needs PostgreSQL 13 or later, and only strata may write its tables.
//
// # Global order without gaps
//
// Every append stores a tx value with its events, and the global log is ordered by (tx, seq),
// where seq is an identity column; an event's [strata.Position] is {Commit: tx, Event: seq}.
// tx is the writing transaction's ID (pg_current_xact_id) plus an offset. Transaction IDs are
// handed out before commit, so a transaction that took a lower ID may commit after one with a
// higher ID. Readers therefore only return rows with tx < pg_snapshot_xmin(pg_current_snapshot())
// + offset: every transaction whose ID lies below the snapshot's xmin has finished, and no tx is
// below its writer's ID + offset, so a transaction still running can only add rows above that
// horizon. A reader never moves its cursor past a place that may still be filled, and it needs
// no timeout. Each page is one statement; no transaction is held across pages.
//
// The xmin is cluster-wide: any transaction with an ID, even in another database, holds it
// back. When a page comes back short while committed rows wait above the horizon, a reader
// computes a tighter one from pg_locks, from the transactions that hold a lock on this store's
// events table (see [Store.ReadAll]), so that only this store's own writers delay its readers.
//
// An append takes its ID in the statement whose snapshot, taken before the ID, read the
// stream's version, so its ID is above that of every append whose events it saw. Two appends
// that read the same version collide on the unique index (stream, version), and the loser
// retries with a new statement, snapshot and ID: a stream's events keep their version order in
// the global log.
//
// # Restore safety
//
// Transaction IDs belong to a cluster. After pg_dump and restore into a cluster whose counter is
// lower, new transactions would get IDs below the stored tx values and sort before old events,
// behind every reader's cursor. The offset, kept in the one-row table clock, prevents that.
// A transaction's ID is greater than the ID of every transaction that committed before its
// statement's snapshot was taken, so an append compares its own ID + offset, in the statement
// that assigns the ID, with the largest tx its snapshot sees (one backward probe of the
// (tx, seq) index). In one cluster, with one offset, the check always passes; it fails exactly
// when stored rows come from a cluster with a higher counter. The append then writes nothing,
// raises the offset so that ID + offset exceeds every stored tx, and retries. [Open] raises it
// too, and so does a reader that sees rows above the snapshot's xmax + offset, which no
// transaction of this cluster can have written. The offset only grows, and every statement
// reads it with its own snapshot. A raise takes the events table in SHARE mode before it
// writes, so it commits only when no append that read the old offset is still open: a reader
// that sees the new offset sees no writer below its horizon (see Store.raiseIn).
//
// # Appends
//
// One statement reads the stream's version (a backward probe of the unique index on
// (stream, version)), checks it against the expected version, applies the restore guard and
// inserts the events after it; there is no row per stream to lock or update. Without a
// [strata.WithBeforeCommit] hook it runs as its own transaction, one round trip like a bare
// INSERT; with a hook, BEGIN travels with it and COMMIT follows the hook.
//
// The statement's snapshot is taken before it assigns the transaction its ID, so the ID is
// above that of every append whose events the snapshot shows: a stream's versions are in
// global order. Two appends that read the same version collide on the unique index; the
// second waits for the first and, when it commits, fails, and retries with a new snapshot and
// a new ID (an exact expected version then reports its Conflict). AppendMulti does the same for
// several streams in one statement, after advisory locks on its streams in a fixed order, so
// that two multi-appends cannot wait on each other's index entries in a cycle. A unique
// violation on an event ID or a failed version check is resolved with [strata.ResolveReplay].
//
// # Group commit
//
// A transaction of one event costs PostgreSQL far more than its one row: the round trip, the
// statement's start and the commit record. So a store runs at most a few small append
// transactions at once ([WithGroupCommit]; [DefaultGroupWriters] by default). Small
// single-stream appends (up to 32 events; larger ones have their commit amortized already and
// run at once, outside that count) that arrive while all are busy wait, and the next writer to
// finish commits them together, as one statement of the AppendMulti kind in which each stream
// keeps its own expected-version check and its own outcome. An append that fails its check
// fails alone; so does one whose event ID is stored already (a retry), found after the group's
// statement failed, while the rest of its group is written again as a group. A group has
// distinct streams, takes the AppendMulti advisory locks, and its events share one transaction
// ID, so the gap-free argument above holds for it unchanged. An idle store appends as before,
// with no timer and no added latency. An append that waits on a lock (its stream's other writer
// holds a transaction open) keeps its writer busy meanwhile; later appends of its stream wait
// for that writer, and the other writers' groups grow to carry the other streams.
//
// Measured with `strata bench append` (single events, one stream per client, settings in
// alternate runs, 2 cores): 8 clients 0.73–0.77x the raw INSERT baseline without grouping,
// 0.80–0.94x with 2 writers (the default), 0.94–1.04x with 1; 32 clients 0.66–0.71x without,
// 1.6–1.9x with 1 to 3 writers; 8 clients of 100 events unchanged (0.90–1.00x). Through
// `strata serve`, 32 clients: 4.4k acknowledged appends/s without grouping, 7.3–7.5k with 2
// writers in the same hour (docs/HTTP.md).
//
// # Notifications
//
// [Store.Subscribe] follows the log with internal/follow. Local commits wake local subscribers
// directly. For other processes, a background goroutine sends NOTIFY on a channel named after
// the schema after commits and rollbacks (a rollback may release the horizon): at most one in
// flight and one per 5ms, committed asynchronously. A NOTIFY inside each append would serialize
// committers on PostgreSQL's notification queue lock. Subscribers LISTEN on a dedicated
// connection, which is reconnected when it drops, and also poll ([WithPoll], 1s by default).
package postgres

import (
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"hash/fnv"
	"io/fs"
	"path"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/strata-events/strata"
	"github.com/strata-events/strata/internal/follow"
)

// DefaultSchema is the schema that holds the tables unless WithSchema says otherwise.
const DefaultSchema = "strata"

// DefaultPoll is how often a subscription re-reads the log without being notified.
const DefaultPoll = time.Second

//go:embed migrations/*.sql
var migrationFS embed.FS

// Option configures Open.
type Option func(*config)

type config struct {
	schema  string
	pool    *pgxpool.Pool
	poll    time.Duration
	writers int
}

// WithSchema sets the schema that holds strata's tables; it is created if missing. Several
// stores may share a database in different schemas.
func WithSchema(name string) Option { return func(c *config) { c.schema = name } }

// WithPool makes the store use p instead of opening its own pool from the connection string,
// which may then be empty. The caller keeps ownership: Close does not close p. The store's own
// pools turn JIT compilation off (jit=off), which only slows its statements down; consider
// the same for p.
func WithPool(p *pgxpool.Pool) Option { return func(c *config) { c.pool = p } }

// WithPoll sets how often subscriptions re-read the log when no notification arrives; zero or
// less turns polling off. Notifications wake subscriptions at once; polling bounds the delay
// when the horizon is held back by a transaction that sends none.
func WithPoll(d time.Duration) Option { return func(c *config) { c.poll = d } }

// WithGroupCommit sets how many small append transactions the store runs at once before
// further small single-stream appends wait for one of them to finish and are then committed
// together, in one transaction of one round trip per group, each with its own expected-version
// check and outcome (DefaultGroupWriters). Appends of more than 32 events are never grouped.
// Zero or less turns grouping off: every append runs its own transaction, however many run at
// once. Appends with a strata.WithBeforeCommit hook, and AppendMulti of several streams, always
// run their own.
func WithGroupCommit(writers int) Option { return func(c *config) { c.writers = writers } }

// Store is a strata.Store on PostgreSQL. It is safe for concurrent use.
type Store struct {
	pool    *pgxpool.Pool
	ownPool bool
	schema  string
	channel string // LISTEN/NOTIFY channel
	poll    time.Duration
	q       queries
	group   *groupCommit // nil when WithGroupCommit turned it off
	cq      capQueries   // of capabilities.go
	kq      keyQueries   // of keys.go
	// eventsOID identifies the events table in pg_locks.
	eventsOID uint32
	// floor is the highest horizon writersHorizon has found, 0 before the first: every row
	// below it is final, for good, so every read starts from it (see readAll).
	floor atomic.Int64

	sig    follow.Signal
	kick   chan struct{} // wakes the notifier; capacity one, so kicks coalesce
	done   chan struct{} // closed by Close
	bg     context.Context
	cancel context.CancelFunc

	mu         sync.Mutex // guards listening and wg.Add against Close
	closed     atomic.Bool
	listening  bool
	listenerUp chan struct{} // closed after the listener's first attempt
	wg         sync.WaitGroup
}

var _ strata.Store = (*Store)(nil)

// DefaultMaxConns is the pool size of a Store that opens its own pool, unless the connection
// string sets pool_max_conns. pgx's own default, the number of CPUs but at least 4, leaves
// concurrent appenders queueing for a connection on small machines (an HTTP server on 2 cores
// was held to a fifth of its rate).
const DefaultMaxConns = 16

// Open connects to PostgreSQL, creates or migrates the schema, and returns a Store. The
// connection string is pgx's (a URL or key=value pairs, including pool_max_conns, default
// DefaultMaxConns).
func Open(ctx context.Context, connString string, opts ...Option) (*Store, error) {
	const op = "open"
	cfg := config{schema: DefaultSchema, poll: DefaultPoll, writers: DefaultGroupWriters}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.schema == "" || len(cfg.schema) > 63 || strings.ContainsRune(cfg.schema, 0) {
		return nil, strata.Errorf(strata.Invalid, op, "schema name %q must be 1 to 63 bytes without NUL", cfg.schema)
	}
	s := &Store{
		pool:    cfg.pool,
		schema:  cfg.schema,
		channel: channelName(cfg.schema),
		poll:    cfg.poll,
		q:       buildQueries(pgx.Identifier{cfg.schema}.Sanitize()),
		cq:      buildCapQueries(pgx.Identifier{cfg.schema}.Sanitize()),
		kq:      buildKeyQueries(pgx.Identifier{cfg.schema}.Sanitize()),
		kick:    make(chan struct{}, 1),
		done:    make(chan struct{}),
	}
	if cfg.writers > 0 {
		s.group = &groupCommit{s: s, writers: cfg.writers}
	}
	if s.pool == nil {
		pc, err := pgxpool.ParseConfig(connString)
		if err != nil {
			return nil, &strata.Error{Code: strata.Invalid, Op: op, Msg: "bad connection string", Err: err}
		}
		// JIT compilation costs far more than any of the store's short, indexed statements
		// save, and the planner's estimates for the global log can cross jit_above_cost.
		if _, set := pc.ConnConfig.RuntimeParams["jit"]; !set {
			pc.ConnConfig.RuntimeParams["jit"] = "off"
		}
		if !strings.Contains(connString, "pool_max_conns") {
			pc.MaxConns = max(pc.MaxConns, DefaultMaxConns)
		}
		if s.pool, err = pgxpool.NewWithConfig(ctx, pc); err != nil {
			return nil, s.fail(op, err)
		}
		s.ownPool = true
	}
	if err := s.migrate(ctx); err != nil {
		if s.ownPool {
			s.pool.Close()
		}
		return nil, s.fail(op, err)
	}
	s.bg, s.cancel = context.WithCancel(context.Background())
	s.wg.Add(1)
	go s.notifier()
	return s, nil
}

// Close stops the store's goroutines and, unless the pool came from WithPool, closes the pool,
// waiting for calls in flight to release their connections. Later calls return an Unavailable
// error wrapping strata.ErrClosed.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed.Load() {
		s.mu.Unlock()
		return nil
	}
	s.closed.Store(true)
	close(s.done)
	s.mu.Unlock()
	s.cancel()
	s.wg.Wait()
	if s.ownPool {
		s.pool.Close()
	}
	return nil
}

// Schema returns the schema that holds the store's tables.
func (s *Store) Schema() string { return s.schema }

// channelName derives the NOTIFY channel from the schema; channel names are limited to 63 bytes.
func channelName(schema string) string {
	name := "strata." + schema
	if len(name) > 63 {
		sum := sha256.Sum256([]byte(schema))
		name = "strata." + hex.EncodeToString(sum[:12])
	}
	return name
}

// migration is one embedded SQL file, named NNNN_title.sql.
type migration struct {
	version int
	name    string
	sql     string
}

func loadMigrations() ([]migration, error) {
	entries, err := fs.ReadDir(migrationFS, "migrations")
	if err != nil {
		return nil, err
	}
	var ms []migration
	for _, e := range entries {
		num, _, ok := strings.Cut(e.Name(), "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || path.Ext(e.Name()) != ".sql" {
			return nil, fmt.Errorf("migration file %q is not named NNNN_title.sql", e.Name())
		}
		b, err := migrationFS.ReadFile("migrations/" + e.Name())
		if err != nil {
			return nil, err
		}
		ms = append(ms, migration{version: v, name: e.Name(), sql: string(b)})
	}
	slices.SortFunc(ms, func(a, b migration) int { return a.version - b.version })
	return ms, nil
}

// migrate applies the embedded migrations that the schema lacks, and raises the tx offset if
// the data came from a cluster with a higher transaction counter. It runs in one transaction
// under an advisory lock, so processes opening the same schema at once take turns.
func (s *Store) migrate(ctx context.Context) error {
	ms, err := loadMigrations()
	if err != nil {
		return err
	}
	qs := pgx.Identifier{s.schema}.Sanitize()
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return err
	}
	defer func() {
		rctx, cancel := cleanupContext(ctx)
		defer cancel()
		_ = tx.Rollback(rctx) // a no-op after Commit
	}()
	h := fnv.New64a()
	h.Write([]byte("strata migrate " + s.schema))
	if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", int64(h.Sum64())); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, "SET LOCAL search_path TO "+qs); err != nil {
		return err
	}
	// The DDL runs only for a schema without its migrations table: CREATE ... IF NOT EXISTS
	// needs the CREATE privilege even when the object exists, and a role that may only read
	// (an auditor's, for strata verify) must still open a store that is up to date.
	var haveTable bool
	if err := tx.QueryRow(ctx, "SELECT to_regclass($1) IS NOT NULL", qs+".schema_migrations").Scan(&haveTable); err != nil {
		return err
	}
	if !haveTable {
		for _, stmt := range []string{
			"CREATE SCHEMA IF NOT EXISTS " + qs,
			`CREATE TABLE IF NOT EXISTS schema_migrations (
				version    integer PRIMARY KEY,
				name       text NOT NULL,
				applied_at timestamptz NOT NULL DEFAULT now()
			)`,
		} {
			if _, err := tx.Exec(ctx, stmt); err != nil {
				return err
			}
		}
	}
	rows, _ := tx.Query(ctx, "SELECT version FROM schema_migrations")
	applied, err := pgx.CollectRows(rows, pgx.RowTo[int32])
	if err != nil {
		return err
	}
	if len(applied) > 0 && int(slices.Max(applied)) > ms[len(ms)-1].version {
		return strata.Errorf(strata.Internal, "open", "schema %q is at version %d, newer than this build knows (%d); upgrade strata", s.schema, slices.Max(applied), ms[len(ms)-1].version)
	}
	for _, m := range ms {
		if slices.Contains(applied, int32(m.version)) {
			continue
		}
		if _, err := tx.Exec(ctx, m.sql, pgx.QueryExecModeSimpleProtocol); err != nil {
			return fmt.Errorf("migration %s: %w", m.name, err)
		}
		if _, err := tx.Exec(ctx, "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", m.version, m.name); err != nil {
			return err
		}
	}
	if err := s.raiseIn(ctx, tx); err != nil {
		return err
	}
	if err := tx.QueryRow(ctx, "SELECT $1::text::regclass::oid", qs+".events").Scan(&s.eventsOID); err != nil {
		return err
	}
	return tx.Commit(ctx)
}

// raiseLockTimeout bounds how long a raise of the offset waits for the appends in flight (a
// BeforeCommit hook may hold one open): past it the raise fails, and so does the append or
// Open that needed it, rather than stall every append of the store behind it.
const raiseLockTimeout = "10s"

// raiseOffset lifts the offset, when stored rows lie above this cluster's transaction IDs, in
// a transaction of its own (see raiseIn).
func (s *Store) raiseOffset(ctx context.Context) error {
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error { return s.raiseIn(ctx, tx) })
}

// raiseIn lifts the offset within tx, when it must. Readers compute their horizon as their
// snapshot's xmin plus the offset they see, which holds only while no append still open took
// its tx with a lower offset: a raise committed under such an append would put the horizon
// above rows it may yet commit, and a reader could pass them. So the raise first takes the
// events table in SHARE mode, which waits for every transaction that has written to it (each
// append holds ROW EXCLUSIVE until it ends) and holds off new ones, whose statements take
// their snapshots, and read the offset, only once the raise has committed.
func (s *Store) raiseIn(ctx context.Context, tx pgx.Tx) error {
	var needed bool
	if err := tx.QueryRow(ctx, s.q.raiseNeeded).Scan(&needed); err != nil || !needed {
		return err
	}
	if _, err := tx.Exec(ctx, "SET LOCAL lock_timeout = '"+raiseLockTimeout+"'"); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, s.q.lockEvents); err != nil {
		return err
	}
	_, err := tx.Exec(ctx, s.q.raise)
	return err
}

// cleanupContext returns a context for rolling back or closing after ctx may have ended.
func cleanupContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
}

// afterWrite wakes local subscribers and asks the notifier to tell other processes. It runs
// after every append transaction ends, committed or not: a rollback may release the horizon.
func (s *Store) afterWrite() {
	s.sig.Notify()
	select {
	case s.kick <- struct{}{}:
	default: // a NOTIFY is already due; it will cover this commit too
	}
}

// notifyEvery is the least time between two NOTIFYs of one store. Kicks in between are
// covered by the next one, so other processes hear of a commit at most this much later.
const notifyEvery = 5 * time.Millisecond

// notifier sends a NOTIFY after kicks, one at a time and at most one per notifyEvery,
// outside any append transaction.
func (s *Store) notifier() {
	defer s.wg.Done()
	var last time.Time
	for {
		select {
		case <-s.kick:
		case <-s.bg.Done():
			return
		}
		if wait := notifyEvery - time.Since(last); wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-t.C:
			case <-s.bg.Done():
				t.Stop()
				return
			}
			select {
			case <-s.kick: // covered by this NOTIFY
			default:
			}
		}
		last = time.Now()
		ctx, cancel := context.WithTimeout(s.bg, 5*time.Second)
		// A failed NOTIFY is not an error of any caller: subscribers in other processes
		// also poll.
		_, _ = s.pool.Exec(ctx, s.q.notify, s.channel)
		cancel()
	}
}

// startListener starts, once, the goroutine that LISTENs for other processes' commits, and
// waits for its first attempt (or ctx) so that a subscription starting now does not miss them.
func (s *Store) startListener(ctx context.Context) {
	s.mu.Lock()
	if s.closed.Load() {
		s.mu.Unlock()
		return
	}
	if !s.listening {
		s.listening = true
		s.listenerUp = make(chan struct{})
		s.wg.Add(1)
		go s.listen(s.listenerUp)
	}
	up := s.listenerUp
	s.mu.Unlock()
	select {
	case <-up:
	case <-ctx.Done():
	case <-s.done:
	}
}

// listen keeps a dedicated connection LISTENing on the store's channel, reconnecting with
// backoff, and turns every notification into a local wake-up.
func (s *Store) listen(up chan struct{}) {
	defer s.wg.Done()
	signalUp := sync.OnceFunc(func() { close(up) })
	defer signalUp()
	const minBackoff, maxBackoff = 50 * time.Millisecond, 5 * time.Second
	backoff := minBackoff
	for {
		connected := false
		_ = s.listenConn(func() {
			connected = true
			signalUp()
		})
		signalUp()
		if s.bg.Err() != nil {
			return
		}
		// Notifications may have been lost while the connection was down.
		s.sig.Notify()
		if connected {
			backoff = minBackoff
		}
		t := time.NewTimer(backoff)
		select {
		case <-t.C:
		case <-s.bg.Done():
			t.Stop()
			return
		}
		backoff = min(2*backoff, maxBackoff)
	}
}

func (s *Store) listenConn(connected func()) error {
	cctx, cancel := context.WithTimeout(s.bg, 10*time.Second)
	conn, err := pgx.ConnectConfig(cctx, s.pool.Config().ConnConfig)
	if err != nil {
		cancel()
		return err
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		conn.Close(ctx)
	}()
	_, err = conn.Exec(cctx, "LISTEN "+pgx.Identifier{s.channel}.Sanitize())
	cancel()
	if err != nil {
		return err
	}
	connected()
	s.sig.Notify() // commits before LISTEN took effect were not announced to us
	for {
		if _, err := conn.WaitForNotification(s.bg); err != nil {
			return err
		}
		s.sig.Notify()
	}
}
