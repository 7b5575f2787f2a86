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
	// erasures counts the erased keys put: a live key read from the store before one of them
	// (see generation) is not put, since it may be the key just erased, and its erased entry
	// may have been evicted already.
	erasures uint64
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

// generation returns the number of erased keys put so far, to pass to putLive for a key read
// from the store after it.
func (c *keyCache) generation() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.erasures
}

// putErased records that the key k was erased here (Erase, EraseTenant): live keys read before
// are not cached after it.
func (c *keyCache) putErased(k cacheKey) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.erasures++
	c.putLocked(k, nil, true)
}

// putTombstone caches the erased key k as read from the store. It is no erasure made here (that
// one counted already), so it leaves the live keys being read to be cached: counting it would
// keep every key read meanwhile out of the cache whenever erased subjects are read.
func (c *keyCache) putTombstone(k cacheKey) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.putLocked(k, nil, true)
}

// putLive caches the key k, read from the store after generation returned gen, unless a key was
// erased since.
func (c *keyCache) putLive(k cacheKey, aead cipher.AEAD, gen uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.erasures != gen {
		return
	}
	c.putLocked(k, aead, false)
}

func (c *keyCache) putLocked(k cacheKey, aead cipher.AEAD, erased bool) {
	if c.size <= 0 {
		return
	}
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
