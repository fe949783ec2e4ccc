package mtaload

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emersion/go-message/textproto"
	"github.com/emersion/go-smtp"
)

// HeaderID is the header that carries a message's load ID ("RUN.N") to the sink.
const HeaderID = "X-Mtaload-Id"

// DeferReply is the sink's answer to every recipient while it defers them all.
const DeferReply = "451 4.3.0 Deferred by the load sink"

// Sink is the next hop the measured MTA relays to. It takes every message (or defers
// every recipient), notes when each load message arrived, and keeps nothing else, so
// long runs of large messages cost it no memory.
type Sink struct {
	srv      *smtp.Server
	l        net.Listener
	served   chan struct{}
	deferAll atomic.Bool
	// closing runs Close's work once: go-smtp's Close is not safe to call twice at once,
	// and the context's end may call it while the owner does.
	closing  sync.Once
	closeErr error

	mu       sync.Mutex
	runs     map[string]*tracker
	deferred int64
	stray    int64
	changed  chan struct{}
}

// tracker holds the arrivals of one load run.
type tracker struct {
	arrived []time.Time
	dups    int
}

// SinkOption configures a Sink.
type SinkOption func(*Sink)

// WithDeferAll makes the sink start out deferring every recipient.
func WithDeferAll(on bool) SinkOption { return func(s *Sink) { s.deferAll.Store(on) } }

// StartSink listens on addr (ip:port, port 0 for any) until Close or ctx ends.
func StartSink(ctx context.Context, addr string, opts ...SinkOption) (*Sink, error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("sink: %w", err)
	}
	s := &Sink{l: l, served: make(chan struct{}), runs: map[string]*tracker{}, changed: make(chan struct{})}
	for _, o := range opts {
		o(s)
	}
	s.srv = smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) { return sinkSession{s}, nil }))
	s.srv.Domain = "sink.mtaload.test"
	s.srv.ReadTimeout = 5 * time.Minute
	s.srv.WriteTimeout = time.Minute
	s.srv.MaxRecipients = 1000
	s.srv.ErrorLog = discardLog{}
	go func() {
		defer close(s.served)
		_ = s.srv.Serve(l)
	}()
	context.AfterFunc(ctx, func() { _ = s.Close() })
	return s, nil
}

// Addr is the address the sink listens on.
func (s *Sink) Addr() string { return s.l.Addr().String() }

// DeferAll switches between deferring every recipient (451 4.3.0 at RCPT, so the MTA
// keeps the message queued) and taking every message.
func (s *Sink) DeferAll(on bool) { s.deferAll.Store(on) }

// Deferred is how many recipients the sink has deferred since it started.
func (s *Sink) Deferred() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.deferred
}

// Strays counts the messages that arrived without the load ID of a run in progress.
func (s *Sink) Strays() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stray
}

// Close stops listening and ends every session.
func (s *Sink) Close() error {
	s.closing.Do(func() {
		err := s.srv.Close()
		// go-smtp's Close reaches only listeners its Serve has registered.
		_ = s.l.Close()
		<-s.served
		if err != nil && !errors.Is(err, net.ErrClosed) {
			s.closeErr = fmt.Errorf("sink: %w", err)
		}
	})
	return s.closeErr
}

// WaitDeferred waits until the sink has deferred at least n recipients since it started.
func (s *Sink) WaitDeferred(ctx context.Context, n int64) error {
	return s.waitFor(ctx, func() bool { return s.deferred >= n })
}

// waitFor waits until done, called with s.mu held, is true.
func (s *Sink) waitFor(ctx context.Context, done func() bool) error {
	for {
		s.mu.Lock()
		ok, changed := done(), s.changed
		s.mu.Unlock()
		if ok {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-changed:
		}
	}
}

// track starts noting the arrivals of run's n messages.
func (s *Sink) track(run string, n int) *tracker {
	t := &tracker{arrived: make([]time.Time, n)}
	s.mu.Lock()
	s.runs[run] = t
	s.mu.Unlock()
	return t
}

func (s *Sink) untrack(run string) {
	s.mu.Lock()
	delete(s.runs, run)
	s.mu.Unlock()
}

// notify wakes every waiter; s.mu must be held.
func (s *Sink) notify() {
	close(s.changed)
	s.changed = make(chan struct{})
}

func (s *Sink) arrive(id string, at time.Time) {
	run, n, ok := splitID(id)
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.runs[run]
	switch {
	case !ok || t == nil || n >= len(t.arrived):
		s.stray++
	case !t.arrived[n].IsZero():
		t.dups++
	default:
		t.arrived[n] = at
	}
	s.notify()
}

func (s *Sink) deferOne() {
	s.mu.Lock()
	s.deferred++
	s.notify()
	s.mu.Unlock()
}

func splitID(id string) (run string, n int, ok bool) {
	i := strings.LastIndexByte(id, '.')
	if i < 0 {
		return "", 0, false
	}
	n, err := strconv.Atoi(id[i+1:])
	return id[:i], n, err == nil && n >= 0
}

type sinkSession struct{ s *Sink }

func (sinkSession) Reset()                               {}
func (sinkSession) Logout() error                        { return nil }
func (sinkSession) Mail(string, *smtp.MailOptions) error { return nil }
func (ss sinkSession) Rcpt(string, *smtp.RcptOptions) error {
	if ss.s.deferAll.Load() {
		ss.s.deferOne()
		return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: strings.TrimPrefix(DeferReply, "451 4.3.0 ")}
	}
	return nil
}

// Data reads the whole message before it notes the arrival: a message has arrived when
// the MTA has handed over its last byte.
func (ss sinkSession) Data(r io.Reader) error {
	br := bufio.NewReader(r)
	hdr, err := textproto.ReadHeader(br)
	if err != nil {
		_, _ = io.Copy(io.Discard, br)
		return &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 6, 0}, Message: "Unreadable header"}
	}
	if _, err := io.Copy(io.Discard, br); err != nil {
		return err
	}
	ss.s.arrive(hdr.Get(HeaderID), time.Now())
	return nil
}

type discardLog struct{}

func (discardLog) Printf(string, ...interface{}) {}
func (discardLog) Println(...interface{})        {}
