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
	"github.com/mailflow/mailflow/fixtures/clamdaemon"
	"github.com/mailflow/mailflow/fixtures/dnsfake"
	"github.com/mailflow/mailflow/fixtures/internet"
	"github.com/mailflow/mailflow/fixtures/ldapfake"
	"github.com/mailflow/mailflow/fixtures/spamdaemon"
	"github.com/mailflow/mailflow/fixtures/testca"
	"github.com/mailflow/mailflow/reference/clientaccess"
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
	Kind string `json:"kind"` // smtp, hub, mailbox, imap, submission, client-access-imap, dns, ldap, clamd, spamd, internet-smtp
	Addr string `json:"addr"`
}

// Topology is a running in-process world.
type Topology struct {
	scenario  *scenario.Scenario
	plan      *Plan
	port      int
	clock     clock.Controller
	trace     *trace.Log
	dns       *dnsfake.Server
	ldap      *ldapfake.Server
	dir       *directory.Client
	fleet     *internet.Fleet
	edges     map[string]*edge.Server
	edgeCfgs  map[string]edge.Config // how each Edge was started, to start it again
	hubs      map[string]*hub.Server
	hubCfgs   map[string]hub.Config // how each Hub was started, to start it again
	mailboxes map[string]*mailbox.Server
	cas       map[string]*clientaccess.Server // Client Access servers, by lower-case name
	mboxCfgs  map[string]mailbox.Config       // how each Mailbox server was started, to start it again
	down      map[string]bool                 // servers StopServer took down, by lower-case name
	// cut are the routing group connectors whose link is down (CutLink), by lower-case
	// name; the Hubs' gates read it as they connect.
	cutMu      sync.Mutex
	cut        map[string]bool
	listeners  []Listener
	spoolRoot  string
	ownSpool   bool
	log        *slog.Logger
	stopOnce   sync.Once
	serverAddr map[string]netip.Addr
	// clamd is where the Edges' antivirus agents scan; ownClamd the daemon this
	// topology started for them (nil when given one, or none is needed).
	clamd    string
	ownClamd *clamdaemon.Daemon
	// spamd is the spamd the Edges' content filters ask when the scenario names none.
	spamd string
}

// Option configures Start.
type Option func(*config)

type config struct {
	block     byte
	port      int
	spoolRoot string
	log       *slog.Logger
	traceOut  *os.File
	watch     func(trace.Event)
	clock     clock.Controller
	clamd     string
	spamd     string
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

// WithTraceWatch calls f with every message-tracking event as it is recorded, from the
// first server's start on (trace.Log.Watch: f must not block).
func WithTraceWatch(f func(trace.Event)) Option { return func(c *config) { c.watch = f } }

// WithClamd has the Edges' antivirus agents scan with the ClamAV daemon at addr
// (reference/clamd) instead of one the topology starts for a scenario that enables
// antivirus.
func WithClamd(addr string) Option { return func(c *config) { c.clamd = addr } }

// WithSpamd has the Edges' content filters that name no spamd of their own ask the
// spamd at addr (host:port) instead of the test process's (spamdaemon.Shared).
func WithSpamd(addr string) Option { return func(c *config) { c.spamd = addr } }

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
		mboxCfgs: map[string]mailbox.Config{}, down: map[string]bool{}, clamd: cfg.clamd, spamd: cfg.spamd,
		cas: map[string]*clientaccess.Server{},
	}
	if cfg.traceOut != nil {
		t.trace = trace.NewLog(cfg.traceOut)
	} else {
		t.trace = trace.NewLog(nil)
	}
	if cfg.watch != nil {
		t.trace.Watch(cfg.watch)
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
	if t.clamd == "" && t.scenario.AntivirusEnabled() {
		// A real clamd of the topology's own, on a socket in its own directory: about
		// 0.15 s to start with the one-line database, and nothing shared to clean up.
		d, err := clamdaemon.Start(ctx)
		if err != nil {
			return fmt.Errorf("inprocess: antivirus: %w", err)
		}
		t.ownClamd, t.clamd = d, d.Addr()
	}
	if t.clamd != "" {
		t.listeners = append(t.listeners, Listener{Name: "clamd", Kind: "clamd", Addr: t.clamd})
	}
	if t.spamd == "" && t.scenario.NeedsWorldSpamd() {
		// The test process's spamd, started by the first world that needs it: spamd
		// compiles its rules for seconds, and it keeps no state between messages.
		d, err := spamdaemon.Shared()
		if err != nil {
			return fmt.Errorf("inprocess: content filter: %w", err)
		}
		t.spamd = d.Addr()
	}
	if t.spamd != "" {
		t.listeners = append(t.listeners, Listener{Name: "spamd", Kind: "spamd", Addr: t.spamd})
	}
	return nil
}

// StopClamd kills the ClamAV daemon the topology started, as a scanner that dies
// under a running Edge (FILTER-009: the Edge must then defer, not accept unscanned).
func (t *Topology) StopClamd() error {
	if t.ownClamd == nil {
		return errors.New("inprocess: no clamd of the topology's own to stop")
	}
	return t.ownClamd.Stop()
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
		// The Hubs start after the Mailbox servers, at addresses known already.
		var siteHubs []mailbox.Hub
		for _, h := range t.scenario.ServersByRole(scenario.RoleHub) {
			if strings.EqualFold(h.Site, srv.Site) {
				siteHubs = append(siteHubs, mailbox.Hub{Name: h.Name, Addr: peers[h.Name]})
			}
		}
		mcfg := mailbox.Config{
			Scenario: t.scenario, Server: srv, Addr: ip, Port: t.port, IMAPPort: t.portMap(IMAPPort), StoreDir: t.spoolRoot + "/" + srv.Name + "/store",
			SubmissionPort: t.portMap(SubmissionPort), Hubs: siteHubs, ClientTLS: ca.ClientConfig(""),
			ServerTLS: tc, Directory: t.dir, Trace: t.trace, Clock: t.clock, Logger: t.log,
		}
		m, err := mailbox.Start(ctx, mcfg)
		if err != nil {
			return fmt.Errorf("inprocess: mailbox %s: %w", srv.Name, err)
		}
		t.mboxCfgs[strings.ToLower(srv.Name)] = mcfg
		t.mailboxes[strings.ToLower(srv.Name)] = m
		t.listeners = append(t.listeners, Listener{Name: srv.Name, Kind: "mailbox", Addr: m.Addr()})
		if a := m.IMAPAddr(); a != "" {
			t.listeners = append(t.listeners, Listener{Name: srv.Name, Kind: "imap", Addr: a})
		}
		t.listeners = append(t.listeners, Listener{Name: srv.Name, Kind: "submission", Addr: m.SubmissionAddr()})
	}
	// Client Access servers reach every Mailbox server's IMAP service, in any site.
	backends := map[string]string{}
	for _, srv := range t.scenario.ServersByRole(scenario.RoleMailbox) {
		backends[srv.Name] = net.JoinHostPort(t.serverAddr["server:"+strings.ToLower(srv.Name)].String(), fmt.Sprint(t.portMap(IMAPPort)))
	}
	for _, srv := range t.scenario.ServersByRole(scenario.RoleClientAccess) {
		ip := t.serverAddr["server:"+strings.ToLower(srv.Name)]
		c, err := clientaccess.Start(ctx, clientaccess.Config{
			Name: srv.Name, Addr: net.JoinHostPort(ip.String(), fmt.Sprint(t.portMap(IMAPPort))), Backends: backends,
			Directory: t.dir, ServerTLS: ca.LazyServerConfig(srv.FQDN, ip.String()), ClientTLS: ca.ClientConfig(""),
			Trace: t.trace, Clock: t.clock, Logger: t.log,
		})
		if err != nil {
			return fmt.Errorf("inprocess: client access %s: %w", srv.Name, err)
		}
		t.cas[strings.ToLower(srv.Name)] = c
		t.listeners = append(t.listeners, Listener{Name: srv.Name, Kind: "client-access-imap", Addr: c.Addr()})
	}
	var hubs []struct {
		site, addr string
	}
	// Every Hub routes with the same graph and peer addresses: deriving them per Hub
	// made start-up grow with Hubs times servers.
	org, err := hub.NewOrg(t.scenario, peers, hub.WithGates(t.gate))
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
			Gate: t.gate(srv.Name),
		}
		h, err := hub.Start(ctx, hcfg)
		if err != nil {
			return fmt.Errorf("inprocess: hub %s: %w", srv.Name, err)
		}
		t.hubCfgs[strings.ToLower(srv.Name)] = hcfg
		t.hubs[strings.ToLower(srv.Name)] = h
		addr := h.Listeners()[0].Addr
		hubs = append(hubs, struct{ site, addr string }{t.scenario.Location(srv.Name), addr})
		t.listeners = append(t.listeners, Listener{Name: srv.Name, Kind: "hub", Addr: addr})
	}
	for _, srv := range t.scenario.ServersByRole(scenario.RoleEdge) {
		ip := t.serverAddr["server:"+strings.ToLower(srv.Name)]
		var hubAddrs []string
		for _, h := range hubs {
			if loc := t.scenario.Location(srv.Name); loc == "" || strings.EqualFold(h.site, loc) {
				hubAddrs = append(hubAddrs, h.addr)
			}
		}
		stc := ca.LazyServerConfig(srv.FQDN, ip.String())
		cfg := edge.Config{
			Scenario: t.scenario, Server: srv, Addr: ip, PortMap: t.portMap, OutPort: t.port, Hubs: hubAddrs, OrgRanges: orgRanges,
			SpoolDir: t.spoolRoot + "/" + srv.Name, Directory: t.dir, Resolver: res,
			Trace: t.trace, Clock: t.clock, ServerTLS: stc, ClientTLS: ca.ClientConfig(""), Logger: t.log,
			Seed: fixtureset.Seed(srv.Name), Clamd: t.clamd, Spamd: t.spamd,
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
	case "mailbox", "imap", "submission", "client-access-imap":
		return 2
	case "internet-smtp":
		return 3
	case "dns":
		return 4
	case "ldap":
		return 5
	case "clamd", "spamd":
		return 6
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

// IMAPPort is the IMAP port of every Mailbox server, before the port map moves it
// (143 -> 2643).
const IMAPPort = 143

// IMAPEndpoint is where a client reaches the IMAP service holding addr's mailbox: the
// Mailbox server the scenario places it on.
func (t *Topology) IMAPEndpoint(addr string) (string, error) {
	r, ok := t.scenario.Recipient(addr)
	if !ok || r.Mailbox == "" {
		return "", fmt.Errorf("recipient %q has no mailbox: %w", addr, ErrUnknownEndpoint)
	}
	m, ok := t.mailboxes[strings.ToLower(r.Mailbox)]
	if !ok || m.IMAPAddr() == "" {
		return "", fmt.Errorf("IMAP on %s: %w", r.Mailbox, ErrUnknownEndpoint)
	}
	return m.IMAPAddr(), nil
}

// ClientAccessEndpoint is the IMAP address of a Client Access server (MBX-011).
func (t *Topology) ClientAccessEndpoint(server string) (string, error) {
	c, ok := t.cas[strings.ToLower(server)]
	if !ok {
		return "", fmt.Errorf("client access server %q: %w", server, ErrUnknownEndpoint)
	}
	return c.Addr(), nil
}

// SubmissionPort is the client submission port of every Mailbox server, before the
// port map moves it (587 -> 3087).
const SubmissionPort = 587

// SubmissionEndpoint is where addr submits mail: the client submission port of the
// Mailbox server the scenario places addr's mailbox on.
func (t *Topology) SubmissionEndpoint(addr string) (string, error) {
	r, ok := t.scenario.Recipient(addr)
	if !ok || r.Mailbox == "" {
		return "", fmt.Errorf("recipient %q has no mailbox: %w", addr, ErrUnknownEndpoint)
	}
	m, ok := t.mailboxes[strings.ToLower(r.Mailbox)]
	if !ok {
		return "", fmt.Errorf("submission on %s: %w", r.Mailbox, ErrUnknownEndpoint)
	}
	return m.SubmissionAddr(), nil
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
		for _, c := range t.cas {
			errs = append(errs, c.Close())
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
		if t.ownClamd != nil {
			errs = append(errs, t.ownClamd.Stop())
		}
		if t.ownSpool {
			errs = append(errs, os.RemoveAll(t.spoolRoot))
		}
		t.plan.Release()
	})
	return errors.Join(errs...)
}

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
