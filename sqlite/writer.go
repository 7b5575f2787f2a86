package sqlite

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"strings"
	"sync/atomic"

	"github.com/strata-events/strata"
)

// The statements of the append path, prepared once on the write connection.
const (
	// sqlVersion reads a stream's version: an index probe on UNIQUE (stream, version).
	sqlVersion = `SELECT version FROM events WHERE stream = ? ORDER BY version DESC LIMIT 1`
	sqlInsert  = `INSERT INTO events (id, stream, version, type, schema, data, meta, tenant, recorded_at, occurred_at) VALUES `
	sqlRow     = `(?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
	// insertCols is the number of parameters of one row.
	insertCols = 10
)

// insertRows are the sizes of the multi-row inserts, largest first: a batch goes in as few
// statements as they allow. One statement per row costs a round through database/sql, the driver
// and the VDBE for every row; batches of 100 append about 10% faster in chunks.
var insertRows = [...]int{64, 16, 4, 1}

// writer owns the store's one write connection. SQLite lets one writer at a time into the file,
// so appends in this process take turns here (waiting on a channel, so that a cancelled context
// stops the wait), and BEGIN IMMEDIATE makes them take turns with other processes (waiting up to
// the busy timeout).
//
// The transaction is run by hand on a dedicated connection rather than through sql.Tx: sql.Tx
// starts a goroutine per transaction and per query to watch its context, which cost about 10% of
// a one-event append here.
type writer struct {
	db      *sql.DB
	turn    chan struct{} // holds a token while an append uses the connection
	waiting atomic.Int32  // calls waiting for the turn

	// Set by connect and cleared by discard, and used only by the holder of the turn.
	conn                    *sql.Conn
	stmts                   []*sql.Stmt // all of the below, to close
	begin, commit, rollback *sql.Stmt
	version                 *sql.Stmt
	insert                  [len(insertRows)]*sql.Stmt // insert[i] inserts insertRows[i] rows

	closed   bool // by close, under the turn
	closeErr error
}

func newWriter(db *sql.DB) *writer {
	return &writer{db: db, turn: make(chan struct{}, 1)}
}

// acquire waits for the writer's turn and readies the connection. On success the caller must
// call release.
func (w *writer) acquire(ctx context.Context, closed <-chan struct{}) error {
	select {
	case w.turn <- struct{}{}:
	default:
		if err := w.wait(ctx, closed); err != nil {
			return err
		}
	}
	if w.closed {
		w.release()
		return errStoreClosed
	}
	if w.conn == nil {
		if err := w.connect(ctx); err != nil {
			w.release()
			return err
		}
	}
	return nil
}

// wait waits for the writer's turn, counted in waiting meanwhile.
func (w *writer) wait(ctx context.Context, closed <-chan struct{}) error {
	w.waiting.Add(1)
	defer w.waiting.Add(-1)
	select {
	case w.turn <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-closed:
		return errStoreClosed
	}
}

func (w *writer) release() { <-w.turn }

// contended reports whether a call waits for the writer's turn.
func (w *writer) contended() bool { return w.waiting.Load() > 0 }

// errStoreClosed tells fail that the store closed while a call waited.
var errStoreClosed = errors.New("closed while waiting")

func (w *writer) connect(ctx context.Context) (err error) {
	if w.conn, err = w.db.Conn(ctx); err != nil {
		return err
	}
	prep := func(query string) *sql.Stmt {
		if err != nil {
			return nil
		}
		var st *sql.Stmt
		st, err = w.conn.PrepareContext(ctx, query)
		w.stmts = append(w.stmts, st)
		return st
	}
	w.begin = prep("BEGIN IMMEDIATE")
	w.commit = prep("COMMIT")
	w.rollback = prep("ROLLBACK")
	w.version = prep(sqlVersion)
	for i, n := range insertRows {
		w.insert[i] = prep(sqlInsert + sqlRow + strings.Repeat(", "+sqlRow, n-1))
	}
	if err != nil {
		w.discard()
	}
	return err
}

// discard closes the connection and its statements; the next acquire opens a new one. It is for a
// connection whose state is unknown, such as one with a transaction that would not roll back.
func (w *writer) discard() error {
	var errs []error
	for _, st := range w.stmts {
		if st != nil {
			errs = append(errs, st.Close())
		}
	}
	w.stmts = nil
	if w.conn != nil {
		// ErrBadConn makes database/sql close the driver's connection instead of keeping it.
		_ = w.conn.Raw(func(any) error { return driver.ErrBadConn })
		w.conn.Close()
		w.conn = nil
	}
	return errors.Join(errs...)
}

// abort rolls back the transaction in progress. A connection left in an unknown state is
// discarded.
func (w *writer) abort(ctx context.Context) {
	ctx = context.WithoutCancel(ctx)
	if _, err := w.rollback.ExecContext(ctx); err == nil {
		return
	}
	// ROLLBACK fails when SQLite has already rolled the transaction back (an interrupted
	// statement, a full disk). Then a new transaction can begin, and the connection is fine.
	if _, err := w.conn.ExecContext(ctx, "BEGIN"); err == nil {
		if _, err := w.rollback.ExecContext(ctx); err == nil {
			return
		}
	}
	w.discard()
}

// close waits for an append in progress to finish and closes the connection.
func (w *writer) close() error {
	w.turn <- struct{}{}
	defer w.release()
	if w.closed {
		return w.closeErr
	}
	w.closed = true
	w.closeErr = errors.Join(w.discard(), w.db.Close())
	return w.closeErr
}

// failWrite is fail for errors of the write path.
func (s *Store) failWrite(ctx context.Context, op string, err error) error {
	if errors.Is(err, errStoreClosed) {
		return strata.ClosedError(op)
	}
	return s.fail(ctx, op, err)
}
