// Package live is the target of an MTA the user runs (a lab box, a container of their
// own) at smtp://HOST:PORT, playing the Edge of one scenario they configured it for.
// The harness does not start, configure or stop it: it serves the fake DNS and the
// fake Internet hosts and Hub stand-ins (the sinks) on addresses of this host the user
// gives (--listen), prints the settings the MTA needs (Settings) before the run, and
// runs only the specs whose world configures the Edge exactly so; any other spec is
// N/A, its reason naming the settings it would need (NotApplicableError). There is
// no message-tracking log and time is real, as on the mta:NAME targets.
//
// Every spec's world takes the same addresses for what the MTA's configuration names
// (the DNS first, then the Hub stand-ins, IP-literal smart hosts and client ranges),
// so one configuration serves them all, one spec at a time.
package live

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/mailflow/mailflow/clock"
	"github.com/mailflow/mailflow/fixtures/dnsfake"
	"github.com/mailflow/mailflow/fixtures/internet"
	"github.com/mailflow/mailflow/fixtures/ldapfake"
	"github.com/mailflow/mailflow/fixtures/testca"
	"github.com/mailflow/mailflow/scenario"
	"github.com/mailflow/mailflow/targets/internal/fixtureset"
	"github.com/mailflow/mailflow/trace"
)

// Options say which host plays which scenario, and where the harness listens.
type Options struct {
	// Target is smtp://HOST[:PORT].
	Target string
	// Scenario is the path of the scenario file the host is configured for.
	Scenario string
	// Listen is ADDR[,ADDR...] or a prefix: this host's addresses for the fixtures.
	Listen string
	// CADir keeps the test CA and the Edge's certificate (DefaultCADir when empty).
	CADir string
}

// Target is a configured live host.
type Target struct {
	host     Host
	addr     netip.AddrPort
	pool     Pool
	scenario *scenario.Scenario
	caDir    string
	ca       *testca.CA
	tls      TLSFiles
	// configured is the scenario's world as the host is configured for it.
	configured *world
}

// New reads the options: the URL, the scenario (which must have one Edge), the
// addresses and the CA directory, whose CA becomes the process's shared one (the
// sinks present certificates the host trusts, the clients trust the host's). It
// resolves a host name once; it neither listens nor contacts the host (Check does).
func New(ctx context.Context, o Options) (*Target, error) {
	h, err := ParseTarget(o.Target)
	if err != nil {
		return nil, err
	}
	ip, err := resolve(ctx, h)
	if err != nil {
		return nil, err
	}
	if o.Scenario == "" {
		return nil, fmt.Errorf("target %s: name the scenario the host is configured for with --scenario FILE", h)
	}
	s, err := scenario.Load(o.Scenario)
	if err != nil {
		return nil, err
	}
	if o.Listen == "" {
		return nil, fmt.Errorf("target %s: give the addresses of this host the fake DNS and sinks listen on with --listen ADDR[,ADDR...] or --listen PREFIX", h)
	}
	pool, err := ParseListen(o.Listen)
	if err != nil {
		return nil, err
	}
	dir := o.CADir
	if dir == "" {
		if dir, err = DefaultCADir(); err != nil {
			return nil, err
		}
	}
	t := &Target{host: h, addr: netip.AddrPortFrom(ip, h.Port), pool: pool, scenario: s, caDir: dir}
	edges := s.ServersByRole(scenario.RoleEdge)
	if len(edges) != 1 {
		return nil, fmt.Errorf("%s: %w (it has %d)", s.File, ErrNoEdge, len(edges))
	}
	if t.ca, err = openCA(dir); err != nil {
		return nil, err
	}
	if t.tls, err = edgeCert(t.ca, dir, edges[0].FQDN, h, ip); err != nil {
		return nil, err
	}
	if err := testca.SetShared(t.ca); err != nil {
		return nil, err
	}
	if t.configured, err = prepare(s, pool, ip, t.tls); err == nil {
		err = t.configured.plan.short()
	}
	if err != nil {
		return nil, fmt.Errorf("%s on --listen %q: %w", s.File, pool.Spec, err)
	}
	return t, nil
}

func resolve(ctx context.Context, h Host) (netip.Addr, error) {
	if a, err := netip.ParseAddr(h.Name); err == nil {
		return a.Unmap(), nil
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	as, err := net.DefaultResolver.LookupNetIP(ctx, "ip", h.Name)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("target %s: %w", h, err)
	}
	for _, a := range as {
		if a.Unmap().Is4() {
			return a.Unmap(), nil // the sinks and clients are IPv4 as often as not
		}
	}
	return as[0], nil
}

// Name is the target's name in reports: smtp-HOST-PORT.
func (t *Target) Name() string {
	return "smtp-" + strings.Trim(t.host.Name, "[]") + "-" + strconv.Itoa(int(t.host.Port))
}

// Host is the live host's URL.
func (t *Target) Host() Host { return t.host }

// TLS are the PEM files the host is configured with.
func (t *Target) TLS() TLSFiles { return t.tls }

// Check says what would keep the run from starting: an address of --listen that is
// not this host's or whose ports (53 for the DNS, 25 for the sinks) are taken, or a
// host that does not greet with an SMTP reply.
func (t *Target) Check(ctx context.Context) error {
	if err := t.pool.CheckLocal(); err != nil {
		return err
	}
	w := t.configured
	probes := []string{"udp " + net.JoinHostPort(w.dns.String(), "53"), "tcp " + net.JoinHostPort(w.dns.String(), "53")}
	for _, a := range w.hubs {
		probes = append(probes, "tcp "+net.JoinHostPort(a.String(), "25"))
	}
	for _, a := range w.zone.Addr {
		if t.pool.has(a) {
			probes = append(probes, "tcp "+net.JoinHostPort(a.String(), "25"))
		}
	}
	for _, p := range probes {
		network, addr, _ := strings.Cut(p, " ")
		if err := probe(network, addr); err != nil {
			return fmt.Errorf("--listen %q: the harness cannot listen on %s/%s: %w", t.pool.Spec, addr, network, err)
		}
	}
	return greets(ctx, t.host, t.addr)
}

func (p Pool) has(a netip.Addr) bool {
	for _, x := range p.Addrs {
		if x == a {
			return true
		}
	}
	return false
}

func probe(network, addr string) error {
	if network == "udp" {
		c, err := net.ListenPacket(network, addr)
		if err != nil {
			return err
		}
		return c.Close()
	}
	l, err := net.Listen(network, addr)
	if err != nil {
		return err
	}
	return l.Close()
}

// greets connects to the host and reads its greeting: any SMTP reply will do (a host
// that refuses this client with 554 is up).
func greets(ctx context.Context, h Host, addr netip.AddrPort) error {
	d := net.Dialer{Timeout: 10 * time.Second}
	c, err := d.DialContext(ctx, "tcp", addr.String())
	if err != nil {
		return fmt.Errorf("target %s: no SMTP server answers at %s: %w", h, addr, err)
	}
	defer c.Close()
	// An MTA may look the client up in DNS before it greets, and the fake DNS it is
	// configured with runs only while a spec does.
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return fmt.Errorf("target %s: no greeting from %s within 30s: %w", h, addr, err)
	}
	if !smtpReply(line) {
		return fmt.Errorf("target %s: %s greets with %q, not an SMTP reply", h, addr, strings.TrimSpace(line))
	}
	_, _ = c.Write([]byte("QUIT\r\n"))
	return nil
}

// smtpReply says whether line starts like an SMTP reply ("220 ", "554-").
func smtpReply(line string) bool {
	return len(line) >= 4 && line[0] >= '2' && line[0] <= '5' &&
		line[1] >= '0' && line[1] <= '9' && line[2] >= '0' && line[2] <= '9' && (line[3] == ' ' || line[3] == '-')
}

// NotApplicableError is a spec's world that the configured host cannot play.
type NotApplicableError struct{ Reason string }

func (e *NotApplicableError) Error() string { return "N/A: " + e.Reason }

// Start brings up a spec's world around the host: its fake DNS, fake Internet hosts
// and Hub stand-ins on the pool. A world whose Edge the host is not configured for
// is a *NotApplicableError naming what it would need.
func (t *Target) Start(ctx context.Context, orig *scenario.Scenario) (_ *Topology, err error) {
	w, err := prepare(orig, t.pool, t.addr.Addr(), t.tls)
	switch {
	case errors.Is(err, ErrNoEdge):
		return nil, &NotApplicableError{Reason: fmt.Sprintf("the spec's world (%s) has no single Edge for the live host %s to play", orig.File, t.host)}
	case errors.Is(err, ErrPoolExhausted):
		return nil, &NotApplicableError{Reason: fmt.Sprintf("the spec's world (%s) needs more addresses than --listen %q gives: %v", orig.File, t.pool.Spec, err)}
	case err != nil:
		return nil, fmt.Errorf("live %s: %w", t.host, err)
	}
	if diffs := differences(t.configured.check, w.check); len(diffs) > 0 {
		return nil, &NotApplicableError{Reason: t.mismatch(orig.File, diffs)}
	}
	if err := w.plan.short(); err != nil {
		return nil, &NotApplicableError{Reason: fmt.Sprintf("the spec's world (%s) configures the host alike, but %v; give --listen more", orig.File, err)}
	}
	topo := &Topology{target: t, w: w, fleet: internet.NewFleet(), trace: trace.NewLog(nil)}
	defer func() {
		if err != nil {
			_ = topo.Stop(context.Background())
		}
	}()
	if err := fixtureset.StartHubStandIns(ctx, w.s, w.hubs, w.zone, topo.fleet); err != nil {
		return nil, fmt.Errorf("live %s: %w", t.host, err)
	}
	if err := fixtureset.StartHosts(ctx, w.s, w.plan, w.zone, 25, topo.fleet); err != nil {
		return nil, fmt.Errorf("live %s: %w", t.host, err)
	}
	w.zone.Add(w.edge.FQDN, t.addr.Addr())
	if topo.dns, err = fixtureset.StartDNS(ctx, w.s, net.JoinHostPort(w.dns.String(), "53"), w.zone); err != nil {
		return nil, fmt.Errorf("live %s: %w", t.host, err)
	}
	return topo, nil
}

// mismatch says why a world needs another configuration: the host's scenario, the
// spec's, and the first settings that differ.
func (t *Target) mismatch(file string, diffs []string) string {
	const show = 4
	world := file
	if file == t.scenario.File {
		world = file + " as this spec changes it"
	}
	more := ""
	if len(diffs) > show {
		more = fmt.Sprintf("; and %d more", len(diffs)-show)
		diffs = diffs[:show]
	}
	return fmt.Sprintf("the live host %s is configured for %s, and this spec's world (%s) needs settings the harness cannot change on it: %s%s",
		t.host, t.scenario.File, world, strings.Join(diffs, "; "), more)
}

// Topology is one spec's world around the live host.
type Topology struct {
	target   *Target
	w        *world
	fleet    *internet.Fleet
	dns      *dnsfake.Server
	trace    *trace.Log
	mu       sync.Mutex // guards w.plan for ClientIn
	stopOnce sync.Once
}

// Endpoint is where the host listens for a connector of the Edge: the URL's port for
// port 25, the scenario's port for any other.
func (t *Topology) Endpoint(server, connector string) (string, error) {
	if !strings.EqualFold(server, t.w.edge.Name) {
		return "", fmt.Errorf("server %q: not the Edge the live host plays (%s)", server, t.w.edge.Name)
	}
	port := endpointPort(t.w.s, server, connector)
	if port == 25 {
		port = int(t.target.addr.Port())
	}
	return net.JoinHostPort(t.target.addr.Addr().String(), strconv.Itoa(port)), nil
}

// ClientIn is the address of --listen that stands for the scenario's client range p.
func (t *Topology) ClientIn(p netip.Prefix) (netip.Addr, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.w.plan.client(p)
}

func (t *Topology) Host(name string) *internet.Host { return t.fleet.Host(name) }
func (t *Topology) DNS() *dnsfake.Server            { return t.dns }
func (t *Topology) Directory() *ldapfake.Server     { return nil }
func (t *Topology) Trace() trace.Reader             { return t.trace }
func (t *Topology) Clock() clock.Controller         { return clock.Real{} }

// QueueLen is -1: the harness cannot look into the host's queue.
func (t *Topology) QueueLen(string) int { return -1 }

// Traced is false: the host's own log is not the message-tracking log.
func (t *Topology) Traced() bool { return false }

// QueueTimers are the timers the printed settings ask the host for.
func (t *Topology) QueueTimers(string) (retry, delay, expiry time.Duration) {
	return RetryInterval, DelayWarning, Expiry
}

// RetryInterval is the retry interval the printed settings ask for.
func (t *Topology) RetryInterval() time.Duration { return RetryInterval }

// HopLimit is the Received-header limit the settings ask for.
func (t *Topology) HopLimit(string) int { return t.w.data.HopLimit }

// InactivityTimeout is the scenario's, which the settings ask for.
func (t *Topology) InactivityTimeout(string) time.Duration { return t.w.data.InactivityTimeout }

// Mailbox is what the Hub stand-ins received for addr.
func (t *Topology) Mailbox(addr string) [][]byte { return fixtureset.HubMailbox(t.w.s, t.fleet, addr) }

// Stop stops the fixtures; the host runs on.
func (t *Topology) Stop(context.Context) error {
	var errs []error
	t.stopOnce.Do(func() {
		errs = append(errs, t.fleet.Close())
		if t.dns != nil {
			errs = append(errs, t.dns.Close())
		}
	})
	return errors.Join(errs...)
}
