package httpapi

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/strata-events/strata"
)

// KeyPrefix starts every API key: strata_ID_SECRET, with ID 16 hex digits (stored in clear,
// to find the key) and SECRET 32 random bytes in unpadded base64url.
const KeyPrefix = "strata_"

// NewKey makes a new API key for role and tenant. It returns the key, to show once, and the
// record to store, which holds only the key's SHA-256 hash.
func NewKey(role strata.Role, tenant, name string) (string, strata.APIKey, error) {
	var id [8]byte
	var secret [32]byte
	if _, err := rand.Read(id[:]); err != nil {
		return "", strata.APIKey{}, strata.Errorf(strata.Internal, "new API key", "random: %w", err)
	}
	if _, err := rand.Read(secret[:]); err != nil {
		return "", strata.APIKey{}, strata.Errorf(strata.Internal, "new API key", "random: %w", err)
	}
	kid := hex.EncodeToString(id[:])
	key := KeyPrefix + kid + "_" + base64.RawURLEncoding.EncodeToString(secret[:])
	h := sha256.Sum256([]byte(key))
	rec, err := strata.PrepareAPIKey("new API key", strata.APIKey{ID: kid, Hash: h[:], Role: role, Tenant: tenant, Name: name})
	return key, rec, err
}

// ParseKey returns the ID of a key in the strata_ID_SECRET form.
func ParseKey(key string) (string, bool) {
	rest, ok := strings.CutPrefix(key, KeyPrefix)
	if !ok {
		return "", false
	}
	id, secret, ok := strings.Cut(rest, "_")
	if !ok || len(id) != 16 || secret == "" || strata.ValidateAPIKeyID("", id) != nil {
		return "", false
	}
	return id, true
}

// Principal is the authenticated caller of a request.
type Principal struct {
	KeyID  string
	Role   strata.Role
	Tenant string
}

// permission is what a route needs.
type permission int

const (
	permRead  permission = iota // every role
	permWrite                   // writer, admin
	permAudit                   // auditor, admin: proofs, checkpoints, projection status
	permAdmin                   // admin: erasure
)

func (p Principal) may(perm permission) bool {
	switch perm {
	case permRead:
		return p.Role.Valid()
	case permWrite:
		return p.Role == strata.RoleWriter || p.Role == strata.RoleAdmin
	case permAudit:
		return p.Role == strata.RoleAuditor || p.Role == strata.RoleAdmin
	case permAdmin:
		return p.Role == strata.RoleAdmin
	}
	return false
}

func (p permission) String() string {
	return [...]string{"read", "write", "audit", "admin"}[p]
}

// authenticator checks API keys against the store, caching each key record for ttl so that a
// request costs no query; a revocation takes effect within ttl.
type authenticator struct {
	keys strata.APIKeyStore
	ttl  time.Duration
	now  func() time.Time

	mu    sync.Mutex
	cache map[string]cachedKey
}

type cachedKey struct {
	key     strata.APIKey
	found   bool
	fetched time.Time
}

const maxCachedKeys = 10_000

func (a *authenticator) lookup(ctx context.Context, id string) (strata.APIKey, bool, error) {
	now := a.now()
	a.mu.Lock()
	c, ok := a.cache[id]
	a.mu.Unlock()
	if ok && now.Sub(c.fetched) < a.ttl {
		return c.key, c.found, nil
	}
	k, err := a.keys.APIKey(ctx, id)
	found := err == nil
	if err != nil && strata.ErrorCode(err) != strata.NotFound {
		return strata.APIKey{}, false, err
	}
	a.mu.Lock()
	if len(a.cache) >= maxCachedKeys {
		clear(a.cache) // bounded: a flood of made-up IDs cannot grow memory
	}
	a.cache[id] = cachedKey{key: k, found: found, fetched: now}
	a.mu.Unlock()
	return k, found, nil
}

// authenticate returns the principal of the request's bearer key, or an Unauthorized error
// that never repeats the key.
func (a *authenticator) authenticate(r *http.Request) (Principal, error) {
	const op = "authenticate"
	h := r.Header.Get("Authorization")
	if h == "" {
		return Principal{}, strata.Errorf(strata.Unauthorized, op, "no API key: send Authorization: Bearer strata_...")
	}
	scheme, key, _ := strings.Cut(h, " ")
	if !strings.EqualFold(scheme, "Bearer") {
		return Principal{}, strata.Errorf(strata.Unauthorized, op, "the Authorization header must use the Bearer scheme")
	}
	key = strings.TrimSpace(key)
	id, ok := ParseKey(key)
	if !ok {
		return Principal{}, strata.Errorf(strata.Unauthorized, op, "malformed API key")
	}
	k, found, err := a.lookup(r.Context(), id)
	if err != nil {
		return Principal{}, err
	}
	sum := sha256.Sum256([]byte(key))
	if !found || subtle.ConstantTimeCompare(sum[:], k.Hash) != 1 {
		return Principal{}, strata.Errorf(strata.Unauthorized, op, "unknown API key")
	}
	if k.Revoked() {
		return Principal{}, strata.Errorf(strata.Unauthorized, op, "API key %s was revoked", k.ID)
	}
	return Principal{KeyID: k.ID, Role: k.Role, Tenant: k.Tenant}, nil
}
