package postgres

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/strata-events/strata"
)

var (
	_ strata.KeyStore    = (*Store)(nil)
	_ strata.SchemaStore = (*Store)(nil)
)

// keyQueries holds the SQL of strata.KeyStore and strata.SchemaStore (migrations 0005 and 0011:
// one key per (subject, tenant), the tenant as bytea like events.tenant), with the store's
// schema filled in. Every write is one statement, so none needs a transaction.
// Timestamps are the database's clock, like RecordedAt; timestamptz holds microseconds.
type keyQueries struct {
	createKey, getKey, eraseKey, listKeys, rewrapKey string
	setSchema, schemas                               string
}

const keyCols = `subject, tenant, kek, wrapped, created_at, erased_at`

func buildKeyQueries(schema string) keyQueries {
	r := strings.NewReplacer("{schema}", schema, "{cols}", keyCols)
	return keyQueries{
		// createKey returns no row when the subject has a row already; getKey then reads it
		// (in a new snapshot, so it sees a row that a racing creator committed meanwhile).
		createKey: r.Replace(`INSERT INTO {schema}.subject_keys (subject, tenant, kek, wrapped, created_at)
	VALUES ($1, $2, $3, $4, now()) ON CONFLICT (subject, tenant) DO NOTHING RETURNING {cols}`),
		getKey: r.Replace(`SELECT {cols} FROM {schema}.subject_keys WHERE subject = $1 AND tenant = $2`),
		// eraseKey empties the wrapped key and stamps the erasure in one statement, inserting a
		// tombstone for a subject without a key. An erased row is left as it is, and returns
		// no row.
		eraseKey: r.Replace(`INSERT INTO {schema}.subject_keys AS k (subject, tenant, kek, wrapped, created_at, erased_at)
	VALUES ($1, $2, '', '', now(), now())
	ON CONFLICT (subject, tenant) DO UPDATE SET wrapped = '', erased_at = excluded.erased_at
	WHERE k.erased_at IS NULL RETURNING {cols}`),
		// listKeys pages in (subject, tenant) order, the primary key's (a row comparison, which
		// the index serves).
		listKeys: r.Replace(`SELECT {cols} FROM {schema}.subject_keys WHERE (subject, tenant) > ($1, $2)
	ORDER BY subject, tenant LIMIT $3`),
		// rewrapKey is the compare-and-swap of RewrapSubjectKey.
		rewrapKey: r.Replace(`UPDATE {schema}.subject_keys SET kek = $4, wrapped = $5
	WHERE subject = $1 AND tenant = $2 AND kek = $3 AND erased_at IS NULL`),

		setSchema: r.Replace(`INSERT INTO {schema}.event_schemas (type, sensitive, subject) VALUES ($1, $2, $3)
	ON CONFLICT (type) DO UPDATE SET sensitive = excluded.sensitive, subject = excluded.subject`),
		schemas: r.Replace(`SELECT type, sensitive, subject FROM {schema}.event_schemas ORDER BY type`),
	}
}

func scanKey(row pgx.Row) (strata.SubjectKey, error) {
	var k strata.SubjectKey
	var erased *time.Time
	var tenant []byte
	if err := row.Scan(&k.Subject, &tenant, &k.KEK, &k.Wrapped, &k.CreatedAt, &erased); err != nil {
		return strata.SubjectKey{}, err
	}
	k.Tenant = string(tenant)
	if k.Wrapped == nil {
		k.Wrapped = []byte{}
	}
	k.CreatedAt = k.CreatedAt.UTC()
	if erased != nil {
		k.ErasedAt = erased.UTC()
	}
	return k, nil
}

// queryKey runs a query that returns at most one key row; found is false for none.
func (s *Store) queryKey(ctx context.Context, op, query string, args ...any) (k strata.SubjectKey, found bool, err error) {
	k, err = scanKey(s.pool.QueryRow(ctx, query, args...))
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return strata.SubjectKey{}, false, nil
	case err != nil:
		return strata.SubjectKey{}, false, s.fail(op, err)
	}
	return k, true, nil
}

// CreateSubjectKey implements strata.KeyStore.
func (s *Store) CreateSubjectKey(ctx context.Context, k strata.SubjectKey) (strata.SubjectKey, error) {
	const op = "create subject key"
	k, err := strata.PrepareSubjectKey(op, k)
	if err != nil {
		return strata.SubjectKey{}, err
	}
	if s.closed.Load() {
		return strata.SubjectKey{}, strata.ClosedError(op)
	}
	stored, found, err := s.queryKey(ctx, op, s.kq.createKey, k.Subject, []byte(k.Tenant), k.KEK, k.Wrapped)
	if err != nil || found {
		return stored, err
	}
	// Rows are never deleted, so the row that won the insert is there.
	stored, found, err = s.queryKey(ctx, op, s.kq.getKey, k.Subject, []byte(k.Tenant))
	if err == nil && !found {
		err = strata.Errorf(strata.Internal, op, "subject %q: the key was stored but cannot be read back", k.Subject)
	}
	return stored, err
}

// SubjectKey implements strata.KeyStore.
func (s *Store) SubjectKey(ctx context.Context, tenant, subject string) (strata.SubjectKey, error) {
	const op = "subject key"
	if err := strata.ValidateKeyRef(op, tenant, subject); err != nil {
		return strata.SubjectKey{}, err
	}
	if s.closed.Load() {
		return strata.SubjectKey{}, strata.ClosedError(op)
	}
	k, found, err := s.queryKey(ctx, op, s.kq.getKey, subject, []byte(tenant))
	if err == nil && !found {
		err = strata.SubjectKeyNotFound(op, tenant, subject)
	}
	return k, err
}

// EraseSubjectKey implements strata.KeyStore. The erased row version is no longer visible to
// any query, but PostgreSQL keeps its bytes in the table's files until VACUUM reclaims them
// (and in the WAL and backups); run VACUUM on subject_keys to shorten that window.
func (s *Store) EraseSubjectKey(ctx context.Context, tenant, subject string) (strata.SubjectKey, error) {
	const op = "erase subject key"
	if err := strata.ValidateKeyRef(op, tenant, subject); err != nil {
		return strata.SubjectKey{}, err
	}
	if s.closed.Load() {
		return strata.SubjectKey{}, strata.ClosedError(op)
	}
	k, found, err := s.queryKey(ctx, op, s.kq.eraseKey, subject, []byte(tenant))
	if err != nil || found {
		return k, err
	}
	// The subject was erased before: return its tombstone unchanged.
	k, found, err = s.queryKey(ctx, op, s.kq.getKey, subject, []byte(tenant))
	if err == nil && (!found || !k.Erased()) {
		err = strata.Errorf(strata.Internal, op, "subject %q: the key was erased but does not read back as a tombstone", subject)
	}
	return k, err
}

// ListSubjectKeys implements strata.KeyStore.
func (s *Store) ListSubjectKeys(ctx context.Context, after strata.SubjectKey, limit int) ([]strata.SubjectKey, error) {
	const op = "list subject keys"
	if err := strata.ValidateSubjectCursor(op, after); err != nil {
		return nil, err
	}
	if s.closed.Load() {
		return nil, strata.ClosedError(op)
	}
	rows, _ := s.pool.Query(ctx, s.kq.listKeys, after.Subject, []byte(after.Tenant), int64(strata.SubjectKeyLimit(limit)))
	keys, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (strata.SubjectKey, error) { return scanKey(row) })
	if err != nil {
		return nil, s.fail(op, err)
	}
	return keys, nil
}

// RewrapSubjectKey implements strata.KeyStore.
func (s *Store) RewrapSubjectKey(ctx context.Context, tenant, subject, oldKEK, newKEK string, wrapped []byte) (bool, error) {
	const op = "rewrap subject key"
	wrapped, err := strata.PrepareRewrap(op, tenant, subject, oldKEK, newKEK, wrapped)
	if err != nil {
		return false, err
	}
	if s.closed.Load() {
		return false, strata.ClosedError(op)
	}
	tag, err := s.pool.Exec(ctx, s.kq.rewrapKey, subject, []byte(tenant), oldKEK, newKEK, wrapped)
	if err != nil {
		return false, s.fail(op, err)
	}
	return tag.RowsAffected() == 1, nil
}

// SetEventSchema implements strata.SchemaStore. Sensitive is stored as a jsonb array.
func (s *Store) SetEventSchema(ctx context.Context, schema strata.EventSchema) error {
	const op = "set event schema"
	schema, err := strata.PrepareEventSchema(op, schema)
	if err != nil {
		return err
	}
	return s.exec(ctx, op, s.kq.setSchema, schema.Type, schema.Sensitive, schema.Subject)
}

// EventSchemas implements strata.SchemaStore.
func (s *Store) EventSchemas(ctx context.Context) ([]strata.EventSchema, error) {
	const op = "event schemas"
	if s.closed.Load() {
		return nil, strata.ClosedError(op)
	}
	rows, _ := s.pool.Query(ctx, s.kq.schemas)
	schemas, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (strata.EventSchema, error) {
		var sc strata.EventSchema
		err := row.Scan(&sc.Type, &sc.Sensitive, &sc.Subject)
		return sc, err
	})
	if err != nil {
		return nil, s.fail(op, err)
	}
	if schemas == nil {
		schemas = []strata.EventSchema{}
	}
	return schemas, nil
}
