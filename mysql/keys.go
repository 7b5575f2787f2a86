package mysql

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/strata-events/strata"
)

var (
	_ strata.KeyStore    = (*Store)(nil)
	_ strata.SchemaStore = (*Store)(nil)
)

// The statements of strata.KeyStore and strata.SchemaStore (migrations 0005 and 0010: one key
// per (subject, tenant), the primary key). Each write is one
// statement in autocommit mode, run again after a deadlock (see execRows). MySQL 8 has no
// RETURNING, so a write that must return the row reads it afterwards; rows of subject_keys
// are never deleted, so the read finds the row the write left. Timestamps are the database's
// clock, like RecordedAt.
const (
	// sqlCreateKey inserts unless the subject has a row; the no-op update keeps other errors
	// errors, which INSERT IGNORE would turn into warnings.
	sqlCreateKey = "INSERT INTO subject_keys (subject, tenant, kek, wrapped, created_at) VALUES (?, ?, ?, ?, UTC_TIMESTAMP(6))" +
		" ON DUPLICATE KEY UPDATE subject = subject"
	sqlKeyCols = "subject, tenant, kek, wrapped, created_at, erased_at"
	sqlGetKey  = "SELECT " + sqlKeyCols + " FROM subject_keys WHERE subject = ? AND tenant = ?"
	// sqlEraseKey empties the wrapped key and stamps the erasure in one statement, inserting a
	// tombstone for a subject without a key; an erased row keeps its erased_at.
	sqlEraseKey = "INSERT INTO subject_keys (subject, tenant, kek, wrapped, created_at, erased_at)" +
		" VALUES (?, ?, '', '', UTC_TIMESTAMP(6), UTC_TIMESTAMP(6))" +
		" ON DUPLICATE KEY UPDATE wrapped = '', erased_at = COALESCE(erased_at, VALUES(erased_at))"
	// sqlListKeys pages in (subject, tenant) order, the primary key's.
	sqlListKeys = "SELECT " + sqlKeyCols + " FROM subject_keys WHERE subject > ? OR (subject = ? AND tenant > ?)" +
		" ORDER BY subject, tenant LIMIT ?"
	// sqlRewrapKey is the compare-and-swap of RewrapSubjectKey.
	sqlRewrapKey = "UPDATE subject_keys SET kek = ?, wrapped = ?" +
		" WHERE subject = ? AND tenant = ? AND kek = ? AND erased_at IS NULL"

	sqlSetSchema = "INSERT INTO event_schemas (type, sensitive_paths, subject) VALUES (?, ?, ?)" +
		" ON DUPLICATE KEY UPDATE sensitive_paths = VALUES(sensitive_paths), subject = VALUES(subject)"
	sqlSchemas = "SELECT type, sensitive_paths, subject FROM event_schemas ORDER BY type"
)

// execRows is exec that returns the number of rows changed.
func (s *Store) execRows(ctx context.Context, op, query string, args ...any) (int64, error) {
	for attempt := 1; ; attempt++ {
		if s.isClosed() {
			return 0, strata.ClosedError(op)
		}
		res, err := s.db.ExecContext(ctx, query, args...)
		switch {
		case err == nil:
			n, err := res.RowsAffected()
			if err != nil {
				return 0, s.fail(op, err)
			}
			return n, nil
		case !retryable(err):
			return 0, s.fail(op, err)
		case attempt >= maxAttempts:
			return 0, &strata.Error{Code: strata.Unavailable, Op: op, Msg: "gave up after repeated deadlocks or lock wait timeouts; retry later", Err: err}
		}
		if err := sleep(ctx, time.Duration(attempt)*time.Millisecond+rand.N(5*time.Millisecond)); err != nil {
			return 0, s.fail(op, err)
		}
	}
}

// getKey reads the key of the tenant's subject; found is false when it has no row.
func (s *Store) getKey(ctx context.Context, op, tenant, subject string) (k strata.SubjectKey, found bool, err error) {
	var kek string
	var erased sql.NullTime
	err = s.db.QueryRowContext(ctx, sqlGetKey, subject, tenant).Scan(&k.Subject, &k.Tenant, &kek, &k.Wrapped, &k.CreatedAt, &erased)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return strata.SubjectKey{}, false, nil
	case err != nil:
		return strata.SubjectKey{}, false, s.fail(op, err)
	}
	return finishKey(k, kek, erased), true, nil
}

func finishKey(k strata.SubjectKey, kek string, erased sql.NullTime) strata.SubjectKey {
	k.KEK = kek
	if k.Wrapped == nil {
		k.Wrapped = []byte{}
	}
	k.CreatedAt = k.CreatedAt.UTC()
	if erased.Valid {
		k.ErasedAt = erased.Time.UTC()
	}
	return k
}

// CreateSubjectKey implements strata.KeyStore.
func (s *Store) CreateSubjectKey(ctx context.Context, k strata.SubjectKey) (strata.SubjectKey, error) {
	const op = "create subject key"
	if s.isClosed() {
		return strata.SubjectKey{}, strata.ClosedError(op)
	}
	k, err := strata.PrepareSubjectKey(op, k)
	if err != nil {
		return strata.SubjectKey{}, err
	}
	if _, err := s.execRows(ctx, op, sqlCreateKey, k.Subject, k.Tenant, k.KEK, k.Wrapped); err != nil {
		return strata.SubjectKey{}, err
	}
	stored, found, err := s.getKey(ctx, op, k.Tenant, k.Subject)
	if err == nil && !found {
		err = strata.Errorf(strata.Internal, op, "subject %q: the key was stored but cannot be read back", k.Subject)
	}
	return stored, err
}

// SubjectKey implements strata.KeyStore.
func (s *Store) SubjectKey(ctx context.Context, tenant, subject string) (strata.SubjectKey, error) {
	const op = "subject key"
	if s.isClosed() {
		return strata.SubjectKey{}, strata.ClosedError(op)
	}
	if err := strata.ValidateKeyRef(op, tenant, subject); err != nil {
		return strata.SubjectKey{}, err
	}
	k, found, err := s.getKey(ctx, op, tenant, subject)
	if err == nil && !found {
		err = strata.SubjectKeyNotFound(op, tenant, subject)
	}
	return k, err
}

// EraseSubjectKey implements strata.KeyStore. The erased value is no longer visible to any
// query, but InnoDB keeps the old row version in its undo log until purge, and in the redo log,
// binary log and backups.
func (s *Store) EraseSubjectKey(ctx context.Context, tenant, subject string) (strata.SubjectKey, error) {
	const op = "erase subject key"
	if s.isClosed() {
		return strata.SubjectKey{}, strata.ClosedError(op)
	}
	if err := strata.ValidateKeyRef(op, tenant, subject); err != nil {
		return strata.SubjectKey{}, err
	}
	if _, err := s.execRows(ctx, op, sqlEraseKey, subject, tenant); err != nil {
		return strata.SubjectKey{}, err
	}
	k, found, err := s.getKey(ctx, op, tenant, subject)
	if err == nil && (!found || !k.Erased()) {
		err = strata.Errorf(strata.Internal, op, "subject %q: the key was erased but does not read back as a tombstone", subject)
	}
	return k, err
}

// ListSubjectKeys implements strata.KeyStore.
func (s *Store) ListSubjectKeys(ctx context.Context, after strata.SubjectKey, limit int) ([]strata.SubjectKey, error) {
	const op = "list subject keys"
	if s.isClosed() {
		return nil, strata.ClosedError(op)
	}
	if err := strata.ValidateSubjectCursor(op, after); err != nil {
		return nil, err
	}
	rows, err := s.db.QueryContext(ctx, sqlListKeys, after.Subject, after.Subject, after.Tenant, strata.SubjectKeyLimit(limit))
	if err != nil {
		return nil, s.fail(op, err)
	}
	defer rows.Close()
	var keys []strata.SubjectKey
	for rows.Next() {
		var k strata.SubjectKey
		var kek string
		var erased sql.NullTime
		if err := rows.Scan(&k.Subject, &k.Tenant, &kek, &k.Wrapped, &k.CreatedAt, &erased); err != nil {
			return nil, s.fail(op, err)
		}
		keys = append(keys, finishKey(k, kek, erased))
	}
	if err := rows.Err(); err != nil {
		return nil, s.fail(op, err)
	}
	return keys, nil
}

// RewrapSubjectKey implements strata.KeyStore. MySQL counts changed rows, not matched ones, so
// a rewrap that stores what is stored already (same KEK, same bytes) is confirmed by a read.
func (s *Store) RewrapSubjectKey(ctx context.Context, tenant, subject, oldKEK, newKEK string, wrapped []byte) (bool, error) {
	const op = "rewrap subject key"
	if s.isClosed() {
		return false, strata.ClosedError(op)
	}
	wrapped, err := strata.PrepareRewrap(op, tenant, subject, oldKEK, newKEK, wrapped)
	if err != nil {
		return false, err
	}
	n, err := s.execRows(ctx, op, sqlRewrapKey, newKEK, wrapped, subject, tenant, oldKEK)
	if err != nil || n == 1 || oldKEK != newKEK {
		return n == 1, err
	}
	k, found, err := s.getKey(ctx, op, tenant, subject)
	return err == nil && found && !k.Erased() && k.KEK == newKEK && bytes.Equal(k.Wrapped, wrapped), err
}

// SetEventSchema implements strata.SchemaStore. Sensitive is stored as a JSON array, in
// column sensitive_paths (SENSITIVE is a reserved word).
func (s *Store) SetEventSchema(ctx context.Context, schema strata.EventSchema) error {
	const op = "set event schema"
	if s.isClosed() {
		return strata.ClosedError(op)
	}
	schema, err := strata.PrepareEventSchema(op, schema)
	if err != nil {
		return err
	}
	paths, err := json.Marshal(schema.Sensitive)
	if err != nil {
		return strata.Errorf(strata.Internal, op, "%w", err)
	}
	return s.exec(ctx, op, sqlSetSchema, schema.Type, paths, schema.Subject)
}

// EventSchemas implements strata.SchemaStore.
func (s *Store) EventSchemas(ctx context.Context) ([]strata.EventSchema, error) {
	const op = "event schemas"
	if s.isClosed() {
		return nil, strata.ClosedError(op)
	}
	rows, err := s.db.QueryContext(ctx, sqlSchemas)
	if err != nil {
		return nil, s.fail(op, err)
	}
	defer rows.Close()
	schemas := []strata.EventSchema{}
	for rows.Next() {
		var sc strata.EventSchema
		var paths []byte
		if err := rows.Scan(&sc.Type, &paths, &sc.Subject); err != nil {
			return nil, s.fail(op, err)
		}
		if err := json.Unmarshal(paths, &sc.Sensitive); err != nil {
			return nil, s.fail(op, fmt.Errorf("schema of %q: sensitive paths: %w", sc.Type, err))
		}
		schemas = append(schemas, sc)
	}
	if err := rows.Err(); err != nil {
		return nil, s.fail(op, err)
	}
	return schemas, nil
}
