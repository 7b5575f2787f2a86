package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/strata-events/strata"
)

var (
	_ strata.KeyStore    = (*Store)(nil)
	_ strata.SchemaStore = (*Store)(nil)
)

// The statements of strata.KeyStore and strata.SchemaStore (migration 0005). Each write is one
// statement in autocommit mode on the write connection, taking its turn with appends.
const (
	sqlCreateKey = `INSERT INTO subject_keys (subject, kek, wrapped, created_at) VALUES (?, ?, ?, ?)
		ON CONFLICT (subject) DO NOTHING`
	sqlKeyCols = `subject, kek, wrapped, created_at, erased_at`
	sqlGetKey  = `SELECT ` + sqlKeyCols + ` FROM subject_keys WHERE subject = ?`
	// sqlEraseKey empties the wrapped key and stamps the erasure in one statement, inserting a
	// tombstone for a subject without a key; an erased row is left as it is.
	sqlEraseKey = `INSERT INTO subject_keys (subject, kek, wrapped, created_at, erased_at) VALUES (?, '', x'', ?, ?)
		ON CONFLICT (subject) DO UPDATE SET wrapped = x'', erased_at = excluded.erased_at
		WHERE subject_keys.erased_at IS NULL`
	sqlListKeys = `SELECT ` + sqlKeyCols + ` FROM subject_keys WHERE subject > ? ORDER BY subject LIMIT ?`
	// sqlRewrapKey is the compare-and-swap of RewrapSubjectKey.
	sqlRewrapKey = `UPDATE subject_keys SET kek = ?, wrapped = ?
		WHERE subject = ? AND kek = ? AND erased_at IS NULL`

	sqlSetSchema = `INSERT INTO event_schemas (type, sensitive, subject) VALUES (?, ?, ?)
		ON CONFLICT (type) DO UPDATE SET sensitive = excluded.sensitive, subject = excluded.subject`
	sqlSchemas = `SELECT type, sensitive, subject FROM event_schemas ORDER BY type`
)

// shred runs a statement that overwrites a wrapped key on the write connection, in its turn, so
// that the old bytes leave the file: secure_delete makes SQLite zero the space the old value
// took, and a checkpoint that truncates the WAL removes the frames that still hold it. The
// checkpoint waits for readers up to the busy timeout; when they do not let it finish, the old
// frames stay in the WAL until a later truncating checkpoint (the statement is committed
// either way). It returns the number of rows changed.
func (s *Store) shred(ctx context.Context, op, query string, args ...any) (int64, error) {
	w := s.wr
	if err := w.acquire(ctx, s.closed); err != nil {
		return 0, s.failWrite(ctx, op, err)
	}
	defer w.release()
	if _, err := w.conn.ExecContext(ctx, "PRAGMA secure_delete = ON"); err != nil {
		return 0, s.failWrite(ctx, op, err)
	}
	res, err := w.conn.ExecContext(ctx, query, args...)
	if err != nil {
		return 0, s.failWrite(ctx, op, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, s.failWrite(ctx, op, err)
	}
	if n > 0 {
		var busy, logFrames, done int
		_ = w.conn.QueryRowContext(context.WithoutCancel(ctx), "PRAGMA wal_checkpoint(TRUNCATE)").Scan(&busy, &logFrames, &done)
	}
	return n, nil
}

type keyScanner interface{ Scan(dest ...any) error }

func scanKey(r keyScanner) (strata.SubjectKey, error) {
	var k strata.SubjectKey
	var created int64
	var erased sql.NullInt64
	if err := r.Scan(&k.Subject, &k.KEK, &k.Wrapped, &created, &erased); err != nil {
		return strata.SubjectKey{}, err
	}
	if k.Wrapped == nil {
		k.Wrapped = []byte{}
	}
	k.CreatedAt = time.UnixMicro(created).UTC()
	if erased.Valid {
		k.ErasedAt = time.UnixMicro(erased.Int64).UTC()
	}
	return k, nil
}

// getKey reads the subject's key; sql.ErrNoRows becomes the NotFound error.
func (s *Store) getKey(ctx context.Context, op, subject string) (strata.SubjectKey, error) {
	k, err := scanKey(s.r.QueryRowContext(ctx, sqlGetKey, subject))
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return strata.SubjectKey{}, strata.SubjectKeyNotFound(op, subject)
	case err != nil:
		return strata.SubjectKey{}, s.fail(ctx, op, err)
	}
	return k, nil
}

// CreateSubjectKey implements strata.KeyStore. The insert and the writers it races with take
// turns on the write connection; rows are never deleted, so the read that follows it finds
// the row that won.
func (s *Store) CreateSubjectKey(ctx context.Context, k strata.SubjectKey) (strata.SubjectKey, error) {
	const op = "create subject key"
	if err := s.checkOpen(op); err != nil {
		return strata.SubjectKey{}, err
	}
	k, err := strata.PrepareSubjectKey(op, k)
	if err != nil {
		return strata.SubjectKey{}, err
	}
	now := strata.Timestamp(time.Now()).UnixMicro()
	if err := s.exec(ctx, op, sqlCreateKey, k.Subject, k.KEK, k.Wrapped, now); err != nil {
		return strata.SubjectKey{}, err
	}
	stored, err := s.getKey(ctx, op, k.Subject)
	if strata.ErrorCode(err) == strata.NotFound {
		return strata.SubjectKey{}, strata.Errorf(strata.Internal, op, "subject %q: the key was stored but cannot be read back", k.Subject)
	}
	return stored, err
}

// SubjectKey implements strata.KeyStore.
func (s *Store) SubjectKey(ctx context.Context, subject string) (strata.SubjectKey, error) {
	const op = "subject key"
	if err := s.checkOpen(op); err != nil {
		return strata.SubjectKey{}, err
	}
	if err := strata.ValidateSubject(op, subject); err != nil {
		return strata.SubjectKey{}, err
	}
	return s.getKey(ctx, op, subject)
}

// EraseSubjectKey implements strata.KeyStore. The wrapped key is overwritten in the file, and
// the WAL frames that held it are truncated away (see shred).
func (s *Store) EraseSubjectKey(ctx context.Context, subject string) (strata.SubjectKey, error) {
	const op = "erase subject key"
	if err := s.checkOpen(op); err != nil {
		return strata.SubjectKey{}, err
	}
	if err := strata.ValidateSubject(op, subject); err != nil {
		return strata.SubjectKey{}, err
	}
	now := strata.Timestamp(time.Now()).UnixMicro()
	if _, err := s.shred(ctx, op, sqlEraseKey, subject, now, now); err != nil {
		return strata.SubjectKey{}, err
	}
	k, err := s.getKey(ctx, op, subject)
	if err == nil && !k.Erased() {
		err = strata.Errorf(strata.Internal, op, "subject %q: the key was erased but reads back alive", subject)
	}
	return k, err
}

// ListSubjectKeys implements strata.KeyStore.
func (s *Store) ListSubjectKeys(ctx context.Context, after string, limit int) ([]strata.SubjectKey, error) {
	const op = "list subject keys"
	if err := s.checkOpen(op); err != nil {
		return nil, err
	}
	if err := strata.ValidateSubjectCursor(op, after); err != nil {
		return nil, err
	}
	rows, err := s.r.QueryContext(ctx, sqlListKeys, after, strata.SubjectKeyLimit(limit))
	if err != nil {
		return nil, s.fail(ctx, op, err)
	}
	defer rows.Close()
	var keys []strata.SubjectKey
	for rows.Next() {
		k, err := scanKey(rows)
		if err != nil {
			return nil, s.fail(ctx, op, err)
		}
		keys = append(keys, k)
	}
	if err := rows.Err(); err != nil {
		return nil, s.fail(ctx, op, err)
	}
	return keys, nil
}

// RewrapSubjectKey implements strata.KeyStore.
func (s *Store) RewrapSubjectKey(ctx context.Context, subject, oldKEK, newKEK string, wrapped []byte) (bool, error) {
	const op = "rewrap subject key"
	if err := s.checkOpen(op); err != nil {
		return false, err
	}
	wrapped, err := strata.PrepareRewrap(op, subject, oldKEK, newKEK, wrapped)
	if err != nil {
		return false, err
	}
	n, err := s.shred(ctx, op, sqlRewrapKey, newKEK, wrapped, subject, oldKEK)
	return n == 1, err
}

// SetEventSchema implements strata.SchemaStore. Sensitive is stored as a JSON array.
func (s *Store) SetEventSchema(ctx context.Context, schema strata.EventSchema) error {
	const op = "set event schema"
	if err := s.checkOpen(op); err != nil {
		return err
	}
	schema, err := strata.PrepareEventSchema(op, schema)
	if err != nil {
		return err
	}
	paths, err := json.Marshal(schema.Sensitive)
	if err != nil {
		return strata.Errorf(strata.Internal, op, "%w", err)
	}
	return s.exec(ctx, op, sqlSetSchema, schema.Type, string(paths), schema.Subject)
}

// EventSchemas implements strata.SchemaStore.
func (s *Store) EventSchemas(ctx context.Context) ([]strata.EventSchema, error) {
	const op = "event schemas"
	if err := s.checkOpen(op); err != nil {
		return nil, err
	}
	rows, err := s.r.QueryContext(ctx, sqlSchemas)
	if err != nil {
		return nil, s.fail(ctx, op, err)
	}
	defer rows.Close()
	schemas := []strata.EventSchema{}
	for rows.Next() {
		var sc strata.EventSchema
		var paths string
		if err := rows.Scan(&sc.Type, &paths, &sc.Subject); err != nil {
			return nil, s.fail(ctx, op, err)
		}
		if err := json.Unmarshal([]byte(paths), &sc.Sensitive); err != nil {
			return nil, s.fail(ctx, op, fmt.Errorf("schema of %q: sensitive paths: %w", sc.Type, err))
		}
		schemas = append(schemas, sc)
	}
	if err := rows.Err(); err != nil {
		return nil, s.fail(ctx, op, err)
	}
	return schemas, nil
}
