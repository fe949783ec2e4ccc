// Package containers runs a scenario's reference topology as one container per server
// (the FROM scratch mailflow image) on a Docker network the target creates, with a
// container of the scanners' Debian image for each daemon the Edges scan with (clamd
// when a scenario enables antivirus, spamd when its content filter names no spamd of
// its own: containers/scanner). Fixtures
// (fake DNS, directory, fake Internet hosts) stay in the test process, on addresses of
// the network's bridge: the suites program and inspect them directly, exactly as
// in-process, and nothing but the servers under test crosses into Docker. Trace events
// come from each container's JSON log, in the order of their time stamps. Every server
// runs on a clock the harness steps (`mailflow server --clock-control`): stepping the
// topology's clock steps all of them, so retries, delay notices and expiry take
// milliseconds here as in-process.
package containers

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/testcontainers/testcontainers-go"
	tclog "github.com/testcontainers/testcontainers-go/log"

	"github.com/mailflow/mailflow/clock"
	"github.com/mailflow/mailflow/containers/logline"
	"github.com/mailflow/mailflow/containers/mailflow"
	"github.com/mailflow/mailflow/containers/scanner"
	"github.com/mailflow/mailflow/fixtures/dnsfake"
	"github.com/mailflow/mailflow/fixtures/internet"
	"github.com/mailflow/mailflow/fixtures/ldapfake"
	"github.com/mailflow/mailflow/fixtures/testca"
	"github.com/mailflow/mailflow/reference/linkstate"
	"github.com/mailflow/mailflow/reference/store"
	"github.com/mailflow/mailflow/scenario"
	"github.com/mailflow/mailflow/targets/dockernet"
	"github.com/mailflow/mailflow/targets/internal/fixtureset"
	"github.com/mailflow/mailflow/targets/internal/imagebuild"
	"github.com/mailflow/mailflow/trace"
)

// ImageEnv overrides the reference image.
const ImageEnv = "MAILFLOW_REFERENCE_IMAGE"

// Image is the reference image this target runs: $MAILFLOW_REFERENCE_IMAGE, or the
// tag build-image.sh moves to the last build.
func Image() string {
	if img := os.Getenv(ImageEnv); img != "" {
		return img
	}
	return mailflow.DefaultImage
}

// ScannerImageEnv overrides the scanners' image (clamd, spamd).
const ScannerImageEnv = "MAILFLOW_SCANNER_IMAGE"

// ScannerImage is the scanners' image: $MAILFLOW_SCANNER_IMAGE, or the one
// containers/scanners/build-image.sh builds or finds (a first build takes minutes).
func ScannerImage(ctx context.Context) (string, error) {
	if img := os.Getenv(ScannerImageEnv); img != "" {
		return img, nil
	}
	return imagebuild.Image(ctx, "MAILFLOW_SCANNER_BUILD", "containers/scanners/build-image.sh")
}

func init() {
	// The reaper image cannot be pulled here; every container is terminated by Stop.
	if os.Getenv("TESTCONTAINERS_RYUK_DISABLED") == "" {
		os.Setenv("TESTCONTAINERS_RYUK_DISABLED", "true")
	}
	if os.Getenv("MAILFLOW_DOCKER_LOG") == "" {
		tclog.SetDefault(quiet{})
	}
}

type quiet struct{}

func (quiet) Printf(string, ...any) {}

// Topology is a running containerised world.
type Topology struct {
	Net      *dockernet.Net
	scenario *scenario.Scenario
	trace    *trace.Log
	// clock is the world's time: every server's clock is stepped with it (Advance),
	// and the fake Internet hosts stamp sessions with it.
	clock    *clock.Offset
	dns      *dnsfake.Server
	ldap     *ldapfake.Server
	fleet    *internet.Fleet
	servers  map[string]*mailflow.Container
	mu       sync.Mutex
	stored   map[string][]store.Message
	stopOnce sync.Once
	log      *slog.Logger
	// What the servers were started with, to start one again (WipeServer).
	img      string
	ips      map[string]netip.Addr
	hubs     []string
	hubSites []string
	// scanners are the daemons the Edges scan with, by name (scanner.Clamd,
	// scanner.Spamd); clamd and spamd their addresses, as the Edges are given them.
	scanners map[string]*scanner.Container
	clamd    string
	spamd    string
	// marks are the log marks asked for and not yet read, by token (caughtUp).
	marks    map[string]chan struct{}
	markSeq  atomic.Uint64
	syncMu   sync.Mutex
	lastSync time.Time
}

// markWait bounds how long a reader of the trace waits for the servers' logs to catch
// up; past it, it reads what has arrived.
const markWait = 10 * time.Second

// markClient asks for marks; a server that cannot be reached at once is one that is
// going down, with nothing more to read from it.
var markClient = &http.Client{Timeout: 2 * time.Second}

// caughtUp returns once the log of every running server has been read up to the moment
// it was called: each is asked for a mark (logline.Mark), written after every line it
// wrote before, and the call waits until the mark is read. Without it a spec that sees
// a message arrive and then reads the trace can read it before the event that came
// first, the container's log being read asynchronously. A reader that asked while
// another's round was under way waits for it and starts one of its own, unless a round
// begun after it asked has ended meanwhile.
func (t *Topology) caughtUp() {
	asked := time.Now()
	t.syncMu.Lock()
	defer t.syncMu.Unlock()
	if t.lastSync.After(asked) {
		return
	}
	t.lastSync = time.Now()
	t.mu.Lock()
	var running []*mailflow.Container
	for _, c := range t.servers {
		if c.IsRunning() {
			running = append(running, c)
		}
	}
	t.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), markWait)
	defer cancel()
	var wg sync.WaitGroup
	for _, c := range running {
		tok := strconv.FormatUint(t.markSeq.Add(1), 10)
		read := make(chan struct{})
		t.mu.Lock()
		t.marks[tok] = read
		t.mu.Unlock()
		wg.Go(func() {
			defer func() {
				t.mu.Lock()
				delete(t.marks, tok)
				t.mu.Unlock()
			}()
			if err := c.Mark(ctx, markClient, tok); err != nil {
				return
			}
			select {
			case <-read:
			case <-ctx.Done():
				t.log.Warn("a server's log did not catch up; the trace may lack its latest events", "server", c.Server, "wait", markWait)
			}
		})
	}
	wg.Wait()
}

// caughtUpTrace is the trace as read from the servers' logs, read once they have caught up.
type caughtUpTrace struct{ t *Topology }

func (r caughtUpTrace) Events() []trace.Event {
	r.t.caughtUp()
	return r.t.trace.Events()
}

// Start brings the scenario's world up; on error everything started is torn down.
func Start(ctx context.Context, orig *scenario.Scenario) (_ *Topology, err error) {
	img := Image()
	// The target rewrites addresses; the caller's scenario stays as written.
	s, err := orig.Clone()
	if err != nil {
		return nil, fmt.Errorf("containers: %w", err)
	}
	nw, err := dockernet.New(ctx)
	if err != nil {
		return nil, fmt.Errorf("containers: %w", err)
	}
	t := &Topology{Net: nw, scenario: s, trace: trace.NewOrderedLog(), fleet: internet.NewFleet(), clock: clock.NewOffset(0),
		servers: map[string]*mailflow.Container{}, marks: map[string]chan struct{}{}, stored: map[string][]store.Message{}, scanners: map[string]*scanner.Container{},
		log: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))}
	defer func() {
		if err != nil {
			_ = t.Stop(context.Background())
		}
	}()
	z, err := fixtureset.OnNetwork(ctx, s, nw, t.fleet, internet.WithStamp(t.clock.Now))
	if err != nil {
		return nil, fmt.Errorf("containers: %w", err)
	}
	ips := map[string]netip.Addr{}
	for _, srv := range s.Org.Servers {
		ip, err := nw.Container()
		if err != nil {
			return nil, err
		}
		ips[strings.ToLower(srv.Name)] = ip
		z.Add(srv.FQDN, ip)
	}
	dnsIP, err := nw.Next()
	if err != nil {
		return nil, err
	}
	if t.dns, err = fixtureset.StartDNS(ctx, s, net.JoinHostPort(dnsIP.String(), "53"), z); err != nil {
		return nil, fmt.Errorf("containers: %w", err)
	}
	ldapIP, err := nw.Next()
	if err != nil {
		return nil, err
	}
	if t.ldap, err = ldapfake.Start(ctx, net.JoinHostPort(ldapIP.String(), "389"), s.Org.Recipients); err != nil {
		return nil, fmt.Errorf("containers: ldap: %w", err)
	}
	// The scanners start beside the servers (spamd takes seconds to compile its
	// rules): an Edge needs only their addresses to start, and asks them per message.
	scanned, err := t.startScanners(ctx)
	if err != nil {
		return nil, err
	}
	err = t.startServers(ctx, img, ips)
	return t, errors.Join(err, <-scanned)
}

// startScanners starts the daemons the scenario's Edges scan with, if any, each on an
// address of the network fixed at once (the Edges are given it), and reports on the
// channel when they answer or could not start.
func (t *Topology) startScanners(ctx context.Context) (<-chan error, error) {
	type daemon struct {
		name string
		addr *string
		run  func(context.Context, string, ...testcontainers.ContainerCustomizer) (*scanner.Container, error)
		ip   netip.Addr
	}
	var want []daemon
	if t.scenario.AntivirusEnabled() {
		want = append(want, daemon{scanner.Clamd, &t.clamd, scanner.RunClamd, netip.Addr{}})
	}
	if t.scenario.NeedsWorldSpamd() {
		want = append(want, daemon{scanner.Spamd, &t.spamd, scanner.RunSpamd, netip.Addr{}})
	}
	done := make(chan error, 1)
	if len(want) == 0 {
		done <- nil
		return done, nil
	}
	img, err := ScannerImage(ctx)
	if err != nil {
		return nil, fmt.Errorf("containers: scanners: %w", err)
	}
	for i, d := range want {
		if want[i].ip, err = t.Net.Container(); err != nil {
			return nil, err
		}
		*d.addr = scanner.Addr(d.name, want[i].ip)
	}
	results := make(chan error, len(want))
	for _, d := range want {
		go func() {
			c, err := d.run(ctx, img, scanner.WithNetwork(t.Net.Name, d.ip), scanner.WithAllowed(t.Net.Subnet.String()),
				testcontainers.WithLabels(dockernet.Labels(nil)))
			if c != nil {
				t.mu.Lock()
				t.scanners[c.Daemon] = c
				t.mu.Unlock()
			}
			if err != nil {
				err = fmt.Errorf("containers: %w", err)
			}
			results <- err
		}()
	}
	go func() {
		var errs []error
		for range want {
			errs = append(errs, <-results)
		}
		done <- errors.Join(errs...)
	}()
	return done, nil
}

// StopClamd kills the ClamAV daemon the Edges scan with, as a scanner that dies under
// a running Edge (FILTER-009: the Edge must then defer, not accept unscanned). Its
// container stays until Stop, so its address refuses connections at once.
func (t *Topology) StopClamd() error {
	t.mu.Lock()
	c, ok := t.scanners[scanner.Clamd]
	t.mu.Unlock()
	if !ok {
		return errors.New("containers: no clamd in this world to stop")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return c.StopDaemon(ctx)
}

func (t *Topology) startServers(ctx context.Context, img string, ips map[string]netip.Addr) error {
	ca := testca.Shared()
	var hubs []string
	var hubSites []string
	for _, srv := range t.scenario.ServersByRole(scenario.RoleHub) {
		hubs = append(hubs, net.JoinHostPort(ips[strings.ToLower(srv.Name)].String(), "25"))
		hubSites = append(hubSites, t.scenario.Location(srv.Name))
	}
	t.img, t.ips, t.hubs, t.hubSites = img, ips, hubs, hubSites
	type result struct {
		c   *mailflow.Container
		err error
	}
	results := make(chan result, len(t.scenario.Org.Servers))
	for i := range t.scenario.Org.Servers {
		srv := t.scenario.Org.Servers[i]
		ip := ips[strings.ToLower(srv.Name)]
		go func() {
			// The container's log is followed for as long as it runs, longer than the
			// caller's start-up deadline; the wait strategy bounds start-up instead.
			c, err := t.runServer(context.WithoutCancel(ctx), img, srv, ip, ca, hubs, hubSites, ips)
			if err == nil {
				_, err = answers(ctx, c)
			}
			results <- result{c, err}
		}()
	}
	var errs []error
	for range t.scenario.Org.Servers {
		r := <-results
		if r.c != nil {
			t.mu.Lock()
			t.servers[strings.ToLower(r.c.Server)] = r.c
			t.mu.Unlock()
		}
		errs = append(errs, r.err)
	}
	return errors.Join(errs...)
}

func (t *Topology) runServer(ctx context.Context, img string, srv scenario.Server, ip netip.Addr, ca *testca.CA, hubs, hubSites []string, ips map[string]netip.Addr) (*mailflow.Container, error) {
	slice, err := t.scenario.SliceFor(srv.Name)
	if err != nil {
		return nil, err
	}
	yml, err := scenario.Marshal(slice)
	if err != nil {
		return nil, err
	}
	cert, key, err := ca.IssuePEM(srv.FQDN, ip.String())
	if err != nil {
		return nil, err
	}
	name := srv.Name
	opts := []testcontainers.ContainerCustomizer{
		mailflow.WithScenario(yml, srv.Name),
		mailflow.WithNetwork(t.Net.Name, ip),
		mailflow.WithTLS(cert, key, ca.CertPEM()),
		mailflow.WithLogLines(func(l logline.Line) { t.onLine(name, l) }),
		// A server started again (CrashServer, WipeServer) rejoins the stepped world.
		mailflow.WithClockControl(t.clock.Elapsed()),
		mailflow.WithSeed(fixtureset.Seed(srv.Name)),
		testcontainers.WithLabels(dockernet.Labels(nil)),
	}
	switch srv.Role {
	case scenario.RoleEdge:
		opts = append(opts,
			mailflow.WithDNS(t.dns.Addr()),
			mailflow.WithDirectory("ldap://"+t.ldap.Addr(), t.ldap.BaseDN()),
			mailflow.WithClamd(t.clamd), mailflow.WithSpamd(t.spamd))
		for i, h := range hubs {
			if loc := t.scenario.Location(srv.Name); loc == "" || strings.EqualFold(hubSites[i], loc) {
				opts = append(opts, mailflow.WithHubs(h))
			}
		}
		opts = append(opts, mailflow.WithPeers(nil, orgRanges(ips)...))
		return mailflow.RunEdge(ctx, img, opts...)
	case scenario.RoleHub:
		peers := map[string]string{}
		for n, a := range ips {
			peers[n] = net.JoinHostPort(a.String(), "25")
		}
		opts = append(opts,
			mailflow.WithDNS(t.dns.Addr()),
			mailflow.WithDirectory("ldap://"+t.ldap.Addr(), t.ldap.BaseDN()),
			mailflow.WithPeers(peers, orgRanges(ips)...))
		// A Hub of a routing group passes link state to the Hubs it exchanges it with,
		// on the network's addresses only (ROUTE-020).
		if names := linkstate.Peers(t.scenario, srv.Name); len(names) > 0 {
			links := map[string]string{}
			for _, n := range names {
				links[n] = net.JoinHostPort(ips[strings.ToLower(n)].String(), strconv.Itoa(mailflow.LinkStatePort))
			}
			opts = append(opts, mailflow.WithLinkState(links))
		}
		return mailflow.RunHub(ctx, img, opts...)
	case scenario.RoleClientAccess:
		// Logins go on to the Mailbox servers' IMAP services, in any site (MBX-011).
		backends := map[string]string{}
		for _, m := range t.scenario.ServersByRole(scenario.RoleMailbox) {
			backends[m.Name] = net.JoinHostPort(ips[strings.ToLower(m.Name)].String(), strconv.Itoa(mailflow.IMAPPort))
		}
		opts = append(opts,
			mailflow.WithDirectory("ldap://"+t.ldap.Addr(), t.ldap.BaseDN()),
			mailflow.WithPeers(backends))
		return mailflow.RunClientAccess(ctx, img, opts...)
	default:
		opts = append(opts, mailflow.WithDirectory("ldap://"+t.ldap.Addr(), t.ldap.BaseDN()))
		// Submitted mail goes to a Hub of the Mailbox server's own site (MBX-010).
		for _, h := range t.scenario.ServersByRole(scenario.RoleHub) {
			if strings.EqualFold(h.Site, srv.Site) {
				opts = append(opts, mailflow.WithHubs(h.Name+"="+net.JoinHostPort(ips[strings.ToLower(h.Name)].String(), "25")))
			}
		}
		return mailflow.RunMailbox(ctx, img, opts...)
	}
}

func (t *Topology) onLine(server string, l logline.Line) {
	switch {
	case l.Mark != nil:
		t.mu.Lock()
		read, ok := t.marks[l.Mark.Token]
		delete(t.marks, l.Mark.Token)
		t.mu.Unlock()
		if ok {
			close(read)
		}
	case l.Trace != nil:
		t.trace.Record(*l.Trace)
	case l.Stored != nil:
		t.mu.Lock()
		k := strings.ToLower(l.Stored.Mailbox)
		t.stored[k] = append(t.stored[k], store.Message{Data: l.Stored.Data, Flags: l.Stored.Flags})
		t.mu.Unlock()
	}
}

// ErrUnknownEndpoint names a server or connector the topology does not have.
var ErrUnknownEndpoint = errors.New("unknown endpoint")

// Endpoint is the container address and bound port of a server's receive connector
// ("" for its first).
func (t *Topology) Endpoint(server, connector string) (string, error) {
	c, ok := t.server(server)
	if !ok {
		return "", fmt.Errorf("server %q: %w", server, ErrUnknownEndpoint)
	}
	for _, rc := range t.scenario.ReceiveConnectorsOf(server) {
		if connector != "" && !strings.EqualFold(rc.Name, connector) {
			continue
		}
		_, port, err := net.SplitHostPort(rc.Bind)
		if err != nil {
			return "", fmt.Errorf("connector %s bind %q: %w", rc.Name, rc.Bind, err)
		}
		n, err := strconv.Atoi(port)
		if err != nil {
			return "", fmt.Errorf("connector %s bind %q: %w", rc.Name, rc.Bind, err)
		}
		return c.Endpoint(n), nil
	}
	return "", fmt.Errorf("connector %q on %s: %w", connector, server, ErrUnknownEndpoint)
}

// IMAPEndpoint is the IMAP port (143) of the Mailbox server container holding addr's
// mailbox.
func (t *Topology) IMAPEndpoint(addr string) (string, error) {
	return t.mailboxEndpoint(addr, mailflow.IMAPPort)
}

// mailboxEndpoint is port of the Mailbox server container holding addr's mailbox.
func (t *Topology) mailboxEndpoint(addr string, port int) (string, error) {
	r, ok := t.scenario.Recipient(addr)
	if !ok || r.Mailbox == "" {
		return "", fmt.Errorf("recipient %q has no mailbox: %w", addr, ErrUnknownEndpoint)
	}
	c, ok := t.server(r.Mailbox)
	if !ok {
		return "", fmt.Errorf("server %q: %w", r.Mailbox, ErrUnknownEndpoint)
	}
	return c.Endpoint(port), nil
}

// server is a server's container by name, as it now runs.
func (t *Topology) server(name string) (*mailflow.Container, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	c, ok := t.servers[strings.ToLower(name)]
	return c, ok
}

// ClientAccessEndpoint is the IMAP port (143) of a Client Access server's container.
func (t *Topology) ClientAccessEndpoint(server string) (string, error) {
	c, ok := t.server(server)
	if !ok || c.Role != scenario.RoleClientAccess {
		return "", fmt.Errorf("client access server %q: %w", server, ErrUnknownEndpoint)
	}
	return c.Endpoint(mailflow.IMAPPort), nil
}

// SubmissionEndpoint is the client submission port (587) of the Mailbox server
// container holding addr's mailbox.
func (t *Topology) SubmissionEndpoint(addr string) (string, error) {
	return t.mailboxEndpoint(addr, mailflow.SubmissionPort)
}

// ClientIn is an address inside a client range the scenario names, from which a test
// can dial.
func (t *Topology) ClientIn(p netip.Prefix) (netip.Addr, error) { return t.Net.ClientIn(p) }

// Host is a fake Internet host by name (servers are containers: see Mailbox).
func (t *Topology) Host(name string) *internet.Host { return t.fleet.Host(name) }

// Mailbox is every message the Mailbox servers stored for addr (as their logs report).
func (t *Topology) Mailbox(addr string) [][]byte {
	var out [][]byte
	for _, m := range t.Store(addr) {
		out = append(out, m.Data)
	}
	return out
}

// Store is a recipient's mailbox as the Mailbox servers' logs report it.
func (t *Topology) Store(addr string) []store.Message {
	t.caughtUp()
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]store.Message(nil), t.stored[strings.ToLower(addr)]...)
}

func (t *Topology) DNS() *dnsfake.Server        { return t.dns }
func (t *Topology) Directory() *ldapfake.Server { return t.ldap }
func (t *Topology) Trace() trace.Reader         { return caughtUpTrace{t} }

// Clock is the world's time, stepped in every server container at once.
func (t *Topology) Clock() clock.Controller { return steppedClock{t} }

// steppedClock steps the topology's clock and every running server's with it.
type steppedClock struct{ t *Topology }

func (c steppedClock) Now() time.Time                         { return c.t.clock.Now() }
func (c steppedClock) After(d time.Duration) <-chan time.Time { return c.t.clock.After(d) }
func (c steppedClock) IsFake() bool                           { return true }

// Advance steps the harness's own clock by d, then every server's. The harness's goes
// first because the fake hosts stamp what they see with it: a server that acts on the
// step at once (a retry that is now due) must reach a host that already counts the
// step, or the gap the host records comes out a step short (QUEUE-004). A server that
// cannot be reached is logged: its timers then run on wall time, and the spec waiting
// on them fails saying what it waited for.
func (c steppedClock) Advance(d time.Duration) bool {
	if d <= 0 {
		// A step of nothing (World.After(0)) needs no round trip to every container.
		return true
	}
	stepped := c.t.clock.Advance(d)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for _, ctr := range c.t.Containers() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := clock.Step(ctx, http.DefaultClient, ctr.ClockURL(), d); err != nil {
				c.t.log.Warn("clock step", "server", ctr.Server, "err", err)
			}
		}()
	}
	wg.Wait()
	return stepped
}

// Queues counts the messages in each of a server's queues (QUEUE-011).
func (t *Topology) Queues(server string) map[string]int {
	c, ok := t.server(server)
	if !ok {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	qs, err := c.Queues(ctx)
	if err != nil {
		t.log.Warn("queues", "server", server, "err", err)
		return nil
	}
	out := map[string]int{}
	for _, q := range qs {
		out[q.Name] = q.Messages
	}
	return out
}

// QueueLen is how many messages a server's spool holds (-1 when it cannot be read).
func (t *Topology) QueueLen(server string) int {
	c, ok := t.server(server)
	if !ok {
		return -1
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	n, err := c.QueueLen(ctx)
	if err != nil {
		t.log.Warn("queue length", "server", server, "err", err)
		return -1
	}
	return n
}

// Containers are the running server containers.
func (t *Topology) Containers() []*mailflow.Container {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []*mailflow.Container
	for _, c := range t.servers {
		out = append(out, c)
	}
	return out
}

// Stop terminates every container, then the fixtures, then removes the network.
func (t *Topology) Stop(ctx context.Context) error {
	var errs []error
	t.stopOnce.Do(func() {
		// Each container leaves the network first, one at a time, and only then are
		// they stopped and removed side by side. Docker 20.10 keeps a count of a
		// network's endpoints beside the endpoints themselves, and endpoints of one
		// network deleted concurrently (by containers exiting together, or a
		// disconnect racing another container's removal) were seen to leave the
		// count above zero with no endpoint left (moby/moby#42119): the network can
		// then never be removed until the engine restarts. One endpoint deleted at a
		// time keeps the count true; a disconnect that fails (a container already
		// stopped) leaves that endpoint to the container's removal.
		t.mu.Lock()
		scanners := slices.Collect(maps.Values(t.scanners))
		t.mu.Unlock()
		var ids []string
		for _, c := range t.Containers() {
			ids = append(ids, c.GetContainerID())
		}
		for _, c := range scanners {
			ids = append(ids, c.GetContainerID())
		}
		for _, id := range ids {
			_ = exec.CommandContext(ctx, "docker", "network", "disconnect", t.Net.ID, id).Run()
		}
		var wg sync.WaitGroup
		var mu sync.Mutex
		for _, c := range t.Containers() {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := c.Terminate(ctx, testcontainers.StopTimeout(2*time.Second)); err != nil {
					mu.Lock()
					errs = append(errs, fmt.Errorf("terminate %s: %w", c.Server, err))
					mu.Unlock()
				}
			}()
		}
		for _, c := range scanners {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := c.Terminate(ctx); err != nil {
					mu.Lock()
					errs = append(errs, fmt.Errorf("terminate %s: %w", c.Daemon, err))
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		errs = append(errs, t.fleet.Close())
		if t.ldap != nil {
			errs = append(errs, t.ldap.Close())
		}
		if t.dns != nil {
			errs = append(errs, t.dns.Close())
		}
		errs = append(errs, t.Net.Remove(ctx))
	})
	return errors.Join(errs...)
}

// CrashServer kills a server's container with SIGKILL and starts it again on the same
// file system, spool included (QUEUE-010).
func (t *Topology) CrashServer(name string) error {
	c, ok := t.server(name)
	if !ok {
		return fmt.Errorf("server %q: %w", name, ErrUnknownEndpoint)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := mailflow.Kill(ctx, c); err != nil {
		return err
	}
	return t.rejoinClock(ctx, c)
}

// rejoinClock waits until a restarted server takes clock steps again, then steps it to
// the world's time: it started with the clock offset it was first created with, and a
// step sent while it was down never reached it.
func (t *Topology) rejoinClock(ctx context.Context, c *mailflow.Container) error {
	st, err := answers(ctx, c)
	if err != nil {
		return err
	}
	if behind := t.clock.Elapsed() - st.Elapsed; behind > 0 {
		if _, err := clock.Step(ctx, http.DefaultClient, c.ClockURL(), behind); err != nil {
			return fmt.Errorf("%s: %w", c.Server, err)
		}
	}
	return nil
}

// answers waits until the harness reaches the server's control port and returns its
// clock's state. A container that logged it is ready may not be reachable from the
// host yet: the first connection to a new network's address can fail with "no route
// to host" for a moment, and a spec must not take that for the server's answer.
func answers(ctx context.Context, c *mailflow.Container) (clock.ControlState, error) {
	for {
		st, err := clock.State(ctx, http.DefaultClient, c.ClockURL())
		if err == nil {
			return st, nil
		}
		select {
		case <-ctx.Done():
			return st, fmt.Errorf("%s: its control port did not answer at %s: %w", c.Server, c.ClockURL(), err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// WipeServer kills a server's container and starts a new one in its place, same
// address and configuration, on a new file system: the server comes back with an
// empty spool, as one rebuilt after its disk was lost would (QUEUE-012).
func (t *Topology) WipeServer(name string) error {
	c, ok := t.server(name)
	if !ok {
		return fmt.Errorf("server %q: %w", name, ErrUnknownEndpoint)
	}
	srv, _ := t.scenario.Server(name)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "docker", "kill", "--signal", "KILL", c.GetContainerID()).CombinedOutput(); err != nil {
		return fmt.Errorf("docker kill %s: %w: %s", c.GetContainerID(), err, strings.TrimSpace(string(out)))
	}
	// The address must be free for the new container: take the old one off the
	// network before removing it.
	_ = exec.CommandContext(ctx, "docker", "network", "disconnect", "--force", t.Net.ID, c.GetContainerID()).Run()
	if err := c.Terminate(ctx, testcontainers.StopTimeout(0)); err != nil {
		return fmt.Errorf("removing %s: %w", name, err)
	}
	nc, err := t.runServer(context.WithoutCancel(ctx), t.img, *srv, t.ips[strings.ToLower(name)], testca.Shared(), t.hubs, t.hubSites, t.ips)
	if err == nil {
		_, err = answers(ctx, nc)
	}
	if nc != nil {
		t.mu.Lock()
		t.servers[strings.ToLower(name)] = nc
		t.mu.Unlock()
	}
	if err != nil {
		return fmt.Errorf("containers: starting %s again: %w", name, err)
	}
	return nil
}

// ErrNotDown is StartServer's answer for a server whose container is running.
var ErrNotDown = errors.New("not down")

// StartServer starts a server StopServer stopped again, on its spool and at its
// address, and steps its clock to the world's; it returns once the server is ready.
func (t *Topology) StartServer(name string) error {
	c, ok := t.server(name)
	if !ok {
		return fmt.Errorf("server %q: %w", name, ErrUnknownEndpoint)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if c.IsRunning() {
		return fmt.Errorf("server %s: %w", name, ErrNotDown)
	}
	if err := c.Start(ctx); err != nil {
		return fmt.Errorf("containers: starting %s again: %w", name, err)
	}
	return t.rejoinClock(ctx, c)
}

// SharesLinkState says that the Hubs of routing groups pass link state to each other
// (ROUTE-020): each container's Hub listens for it on the network (mailflow.WithLinkState).
func (t *Topology) SharesLinkState() bool { return true }

// StopServer stops one server's container (it stays until Stop removes it).
func (t *Topology) StopServer(name string) error {
	c, ok := t.server(name)
	if !ok {
		return fmt.Errorf("server %q: %w", name, ErrUnknownEndpoint)
	}
	timeout := 2 * time.Second
	return c.Stop(context.Background(), &timeout)
}

// orgRanges are the organisation's server addresses, one /32 each: the test host (the
// network's gateway, and every client address) is never among them.
func orgRanges(ips map[string]netip.Addr) []string {
	out := make([]string, 0, len(ips))
	for _, a := range ips {
		out = append(out, netip.PrefixFrom(a, 32).String())
	}
	sort.Strings(out)
	return out
}
