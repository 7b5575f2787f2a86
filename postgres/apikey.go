package postgres

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/strata-events/strata"
)

var _ strata.APIKeyStore = (*Store)(nil)

// The SQL of strata.APIKeyStore (migration 0008); {schema} is the store's schema. Each call is
// one statement. API keys are looked up rarely (the HTTP API caches them), so the statements
// are built per call rather than kept on the Store.
const (
	apiKeyCols      = `id, hash, role, tenant, name, created_at, revoked_at`
	sqlCreateAPIKey = `INSERT INTO {schema}.api_keys (id, hash, role, tenant, name, created_at)
	VALUES ($1, $2, $3, $4, $5, now()) ON CONFLICT (id) DO NOTHING RETURNING ` + apiKeyCols
	sqlGetAPIKey   = `SELECT ` + apiKeyCols + ` FROM {schema}.api_keys WHERE id = $1`
	sqlListAPIKeys = `SELECT ` + apiKeyCols + ` FROM {schema}.api_keys WHERE id > $1 ORDER BY id LIMIT $2`
	// sqlRevokeAPIKey keeps the first revocation time.
	sqlRevokeAPIKey = `UPDATE {schema}.api_keys SET revoked_at = COALESCE(revoked_at, now()) WHERE id = $1
	RETURNING ` + apiKeyCols
)

func (s *Store) apiKeySQL(q string) string {
	return strings.ReplaceAll(q, "{schema}", pgx.Identifier{s.schema}.Sanitize())
}

func scanAPIKey(row pgx.Row) (strata.APIKey, error) {
	var k strata.APIKey
	var role string
	var revoked *time.Time
	if err := row.Scan(&k.ID, &k.Hash, &role, &k.Tenant, &k.Name, &k.CreatedAt, &revoked); err != nil {
		return strata.APIKey{}, err
	}
	k.Role = strata.Role(role)
	k.CreatedAt = k.CreatedAt.UTC()
	if revoked != nil {
		k.RevokedAt = revoked.UTC()
	}
	return k, nil
}

// queryAPIKey runs a statement that returns at most one key; found is false for none.
func (s *Store) queryAPIKey(ctx context.Context, op, query string, args ...any) (k strata.APIKey, found bool, err error) {
	if s.closed.Load() {
		return strata.APIKey{}, false, strata.ClosedError(op)
	}
	k, err = scanAPIKey(s.pool.QueryRow(ctx, s.apiKeySQL(query), args...))
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return strata.APIKey{}, false, nil
	case err != nil:
		return strata.APIKey{}, false, s.fail(op, err)
	}
	return k, true, nil
}

// CreateAPIKey implements strata.APIKeyStore.
func (s *Store) CreateAPIKey(ctx context.Context, k strata.APIKey) (strata.APIKey, error) {
	const op = "create API key"
	k, err := strata.PrepareAPIKey(op, k)
	if err != nil {
		return strata.APIKey{}, err
	}
	stored, found, err := s.queryAPIKey(ctx, op, sqlCreateAPIKey, k.ID, k.Hash, string(k.Role), k.Tenant, k.Name)
	if err == nil && !found {
		err = strata.APIKeyDuplicate(op, k.ID)
	}
	return stored, err
}

// APIKey implements strata.APIKeyStore.
func (s *Store) APIKey(ctx context.Context, id string) (strata.APIKey, error) {
	const op = "API key"
	if err := strata.ValidateAPIKeyID(op, id); err != nil {
		return strata.APIKey{}, err
	}
	k, found, err := s.queryAPIKey(ctx, op, sqlGetAPIKey, id)
	if err == nil && !found {
		err = strata.APIKeyNotFound(op, id)
	}
	return k, err
}

// ListAPIKeys implements strata.APIKeyStore.
func (s *Store) ListAPIKeys(ctx context.Context, after string, limit int) ([]strata.APIKey, error) {
	const op = "list API keys"
	if err := strata.ValidateAPIKeyCursor(op, after); err != nil {
		return nil, err
	}
	if s.closed.Load() {
		return nil, strata.ClosedError(op)
	}
	rows, _ := s.pool.Query(ctx, s.apiKeySQL(sqlListAPIKeys), after, int64(strata.APIKeyLimit(limit)))
	keys, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (strata.APIKey, error) { return scanAPIKey(row) })
	if err != nil {
		return nil, s.fail(op, err)
	}
	return keys, nil
}

// RevokeAPIKey implements strata.APIKeyStore.
func (s *Store) RevokeAPIKey(ctx context.Context, id string) (strata.APIKey, error) {
	const op = "revoke API key"
	if err := strata.ValidateAPIKeyID(op, id); err != nil {
		return strata.APIKey{}, err
	}
	k, found, err := s.queryAPIKey(ctx, op, sqlRevokeAPIKey, id)
	if err == nil && !found {
		err = strata.APIKeyNotFound(op, id)
	}
	return k, err
}
