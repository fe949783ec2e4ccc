package clock

import (
	"sync"
	"time"
)

// Offset is wall time plus an offset that only grows: time goes on by itself, and a
// harness can step it, as a fake clock is stepped, on servers it does not share a
// process with (`mailflow server --clock control`, the containers target). Timers fire
// when the stepped time reaches them, whichever comes first, the wall clock or a step.
// Because the base is the wall clock, servers on separate Offset clocks stepped alike
// agree on the time, to the precision of their host's clock.
type Offset struct {
	mu      sync.Mutex
	offset  time.Duration
	waiters map[*offsetWaiter]struct{}
}

type offsetWaiter struct {
	at    time.Time
	ch    chan time.Time
	timer *time.Timer
}

// NewOffset starts an Offset clock at wall time plus offset.
func NewOffset(offset time.Duration) *Offset {
	return &Offset{offset: offset, waiters: map[*offsetWaiter]struct{}{}}
}

func (o *Offset) Now() time.Time {
	o.mu.Lock()
	defer o.mu.Unlock()
	return time.Now().Add(o.offset)
}

// Elapsed is how far the clock has been stepped in all.
func (o *Offset) Elapsed() time.Duration {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.offset
}

func (o *Offset) After(d time.Duration) <-chan time.Time {
	o.mu.Lock()
	defer o.mu.Unlock()
	ch := make(chan time.Time, 1)
	now := time.Now().Add(o.offset)
	if d <= 0 {
		ch <- now
		return ch
	}
	w := &offsetWaiter{at: now.Add(d), ch: ch}
	o.waiters[w] = struct{}{}
	w.timer = time.AfterFunc(d, func() { o.fire(w) })
	return ch
}

// fire delivers w once, if it is still waiting.
func (o *Offset) fire(w *offsetWaiter) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if _, ok := o.waiters[w]; !ok {
		return
	}
	delete(o.waiters, w)
	w.timer.Stop()
	w.ch <- time.Now().Add(o.offset)
}

// Advance steps the clock by d (d <= 0 changes nothing) and fires every timer that is
// now due; the others are re-armed on the wall clock for what is left of them.
func (o *Offset) Advance(d time.Duration) bool {
	if d <= 0 {
		return true
	}
	o.mu.Lock()
	o.offset += d
	now := time.Now().Add(o.offset)
	var due []*offsetWaiter
	for w := range o.waiters {
		if !w.at.After(now) {
			due = append(due, w)
			continue
		}
		w.timer.Reset(w.at.Sub(now))
	}
	o.mu.Unlock()
	for _, w := range due {
		o.fire(w)
	}
	return true
}

// IsFake says the clock can be stepped.
func (o *Offset) IsFake() bool { return true }

// Pending is the number of timers not yet fired.
func (o *Offset) Pending() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return len(o.waiters)
}
