package transport

import (
	"context"
	"testing"
	"time"
)

func TestConnLimit(t *testing.T) {
	tests := []struct {
		name          string
		perHop, total int
		hops          []string // one acquirer each
		want          int      // sessions granted before any is given back
	}{
		{"one next hop", 20, 1000, repeat("mx.a.test", 25), 20},
		{"two next hops", 20, 1000, append(repeat("mx.a.test", 25), repeat("mx.b.test", 25)...), 40},
		{"total caps", 20, 30, append(repeat("mx.a.test", 25), repeat("mx.b.test", 25)...), 30},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := newConnLimit(tt.perHop, tt.total)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			granted := make(chan func(), len(tt.hops))
			for _, h := range tt.hops {
				go func() {
					if release, err := l.acquire(ctx, h); err == nil {
						granted <- release
					}
				}()
			}
			var held []func()
			for len(held) < tt.want {
				select {
				case r := <-granted:
					held = append(held, r)
				case <-time.After(5 * time.Second):
					t.Fatalf("%d sessions granted, want %d", len(held), tt.want)
				}
			}
			select {
			case <-granted:
				t.Fatalf("more than %d sessions granted at once", tt.want)
			case <-time.After(50 * time.Millisecond):
			}
			// Giving slots back lets every waiter through.
			for _, r := range held {
				r()
			}
			for n := len(held); n < len(tt.hops); n++ {
				(<-granted)()
			}
			if n := len(l.hops); n != 0 {
				t.Errorf("%d next hops still tracked after every session ended", n)
			}
		})
	}
}

func TestConnLimitGivesUpWithContext(t *testing.T) {
	l := newConnLimit(1, 10)
	release, err := l.acquire(context.Background(), "hub")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := l.acquire(ctx, "hub"); err == nil {
		t.Fatal("a waiter whose context ended got a slot")
	}
	release()
	if n := len(l.hops); n != 0 {
		t.Errorf("%d next hops still tracked", n)
	}
}

func repeat(s string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = s
	}
	return out
}
