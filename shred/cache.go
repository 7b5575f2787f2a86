package shred

import (
	"container/list"
	"crypto/cipher"
	"encoding/json"
	"sync"
	"time"
)

// keyCache is a bounded LRU of unwrapped data keys, each kept at most ttl, so that a key erased
// by another process stops working here within ttl.
type keyCache struct {
	mu    sync.Mutex
	size  int
	ttl   time.Duration
	order *list.List // front: most recently used
	items map[cacheKey]*list.Element
}

type cacheEntry struct {
	key     cacheKey
	aead    cipher.AEAD
	erased  bool
	expires time.Time
}

func newKeyCache(size int, ttl time.Duration) *keyCache {
	return &keyCache{size: size, ttl: ttl, order: list.New(), items: map[cacheKey]*list.Element{}}
}

func (c *keyCache) get(k cacheKey) (cipher.AEAD, bool, bool) {
	if c.size <= 0 {
		return nil, false, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.items[k]
	if !ok {
		return nil, false, false
	}
	e := el.Value.(*cacheEntry)
	if time.Until(e.expires) < 0 { // the monotonic clock alone: half the cost of time.Now
		c.order.Remove(el)
		delete(c.items, k)
		return nil, false, false
	}
	c.order.MoveToFront(el)
	return e.aead, e.erased, true
}

func (c *keyCache) put(k cacheKey, aead cipher.AEAD, erased bool) {
	if c.size <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	e := &cacheEntry{key: k, aead: aead, erased: erased, expires: time.Now().Add(c.ttl)}
	if el, ok := c.items[k]; ok {
		// An erasure is final: a key read from the store before Erase, and put here after it,
		// must not bring the subject back.
		if el.Value.(*cacheEntry).erased && !erased {
			return
		}
		el.Value = e
		c.order.MoveToFront(el)
		return
	}
	c.items[k] = c.order.PushFront(e)
	for c.order.Len() > c.size {
		last := c.order.Back()
		c.order.Remove(last)
		delete(c.items, last.Value.(*cacheEntry).key)
	}
}

func jsonUnquote(raw []byte, s *string) error { return json.Unmarshal(raw, s) }
