package esmtp

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"
)

// Backend starts the policy side of each session. An error refuses the session: it is
// the greeting (a 554), and every command but QUIT then gets 503 (RFC 5321 §3.1).
type Backend interface {
	NewSession(c *Conn) (Session, error)
}

// Session is what a server decides within one SMTP session. Errors are replies: an
// *smtp.SMTPError is written as it is, any other error as 451 4.3.0.
type Session interface {
	// Mail vets the sender ("" for the null reverse-path) of a new transaction.
	Mail(from string, p MailParams) error
	// Rcpt vets one recipient and returns it as the transaction keeps it (a policy
	// may normalise it: the domain lower-cased, "postmaster" qualified).
	Rcpt(to string, p RcptParams) (string, error)
	// Data takes the transaction's message once its data has been read in full and
	// passed the protocol's checks. A nil error is answered "250 2.0.0 OK"; a server
	// that queued the message returns its own 2yz reply as an *smtp.SMTPError. The
	// envelope is the server's until Data returns. An error with an EndsSession
	// method that says true is written and then the connection closed.
	Data(env *Envelope, data []byte) error
}

// AuthSession is a Session that offers SMTP AUTH (RFC 4954).
type AuthSession interface {
	// AuthMechanisms lists the mechanisms offered now (they may depend on TLS); PLAIN
	// and LOGIN are implemented.
	AuthMechanisms() []string
	// Authenticate checks PLAIN or LOGIN credentials (LOGIN has no identity); an
	// error is answered as it is, any other as 451.
	Authenticate(identity, user, password string) error
}

// ClearAuthSession is an AuthSession that offers its mechanisms only inside TLS: AUTH
// in the clear gets ClearAuthRefusal's reply (RFC 4954 §4's 538 5.7.11) rather than the
// 503 of a session that never authenticates.
type ClearAuthSession interface {
	AuthSession
	ClearAuthRefusal() error
}

// LimitedSession is a Session with limits of its own (a receive connector's).
type LimitedSession interface {
	Limits() Limits
}

// Limits bound one session. Zero fields take the server's.
type Limits struct {
	// MaxMessageSize is advertised in SIZE and enforced at MAIL and end-of-data.
	MaxMessageSize int64
	// MaxRecipients per transaction; RCPTs past it get 452 4.5.3 (SMTP-014).
	MaxRecipients int
	// Timeout is how long the client may send nothing, in DATA too (SEC-005).
	Timeout time.Duration
}

// MailParams are MAIL's ESMTP parameters the server understood.
type MailParams struct {
	Size  int64  // SIZE= (RFC 1870), 0 when not declared
	Body  string // "7BIT" or "8BITMIME" (RFC 6152), "" when not given
	Ret   string // "FULL" or "HDRS" (RFC 3461)
	EnvID string // ENVID, decoded from xtext
	UTF8  bool   // SMTPUTF8 (RFC 6531): the addresses may be non-ASCII
}

// RcptParams are RCPT's ESMTP parameters (RFC 3461).
type RcptParams struct {
	Notify []string // "NEVER", or some of "SUCCESS", "FAILURE", "DELAY"
	// ORCPT is the original recipient, decoded from xtext, and ORCPTType its
	// address type ("rfc822").
	ORCPT, ORCPTType string
}

// Envelope is the one record of a transaction (SEC-007): what MAIL and each
// accepted RCPT said.
type Envelope struct {
	From  string
	Mail  MailParams
	Rcpts []Recipient
}

// Recipient is an accepted RCPT.
type Recipient struct {
	Addr string
	RcptParams
}

// Addrs lists the recipients' addresses.
func (e *Envelope) Addrs() []string {
	out := make([]string, len(e.Rcpts))
	for i, r := range e.Rcpts {
		out[i] = r.Addr
	}
	return out
}

// Extension is a command the server answers for a backend: Verb on a command line is
// answered with code and lines from Answer, and Keyword is advertised in the EHLO
// reply. A code of 0 means the client is not one the extension serves, and the
// command is unknown to it.
type Extension struct {
	Keyword, Verb string
	Answer        func(remote netip.Addr, args string) (code int, lines []string)
}

// Server serves SMTP sessions for a Backend.
type Server struct {
	hostname string
	backend  Backend
	tls      *tls.Config
	limits   Limits
	maxHops  int
	dsn      bool
	ext      *Extension
	log      *slog.Logger
	// maxLine is the longest command line taken, CRLF excluded: RFC 5321 §4.5.3.1.4's
	// 512 octets, with room for the parameters of RFC 3461 and AUTH's responses.
	maxLine   int
	maxErrors int

	// ctx ends with Close, so work a session waits on (a tarpit, a lookup) ends too.
	ctx    context.Context
	cancel context.CancelFunc

	mu     sync.Mutex
	closed bool
	ls     map[net.Listener]struct{}
	conns  map[net.Conn]struct{}
	wg     sync.WaitGroup
}

// Option configures a Server.
type Option func(*Server)

// WithTLS offers STARTTLS with c.
func WithTLS(c *tls.Config) Option { return func(s *Server) { s.tls = c } }

// WithLimits sets the limits of sessions whose Session has none of its own.
func WithLimits(l Limits) Option { return func(s *Server) { s.limits = l } }

// WithMaxHops refuses a message with more than n Received headers (TRACE-004).
func WithMaxHops(n int) Option { return func(s *Server) { s.maxHops = n } }

// WithDSN advertises DSN and takes NOTIFY, ORCPT, RET and ENVID (RFC 3461, DSN-010).
func WithDSN() Option { return func(s *Server) { s.dsn = true } }

// WithExtension adds one command the server answers for the backend.
func WithExtension(e Extension) Option { return func(s *Server) { s.ext = &e } }

// WithLogger is where the server logs what clients cannot be told.
func WithLogger(l *slog.Logger) Option { return func(s *Server) { s.log = l } }

// NewServer makes a server that greets as hostname.
func NewServer(hostname string, b Backend, opts ...Option) *Server {
	s := &Server{
		hostname: hostname, backend: b, log: slog.Default(), maxLine: 4096, maxErrors: 20,
		limits: Limits{MaxRecipients: 5000, Timeout: 5 * time.Minute},
		ls:     map[net.Listener]struct{}{}, conns: map[net.Conn]struct{}{},
	}
	for _, o := range opts {
		o(s)
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	return s
}

// ErrServerClosed is what Serve returns once Close was called.
var ErrServerClosed = errors.New("esmtp: server closed")

// Serve accepts sessions on l until Close.
func (s *Server) Serve(l net.Listener) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		_ = l.Close()
		return ErrServerClosed
	}
	s.ls[l] = struct{}{}
	s.mu.Unlock()
	var tempDelay time.Duration
	for {
		nc, err := l.Accept()
		if err != nil {
			s.mu.Lock()
			closed := s.closed
			s.mu.Unlock()
			if closed {
				return ErrServerClosed
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				tempDelay = min(max(2*tempDelay, 5*time.Millisecond), time.Second)
				time.Sleep(tempDelay)
				continue
			}
			return err
		}
		tempDelay = 0
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			_ = nc.Close()
			return ErrServerClosed
		}
		s.conns[nc] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go func() {
			defer s.wg.Done()
			defer func() {
				s.mu.Lock()
				delete(s.conns, nc)
				s.mu.Unlock()
			}()
			s.serveConn(nc)
		}()
	}
}

// Close stops the listeners and every session, and waits for the sessions to end.
func (s *Server) Close() error {
	s.mu.Lock()
	s.closed = true
	s.cancel()
	for l := range s.ls {
		_ = l.Close()
	}
	for c := range s.conns {
		_ = c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
	return nil
}

func remoteIP(a net.Addr) netip.Addr {
	if ta, ok := a.(*net.TCPAddr); ok {
		if ip, ok := netip.AddrFromSlice(ta.IP); ok {
			return ip.Unmap()
		}
	}
	ap, _ := netip.ParseAddrPort(a.String())
	return ap.Addr().Unmap()
}
