package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/strata-events/strata"
)

var _ strata.APIKeyStore = (*Store)(nil)

// The statements of strata.APIKeyStore (migration 0008). Writes are one statement each on the
// write connection, in their turn.
const (
	sqlAPIKeyCols   = `id, hash, role, tenant, name, created_at, revoked_at`
	sqlCreateAPIKey = `INSERT INTO api_keys (id, hash, role, tenant, name, created_at) VALUES (?, ?, ?, ?, ?, ?)
		ON CONFLICT (id) DO NOTHING`
	sqlGetAPIKey    = `SELECT ` + sqlAPIKeyCols + ` FROM api_keys WHERE id = ?`
	sqlListAPIKeys  = `SELECT ` + sqlAPIKeyCols + ` FROM api_keys WHERE id > ? ORDER BY id LIMIT ?`
	sqlRevokeAPIKey = `UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL`
)

// execN runs one write statement on the write connection, in its turn, and returns the number
// of rows it changed.
func (s *Store) execN(ctx context.Context, op, query string, args ...any) (int64, error) {
	w := s.wr
	if err := w.acquire(ctx, s.closed); err != nil {
		return 0, s.failWrite(ctx, op, err)
	}
	defer w.release()
	res, err := w.conn.ExecContext(ctx, query, args...)
	if err != nil {
		return 0, s.failWrite(ctx, op, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, s.failWrite(ctx, op, err)
	}
	return n, nil
}

func scanAPIKey(r keyScanner) (strata.APIKey, error) {
	var k strata.APIKey
	var role string
	var created int64
	var revoked sql.NullInt64
	if err := r.Scan(&k.ID, &k.Hash, &role, &k.Tenant, &k.Name, &created, &revoked); err != nil {
		return strata.APIKey{}, err
	}
	k.Role = strata.Role(role)
	k.CreatedAt = time.UnixMicro(created).UTC()
	if revoked.Valid {
		k.RevokedAt = time.UnixMicro(revoked.Int64).UTC()
	}
	return k, nil
}

func (s *Store) getAPIKey(ctx context.Context, op, id string) (strata.APIKey, error) {
	k, err := scanAPIKey(s.r.QueryRowContext(ctx, sqlGetAPIKey, id))
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return strata.APIKey{}, strata.APIKeyNotFound(op, id)
	case err != nil:
		return strata.APIKey{}, s.fail(ctx, op, err)
	}
	return k, nil
}

// CreateAPIKey implements strata.APIKeyStore.
func (s *Store) CreateAPIKey(ctx context.Context, k strata.APIKey) (strata.APIKey, error) {
	const op = "create API key"
	if err := s.checkOpen(op); err != nil {
		return strata.APIKey{}, err
	}
	k, err := strata.PrepareAPIKey(op, k)
	if err != nil {
		return strata.APIKey{}, err
	}
	now := strata.Timestamp(time.Now())
	n, err := s.execN(ctx, op, sqlCreateAPIKey, k.ID, k.Hash, string(k.Role), k.Tenant, k.Name, now.UnixMicro())
	if err != nil {
		return strata.APIKey{}, err
	}
	if n == 0 {
		return strata.APIKey{}, strata.APIKeyDuplicate(op, k.ID)
	}
	k.CreatedAt = now
	return k, nil
}

// APIKey implements strata.APIKeyStore.
func (s *Store) APIKey(ctx context.Context, id string) (strata.APIKey, error) {
	const op = "API key"
	if err := s.checkOpen(op); err != nil {
		return strata.APIKey{}, err
	}
	if err := strata.ValidateAPIKeyID(op, id); err != nil {
		return strata.APIKey{}, err
	}
	return s.getAPIKey(ctx, op, id)
}

// ListAPIKeys implements strata.APIKeyStore.
func (s *Store) ListAPIKeys(ctx context.Context, after string, limit int) ([]strata.APIKey, error) {
	const op = "list API keys"
	if err := s.checkOpen(op); err != nil {
		return nil, err
	}
	if err := strata.ValidateAPIKeyCursor(op, after); err != nil {
		return nil, err
	}
	rows, err := s.r.QueryContext(ctx, sqlListAPIKeys, after, strata.APIKeyLimit(limit))
	if err != nil {
		return nil, s.fail(ctx, op, err)
	}
	defer rows.Close()
	var out []strata.APIKey
	for rows.Next() {
		k, err := scanAPIKey(rows)
		if err != nil {
			return nil, s.fail(ctx, op, err)
		}
		out = append(out, k)
	}
	if err := rows.Err(); err != nil {
		return nil, s.fail(ctx, op, err)
	}
	return out, nil
}

// RevokeAPIKey implements strata.APIKeyStore.
func (s *Store) RevokeAPIKey(ctx context.Context, id string) (strata.APIKey, error) {
	const op = "revoke API key"
	if err := s.checkOpen(op); err != nil {
		return strata.APIKey{}, err
	}
	if err := strata.ValidateAPIKeyID(op, id); err != nil {
		return strata.APIKey{}, err
	}
	if _, err := s.execN(ctx, op, sqlRevokeAPIKey, strata.Timestamp(time.Now()).UnixMicro(), id); err != nil {
		return strata.APIKey{}, err
	}
	return s.getAPIKey(ctx, op, id)
}
