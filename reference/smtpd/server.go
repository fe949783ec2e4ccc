package smtpd

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/mailflow/mailflow/clock"
	"github.com/mailflow/mailflow/reference/agents"
	"github.com/mailflow/mailflow/reference/esmtp"
	"github.com/mailflow/mailflow/reference/queue"
	"github.com/mailflow/mailflow/reference/resolve"
	"github.com/mailflow/mailflow/scenario"
	"github.com/mailflow/mailflow/trace"
)

// Domains tells which accepted domain, if any, covers a domain.
type Domains interface {
	AcceptedDomain(domain string) (*scenario.AcceptedDomain, bool)
}

// Directory answers recipient filtering. ErrUnknown means the recipient does not
// exist; any other error means the directory could not answer.
type Directory interface {
	Exists(ctx context.Context, addr string) error
}

// ErrUnknown is what a Directory returns for a recipient that does not exist.
var ErrUnknown = errors.New("recipient unknown")

// Authenticator checks SMTP AUTH credentials.
type Authenticator interface {
	Authenticate(ctx context.Context, user, password string) error
}

// Queue is where accepted messages go; Enqueue returns after the message is durable.
type Queue interface {
	Enqueue(ctx context.Context, m *queue.Message, data []byte) error
}

// Connector is one receive connector: who it serves and what they may do.
type Connector struct {
	Name               string
	Permissions        []scenario.Permission
	RemoteIPRanges     []netip.Prefix
	AcceptAnyRecipient bool
	AuthRequiresTLS    bool
	MaxRecipients      int
	MaxMessageSize     int
	// InactivityTimeout is how long a client may send nothing, DATA included.
	InactivityTimeout time.Duration
	// TarpitInterval delays the refusal of an unknown recipient to an anonymous
	// session (ACCEPT-004).
	TarpitInterval time.Duration
	// Internal marks the connector the organisation's own servers send through: its
	// sessions are Exchange servers' and hold ms-Exch-Bypass-Anti-Spam (FILTER-007).
	Internal bool
}

// Server serves the receive connectors that share one binding.
type Server struct {
	server     string // org server name (trace)
	hostname   string // FQDN in greeting and Received
	connectors []Connector
	domains    Domains
	directory  Directory
	filtering  bool
	blockList  map[string]bool
	auth       Authenticator
	queue      Queue
	trace      trace.Recorder
	clock      clock.Clock
	tlsConfig  *tls.Config
	maxHops    int
	mx         MXLooker
	log        *slog.Logger
	ext        *Extension
	agents     *agents.Pipeline

	srv *esmtp.Server
}

// Option configures a Server.
type Option func(*Server)

func WithDomains(d Domains) Option             { return func(s *Server) { s.domains = d } }
func WithDirectory(d Directory) Option         { return func(s *Server) { s.directory = d } }
func WithAuthenticator(a Authenticator) Option { return func(s *Server) { s.auth = a } }
func WithQueue(q Queue) Option                 { return func(s *Server) { s.queue = q } }
func WithTrace(r trace.Recorder) Option        { return func(s *Server) { s.trace = r } }
func WithClock(c clock.Clock) Option           { return func(s *Server) { s.clock = c } }
func WithTLS(c *tls.Config) Option             { return func(s *Server) { s.tlsConfig = c } }
func WithMaxHopCount(n int) Option             { return func(s *Server) { s.maxHops = n } }

// Extension is a command the server answers for another part of the reference (the
// shadow redundancy primary's).
type Extension = esmtp.Extension

// WithExtension adds one command the server answers.
func WithExtension(e Extension) Option {
	return func(s *Server) { s.ext = &e }
}

// MXLooker finds a domain's MX records; a null MX is one record with an empty host.
type MXLooker interface {
	LookupMX(ctx context.Context, domain string) ([]resolve.MX, error)
}

// WithNullMXCheck refuses MAIL FROM a domain that publishes a null MX in sessions
// that hold no more than AnonymousUsers rights: such a domain takes no replies, so
// no DSN could ever reach the sender (RFC 7505 §4.2, DNS-011).
func WithNullMXCheck(l MXLooker) Option { return func(s *Server) { s.mx = l } }
func WithLogger(l *slog.Logger) Option  { return func(s *Server) { s.log = l } }

// WithAgents runs the Edge's agents at the sessions' SMTP events (FILTER-018).
func WithAgents(p *agents.Pipeline) Option { return func(s *Server) { s.agents = p } }

// WithRecipientFiltering turns on recipient lookup at RCPT for authoritative domains,
// with a block list of addresses always refused (ACCEPT-002, ACCEPT-003).
func WithRecipientFiltering(on bool, blockList []string) Option {
	return func(s *Server) {
		s.filtering = on
		for _, a := range blockList {
			s.blockList[strings.ToLower(a)] = true
		}
	}
}

// New makes a server for the connectors of one binding on server name.
func New(name, hostname string, connectors []Connector, opts ...Option) *Server {
	s := &Server{
		server: name, hostname: hostname, connectors: connectors,
		blockList: map[string]bool{}, clock: clock.Real{}, maxHops: 60, log: slog.Default(),
	}
	for _, o := range opts {
		o(s)
	}
	if s.trace == nil {
		s.trace = trace.NewLog(nil)
	}
	eopts := []esmtp.Option{esmtp.WithLogger(s.log), esmtp.WithMaxHops(s.maxHops),
		// NOTIFY, RET, ENVID and ORCPT are kept with the message and passed on (DSN-010).
		esmtp.WithDSN()}
	if s.tlsConfig != nil {
		eopts = append(eopts, esmtp.WithTLS(s.tlsConfig))
	}
	if s.ext != nil {
		eopts = append(eopts, esmtp.WithExtension(*s.ext))
	}
	s.srv = esmtp.NewServer(hostname, s, eopts...)
	return s
}

// DefaultMaxMessageSize is Exchange's receive connector default (MaxMessageSize 10 MB),
// for a connector the scenario gives none (SEC-009).
const DefaultMaxMessageSize = 10 << 20

// Serve accepts SMTP sessions on l until Close.
func (s *Server) Serve(l net.Listener) error {
	err := s.srv.Serve(l)
	if errors.Is(err, esmtp.ErrServerClosed) {
		return nil
	}
	return err
}

// Close stops the server and its sessions.
func (s *Server) Close() error { return s.srv.Close() }

// connectorFor picks the connector whose remote IP ranges most specifically contain ip;
// a connector without ranges serves everyone at the lowest specificity.
func (s *Server) connectorFor(ip netip.Addr) (*Connector, bool) {
	best, bestBits := -1, -2
	for i, c := range s.connectors {
		if len(c.RemoteIPRanges) == 0 {
			if bestBits < -1 {
				best, bestBits = i, -1
			}
			continue
		}
		for _, p := range c.RemoteIPRanges {
			if p.Contains(ip) && p.Bits() > bestBits {
				best, bestBits = i, p.Bits()
			}
		}
	}
	if best < 0 {
		return nil, false
	}
	return &s.connectors[best], true
}
