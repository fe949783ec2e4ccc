package linkwire

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/mailflow/mailflow/reference/linkstate"
)

// Default timeouts. A peer that is down on the same network fails to connect within
// the dial timeout (or sooner, unreachable); the exchange allows for a master passing
// a state on to its members and the other masters before it answers.
const (
	DefaultDialTimeout = 2 * time.Second
	DefaultTimeout     = 30 * time.Second
)

// Client sends link state to the servers whose addresses it knows; it is the
// linkstate.Transport of a Hub that runs in a process of its own.
type Client struct {
	peers       map[string]string // lower-case server name -> ip:port
	dialTimeout time.Duration
	timeout     time.Duration
}

// Option configures a Client or a Server.
type Option func(*options)

type options struct{ dialTimeout, timeout time.Duration }

// WithDialTimeout bounds a connection attempt (default DefaultDialTimeout).
func WithDialTimeout(d time.Duration) Option { return func(o *options) { o.dialTimeout = d } }

// WithTimeout bounds one exchange, connection to answer (default DefaultTimeout); on
// a Server, the time a request may take to arrive and be answered.
func WithTimeout(d time.Duration) Option { return func(o *options) { o.timeout = d } }

func collect(opts []Option) options {
	o := options{dialTimeout: DefaultDialTimeout, timeout: DefaultTimeout}
	for _, f := range opts {
		f(&o)
	}
	return o
}

// NewClient sends to peers, the link-state address (ip:port) of each server by name.
func NewClient(peers map[string]string, opts ...Option) *Client {
	o := collect(opts)
	c := &Client{peers: make(map[string]string, len(peers)), dialTimeout: o.dialTimeout, timeout: o.timeout}
	for k, v := range peers {
		c.peers[strings.ToLower(k)] = v
	}
	return c
}

// Send implements linkstate.Transport: one connection, the request, its answer.
func (c *Client) Send(ctx context.Context, to string, m linkstate.Message) (linkstate.Reply, error) {
	addr, ok := c.peers[strings.ToLower(to)]
	if !ok {
		return linkstate.Reply{}, fmt.Errorf("linkwire: no link-state address for %s", to)
	}
	req := Request{To: to, Message: m}
	line := req.String()
	if _, err := ParseRequest(line); err != nil {
		return linkstate.Reply{}, fmt.Errorf("linkwire: to %s: %w", to, err)
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	d := net.Dialer{Timeout: c.dialTimeout}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return linkstate.Reply{}, fmt.Errorf("linkwire: %s: %w", to, err)
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	if _, err := conn.Write([]byte(line + "\r\n")); err != nil {
		return linkstate.Reply{}, fmt.Errorf("linkwire: %s: %w", to, err)
	}
	rep, err := ReadReply(bufio.NewReaderSize(conn, maxLine+2), m.Kind)
	if err != nil {
		return linkstate.Reply{}, fmt.Errorf("linkwire: %s at %s: %w", to, addr, err)
	}
	return rep, nil
}

// Handler takes a message for a server; *linkstate.Net is one.
type Handler interface {
	Handle(ctx context.Context, to string, m linkstate.Message) (linkstate.Reply, error)
}

// Server takes the link state sent to one server.
type Server struct {
	ln      net.Listener
	server  string
	h       Handler
	timeout time.Duration
	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	mu      sync.Mutex
	conns   map[net.Conn]struct{}
}

// Listen takes the link state sent to server on addr (ip:port) and hands it to h.
func Listen(addr, server string, h Handler, opts ...Option) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("linkwire: %w", err)
	}
	return Serve(ln, server, h, opts...), nil
}

// Serve takes the link state sent to server on ln and hands it to h, until Close.
func Serve(ln net.Listener, server string, h Handler, opts ...Option) *Server {
	o := collect(opts)
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{ln: ln, server: server, h: h, timeout: o.timeout, ctx: ctx, cancel: cancel, conns: map[net.Conn]struct{}{}}
	s.wg.Add(1)
	go s.accept()
	return s
}

// Addr is the address the server listens on.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Close stops listening, ends the exchanges under way and waits for them.
func (s *Server) Close() error {
	s.cancel()
	err := s.ln.Close()
	s.mu.Lock()
	for c := range s.conns {
		_ = c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
	if errors.Is(err, net.ErrClosed) {
		err = nil
	}
	return err
}

func (s *Server) accept() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			if s.ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of descriptors, say: let some close before trying again.
			select {
			case <-s.ctx.Done():
				return
			case <-time.After(50 * time.Millisecond):
			}
			continue
		}
		s.mu.Lock()
		if s.ctx.Err() != nil {
			s.mu.Unlock()
			c.Close()
			return
		}
		s.conns[c] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go func() {
			defer s.wg.Done()
			s.serve(c)
			s.mu.Lock()
			delete(s.conns, c)
			s.mu.Unlock()
			c.Close()
		}()
	}
}

// serve answers the one request of a connection.
func (s *Server) serve(c net.Conn) {
	_ = c.SetDeadline(time.Now().Add(s.timeout))
	line, err := readLine(bufio.NewReaderSize(c, maxLine+2))
	if err != nil {
		_ = writeReply(c, linkstate.KindState, linkstate.Reply{}, err)
		return
	}
	req, err := ParseRequest(line)
	if err == nil && !strings.EqualFold(req.To, s.server) {
		err = fmt.Errorf("linkwire: this is %s, not %s", s.server, req.To)
	}
	if err != nil {
		_ = writeReply(c, req.Message.Kind, linkstate.Reply{}, err)
		return
	}
	ctx, cancel := context.WithTimeout(s.ctx, s.timeout)
	defer cancel()
	rep, err := s.h.Handle(ctx, s.server, req.Message)
	// Passing a state on may have taken much of the deadline: the answer gets its own.
	_ = c.SetDeadline(time.Now().Add(s.timeout))
	_ = writeReply(c, req.Message.Kind, rep, err)
}
