// Package sqlite is the embedded strata.Store: one SQLite file in WAL mode, the default backend of
// `strata demo` and `strata serve`. Writers commit one at a time, so the position of an event is
// also its commit order and the global log is gap-free; several processes may share the file.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/strata-events/strata"
	"github.com/strata-events/strata/internal/follow"
	sqlite3 "modernc.org/sqlite"
	sqlite3lib "modernc.org/sqlite/lib"
)

var _ strata.Store = (*Store)(nil)

// Synchronous is SQLite's durability setting for commits.
type Synchronous int

const (
	// SyncFull makes every commit durable before Append returns, even after a power loss. It is
	// the default: the store is an audit log.
	SyncFull Synchronous = iota
	// SyncNormal (in WAL mode) may lose the last commits on a power loss, never on a process
	// crash, and never corrupts the file. It commits several times faster on slow disks.
	SyncNormal
)

type config struct {
	sync        Synchronous
	busyTimeout time.Duration
	poll        time.Duration
	readConns   int
}

// Option configures Open.
type Option func(*config)

// WithSynchronous sets the durability of commits; the default is SyncFull.
func WithSynchronous(s Synchronous) Option { return func(c *config) { c.sync = s } }

// WithBusyTimeout sets how long a call waits for another process to release the file's write
// lock before it fails with a retryable Unavailable error. The default is 10s.
func WithBusyTimeout(d time.Duration) Option { return func(c *config) { c.busyTimeout = d } }

// WithPollInterval sets how often a subscription re-reads the log to find events that another
// process committed to the same file (commits of this Store wake it at once). The default is
// 500ms; zero or less turns polling off.
func WithPollInterval(d time.Duration) Option { return func(c *config) { c.poll = d } }

// WithReadConns caps the connections used for reads; the default is max(4, GOMAXPROCS).
func WithReadConns(n int) Option { return func(c *config) { c.readConns = n } }

// Store is a strata.Store on one SQLite file. It is safe for concurrent use.
type Store struct {
	path   string
	w      *sql.DB // one connection, used by wr, and by Open for migrations
	wr     *writer
	r      *sql.DB // a pool of query-only connections; in WAL mode reads never block the writer
	poll   time.Duration
	signal follow.Signal

	closed    chan struct{}
	isClosed  atomic.Bool
	closeOnce sync.Once
	closeErr  error
}

// Open opens the store in the SQLite file at path, creating it if needed, and brings its schema
// up to date. Several processes may open the same file; their writes take turns.
func Open(ctx context.Context, path string, opts ...Option) (*Store, error) {
	const op = "open"
	cfg := config{busyTimeout: 10 * time.Second, poll: 500 * time.Millisecond, readConns: max(4, runtime.GOMAXPROCS(0))}
	for _, o := range opts {
		o(&cfg)
	}
	if path == "" || strings.HasPrefix(path, ":memory:") || strings.Contains(path, "mode=memory") {
		return nil, strata.Errorf(strata.Invalid, op, "sqlite needs a file path, not %q (use the inmem backend for a store in memory)", path)
	}
	if strings.HasPrefix(path, "file:") {
		return nil, strata.Errorf(strata.Invalid, op, "sqlite takes a file path, not a URI: %q", path)
	}
	if cfg.readConns < 1 {
		cfg.readConns = 1
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, strata.Errorf(strata.Invalid, op, "path %q: %w", path, err)
	}
	busy := strconv.FormatInt(max(cfg.busyTimeout.Milliseconds(), 0), 10)
	sync := "FULL"
	if cfg.sync == SyncNormal {
		sync = "NORMAL"
	}
	common := "_pragma=busy_timeout(" + busy + ")&_pragma=foreign_keys(1)"

	s := &Store{path: abs, poll: cfg.poll, closed: make(chan struct{})}
	s.w, err = sql.Open("sqlite", fileURI(abs)+"?"+common+"&_pragma=synchronous("+sync+")&_txlock=immediate")
	if err != nil {
		return nil, strata.Errorf(strata.Internal, op, "%w", err)
	}
	s.w.SetMaxOpenConns(1)
	s.w.SetMaxIdleConns(1)
	s.w.SetConnMaxLifetime(0)
	s.w.SetConnMaxIdleTime(0)
	if err := s.setup(ctx, op); err != nil {
		s.w.Close()
		return nil, err
	}
	s.r, err = sql.Open("sqlite", fileURI(abs)+"?"+common+"&_pragma=query_only(1)")
	if err != nil {
		s.w.Close()
		return nil, strata.Errorf(strata.Internal, op, "%w", err)
	}
	s.r.SetMaxOpenConns(cfg.readConns)
	s.r.SetMaxIdleConns(cfg.readConns)
	if err := s.r.PingContext(ctx); err != nil {
		s.w.Close()
		s.r.Close()
		return nil, s.fail(ctx, op, err)
	}
	s.wr = newWriter(s.w)
	if err := s.wr.acquire(ctx, s.closed); err != nil { // prepares the statements
		s.w.Close()
		s.r.Close()
		return nil, s.fail(ctx, op, err)
	}
	s.wr.release()
	return s, nil
}

// Path returns the absolute path of the store's file.
func (s *Store) Path() string { return s.path }

// fileURI turns an absolute path into an SQLite URI filename.
func fileURI(abs string) string {
	p := filepath.ToSlash(abs)
	if !strings.HasPrefix(p, "/") {
		p = "/" + p // Windows: file:/C:/dir/strata.db
	}
	return "file:" + strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23").Replace(p)
}

// setup switches the file to WAL mode and applies the migrations.
func (s *Store) setup(ctx context.Context, op string) error {
	// Refuse another application's file, or a newer strata's, before anything changes it.
	ms, err := migrations()
	if err != nil {
		return strata.Errorf(strata.Internal, op, "embedded migrations: %w", err)
	}
	if _, _, err := checkFile(ctx, s.w, op, len(ms), s.fail); err != nil {
		return err
	}
	// WAL mode is a property of the file: set it once, here. Changing it takes an exclusive lock
	// that another process opening the file at the same moment may hold, so retry on busy.
	for attempt := 0; ; attempt++ {
		var mode string
		err := s.w.QueryRowContext(ctx, "PRAGMA journal_mode=WAL").Scan(&mode)
		if err == nil {
			if !strings.EqualFold(mode, "wal") {
				return strata.Errorf(strata.Unavailable, op, "cannot switch the database to WAL mode (it is in %s mode)", mode)
			}
			break
		}
		if !isBusy(err) || attempt >= 50 {
			return s.fail(ctx, op, err)
		}
		select {
		case <-ctx.Done():
			return s.fail(ctx, op, ctx.Err())
		case <-time.After(time.Duration(attempt+1) * 10 * time.Millisecond):
		}
	}
	return migrate(ctx, s.w, op, s.fail)
}

// Close closes the store. Calls made after it return an Unavailable error wrapping
// strata.ErrClosed, and running iterators and subscriptions end with that error.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.isClosed.Store(true)
		close(s.closed)
		s.closeErr = errors.Join(s.wr.close(), s.r.Close())
		if s.closeErr != nil {
			s.closeErr = strata.Errorf(strata.Internal, "close", "%w", s.closeErr)
		}
	})
	return s.closeErr
}

// fail turns an error of the driver or database/sql into a *strata.Error for op.
func (s *Store) fail(ctx context.Context, op string, err error) error {
	var se *strata.Error
	switch {
	case err == nil:
		return nil
	case errors.As(err, &se):
		return err
	case s.isClosed.Load():
		return strata.ClosedError(op)
	case ctx.Err() != nil:
		return &strata.Error{Code: strata.Unavailable, Op: op, Err: ctx.Err()}
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return &strata.Error{Code: strata.Unavailable, Op: op, Err: err}
	case isBusy(err):
		return &strata.Error{Code: strata.Unavailable, Op: op, Msg: "the database is locked by another writer", Err: err}
	}
	var e *sqlite3.Error
	if errors.As(err, &e) {
		switch e.Code() & 0xff {
		case sqlite3lib.SQLITE_CANTOPEN, sqlite3lib.SQLITE_IOERR, sqlite3lib.SQLITE_FULL,
			sqlite3lib.SQLITE_READONLY, sqlite3lib.SQLITE_PERM, sqlite3lib.SQLITE_NOLFS:
			return &strata.Error{Code: strata.Unavailable, Op: op, Err: err}
		}
	}
	return &strata.Error{Code: strata.Internal, Op: op, Err: err}
}

// isBusy reports whether err is SQLite's "locked by another connection".
func isBusy(err error) bool {
	var e *sqlite3.Error
	if !errors.As(err, &e) {
		return false
	}
	c := e.Code() & 0xff
	return c == sqlite3lib.SQLITE_BUSY || c == sqlite3lib.SQLITE_LOCKED
}

// isConstraint reports whether err is a violated UNIQUE, PRIMARY KEY or CHECK constraint.
func isConstraint(err error) bool {
	var e *sqlite3.Error
	return errors.As(err, &e) && e.Code()&0xff == sqlite3lib.SQLITE_CONSTRAINT
}

// checkOpen returns the closed error for op once the store is closed.
func (s *Store) checkOpen(op string) error {
	if s.isClosed.Load() {
		return strata.ClosedError(op)
	}
	return nil
}

func invalidf(op, format string, args ...any) error {
	return strata.Errorf(strata.Invalid, op, format, args...)
}
