// Package ttlcache keeps answers for a time on an injected clock: the directory answers
// a Hub's categorizer reuses (CAT-002).
package ttlcache

import (
	"sync"
	"time"

	"github.com/mailflow/mailflow/clock"
)

// Cache maps keys to values that expire ttl after they were put. It is safe for
// concurrent use; a ttl of zero or less keeps nothing.
type Cache[V any] struct {
	clock clock.Clock
	ttl   time.Duration

	mu      sync.Mutex
	m       map[string]item[V]
	sweepAt int // size that triggers dropping expired items
}

type item[V any] struct {
	v       V
	expires time.Time
}

// New makes a cache whose items live for ttl on c (wall time when c is nil).
func New[V any](c clock.Clock, ttl time.Duration) *Cache[V] {
	if c == nil {
		c = clock.Real{}
	}
	return &Cache[V]{clock: c, ttl: ttl, m: map[string]item[V]{}, sweepAt: 1024}
}

// Get is the value put under key, while it has not expired.
func (c *Cache[V]) Get(key string) (V, bool) {
	var zero V
	if c.ttl <= 0 {
		return zero, false
	}
	c.mu.Lock()
	it, ok := c.m[key]
	c.mu.Unlock()
	if !ok || !c.clock.Now().Before(it.expires) {
		return zero, false
	}
	return it.v, true
}

// Put keeps v under key for the cache's ttl. Expired items go when the cache has
// doubled since the last sweep, so a cache of many keys costs no sweep per Put.
func (c *Cache[V]) Put(key string, v V) {
	if c.ttl <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.clock.Now()
	if len(c.m) >= c.sweepAt {
		for k, it := range c.m {
			if !now.Before(it.expires) {
				delete(c.m, k)
			}
		}
		c.sweepAt = max(1024, 2*len(c.m))
	}
	c.m[key] = item[V]{v: v, expires: now.Add(c.ttl)}
}
