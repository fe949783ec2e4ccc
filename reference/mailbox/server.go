package mailbox

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"

	"github.com/mailflow/mailflow/clock"
	"github.com/mailflow/mailflow/reference/directory"
	"github.com/mailflow/mailflow/reference/esmtp"
	"github.com/mailflow/mailflow/reference/imapd"
	"github.com/mailflow/mailflow/reference/smtpout"
	"github.com/mailflow/mailflow/reference/store"
	"github.com/mailflow/mailflow/scenario"
	"github.com/mailflow/mailflow/trace"
)

// Directory places recipients on mailbox servers.
type Directory interface {
	Lookup(ctx context.Context, addr string) (*directory.Entry, error)
}

// Store is where messages are delivered; *store.Store is one. DeliverAll must store in
// every mailbox or none, since one reply answers the whole transaction.
type Store interface {
	DeliverAll(ctx context.Context, mailboxes []string, returnPath string, data []byte) ([]store.Delivery, error)
	Messages(mailbox string) ([]store.Message, error)
}

// Config is everything a Mailbox server needs; the org builder fills it from a scenario.
type Config struct {
	// Scenario is the world Server belongs to. The Mailbox server reads nothing else
	// from it today (recipients come from Directory); it is here so every role is
	// configured alike.
	Scenario *scenario.Scenario
	// Server is this server: Name is matched against the directory's mailbox server,
	// FQDN greets and signs Received, MaxHopCount bounds Received headers.
	Server *scenario.Server
	// Addr is the address to listen on; Port the SMTP port (0: any free port).
	Addr netip.Addr
	Port int
	// IMAPPort is the IMAP port (0: any free port). IMAP reads the Maildirs under
	// StoreDir, or under the Store's Root when it has one; a Store without either gets
	// no IMAP service. Logins are checked by the Directory when it can Authenticate.
	IMAPPort int
	// SubmissionPort is the client submission port (RFC 6409; 0: any free port):
	// authenticated users' mail, handed to one of Hubs (MBX-004, MBX-005, MBX-010).
	SubmissionPort int
	// Hubs are the Hub servers of this server's site, in the order they are tried.
	Hubs []Hub
	// ClientTLS verifies the Hubs' certificates; organisation mail goes over STARTTLS.
	ClientTLS *tls.Config
	// Store receives the messages; without it a store is opened at StoreDir.
	Store    Store
	StoreDir string
	// ServerTLS is offered as STARTTLS. Without it no MAIL is ever accepted, as
	// organisation mail may not arrive in the clear (ROUTE-017).
	ServerTLS *tls.Config
	Directory Directory
	Trace     trace.Recorder
	Clock     clock.Clock
	Logger    *slog.Logger
}

// Server is a running Mailbox server.
type Server struct {
	cfg      Config
	name     string
	hostname string
	maxHops  int
	store    Store
	log      *slog.Logger
	root     string // the Maildirs' root, "" when the store has none

	srv  *esmtp.Server
	l    net.Listener
	imap *imapd.Server // nil without a Maildir root
	sub  *esmtp.Server
	subL net.Listener
	out  *smtpout.Client // to the Hubs
	// outboxKick wakes the submission service (runOutbox) for a new Outbox message.
	outboxKick chan struct{}
	// ctx bounds directory lookups and deliveries, so Close does not wait long on them.
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup // the Serve goroutine
	once   sync.Once

	// Close waits for the work sessions do on the server's behalf (lookups, deliveries)
	// so nothing is stored or traced after it returns; closed stops new work starting.
	mu     sync.Mutex
	closed bool
	busy   sync.WaitGroup
}

// Start opens the store if needed and listens for SMTP.
func Start(ctx context.Context, cfg Config) (*Server, error) {
	if cfg.Server == nil {
		return nil, errors.New("mailbox: no server in config")
	}
	name := cfg.Server.Name
	if cfg.Server.Role != "" && cfg.Server.Role != scenario.RoleMailbox {
		return nil, fmt.Errorf("mailbox %s: server has role %s", name, cfg.Server.Role)
	}
	if cfg.Directory == nil {
		return nil, fmt.Errorf("mailbox %s: no directory", name)
	}
	if !cfg.Addr.IsValid() {
		return nil, fmt.Errorf("mailbox %s: no listen address", name)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.Real{}
	}
	if cfg.Trace == nil {
		cfg.Trace = trace.NewLog(nil)
	}
	log := cfg.Logger.With("server", name)
	st := cfg.Store
	if st == nil {
		if cfg.StoreDir == "" {
			return nil, fmt.Errorf("mailbox %s: neither Store nor StoreDir", name)
		}
		s, err := store.Open(cfg.StoreDir, store.WithClock(cfg.Clock))
		if err != nil {
			return nil, fmt.Errorf("mailbox %s: %w", name, err)
		}
		st = s
	}
	if cfg.ServerTLS == nil {
		log.Warn("no TLS configuration: every MAIL will be refused until STARTTLS, which is not offered")
	}
	hostname := cfg.Server.FQDN
	if hostname == "" {
		hostname = strings.ToLower(name)
	}
	maxHops := cfg.Server.MaxHopCount
	if maxHops <= 0 {
		maxHops = scenario.DefaultMaxHopCount
	}
	s := &Server{cfg: cfg, name: name, hostname: hostname, maxHops: maxHops, store: st, log: log, outboxKick: make(chan struct{}, 1)}
	s.ctx, s.cancel = context.WithCancel(context.WithoutCancel(ctx))
	s.root = cfg.StoreDir
	if r, ok := st.(interface{ Root() string }); ok {
		s.root = r.Root()
	}
	opts := []esmtp.Option{esmtp.WithLogger(log), esmtp.WithMaxHops(maxHops)}
	if cfg.ServerTLS != nil {
		opts = append(opts, esmtp.WithTLS(cfg.ServerTLS))
	}
	s.srv = esmtp.NewServer(hostname, backend{s}, opts...)

	l, err := net.Listen("tcp", net.JoinHostPort(cfg.Addr.String(), strconv.Itoa(cfg.Port)))
	if err != nil {
		s.cancel()
		return nil, fmt.Errorf("mailbox %s: %w", name, err)
	}
	s.l = l
	outOpts := []smtpout.Option{smtpout.WithLogger(log), smtpout.WithTLSConfig(cfg.ClientTLS)}
	if cfg.Addr.IsValid() && !cfg.Addr.IsUnspecified() {
		// The Hubs let organisation servers relay by their address (OrgRanges).
		outOpts = append(outOpts, smtpout.WithLocalAddr(cfg.Addr))
	}
	s.out = smtpout.New(noResolver{}, hostname, outOpts...)
	s.sub = esmtp.NewServer(hostname, submitBackend{s}, opts...)
	sl, err := net.Listen("tcp", net.JoinHostPort(cfg.Addr.String(), strconv.Itoa(cfg.SubmissionPort)))
	if err != nil {
		s.cancel()
		_ = l.Close()
		return nil, fmt.Errorf("mailbox %s: submission: %w", name, err)
	}
	s.subL = sl
	if err := s.startIMAP(ctx); err != nil {
		s.cancel()
		_ = l.Close()
		_ = sl.Close()
		return nil, fmt.Errorf("mailbox %s: %w", name, err)
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := s.srv.Serve(l); err != nil && !errors.Is(err, net.ErrClosed) && !errors.Is(err, esmtp.ErrServerClosed) {
			log.Error("smtp server stopped", "addr", l.Addr().String(), "err", err)
		}
	}()
	if s.imap != nil {
		s.wg.Add(1)
		go s.runOutbox()
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := s.sub.Serve(sl); err != nil && !errors.Is(err, net.ErrClosed) && !errors.Is(err, esmtp.ErrServerClosed) {
			log.Error("submission server stopped", "addr", sl.Addr().String(), "err", err)
		}
	}()
	return s, nil
}

// Addr is the listening "ip:port".
func (s *Server) Addr() string { return s.l.Addr().String() }

// IMAPAddr is the IMAP listener's "ip:port"; "" when the server has no IMAP service.
func (s *Server) IMAPAddr() string {
	if s.imap == nil {
		return ""
	}
	return s.imap.Addr()
}

// SubmissionAddr is the client submission listener's "ip:port".
func (s *Server) SubmissionAddr() string { return s.subL.Addr().String() }

// Store is where the server delivers, for suites that read mailboxes directly.
func (s *Server) Store() Store { return s.store }

// Close stops the listener and every session, and waits for them.
func (s *Server) Close() error {
	s.once.Do(func() {
		s.mu.Lock()
		s.closed = true
		s.mu.Unlock()
		s.cancel()
		// The esmtp server's Close ends every session; the listener is closed here too
		// in case Close wins the race with a just-started Serve.
		_ = s.srv.Close()
		_ = s.l.Close()
		_ = s.sub.Close()
		_ = s.subL.Close()
		if s.imap != nil {
			_ = s.imap.Close()
		}
		s.wg.Wait()
		s.busy.Wait()
		s.out.Close()
	})
	return nil
}

// enter starts work on behalf of a session; false once the server is closing.
func (s *Server) enter() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.busy.Add(1)
	return true
}

func (s *Server) leave() { s.busy.Done() }
