package transport

import (
	"context"
	"sync"
)

// Exchange's outbound connection limits (Set-TransportService
// MaxPerDomainOutboundConnections and MaxOutboundConnections): after an outage a queue
// of thousands of messages for one next hop must not become thousands of sessions.
const (
	MaxPerDomainOutboundConnections = 20
	MaxOutboundConnections          = 1000
)

// connLimit hands out delivery sessions: at most perHop at once to one next hop, at most
// total in all. A session waits for a slot rather than fail.
type connLimit struct {
	perHop int
	total  chan struct{}
	mu     sync.Mutex
	hops   map[string]*hopSlots
}

type hopSlots struct {
	sem   chan struct{}
	users int // holders and waiters: the entry goes when none is left
}

func newConnLimit(perHop, total int) *connLimit {
	return &connLimit{perHop: perHop, total: make(chan struct{}, total), hops: map[string]*hopSlots{}}
}

// acquire waits for a session slot to hop; the returned func gives it back.
func (l *connLimit) acquire(ctx context.Context, hop string) (func(), error) {
	l.mu.Lock()
	h := l.hops[hop]
	if h == nil {
		h = &hopSlots{sem: make(chan struct{}, l.perHop)}
		l.hops[hop] = h
	}
	h.users++
	l.mu.Unlock()
	leave := func() {
		l.mu.Lock()
		if h.users--; h.users == 0 {
			delete(l.hops, hop)
		}
		l.mu.Unlock()
	}
	select {
	case h.sem <- struct{}{}:
	case <-ctx.Done():
		leave()
		return nil, ctx.Err()
	}
	select {
	case l.total <- struct{}{}:
	case <-ctx.Done():
		<-h.sem
		leave()
		return nil, ctx.Err()
	}
	return func() {
		<-l.total
		<-h.sem
		leave()
	}, nil
}
