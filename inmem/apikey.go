package inmem

import (
	"context"
	"slices"
	"strings"

	"github.com/strata-events/strata"
)

var _ strata.APIKeyStore = (*Store)(nil)

func cloneAPIKey(k strata.APIKey) strata.APIKey {
	k.Hash = append([]byte{}, k.Hash...)
	return k
}

// CreateAPIKey implements strata.APIKeyStore.
func (s *Store) CreateAPIKey(ctx context.Context, k strata.APIKey) (strata.APIKey, error) {
	const op = "create API key"
	k, err := strata.PrepareAPIKey(op, k)
	if err != nil {
		return strata.APIKey{}, err
	}
	if err := s.lock(ctx, op); err != nil {
		return strata.APIKey{}, err
	}
	defer s.mu.Unlock()
	if _, ok := s.apiKeys[k.ID]; ok {
		return strata.APIKey{}, strata.APIKeyDuplicate(op, k.ID)
	}
	if s.apiKeys == nil {
		s.apiKeys = make(map[string]strata.APIKey)
	}
	k.CreatedAt = strata.Timestamp(s.now())
	s.apiKeys[k.ID] = k
	return cloneAPIKey(k), nil
}

// APIKey implements strata.APIKeyStore.
func (s *Store) APIKey(ctx context.Context, id string) (strata.APIKey, error) {
	const op = "API key"
	if err := strata.ValidateAPIKeyID(op, id); err != nil {
		return strata.APIKey{}, err
	}
	if err := s.rlock(ctx, op); err != nil {
		return strata.APIKey{}, err
	}
	defer s.mu.RUnlock()
	k, ok := s.apiKeys[id]
	if !ok {
		return strata.APIKey{}, strata.APIKeyNotFound(op, id)
	}
	return cloneAPIKey(k), nil
}

// ListAPIKeys implements strata.APIKeyStore.
func (s *Store) ListAPIKeys(ctx context.Context, after string, limit int) ([]strata.APIKey, error) {
	const op = "list API keys"
	if err := strata.ValidateAPIKeyCursor(op, after); err != nil {
		return nil, err
	}
	if err := s.rlock(ctx, op); err != nil {
		return nil, err
	}
	defer s.mu.RUnlock()
	var out []strata.APIKey
	for id, k := range s.apiKeys {
		if id > after {
			out = append(out, cloneAPIKey(k))
		}
	}
	slices.SortFunc(out, func(a, b strata.APIKey) int { return strings.Compare(a.ID, b.ID) })
	if n := strata.APIKeyLimit(limit); len(out) > n {
		out = out[:n]
	}
	return out, nil
}

// RevokeAPIKey implements strata.APIKeyStore.
func (s *Store) RevokeAPIKey(ctx context.Context, id string) (strata.APIKey, error) {
	const op = "revoke API key"
	if err := strata.ValidateAPIKeyID(op, id); err != nil {
		return strata.APIKey{}, err
	}
	if err := s.lock(ctx, op); err != nil {
		return strata.APIKey{}, err
	}
	defer s.mu.Unlock()
	k, ok := s.apiKeys[id]
	if !ok {
		return strata.APIKey{}, strata.APIKeyNotFound(op, id)
	}
	if !k.Revoked() {
		k.RevokedAt = strata.Timestamp(s.now())
		s.apiKeys[id] = k
	}
	return cloneAPIKey(k), nil
}
