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
	items map[string]*list.Element
}

type cacheEntry struct {
	subject string
	aead    cipher.AEAD
	erased  bool
	expires time.Time
}

func newKeyCache(size int, ttl time.Duration) *keyCache {
	return &keyCache{size: size, ttl: ttl, order: list.New(), items: map[string]*list.Element{}}
}

func (c *keyCache) get(subject string) (cipher.AEAD, bool, bool) {
	if c.size <= 0 {
		return nil, false, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.items[subject]
	if !ok {
		return nil, false, false
	}
	e := el.Value.(*cacheEntry)
	if time.Now().After(e.expires) {
		c.order.Remove(el)
		delete(c.items, subject)
		return nil, false, false
	}
	c.order.MoveToFront(el)
	return e.aead, e.erased, true
}

func (c *keyCache) put(subject string, aead cipher.AEAD, erased bool) {
	if c.size <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	e := &cacheEntry{subject: subject, aead: aead, erased: erased, expires: time.Now().Add(c.ttl)}
	if el, ok := c.items[subject]; ok {
		el.Value = e
		c.order.MoveToFront(el)
		return
	}
	c.items[subject] = c.order.PushFront(e)
	for c.order.Len() > c.size {
		last := c.order.Back()
		c.order.Remove(last)
		delete(c.items, last.Value.(*cacheEntry).subject)
	}
}

func jsonUnquote(raw []byte, s *string) error { return json.Unmarshal(raw, s) }
