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

// The statements of strata.KeyStore and strata.SchemaStore (migrations 0005 and 0010: one key
// per (subject, tenant)). Each write is one statement in autocommit mode on the write
// connection, taking its turn with appends.
const (
	sqlCreateKey = `INSERT INTO subject_keys (subject, tenant, kek, wrapped, created_at) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (subject, tenant) DO NOTHING`
	sqlKeyCols = `subject, tenant, kek, wrapped, created_at, erased_at`
	sqlGetKey  = `SELECT ` + sqlKeyCols + ` FROM subject_keys WHERE subject = ? AND tenant = ?`
	// sqlEraseKey empties the wrapped key and stamps the erasure in one statement, inserting a
	// tombstone for a subject without a key; an erased row is left as it is.
	sqlEraseKey = `INSERT INTO subject_keys (subject, tenant, kek, wrapped, created_at, erased_at) VALUES (?, ?, '', x'', ?, ?)
		ON CONFLICT (subject, tenant) DO UPDATE SET wrapped = x'', erased_at = excluded.erased_at
		WHERE subject_keys.erased_at IS NULL`
	// sqlListKeys pages in (subject, tenant) order, the primary key's.
	sqlListKeys = `SELECT ` + sqlKeyCols + ` FROM subject_keys
		WHERE subject > ? OR (subject = ? AND tenant > ?) ORDER BY subject, tenant LIMIT ?`
	// sqlRewrapKey is the compare-and-swap of RewrapSubjectKey.
	sqlRewrapKey = `UPDATE subject_keys SET kek = ?, wrapped = ?
		WHERE subject = ? AND tenant = ? AND kek = ? AND erased_at IS NULL`

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
	if err := r.Scan(&k.Subject, &k.Tenant, &k.KEK, &k.Wrapped, &created, &erased); err != nil {
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

// getKey reads the key of the tenant's subject; sql.ErrNoRows becomes the NotFound error.
func (s *Store) getKey(ctx context.Context, op, tenant, subject string) (strata.SubjectKey, error) {
	k, err := scanKey(s.r.QueryRowContext(ctx, sqlGetKey, subject, tenant))
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return strata.SubjectKey{}, strata.SubjectKeyNotFound(op, tenant, subject)
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
	if err := s.exec(ctx, op, sqlCreateKey, k.Subject, k.Tenant, k.KEK, k.Wrapped, now); err != nil {
		return strata.SubjectKey{}, err
	}
	stored, err := s.getKey(ctx, op, k.Tenant, k.Subject)
	if strata.ErrorCode(err) == strata.NotFound {
		return strata.SubjectKey{}, strata.Errorf(strata.Internal, op, "subject %q: the key was stored but cannot be read back", k.Subject)
	}
	return stored, err
}

// SubjectKey implements strata.KeyStore.
func (s *Store) SubjectKey(ctx context.Context, tenant, subject string) (strata.SubjectKey, error) {
	const op = "subject key"
	if err := s.checkOpen(op); err != nil {
		return strata.SubjectKey{}, err
	}
	if err := strata.ValidateKeyRef(op, tenant, subject); err != nil {
		return strata.SubjectKey{}, err
	}
	return s.getKey(ctx, op, tenant, subject)
}

// EraseSubjectKey implements strata.KeyStore. The wrapped key is overwritten in the file, and
// the WAL frames that held it are truncated away (see shred).
func (s *Store) EraseSubjectKey(ctx context.Context, tenant, subject string) (strata.SubjectKey, error) {
	const op = "erase subject key"
	if err := s.checkOpen(op); err != nil {
		return strata.SubjectKey{}, err
	}
	if err := strata.ValidateKeyRef(op, tenant, subject); err != nil {
		return strata.SubjectKey{}, err
	}
	now := strata.Timestamp(time.Now()).UnixMicro()
	if _, err := s.shred(ctx, op, sqlEraseKey, subject, tenant, now, now); err != nil {
		return strata.SubjectKey{}, err
	}
	k, err := s.getKey(ctx, op, tenant, subject)
	if err == nil && !k.Erased() {
		err = strata.Errorf(strata.Internal, op, "subject %q: the key was erased but reads back alive", subject)
	}
	return k, err
}

// ListSubjectKeys implements strata.KeyStore.
func (s *Store) ListSubjectKeys(ctx context.Context, after strata.SubjectKey, limit int) ([]strata.SubjectKey, error) {
	const op = "list subject keys"
	if err := s.checkOpen(op); err != nil {
		return nil, err
	}
	if err := strata.ValidateSubjectCursor(op, after); err != nil {
		return nil, err
	}
	rows, err := s.r.QueryContext(ctx, sqlListKeys, after.Subject, after.Subject, after.Tenant, strata.SubjectKeyLimit(limit))
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
func (s *Store) RewrapSubjectKey(ctx context.Context, tenant, subject, oldKEK, newKEK string, wrapped []byte) (bool, error) {
	const op = "rewrap subject key"
	if err := s.checkOpen(op); err != nil {
		return false, err
	}
	wrapped, err := strata.PrepareRewrap(op, tenant, subject, oldKEK, newKEK, wrapped)
	if err != nil {
		return false, err
	}
	n, err := s.shred(ctx, op, sqlRewrapKey, newKEK, wrapped, subject, tenant, oldKEK)
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
