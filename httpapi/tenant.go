package httpapi

import (
	"context"
	"sync"

	"github.com/strata-events/strata"
)

// ownerCache knows which tenant owns a stream: the tenant of its first event. A first event
// never changes, so an owner once found is cached for good (in a bounded map that is emptied
// when full); a stream without events is looked up again each time.
type ownerCache struct {
	store strata.Store
	mu    sync.Mutex
	m     map[string]string
}

const maxCachedOwners = 100_000

func newOwnerCache(st strata.Store) *ownerCache {
	return &ownerCache{store: st, m: make(map[string]string)}
}

// owner returns the tenant of the stream's first event and whether the stream has events.
func (c *ownerCache) owner(ctx context.Context, stream string) (string, bool, error) {
	c.mu.Lock()
	t, ok := c.m[stream]
	c.mu.Unlock()
	if ok {
		return t, true, nil
	}
	for e, err := range c.store.ReadStream(ctx, stream, strata.ReadStreamOptions{Limit: 1}) {
		if err != nil {
			return "", false, err
		}
		c.mu.Lock()
		if len(c.m) >= maxCachedOwners {
			clear(c.m)
		}
		c.m[stream] = e.Meta.Tenant
		c.mu.Unlock()
		return e.Meta.Tenant, true, nil
	}
	return "", false, nil
}

// visible reports whether the stream has events of tenant's.
func (c *ownerCache) visible(ctx context.Context, stream, tenant string) (bool, error) {
	t, ok, err := c.owner(ctx, stream)
	return ok && t == tenant, err
}
