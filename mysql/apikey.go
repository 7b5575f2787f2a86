package mysql

import (
	"context"
	"database/sql"
	"errors"

	"github.com/strata-events/strata"
)

var _ strata.APIKeyStore = (*Store)(nil)

// The statements of strata.APIKeyStore (migration 0008). Each write is one statement in
// autocommit mode (run again after a deadlock, see execRows); MySQL has no RETURNING, so a
// write that returns the key reads it afterwards. Rows are never deleted.
const (
	sqlAPIKeyCols = "id, hash, role, tenant, name, created_at, revoked_at"
	// sqlCreateAPIKey changes no row when the ID exists: the no-op update keeps other errors
	// errors, which INSERT IGNORE would turn into warnings.
	sqlCreateAPIKey = "INSERT INTO api_keys (id, hash, role, tenant, name, created_at) VALUES (?, ?, ?, ?, ?, UTC_TIMESTAMP(6))" +
		" ON DUPLICATE KEY UPDATE id = id"
	sqlGetAPIKey    = "SELECT " + sqlAPIKeyCols + " FROM api_keys WHERE id = ?"
	sqlListAPIKeys  = "SELECT " + sqlAPIKeyCols + " FROM api_keys WHERE id > ? ORDER BY id LIMIT ?"
	sqlRevokeAPIKey = "UPDATE api_keys SET revoked_at = UTC_TIMESTAMP(6) WHERE id = ? AND revoked_at IS NULL"
)

type apiKeyScanner interface{ Scan(dest ...any) error }

func scanAPIKey(r apiKeyScanner) (strata.APIKey, error) {
	var k strata.APIKey
	var role, tenant, name []byte
	var revoked sql.NullTime
	if err := r.Scan(&k.ID, &k.Hash, &role, &tenant, &name, &k.CreatedAt, &revoked); err != nil {
		return strata.APIKey{}, err
	}
	k.Role, k.Tenant, k.Name = strata.Role(role), string(tenant), string(name)
	k.CreatedAt = k.CreatedAt.UTC()
	if revoked.Valid {
		k.RevokedAt = revoked.Time.UTC()
	}
	return k, nil
}

func (s *Store) getAPIKey(ctx context.Context, op, id string) (strata.APIKey, error) {
	k, err := scanAPIKey(s.db.QueryRowContext(ctx, sqlGetAPIKey, id))
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return strata.APIKey{}, strata.APIKeyNotFound(op, id)
	case err != nil:
		return strata.APIKey{}, s.fail(op, err)
	}
	return k, nil
}

// CreateAPIKey implements strata.APIKeyStore.
func (s *Store) CreateAPIKey(ctx context.Context, k strata.APIKey) (strata.APIKey, error) {
	const op = "create API key"
	if s.isClosed() {
		return strata.APIKey{}, strata.ClosedError(op)
	}
	k, err := strata.PrepareAPIKey(op, k)
	if err != nil {
		return strata.APIKey{}, err
	}
	n, err := s.execRows(ctx, op, sqlCreateAPIKey, k.ID, k.Hash, string(k.Role), k.Tenant, k.Name)
	if err != nil {
		return strata.APIKey{}, err
	}
	if n == 0 {
		return strata.APIKey{}, strata.APIKeyDuplicate(op, k.ID)
	}
	return s.getAPIKey(ctx, op, k.ID)
}

// APIKey implements strata.APIKeyStore.
func (s *Store) APIKey(ctx context.Context, id string) (strata.APIKey, error) {
	const op = "API key"
	if s.isClosed() {
		return strata.APIKey{}, strata.ClosedError(op)
	}
	if err := strata.ValidateAPIKeyID(op, id); err != nil {
		return strata.APIKey{}, err
	}
	return s.getAPIKey(ctx, op, id)
}

// ListAPIKeys implements strata.APIKeyStore.
func (s *Store) ListAPIKeys(ctx context.Context, after string, limit int) ([]strata.APIKey, error) {
	const op = "list API keys"
	if s.isClosed() {
		return nil, strata.ClosedError(op)
	}
	if err := strata.ValidateAPIKeyCursor(op, after); err != nil {
		return nil, err
	}
	rows, err := s.db.QueryContext(ctx, sqlListAPIKeys, after, strata.APIKeyLimit(limit))
	if err != nil {
		return nil, s.fail(op, err)
	}
	defer rows.Close()
	var out []strata.APIKey
	for rows.Next() {
		k, err := scanAPIKey(rows)
		if err != nil {
			return nil, s.fail(op, err)
		}
		out = append(out, k)
	}
	if err := rows.Err(); err != nil {
		return nil, s.fail(op, err)
	}
	return out, nil
}

// RevokeAPIKey implements strata.APIKeyStore.
func (s *Store) RevokeAPIKey(ctx context.Context, id string) (strata.APIKey, error) {
	const op = "revoke API key"
	if s.isClosed() {
		return strata.APIKey{}, strata.ClosedError(op)
	}
	if err := strata.ValidateAPIKeyID(op, id); err != nil {
		return strata.APIKey{}, err
	}
	if _, err := s.execRows(ctx, op, sqlRevokeAPIKey, id); err != nil {
		return strata.APIKey{}, err
	}
	return s.getAPIKey(ctx, op, id)
}
