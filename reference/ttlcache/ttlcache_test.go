package ttlcache

import (
	"fmt"
	"testing"
	"time"

	"github.com/mailflow/mailflow/clock"
)

func TestExpiry(t *testing.T) {
	clk := clock.NewFake(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	c := New[int](clk, time.Minute)
	c.Put("a", 1)
	if v, ok := c.Get("a"); !ok || v != 1 {
		t.Fatalf("Get(a) = %d, %v; want 1, true", v, ok)
	}
	clk.Advance(59 * time.Second)
	if _, ok := c.Get("a"); !ok {
		t.Fatal("a expired before its ttl")
	}
	clk.Advance(time.Second)
	if _, ok := c.Get("a"); ok {
		t.Fatal("a outlived its ttl")
	}
	if _, ok := c.Get("b"); ok {
		t.Fatal("b was never put")
	}
}

func TestZeroTTLKeepsNothing(t *testing.T) {
	c := New[int](nil, 0)
	c.Put("a", 1)
	if _, ok := c.Get("a"); ok {
		t.Fatal("a cache with no ttl kept a")
	}
}

// Expired items are swept once the cache has grown, so it stays bounded by what lives.
func TestSweep(t *testing.T) {
	clk := clock.NewFake(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	c := New[int](clk, time.Minute)
	for i := 0; i < 5000; i++ {
		c.Put(fmt.Sprint(i), i)
		clk.Advance(time.Second)
	}
	if n := len(c.m); n > 2100 {
		t.Fatalf("%d items held, with 60 alive", n)
	}
}
