package inprocess

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"github.com/mailflow/mailflow/reference/queue"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/mailflow/mailflow/clock"
	"github.com/mailflow/mailflow/fixtures/dnsfake"
	"github.com/mailflow/mailflow/fixtures/internet"
	"github.com/mailflow/mailflow/fixtures/ldapfake"
	"github.com/mailflow/mailflow/fixtures/testca"
	"github.com/mailflow/mailflow/reference/directory"
	"github.com/mailflow/mailflow/reference/edge"
	"github.com/mailflow/mailflow/reference/hub"
	"github.com/mailflow/mailflow/reference/mailbox"
	"github.com/mailflow/mailflow/reference/resolve"
	"github.com/mailflow/mailflow/reference/store"
	"github.com/mailflow/mailflow/reference/transport"
	"github.com/mailflow/mailflow/scenario"
	"github.com/mailflow/mailflow/targets/internal/fixtureset"
	"github.com/mailflow/mailflow/trace"
)

// Listener is one address the world listens on.
type Listener struct {
	Name string `json:"name"`
	Kind string `json:"kind"` // smtp, dns, ldap, internet-smtp
	Addr string `json:"addr"`
}

// Topology is a running in-process world.
type Topology struct {
	scenario   *scenario.Scenario
	plan       *Plan
	port       int
	clock      clock.Controller
	trace      *trace.Log
	dns        *dnsfake.Server
	ldap       *ldapfake.Server
	dir        *directory.Client
	fleet      *internet.Fleet
	edges      map[string]*edge.Server
	edgeCfgs   map[string]edge.Config // how each Edge was started, to start it again
	hubs       map[string]*hub.Server
	hubCfgs    map[string]hub.Config // how each Hub was started, to start it again
	mailboxes  map[string]*mailbox.Server
	listeners  []Listener
	spoolRoot  string
	ownSpool   bool
	log        *slog.Logger
	stopOnce   sync.Once
	serverAddr map[string]netip.Addr
}

// Option configures Start.
type Option func(*config)

type config struct {
	block     byte
	port      int
	spoolRoot string
	log       *slog.Logger
	traceOut  *os.File
	clock     clock.Controller
}

// WithBlock picks the 127.B.0.0/16 block topologies of this process use.
func WithBlock(b byte) Option { return func(c *config) { c.block = b } }

// WithPort is the one SMTP port every listener and next hop uses (default 2525).
func WithPort(p int) Option { return func(c *config) { c.port = p } }

// WithSpoolRoot keeps spools under dir instead of a temporary directory.
func WithSpoolRoot(dir string) Option  { return func(c *config) { c.spoolRoot = dir } }
func WithLogger(l *slog.Logger) Option { return func(c *config) { c.log = l } }

// WithClock runs the world on c instead of a fake clock that starts at the wall time
// and moves only when stepped: `mailflow serve` runs on real time, so Received dates
// move and deferred messages are retried while it runs.
func WithClock(c clock.Controller) Option { return func(cfg *config) { cfg.clock = c } }
func WithTraceOutput(f *os.File) Option   { return func(c *config) { c.traceOut = f } }

// Start brings the scenario's world up; on error everything started is torn down.
func Start(ctx context.Context, s *scenario.Scenario, opts ...Option) (_ *Topology, err error) {
	cfg := config{block: 20, port: 2525, log: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))}
	for _, o := range opts {
		o(&cfg)
	}
	plan, err := NewPlan(cfg.block)
	if err != nil {
		return nil, fmt.Errorf("inprocess: %w", err)
	}
	if cfg.clock == nil {
		cfg.clock = clock.NewFake(time.Now().UTC().Truncate(time.Second))
	}
	t := &Topology{
		scenario: s, plan: plan, port: cfg.port, clock: cfg.clock,
		fleet: internet.NewFleet(), edges: map[string]*edge.Server{}, edgeCfgs: map[string]edge.Config{}, log: cfg.log,
		hubs: map[string]*hub.Server{}, hubCfgs: map[string]hub.Config{}, mailboxes: map[string]*mailbox.Server{},
	}
	if cfg.traceOut != nil {
		t.trace = trace.NewLog(cfg.traceOut)
	} else {
		t.trace = trace.NewLog(nil)
	}
	t.spoolRoot = cfg.spoolRoot
	if t.spoolRoot == "" {
		if t.spoolRoot, err = os.MkdirTemp("", "mailflow-spool-"); err != nil {
			return nil, fmt.Errorf("inprocess: %w", err)
		}
		t.ownSpool = true
	}
	defer func() {
		if err != nil {
			_ = t.Stop(context.Background())
		}
	}()
	if err := t.startFixtures(ctx); err != nil {
		return nil, err
	}
	if err := t.startServers(ctx); err != nil {
		return nil, err
	}
	return t, nil
}

func (t *Topology) startFixtures(ctx context.Context) error {
	z, err := fixtureset.Rewrite(t.scenario, t.plan)
	if err != nil {
		return fmt.Errorf("inprocess: %w", err)
	}
	if err := fixtureset.StartHosts(ctx, t.scenario, t.plan, z, t.port, t.fleet, internet.WithStamp(t.clock.Now)); err != nil {
		return fmt.Errorf("inprocess: %w", err)
	}
	for _, h := range t.fleet.All() {
		t.listeners = append(t.listeners, Listener{Name: h.Name(), Kind: "internet-smtp", Addr: h.Addr()})
	}
	// Org servers get addresses and A records for their FQDNs.
	t.serverAddr = map[string]netip.Addr{}
	for i := range t.scenario.Org.Servers {
		srv := &t.scenario.Org.Servers[i]
		ip, err := t.plan.Next()
		if err != nil {
			return err
		}
		t.serverAddr["server:"+strings.ToLower(srv.Name)] = ip
		z.Add(srv.FQDN, ip)
	}
	d, err := fixtureset.StartDNS(ctx, t.scenario, net.JoinHostPort(t.plan.Fixed(1).String(), "0"), z)
	if err != nil {
		return fmt.Errorf("inprocess: %w", err)
	}
	t.dns = d
	t.listeners = append(t.listeners, Listener{Name: "dns", Kind: "dns", Addr: d.Addr()})
	l, err := ldapfake.Start(ctx, net.JoinHostPort(t.plan.Fixed(2).String(), "0"), t.scenario.Org.Recipients)
	if err != nil {
		return fmt.Errorf("inprocess: ldap: %w", err)
	}
	t.ldap = l
	// One client for every server, one pool for the whole organisation: that is the
	// back pressure this topology has. An Edge whose recipient lookups wait behind the
	// Hubs' takes mail no faster than they can categorize it; with clients of their own,
	// an Edge accepts faster than the first Hub's directory connections can resolve, and
	// the Hub defers what waits too long.
	t.dir = directory.New("ldap://"+l.Addr(), l.BaseDN())
	t.listeners = append(t.listeners, Listener{Name: "directory", Kind: "ldap", Addr: l.Addr()})
	return nil
}

// portMap moves privileged ports up so the world runs unprivileged: the SMTP port 25
// becomes the topology's port (2525), any other port below 1024 gains 2500.
func (t *Topology) portMap(p int) int {
	switch {
	case p == 25:
		return t.port
	case p < 1024:
		return p + 2500
	}
	return p
}

func (t *Topology) addr(ip netip.Addr) string {
	return net.JoinHostPort(ip.String(), fmt.Sprint(t.port))
}

func (t *Topology) startServers(ctx context.Context) error {
	ca := testca.Shared()
	res := resolve.New(t.dns.Addr())
	peers := map[string]string{}
	for _, srv := range t.scenario.Org.Servers {
		peers[srv.Name] = t.addr(t.serverAddr["server:"+strings.ToLower(srv.Name)])
	}
	// The organisation's servers all live in this topology's /24s, which every server
	// address has been handed out from by now.
	var orgRanges []string
	for _, p := range t.plan.Prefixes() {
		orgRanges = append(orgRanges, p.String())
	}
	for _, srv := range t.scenario.ServersByRole(scenario.RoleMailbox) {
		ip := t.serverAddr["server:"+strings.ToLower(srv.Name)]
		tc := ca.LazyServerConfig(srv.FQDN, ip.String())
		m, err := mailbox.Start(ctx, mailbox.Config{
			Scenario: t.scenario, Server: srv, Addr: ip, Port: t.port, StoreDir: t.spoolRoot + "/" + srv.Name + "/store",
			ServerTLS: tc, Directory: t.dir, Trace: t.trace, Clock: t.clock, Logger: t.log,
		})
		if err != nil {
			return fmt.Errorf("inprocess: mailbox %s: %w", srv.Name, err)
		}
		t.mailboxes[strings.ToLower(srv.Name)] = m
		t.listeners = append(t.listeners, Listener{Name: srv.Name, Kind: "mailbox", Addr: m.Addr()})
	}
	var hubs []struct {
		site, addr string
	}
	// Every Hub routes with the same graph and peer addresses: deriving them per Hub
	// made start-up grow with Hubs times servers.
	org, err := hub.NewOrg(t.scenario, peers)
	if err != nil {
		return fmt.Errorf("inprocess: %w", err)
	}
	for _, srv := range t.scenario.ServersByRole(scenario.RoleHub) {
		ip := t.serverAddr["server:"+strings.ToLower(srv.Name)]
		tc := ca.LazyServerConfig(srv.FQDN, ip.String())
		hcfg := hub.Config{
			Scenario: t.scenario, Server: srv, Addr: ip, PortMap: t.portMap, OutPort: t.port,
			Peers: peers, OrgRanges: orgRanges, SpoolDir: t.spoolRoot + "/" + srv.Name,
			Directory: t.dir, Org: org, Resolver: res, Trace: t.trace, Clock: t.clock,
			ServerTLS: tc, ClientTLS: ca.ClientConfig(""), Logger: t.log, Seed: fixtureset.Seed(srv.Name),
		}
		h, err := hub.Start(ctx, hcfg)
		if err != nil {
			return fmt.Errorf("inprocess: hub %s: %w", srv.Name, err)
		}
		t.hubCfgs[strings.ToLower(srv.Name)] = hcfg
		t.hubs[strings.ToLower(srv.Name)] = h
		addr := h.Listeners()[0].Addr
		hubs = append(hubs, struct{ site, addr string }{srv.Site, addr})
		t.listeners = append(t.listeners, Listener{Name: srv.Name, Kind: "hub", Addr: addr})
	}
	for _, srv := range t.scenario.ServersByRole(scenario.RoleEdge) {
		ip := t.serverAddr["server:"+strings.ToLower(srv.Name)]
		var hubAddrs []string
		for _, h := range hubs {
			if srv.Site == "" || strings.EqualFold(h.site, srv.Site) {
				hubAddrs = append(hubAddrs, h.addr)
			}
		}
		stc := ca.LazyServerConfig(srv.FQDN, ip.String())
		cfg := edge.Config{
			Scenario: t.scenario, Server: srv, Addr: ip, PortMap: t.portMap, OutPort: t.port, Hubs: hubAddrs, OrgRanges: orgRanges,
			SpoolDir: t.spoolRoot + "/" + srv.Name, Directory: t.dir, Resolver: res,
			Trace: t.trace, Clock: t.clock, ServerTLS: stc, ClientTLS: ca.ClientConfig(""), Logger: t.log,
			Seed: fixtureset.Seed(srv.Name),
		}
		e, err := edge.Start(ctx, cfg)
		if err != nil {
			return err
		}
		t.edgeCfgs[strings.ToLower(srv.Name)] = cfg
		t.edges[strings.ToLower(srv.Name)] = e
		for _, l := range e.Listeners() {
			t.listeners = append(t.listeners, Listener{Name: srv.Name + `\` + l.Name, Kind: "smtp", Addr: l.Addr})
		}
	}
	sort.SliceStable(t.listeners, func(i, j int) bool { return kindOrder(t.listeners[i].Kind) < kindOrder(t.listeners[j].Kind) })
	return nil
}

// kindOrder sorts listeners: the Edges' connectors first, the fixtures last.
func kindOrder(k string) int {
	switch k {
	case "hub":
		return 1
	case "mailbox":
		return 2
	case "internet-smtp":
		return 3
	case "dns":
		return 4
	case "ldap":
		return 5
	}
	return 0 // smtp
}

// ErrUnknownEndpoint names a server or connector the topology does not have.
var ErrUnknownEndpoint = errors.New("unknown endpoint")

// Endpoint is where a client reaches a server's receive connector ("" for the first),
// on an Edge or a Hub.
func (t *Topology) Endpoint(server, connector string) (string, error) {
	var ls []transport.Listener
	if e, ok := t.edges[strings.ToLower(server)]; ok {
		ls = e.Listeners()
	} else if h, ok := t.hubs[strings.ToLower(server)]; ok {
		ls = h.Listeners()
	} else {
		return "", fmt.Errorf("server %q: %w", server, ErrUnknownEndpoint)
	}
	for _, l := range ls {
		if connector == "" {
			return l.Addr, nil
		}
		for _, n := range strings.Split(l.Name, ",") {
			if strings.EqualFold(n, connector) {
				return l.Addr, nil
			}
		}
	}
	return "", fmt.Errorf("connector %q on %s: %w", connector, server, ErrUnknownEndpoint)
}

// Host is a fake Internet host or Hub stand-in, by name.
func (t *Topology) Host(name string) *internet.Host { return t.fleet.Host(name) }

// Hosts are all fake hosts.
func (t *Topology) Hosts() []*internet.Host { return t.fleet.All() }

func (t *Topology) DNS() *dnsfake.Server        { return t.dns }
func (t *Topology) Directory() *ldapfake.Server { return t.ldap }
func (t *Topology) Trace() trace.Reader         { return t.trace }
func (t *Topology) Clock() clock.Controller     { return t.clock }
func (t *Topology) FakeClock() *clock.Fake      { f, _ := t.clock.(*clock.Fake); return f }
func (t *Topology) Listeners() []Listener       { return append([]Listener(nil), t.listeners...) }

// Edge returns a running Edge by server name.
func (t *Topology) Edge(name string) (*edge.Server, bool) {
	e, ok := t.edges[strings.ToLower(name)]
	return e, ok
}

// QueueLen is how many messages a server's queue holds (-1 for an unknown server).
func (t *Topology) QueueLen(server string) int {
	if e, ok := t.edges[strings.ToLower(server)]; ok {
		return e.Queue().Len()
	}
	if h, ok := t.hubs[strings.ToLower(server)]; ok {
		return h.Queue().Len()
	}
	return -1
}

// Queues counts the messages in each of a server's queues (QUEUE-011).
func (t *Topology) Queues(server string) map[string]int {
	var ms []queue.Message
	if e, ok := t.edges[strings.ToLower(server)]; ok {
		ms = e.Queue().Snapshot()
	} else if h, ok := t.hubs[strings.ToLower(server)]; ok {
		ms = append(h.Queue().Snapshot(), h.Shadows()...)
	} else {
		return nil
	}
	out := map[string]int{}
	for _, in := range queue.Queues(ms) {
		out[in.Name] = in.Messages
	}
	return out
}

// Mailbox is every message stored for a recipient's mailbox (its primary address), on
// whichever Mailbox server holds it, in delivery order.
func (t *Topology) Mailbox(addr string) [][]byte {
	var out [][]byte
	for _, m := range t.mailboxes {
		ms, err := m.Store().Messages(strings.ToLower(addr))
		if err != nil {
			continue
		}
		for _, msg := range ms {
			out = append(out, msg.Data)
		}
	}
	return out
}

// ClientTLS is a TLS config that trusts every server of the topology.
func (t *Topology) ClientTLS(serverName string) *tls.Config {
	return testca.Shared().ClientConfig(serverName)
}

// Stop tears everything down: servers first, then fixtures, then the spools it made.
func (t *Topology) Stop(ctx context.Context) error {
	var errs []error
	t.stopOnce.Do(func() {
		for _, e := range t.edges {
			errs = append(errs, e.Close())
		}
		for _, h := range t.hubs {
			errs = append(errs, h.Close())
		}
		for _, m := range t.mailboxes {
			errs = append(errs, m.Close())
		}
		if t.dir != nil {
			errs = append(errs, t.dir.Close())
		}
		if t.fleet != nil {
			errs = append(errs, t.fleet.Close())
		}
		if t.ldap != nil {
			errs = append(errs, t.ldap.Close())
		}
		if t.dns != nil {
			errs = append(errs, t.dns.Close())
		}
		if t.ownSpool {
			errs = append(errs, os.RemoveAll(t.spoolRoot))
		}
		t.plan.Release()
	})
	return errors.Join(errs...)
}

// StopServer takes one Hub or Mailbox server down (its listeners close; its spool
// stays), as a host that died would.
// CrashServer drops an Edge at once, without letting its queue finish what it was
// doing, and starts it again on the same spool, as a restart after a crash would: all
// it knows afterwards is what was on disk (QUEUE-010). The crash test kills a real
// server process with SIGKILL for the same clause.
func (t *Topology) CrashServer(name string) error {
	cfg, ok := t.edgeCfgs[strings.ToLower(name)]
	if !ok {
		return fmt.Errorf("server %q: %w", name, ErrUnknownEndpoint)
	}
	if err := t.edges[strings.ToLower(name)].Close(); err != nil {
		return err
	}
	e, err := edge.Start(context.Background(), cfg)
	if err != nil {
		return fmt.Errorf("inprocess: restarting %s: %w", name, err)
	}
	t.edges[strings.ToLower(name)] = e
	return nil
}

// WipeServer drops an Edge or a Hub at once and starts it again on an empty spool, as
// a server rebuilt after its disk was lost would come back (QUEUE-012).
func (t *Topology) WipeServer(name string) error {
	k := strings.ToLower(name)
	var dir string
	switch {
	case t.edges[k] != nil:
		dir = t.edgeCfgs[k].SpoolDir
		if err := t.edges[k].Close(); err != nil {
			return err
		}
	case t.hubs[k] != nil:
		dir = t.hubCfgs[k].SpoolDir
		if err := t.hubs[k].Close(); err != nil {
			return err
		}
	default:
		return fmt.Errorf("server %q: %w", name, ErrUnknownEndpoint)
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("inprocess: wiping %s: %w", name, err)
	}
	if cfg, ok := t.edgeCfgs[k]; ok {
		e, err := edge.Start(context.Background(), cfg)
		if err != nil {
			return fmt.Errorf("inprocess: restarting %s: %w", name, err)
		}
		t.edges[k] = e
		return nil
	}
	h, err := hub.Start(context.Background(), t.hubCfgs[k])
	if err != nil {
		return fmt.Errorf("inprocess: restarting %s: %w", name, err)
	}
	t.hubs[k] = h
	return nil
}

func (t *Topology) StopServer(name string) error {
	if h, ok := t.hubs[strings.ToLower(name)]; ok {
		return h.Close()
	}
	if m, ok := t.mailboxes[strings.ToLower(name)]; ok {
		return m.Close()
	}
	return fmt.Errorf("server %q: %w", name, ErrUnknownEndpoint)
}

// Store is a recipient's mailbox as its Mailbox server's store holds it, flags included.
func (t *Topology) Store(addr string) []store.Message {
	var out []store.Message
	for _, m := range t.mailboxes {
		if ms, err := m.Store().Messages(strings.ToLower(addr)); err == nil {
			out = append(out, ms...)
		}
	}
	return out
}
