package mysql

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	mysqldrv "github.com/go-sql-driver/mysql"

	"github.com/strata-events/strata"
	"github.com/strata-events/strata/internal/follow"
)

var _ strata.Store = (*Store)(nil)

// Store is a strata.Store on a MySQL 8 or MariaDB 10.11+ database. It is safe for concurrent
// use; any number of Stores, in any number of processes, may share one database.
type Store struct {
	db  *sql.DB // reads, DDL
	wdb *sql.DB // write transactions (inTx)
	dsn string
	log *slog.Logger

	poll      time.Duration
	seqBatch  int // the most events one sequencing pass stamps
	maxRuns   int // the most runs of consecutive seqs one pass stamps (the size of its CASE)
	passGap   time.Duration
	chunkSize int // the most bytes of row data one INSERT statement carries

	closed   atomic.Bool
	closedCh chan struct{}
	closeMu  sync.Mutex

	// stmts holds prepared statements by their SQL text (see prepared); Close closes them.
	stmts sync.Map

	signal follow.Signal // notified after every sequencing pass that stamped events
	wake   chan struct{} // pokes the background sequencer; capacity 1, so pokes coalesce
	seqSem chan struct{} // one sequencing pass at a time in this process
	stop   context.CancelFunc
	done   chan struct{}
}

// defaultSeqBatch is the most events one sequencing pass stamps. It keeps the pass's IN list
// below 1,000 values, where MariaDB would turn it into a subquery (in_predicate_conversion_
// threshold) and the plan would no longer be bound to touch those rows alone.
const defaultSeqBatch = 900

// defaultPassGap is the shortest time between the starts of two background sequencing passes.
const defaultPassGap = 5 * time.Millisecond

// Option configures Open.
type Option func(*options)

type options struct {
	log      *slog.Logger
	poll     time.Duration
	maxConns int
	seqBatch int
	maxRuns  int
	passGap  time.Duration
	noBG     bool
}

// WithLogger sets the logger for background errors (the sequencer's). The default discards.
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.log = l } }

// WithPollInterval sets how often subscriptions re-read the log to notice events written by
// other processes (their own process's appends wake them at once). The default is 200ms.
func WithPollInterval(d time.Duration) Option { return func(o *options) { o.poll = d } }

// WithMaxConns caps each of the Store's two connection pools, one for reads and one for
// write transactions; the default is 32.
func WithMaxConns(n int) Option { return func(o *options) { o.maxConns = n } }

// withSequencerBatch sets the most events one sequencing pass stamps (tests use small ones).
func withSequencerBatch(n int) Option { return func(o *options) { o.seqBatch = n } }

// withPassGap sets the shortest time between the starts of two background passes.
func withPassGap(d time.Duration) Option { return func(o *options) { o.passGap = d } }

// withMaxRuns sets the most runs of consecutive seqs one pass stamps.
func withMaxRuns(n int) Option { return func(o *options) { o.maxRuns = n } }

// withoutBackgroundSequencer leaves sequencing to reads (tests of another process's view).
func withoutBackgroundSequencer() Option { return func(o *options) { o.noBG = true } }

// Open connects to the database named by dsn, applies pending migrations and starts the
// sequencer. dsn is either a URL, mysql://user:password@host:port/dbname?param=value, or the
// driver's own form, user:password@tcp(host:port)/dbname?param=value; parameters are the
// driver's. Open overrides the parameters strata depends on: parseTime, UTC times, utf8mb4,
// strict SQL mode and READ COMMITTED isolation. The database must exist.
func Open(ctx context.Context, dsn string, opts ...Option) (*Store, error) {
	const op = "open"
	o := options{log: slog.New(slog.DiscardHandler), poll: 200 * time.Millisecond, maxConns: 32, seqBatch: defaultSeqBatch, maxRuns: 256, passGap: defaultPassGap}
	for _, opt := range opts {
		opt(&o)
	}
	if o.log == nil {
		o.log = slog.New(slog.DiscardHandler)
	}
	cfg, err := parseDSN(dsn)
	if err != nil {
		return nil, strata.Errorf(strata.Invalid, op, "%w", err)
	}
	if cfg.DBName == "" {
		return nil, strata.Errorf(strata.Invalid, op, "the DSN names no database (mysql://user@host:3306/dbname)")
	}
	db, wdb, err := connect(ctx, cfg)
	if err != nil {
		return nil, classify(op, err)
	}
	for _, p := range []*sql.DB{db, wdb} {
		p.SetMaxOpenConns(o.maxConns)
		p.SetMaxIdleConns(o.maxConns)
		p.SetConnMaxLifetime(30 * time.Minute)
		p.SetConnMaxIdleTime(5 * time.Minute)
	}
	fail := func(err error) (*Store, error) {
		db.Close()
		wdb.Close()
		return nil, classify(op, err)
	}
	if err := migrate(ctx, db); err != nil {
		return fail(err)
	}
	var maxPacket int
	if err := db.QueryRowContext(ctx, "SELECT @@max_allowed_packet").Scan(&maxPacket); err != nil {
		return fail(err)
	}
	if maxPacket < strata.MaxDataLen+strata.MaxMetaLen+64<<10 {
		o.log.Warn("strata/mysql: max_allowed_packet is too small for the largest events strata accepts; raise it to at least 16M",
			"max_allowed_packet", maxPacket)
	}

	s := &Store{
		db:        db,
		wdb:       wdb,
		dsn:       dsn,
		log:       o.log,
		poll:      o.poll,
		seqBatch:  max(o.seqBatch, 1),
		maxRuns:   max(o.maxRuns, 1),
		passGap:   o.passGap,
		chunkSize: min(maxPacket/4, 4<<20),
		closedCh:  make(chan struct{}),
		wake:      make(chan struct{}, 1),
		seqSem:    make(chan struct{}, 1),
		done:      make(chan struct{}),
	}
	bg, stop := context.WithCancel(context.Background())
	s.stop = stop
	if o.noBG {
		close(s.done)
		return s, nil
	}
	go s.runSequencer(bg)
	s.poke() // stamp what a process that stopped before sequencing left behind
	return s, nil
}

// parseDSN reads a mysql:// URL or a driver DSN.
func parseDSN(dsn string) (*mysqldrv.Config, error) {
	if !strings.HasPrefix(dsn, "mysql://") {
		cfg, err := mysqldrv.ParseDSN(dsn)
		if err != nil {
			return nil, fmt.Errorf("bad DSN: %w", err)
		}
		return cfg, nil
	}
	u, err := url.Parse(dsn)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // without the URL, which may hold a password
		}
		return nil, fmt.Errorf("bad DSN: %w", err)
	}
	host := u.Host
	if host == "" {
		host = "127.0.0.1:3306"
	} else if u.Port() == "" {
		host = net.JoinHostPort(u.Hostname(), "3306")
	}
	// Let the driver read the query parameters, then set the credentials on the parsed
	// config so that no character of the password needs escaping in DSN syntax.
	native := "tcp(" + host + ")/" + url.PathEscape(strings.TrimPrefix(u.Path, "/"))
	if u.RawQuery != "" {
		native += "?" + u.RawQuery
	}
	cfg, err := mysqldrv.ParseDSN(native)
	if err != nil {
		return nil, fmt.Errorf("bad DSN: %w", err)
	}
	if u.User != nil {
		cfg.User = u.User.Username()
		cfg.Passwd, _ = u.User.Password()
	}
	return cfg, nil
}

// sessionConfig returns cfg with the session settings strata needs. READ COMMITTED is set per
// session through the variable the server knows, which connect finds out: transaction_isolation
// (MySQL 8, MariaDB 11.1+) or tx_isolation (MariaDB before 11.1).
func sessionConfig(cfg *mysqldrv.Config, isolationVar string) *mysqldrv.Config {
	cfg = cfg.Clone()
	cfg.ParseTime = true
	cfg.Loc = time.UTC
	cfg.InterpolateParams = true // one round trip per statement; too large ones fall back to prepared statements
	cfg.MaxAllowedPacket = 0     // ask the server
	cfg.MultiStatements = false
	// Rows affected counts the rows a statement changed, not those it found: SaveLedgerCheckpoint
	// tells an INSERT ... ON DUPLICATE KEY UPDATE that found its row by it.
	cfg.ClientFoundRows = false
	cfg.Collation = "utf8mb4_bin"
	params := map[string]string{}
	for k, v := range cfg.Params {
		switch k {
		case "transaction_isolation", "tx_isolation", "time_zone", "sql_mode", "autocommit":
		default:
			params[k] = v
		}
	}
	params["time_zone"] = "'+00:00'"
	params["sql_mode"] = "'STRICT_ALL_TABLES,NO_ENGINE_SUBSTITUTION'"
	params[isolationVar] = "'READ-COMMITTED'"
	cfg.Params = params
	return cfg
}

// connect opens the two pools: db for reads and DDL, and wdb for write transactions, whose
// sessions run with autocommit off (see inTx).
func connect(ctx context.Context, cfg *mysqldrv.Config) (db, wdb *sql.DB, err error) {
	for _, isoVar := range []string{"transaction_isolation", "tx_isolation"} {
		c := sessionConfig(cfg, isoVar)
		conn, err := mysqldrv.NewConnector(c)
		if err != nil {
			return nil, nil, err
		}
		db = sql.OpenDB(conn)
		var level string
		err = db.QueryRowContext(ctx, "SELECT @@SESSION."+isoVar).Scan(&level)
		if err != nil {
			db.Close()
			if isMySQLError(err, errUnknownSystemVariable) {
				continue
			}
			return nil, nil, err
		}
		if level != "READ-COMMITTED" {
			db.Close()
			return nil, nil, fmt.Errorf("session isolation is %s, want READ-COMMITTED", level)
		}
		c.Params["autocommit"] = "0"
		wconn, err := mysqldrv.NewConnector(c)
		if err != nil {
			db.Close()
			return nil, nil, err
		}
		return db, sql.OpenDB(wconn), nil
	}
	return nil, nil, errors.New("the server knows neither transaction_isolation nor tx_isolation")
}

// inTx runs fn in a transaction on a connection of the write pool. Its sessions run with
// autocommit off, so the first statement opens the transaction and no START TRANSACTION round
// trip is spent; inTx ends it with COMMIT, or with ROLLBACK when fn or the commit fails. A
// connection whose rollback fails is discarded, never returned to the pool mid-transaction.
func (s *Store) inTx(ctx context.Context, fn func(c *sql.Conn) error) error {
	c, err := s.wdb.Conn(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	if err = fn(c); err == nil {
		if _, err = c.ExecContext(ctx, "COMMIT"); err == nil {
			return nil
		}
	}
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if _, rerr := c.ExecContext(rctx, "ROLLBACK"); rerr != nil {
		c.Raw(func(any) error { return driver.ErrBadConn })
	}
	return err
}

// Close stops the sequencer and closes the pools. Calls after Close return an Unavailable error
// wrapping strata.ErrClosed, and running iterators and subscriptions end with it.
func (s *Store) Close() error {
	s.closeMu.Lock()
	defer s.closeMu.Unlock()
	if s.closed.Load() {
		return nil
	}
	s.closed.Store(true)
	close(s.closedCh)
	s.stop()
	<-s.done
	var errs []error
	s.stmts.Range(func(_, st any) bool {
		errs = append(errs, st.(*sql.Stmt).Close())
		return true
	})
	if err := errors.Join(append(errs, s.db.Close(), s.wdb.Close())...); err != nil {
		return classify("close", err)
	}
	return nil
}

func (s *Store) isClosed() bool { return s.closed.Load() }

// MySQL and MariaDB error numbers strata reacts to.
const (
	errDupEntry              = 1062
	errDupKeyName            = 1061
	errLockWaitTimeout       = 1205
	errDeadlock              = 1213
	errUnknownSystemVariable = 1193
	errBadDB                 = 1049
)

func isMySQLError(err error, numbers ...uint16) bool {
	var me *mysqldrv.MySQLError
	if !errors.As(err, &me) {
		return false
	}
	for _, n := range numbers {
		if me.Number == n {
			return true
		}
	}
	return false
}

// retryable reports whether a transaction failed on lock contention and may simply be run again.
func retryable(err error) bool { return isMySQLError(err, errDeadlock, errLockWaitTimeout) }

// fail turns err into the *strata.Error that op returns.
func (s *Store) fail(op string, err error) error {
	if err == nil {
		return nil
	}
	var se *strata.Error
	if errors.As(err, &se) {
		return err
	}
	if s.isClosed() {
		return strata.ClosedError(op)
	}
	return classify(op, err)
}

// classify maps a database error to a *strata.Error: connection trouble, cancellation and lock
// contention are Unavailable (retrying later may succeed); everything else is Internal.
func classify(op string, err error) *strata.Error {
	var se *strata.Error
	if errors.As(err, &se) {
		return se
	}
	unavailable := func(msg string) *strata.Error {
		return &strata.Error{Code: strata.Unavailable, Op: op, Msg: msg, Err: err}
	}
	switch {
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return unavailable("")
	case errors.Is(err, driver.ErrBadConn), errors.Is(err, mysqldrv.ErrInvalidConn), errors.Is(err, sql.ErrConnDone):
		return unavailable("lost the connection to the database")
	}
	var me *mysqldrv.MySQLError
	if errors.As(err, &me) {
		switch me.Number {
		case errDeadlock, errLockWaitTimeout:
			return unavailable("the database is too busy; retry")
		case errBadDB:
			return &strata.Error{Code: strata.NotFound, Op: op, Msg: "the database does not exist", Err: err}
		case 1040, // too many connections
			1044, 1045, // access denied
			1053,       // server shutdown
			1129, 1130, // host blocked / not allowed
			1927, // connection killed (MariaDB)
			1969, // statement timeout (MariaDB)
			3024: // statement timeout (MySQL)
			return unavailable("the database cannot serve")
		}
		return &strata.Error{Code: strata.Internal, Op: op, Err: err}
	}
	var ne net.Error
	if errors.As(err, &ne) {
		return unavailable("cannot reach the database")
	}
	return &strata.Error{Code: strata.Internal, Op: op, Err: err}
}
