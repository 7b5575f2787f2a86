package strata

import (
	"context"
	"time"
)

// API keys of the HTTP API (package httpapi, `strata apikey`): the optional capability
// [APIKeyStore]. A key is shown to its owner once, when it is made; the store keeps only a hash
// of it (SHA-256 of a high-entropy secret), its public ID, its role and its tenant.

// Role is what an API key may do.
type Role string

// The roles, from least to most powerful.
const (
	// RoleReader reads events and streams and subscribes to the log.
	RoleReader Role = "reader"
	// RoleWriter reads and appends.
	RoleWriter Role = "writer"
	// RoleAuditor reads, and reads proofs, checkpoints, history and projection status; it
	// never writes.
	RoleAuditor Role = "auditor"
	// RoleAdmin may do everything within its tenant, including erasure.
	RoleAdmin Role = "admin"
)

// Roles lists the valid roles.
var Roles = []Role{RoleReader, RoleWriter, RoleAuditor, RoleAdmin}

// Valid reports whether r is one of [Roles].
func (r Role) Valid() bool {
	switch r {
	case RoleReader, RoleWriter, RoleAuditor, RoleAdmin:
		return true
	}
	return false
}

// Limits of API keys, the same on every backend.
const (
	// MaxAPIKeyIDLen is the longest key ID, in bytes.
	MaxAPIKeyIDLen = 64
	// MaxAPIKeyNameLen is the longest key name (a label for people), in bytes of UTF-8.
	MaxAPIKeyNameLen = 255
	// MaxAPIKeyTenantLen is the longest tenant a key may name, in bytes of UTF-8.
	MaxAPIKeyTenantLen = 255
	// APIKeyHashLen is the length of a stored key hash (SHA-256).
	APIKeyHashLen = 32
	// DefaultAPIKeyLimit is the page size of [APIKeyStore.ListAPIKeys] for a limit of 0 or less.
	DefaultAPIKeyLimit = 1000
)

// APIKey is an API key as the store keeps it: never the key itself.
type APIKey struct {
	// ID is the key's public identifier (1 to MaxAPIKeyIDLen bytes of [A-Za-z0-9_-]); it is
	// part of the key, so that a server finds the row without scanning.
	ID string
	// Hash is the SHA-256 of the whole key, APIKeyHashLen bytes.
	Hash []byte
	// Role is what the key may do.
	Role Role
	// Tenant is the one tenant the key sees and writes (Metadata.Tenant); required.
	Tenant string
	// Name is a free label, e.g. "billing importer"; may be empty.
	Name string
	// CreatedAt is when the key was stored; RevokedAt when it was revoked (zero while it is
	// valid). Both are set by the store (its clock, UTC, microseconds).
	CreatedAt, RevokedAt time.Time
}

// Revoked reports whether the key was revoked.
func (k APIKey) Revoked() bool { return !k.RevokedAt.IsZero() }

// APIKeyStore keeps API keys. Revoked keys stay as rows, so that a revoked ID is never reused
// and `strata apikey list` shows who had access.
type APIKeyStore interface {
	// CreateAPIKey stores k and returns it as stored (CreatedAt set, RevokedAt zero). It is a
	// Duplicate error when a key with k's ID exists; bad input is an Invalid error (see
	// [PrepareAPIKey]); nothing is written then.
	CreateAPIKey(ctx context.Context, k APIKey) (APIKey, error)
	// APIKey returns the key with that ID, revoked or not, or a NotFound error.
	APIKey(ctx context.Context, id string) (APIKey, error)
	// ListAPIKeys returns up to limit keys with an ID greater than after, in ID order (byte
	// order). A limit of 0 or less means DefaultAPIKeyLimit.
	ListAPIKeys(ctx context.Context, after string, limit int) ([]APIKey, error)
	// RevokeAPIKey revokes the key and returns it; revoking a revoked key changes nothing and
	// returns it as it is. An unknown ID is a NotFound error.
	RevokeAPIKey(ctx context.Context, id string) (APIKey, error)
}

// ValidateAPIKeyID returns an Invalid error unless id is 1 to MaxAPIKeyIDLen bytes of
// [A-Za-z0-9_-].
func ValidateAPIKeyID(op, id string) error {
	if id == "" || len(id) > MaxAPIKeyIDLen {
		return Errorf(Invalid, op, "API key ID of %d bytes, want 1-%d", len(id), MaxAPIKeyIDLen)
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-') {
			return Errorf(Invalid, op, "API key ID %q: only letters, digits, '_' and '-' are allowed", id)
		}
	}
	return nil
}

// ValidateAPIKeyCursor returns an Invalid error unless after is empty or a valid key ID.
func ValidateAPIKeyCursor(op, after string) error {
	if after == "" {
		return nil
	}
	return ValidateAPIKeyID(op, after)
}

// APIKeyLimit returns the page size that [APIKeyStore.ListAPIKeys] uses for limit.
func APIKeyLimit(limit int) int {
	if limit <= 0 {
		return DefaultAPIKeyLimit
	}
	return limit
}

// PrepareAPIKey validates k for [APIKeyStore.CreateAPIKey] and returns a copy ready to store:
// Hash copied, times cleared for the store to set. Every error is Invalid.
func PrepareAPIKey(op string, k APIKey) (APIKey, error) {
	if err := ValidateAPIKeyID(op, k.ID); err != nil {
		return APIKey{}, err
	}
	if len(k.Hash) != APIKeyHashLen {
		return APIKey{}, Errorf(Invalid, op, "API key %s: hash of %d bytes, want %d", k.ID, len(k.Hash), APIKeyHashLen)
	}
	if !k.Role.Valid() {
		return APIKey{}, Errorf(Invalid, op, "API key %s: role %q, want reader, writer, auditor or admin", k.ID, k.Role)
	}
	if err := validateName("tenant", k.Tenant, MaxAPIKeyTenantLen); err != nil {
		return APIKey{}, Errorf(Invalid, op, "API key %s: %w", k.ID, err)
	}
	if k.Name != "" {
		if err := validateName("name", k.Name, MaxAPIKeyNameLen); err != nil {
			return APIKey{}, Errorf(Invalid, op, "API key %s: %w", k.ID, err)
		}
	}
	k.Hash = cloneBytes(k.Hash)
	k.CreatedAt, k.RevokedAt = time.Time{}, time.Time{}
	return k, nil
}

// APIKeyNotFound returns the NotFound error of APIKey and RevokeAPIKey.
func APIKeyNotFound(op, id string) error {
	return Errorf(NotFound, op, "no API key %q", id)
}

// APIKeyDuplicate returns the Duplicate error of CreateAPIKey.
func APIKeyDuplicate(op, id string) error {
	return Errorf(Duplicate, op, "an API key with ID %q exists", id)
}
