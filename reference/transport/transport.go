package transport

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
	"github.com/mailflow/mailflow/reference/queue"
	"github.com/mailflow/mailflow/reference/shadow"
	"github.com/mailflow/mailflow/reference/smtpd"
	"github.com/mailflow/mailflow/reference/smtpout"
	"github.com/mailflow/mailflow/scenario"
	"github.com/mailflow/mailflow/trace"
)

// Directory is the recipient directory the server's receive connectors consult.
type Directory interface {
	Lookup(ctx context.Context, addr string) (*directory.Entry, error)
	// Exists is the recipient filter's question: is addr anyone's (directory.ErrNotFound
	// when not).
	Exists(ctx context.Context, addr string) error
	Authenticate(ctx context.Context, user, password string) error
}

// Config is everything a transport server needs; the Edge and Hub roles fill it from a
// scenario.
type Config struct {
	Scenario *scenario.Scenario
	Server   *scenario.Server
	// Addr is the server's own address; listeners bind it and outgoing mail leaves from it.
	Addr netip.Addr
	// PortMap rewrites the port of receive connector bindings (in-process, privileged
	// ports move up by 2500 so no root is needed: 25 -> 2525, 587 -> 3087); nil keeps them.
	PortMap func(port int) int
	// OutPort is the port of next hops that name none.
	OutPort int
	// Hubs are "ip:port" of the Hub servers of the subscribed site.
	Hubs      []string
	SpoolDir  string
	Directory Directory
	Resolver  smtpout.Resolver
	Trace     trace.Recorder
	Clock     clock.Clock
	// ServerTLS is offered on connectors with tls: true; ClientTLS verifies next hops.
	ServerTLS *tls.Config
	ClientTLS *tls.Config
	Logger    *slog.Logger
	// Router replaces the Edge's routing (a Hub brings its own); nil routes as an Edge.
	Router Router
	// Connectors replace the scenario's receive connectors of the server (a Hub
	// without any gets the organisation's default one); nil uses the scenario's.
	Connectors []scenario.ReceiveConnector
	// OrgRanges are the addresses the organisation's Hubs send from. An Edge with them
	// gets the implicit EdgeSync connector on port 25 that lets those Hubs send
	// outbound Internet mail through it (ROUTE-015), over STARTTLS.
	OrgRanges []string
	// Shadow keeps shadow copies of what is relayed on hops marked Shadow (a Hub's
	// shadow redundancy, QUEUE-012); nil keeps none.
	Shadow Shadower
	// ShadowRanges are the clients told what the server holds, when shadow redundancy
	// is on (the organisation's servers, as shadows); empty means OrgRanges.
	ShadowRanges []string
	// Seed makes the random first choice among equal-preference MXs (DNS-003) a
	// repeatable sequence; 0 leaves it to the runtime's randomly seeded generator.
	Seed uint64
	// Gate, when set, is asked before each outbound connection, and an error fails it
	// as a connection not made (smtpout.WithGate): a world in one process cuts a network
	// path so (a routing group connector's link down, ROUTE-020).
	Gate func(addr string) error
	// Clamd is the address of the ClamAV daemon an Edge's antivirus agent scans with
	// ("unix:/path" or "tcp:host:port", reference/clamd); needed when the scenario
	// enables it.
	Clamd string
	// Spamd is the host:port of the spamd an Edge's content filter asks when the
	// scenario names none of its own (reference/spamc).
	Spamd string
}

// Shadower keeps shadow copies of relayed messages: Prepare comes before a hop's
// send, Keep after it for the recipients the next hop took, before the queue forgets
// them.
type Shadower interface {
	Prepare(ctx context.Context, hosts []string)
	Keep(ctx context.Context, m *queue.Message, hosts []string, remote, reply string, rcpts []string, data []byte) error
}

// OrgConnector names the Edge's implicit connector for the organisation's Hubs.
const OrgConnector = "EdgeSync - from the organisation"

// Listener is one bound receive connector binding.
type Listener struct {
	Server, Name, Kind, Addr string
}

// Server is a running transport server.
type Server struct {
	cfg       Config
	queue     *queue.Queue
	out       *smtpout.Client
	conns     *connLimit
	servers   []*smtpd.Server
	socks     []net.Listener
	listeners []Listener
	primary   *shadow.Primary
	cancel    context.CancelFunc
	wg        sync.WaitGroup
}

// Start binds every receive connector of the server and starts the queue.
func Start(ctx context.Context, cfg Config) (*Server, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.Real{}
	}
	if cfg.Trace == nil {
		cfg.Trace = trace.NewLog(nil)
	}
	log := cfg.Logger.With("server", cfg.Server.Name)
	sp, err := queue.OpenSpool(cfg.SpoolDir)
	if err != nil {
		return nil, fmt.Errorf("edge %s: %w", cfg.Server.Name, err)
	}
	e := &Server{cfg: cfg, conns: newConnLimit(MaxPerDomainOutboundConnections, MaxOutboundConnections)}
	e.out = smtpout.New(cfg.Resolver, cfg.Server.FQDN,
		smtpout.WithPort(cfg.OutPort), smtpout.WithLocalAddr(cfg.Addr),
		smtpout.WithSelf([]string{cfg.Server.FQDN}, ownAddrs(cfg.Addr)),
		smtpout.WithTLSConfig(cfg.ClientTLS), smtpout.WithLogger(log), smtpout.WithSeed(cfg.Seed),
		smtpout.WithGate(cfg.Gate))
	e.queue, err = queue.New(sp, queue.WithClock(cfg.Clock), queue.WithTrace(cfg.Trace),
		queue.WithServer(cfg.Server.Name), queue.WithSchedule(Schedule(cfg.Server)),
		queue.WithLogger(log), queue.WithDeliverer(e), queue.WithFailureHandler(e.sendDSN),
		queue.WithDelayHandler(e.sendDelayDSN), queue.WithPoisonThreshold(poisonThreshold(cfg.Server)),
		queue.WithSpoolLimit(cfg.Server.SpoolLimit))
	if err != nil {
		return nil, fmt.Errorf("edge %s: %w", cfg.Server.Name, err)
	}
	if sv := cfg.Server; sv.ShadowRedundancy != nil && *sv.ShadowRedundancy {
		ranges := cfg.ShadowRanges
		if len(ranges) == 0 {
			ranges = cfg.OrgRanges
		}
		var allowed []netip.Prefix
		for _, r := range ranges {
			p, err := parsePrefix(r)
			if err != nil {
				return nil, fmt.Errorf("edge %s: shadow range: %w", cfg.Server.Name, err)
			}
			allowed = append(allowed, p)
		}
		e.primary = shadow.NewPrimary(cfg.SpoolDir, e.heldIDs, allowed)
	}
	if err := e.listen(log); err != nil {
		e.Close()
		return nil, err
	}
	qctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	e.cancel = cancel
	e.wg.Add(1)
	go func() { defer e.wg.Done(); e.queue.Run(qctx) }()
	return e, nil
}

// listen groups the server's receive connectors by binding and serves each binding.
func (e *Server) listen(log *slog.Logger) error {
	s := e.cfg.Scenario
	byBind := map[string][]smtpd.Connector{}
	tlsOn := map[string]bool{}
	var order []string
	rcs := s.ReceiveConnectorsOf(e.cfg.Server.Name)
	if e.cfg.Connectors != nil {
		rcs = nil
		for i := range e.cfg.Connectors {
			rcs = append(rcs, &e.cfg.Connectors[i])
		}
	}
	if len(e.cfg.OrgRanges) > 0 {
		rcs = append(rcs, &scenario.ReceiveConnector{
			Name: OrgConnector, Server: e.cfg.Server.Name, Bind: ":25", TLS: true,
			Permissions: []scenario.Permission{scenario.PermAnonymous}, AcceptAnyRecipient: true,
			RemoteIPRanges: e.cfg.OrgRanges,
		})
	}
	for _, rc := range rcs {
		_, port, err := net.SplitHostPort(rc.Bind)
		if err != nil {
			return fmt.Errorf("edge %s: connector %s: bind %q: %w", e.cfg.Server.Name, rc.Name, rc.Bind, err)
		}
		if e.cfg.PortMap != nil {
			n, err := strconv.Atoi(port)
			if err != nil {
				return fmt.Errorf("edge %s: connector %s: bind %q: bad port", e.cfg.Server.Name, rc.Name, rc.Bind)
			}
			port = strconv.Itoa(e.cfg.PortMap(n))
		}
		addr := net.JoinHostPort(e.cfg.Addr.String(), port)
		c := smtpd.Connector{
			Name: rc.Name, Permissions: rc.Permissions, AcceptAnyRecipient: rc.AcceptAnyRecipient,
			AuthRequiresTLS: rc.AuthRequiresTLS != nil && *rc.AuthRequiresTLS, MaxRecipients: rc.MaxRecipients, MaxMessageSize: rc.MaxMessageSize,
			InactivityTimeout: rc.InactivityTimeout.D(), TarpitInterval: rc.TarpitInterval.D(),
			Internal: rc.Name == OrgConnector || rc.ExternallySecured,
		}
		for _, r := range rc.RemoteIPRanges {
			p, err := parsePrefix(r)
			if err != nil {
				return fmt.Errorf("edge %s: connector %s: %w", e.cfg.Server.Name, rc.Name, err)
			}
			c.RemoteIPRanges = append(c.RemoteIPRanges, p)
		}
		tlsOn[addr] = tlsOn[addr] || rc.TLS
		if _, ok := byBind[addr]; !ok {
			order = append(order, addr)
		}
		byBind[addr] = append(byBind[addr], c)
	}
	filtering := e.cfg.Server.RecipientFiltering == nil || *e.cfg.Server.RecipientFiltering
	pipeline, err := e.agentPipeline()
	if err != nil {
		return err
	}
	for _, addr := range order {
		conns := byBind[addr]
		opts := []smtpd.Option{
			smtpd.WithDomains(s), smtpd.WithQueue(e.queue), smtpd.WithTrace(e.cfg.Trace),
			smtpd.WithClock(e.cfg.Clock), smtpd.WithMaxHopCount(e.cfg.Server.MaxHopCount),
			smtpd.WithRecipientFiltering(filtering, e.cfg.Server.RecipientBlockList), smtpd.WithLogger(log),
			smtpd.WithNullMXCheck(e.cfg.Resolver),
		}
		if e.cfg.Directory != nil {
			opts = append(opts, smtpd.WithDirectory(dirAdapter{e.cfg.Directory}), smtpd.WithAuthenticator(e.cfg.Directory))
		}
		if e.primary != nil {
			opts = append(opts, smtpd.WithExtension(e.primary.Extension()))
		}
		if pipeline != nil {
			opts = append(opts, smtpd.WithAgents(pipeline))
		}
		if e.cfg.ServerTLS != nil && tlsOn[addr] {
			opts = append(opts, smtpd.WithTLS(e.cfg.ServerTLS))
		}
		srv := smtpd.New(e.cfg.Server.Name, e.cfg.Server.FQDN, conns, opts...)
		l, err := net.Listen("tcp", addr)
		if err != nil {
			return fmt.Errorf("edge %s: listen %s: %w", e.cfg.Server.Name, addr, err)
		}
		e.servers = append(e.servers, srv)
		e.socks = append(e.socks, l)
		names := make([]string, len(conns))
		for i, c := range conns {
			names[i] = c.Name
		}
		e.listeners = append(e.listeners, Listener{Server: e.cfg.Server.Name, Name: strings.Join(names, ","), Kind: "smtp", Addr: l.Addr().String()})
		e.wg.Add(1)
		go func() {
			defer e.wg.Done()
			if err := srv.Serve(l); err != nil && !errors.Is(err, net.ErrClosed) {
				log.Error("smtp server stopped", "addr", addr, "err", err)
			}
		}()
	}
	return nil
}

// ownAddrs are the addresses the server listens on: its own address, or every
// address of the host when it binds them all (a container's --listen 0.0.0.0). An MX
// at one of them is the server itself (TRACE-005).
func ownAddrs(a netip.Addr) []netip.Addr {
	if a.IsValid() && !a.IsUnspecified() {
		return []netip.Addr{a}
	}
	ifs, err := net.InterfaceAddrs()
	if err != nil {
		return nil
	}
	var out []netip.Addr
	for _, ia := range ifs {
		if p, err := netip.ParsePrefix(ia.String()); err == nil {
			out = append(out, p.Addr())
		}
	}
	return out
}

func parsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		return netip.ParsePrefix(s)
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// Listeners lists the bound receive connectors.
func (e *Server) Listeners() []Listener { return append([]Listener(nil), e.listeners...) }

// heldIDs are the IDs of the messages the queue holds: a shadow's primary answers
// for what is still on its hands (QUEUE-012).
func (e *Server) heldIDs() []string {
	return e.queue.IDs()
}

// Queue exposes the queue for views and suites.
func (e *Server) Queue() *queue.Queue { return e.queue }

// Close stops the listeners, then the queue, and waits for both.
func (e *Server) Close() error {
	for _, s := range e.servers {
		_ = s.Close()
	}
	// go-smtp's Close only closes listeners its Serve has registered; a Close that wins
	// the race with a just-started Serve would leave that Serve accepting forever.
	for _, l := range e.socks {
		_ = l.Close()
	}
	if e.cancel != nil {
		e.cancel()
	}
	e.wg.Wait()
	err := e.queue.Close()
	e.out.Close()
	return err
}

// dirAdapter is the recipient filter's view of the directory. It asks at every RCPT:
// an answer kept for a while would let the Edge take mail faster than the Hubs behind
// it categorize it, and the reference has no back pressure to slow it down.
type dirAdapter struct{ d Directory }

func (a dirAdapter) Exists(ctx context.Context, addr string) error {
	err := a.d.Exists(ctx, addr)
	if errors.Is(err, directory.ErrNotFound) {
		return fmt.Errorf("%s: %w", addr, smtpd.ErrUnknown)
	}
	return err
}

// Schedule is a server's queue timers from the scenario (defaults applied).
func Schedule(sv *scenario.Server) queue.Schedule {
	s := queue.Schedule{
		TransientInterval: sv.TransientRetryInterval.D(), Interval: sv.RetryInterval.D(),
		DelayNotification: sv.DelayNotification.D(), Expiration: sv.MessageExpiration.D(),
	}
	if sv.TransientRetryCount != nil {
		s.TransientCount = *sv.TransientRetryCount
	}
	if s.TransientInterval == 0 {
		s.TransientInterval = s.Interval
	}
	return s
}

func poisonThreshold(sv *scenario.Server) int {
	if sv.PoisonThreshold == nil {
		return queue.PoisonThreshold
	}
	return *sv.PoisonThreshold
}
