// Package mailflow is a testcontainers-go module for the reference servers: each
// server of a scenario runs as `mailflow server` in the FROM scratch image that
// containers/reference/build-image.sh builds, configured by a generated scenario slice.
//
//	edge, err := mailflow.RunEdge(ctx, mailflow.DefaultImage,
//		mailflow.WithScenario(slice, "EDGE1"), mailflow.WithNetwork(nw, ip),
//		mailflow.WithDNS("172.29.3.128:53"), mailflow.WithDirectory(url, baseDN))
//	defer edge.Terminate(ctx)
//	addr := edge.Endpoint(25)
package mailflow

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/testcontainers/testcontainers-go"
	"github.com/testcontainers/testcontainers-go/wait"

	"github.com/mailflow/mailflow/containers/logline"
	"github.com/mailflow/mailflow/reference/hub"
	"github.com/mailflow/mailflow/reference/linkwire"
	"github.com/mailflow/mailflow/reference/queue"
	"github.com/mailflow/mailflow/reference/shadow"
	"github.com/mailflow/mailflow/scenario"
)

// DefaultImage is what build-image.sh tags last; set MAILFLOW_REFERENCE_IMAGE to pin one.
const DefaultImage = "mailflow/reference:latest"

// Paths inside the container.
const (
	scenarioPath = "/etc/mailflow/scenario.yaml"
	certPath     = "/etc/mailflow/tls.crt"
	keyPath      = "/etc/mailflow/tls.key"
	caPath       = "/etc/mailflow/ca.crt"
	spoolPath    = "/spool"
)

type options struct {
	role      scenario.Role
	server    string
	slice     []byte
	network   string
	ip        netip.Addr
	dns       string
	ldap      string
	baseDN    string
	hubs      []string
	peers     map[string]string
	orgRanges []string
	cert, key []byte
	ca        []byte
	onLine    func(logline.Line)
	startup   time.Duration
	clock     bool
	offset    time.Duration
	seed      uint64
	clamd     string
	spamd     string
	linkPeers map[string]string
}

// ClockPort is where a container started WithClockControl takes clock steps
// (clock.ControlHandler).
const ClockPort = 2600

// Option configures a reference server container.
type Option func(*options)

// Customize lets an Option stand among testcontainers.ContainerCustomizer arguments
// (the shape of testcontainers-go's own modules); the work is done by Run.
func (o Option) Customize(*testcontainers.GenericContainerRequest) error { return nil }

// WithClockControl runs the server on a clock the harness steps over HTTP on ClockPort
// (`mailflow server --clock-control`), starting offset ahead of wall time, so queue
// timers of hours pass in milliseconds in a container too.
func WithClockControl(offset time.Duration) Option {
	return func(o *options) { o.clock, o.offset = true, offset }
}

// WithSeed makes the server's random choices (the first of equal-preference MXs,
// DNS-003) a repeatable sequence (`mailflow server --seed`).
func WithSeed(seed uint64) Option { return func(o *options) { o.seed = seed } }

// LinkStatePort is where a Hub started WithLinkState takes link state (Exchange's
// port 691). It is not published: only the servers on the container's network reach it.
const LinkStatePort = linkwire.Port

// WithLinkState has a Hub of a routing group take link state on LinkStatePort and
// send it to peers, the link-state address (ip:port) of each Hub it exchanges it with
// by name (`mailflow server --link-state --link-peer`, ROUTE-020).
func WithLinkState(peers map[string]string) Option {
	return func(o *options) {
		if o.linkPeers == nil {
			o.linkPeers = map[string]string{}
		}
		for k, v := range peers {
			o.linkPeers[k] = v
		}
	}
}

// WithScenario gives the container its scenario slice (scenario.Marshal of
// Scenario.SliceFor) and the name of the server it runs.
func WithScenario(slice []byte, server string) Option {
	return func(o *options) { o.slice, o.server = slice, server }
}

// WithNetwork attaches the container to a network at a fixed address.
func WithNetwork(name string, ip netip.Addr) Option {
	return func(o *options) { o.network, o.ip = name, ip }
}

// WithDNS is the resolver (ip:port) the server asks.
func WithDNS(addr string) Option { return func(o *options) { o.dns = addr } }

// WithClamd is the ClamAV daemon an Edge's antivirus agent scans with ("tcp:ip:port",
// `mailflow server --clamd`).
func WithClamd(addr string) Option { return func(o *options) { o.clamd = addr } }

// WithSpamd is the spamd (ip:port) an Edge's content filter asks when the scenario
// names none (`mailflow server --spamd`).
func WithSpamd(addr string) Option { return func(o *options) { o.spamd = addr } }

// WithDirectory is the LDAP directory (URL and base DN).
func WithDirectory(url, baseDN string) Option {
	return func(o *options) { o.ldap, o.baseDN = url, baseDN }
}

// WithHubs are the Hubs (ip:port) an Edge hands inbound mail to, or (NAME=ip:port)
// those of a Mailbox server's site, which it hands submitted mail to.
func WithHubs(addrs ...string) Option { return func(o *options) { o.hubs = append(o.hubs, addrs...) } }

// WithPeers gives a Hub the SMTP address of every server of the organisation by name,
// and the ranges those servers send from.
func WithPeers(peers map[string]string, orgRanges ...string) Option {
	return func(o *options) {
		if o.peers == nil {
			o.peers = map[string]string{}
		}
		for k, v := range peers {
			o.peers[k] = v
		}
		o.orgRanges = append(o.orgRanges, orgRanges...)
	}
}

// WithTLS is the server's certificate chain and key and the CA its peers chain to (PEM).
func WithTLS(cert, key, ca []byte) Option {
	return func(o *options) { o.cert, o.key, o.ca = cert, key, ca }
}

// WithLogLines receives every protocol line the server writes (trace events, copies a
// Mailbox server stored), in order.
func WithLogLines(f func(logline.Line)) Option { return func(o *options) { o.onLine = f } }

// WithStartupTimeout bounds the wait for the ready line (default 2 min: a parallel run
// on a small machine starts many containers at once).
func WithStartupTimeout(d time.Duration) Option { return func(o *options) { o.startup = d } }

// Container is one running reference server.
type Container struct {
	testcontainers.Container
	Server string
	Role   scenario.Role
	IP     netip.Addr
	// HostDir holds, on the host, what the container mounts: its configuration
	// (/etc/mailflow, read-only) and its spool (/spool), which outlives a kill and a
	// start of the same container, and which the harness reads without an exec.
	HostDir string
	lines   *lineSplitter
	startup time.Duration
}

// Start starts the stopped or killed container again and waits, within ctx, for its
// ready line. Its log is followed for as long as it runs, past ctx: testcontainers
// ties the following to the context of the start. Docker hands a restarted
// container's log over from its very beginning: the lines already passed on are
// skipped, so that each trace event is seen once.
func (c *Container) Start(ctx context.Context) error {
	ready := c.lines.resume()
	if err := c.Container.Start(context.WithoutCancel(ctx)); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, c.startup)
	defer cancel()
	if err := c.lines.waitReady(ctx, ready); err != nil {
		return fmt.Errorf("mailflow %s: no ready line after the start: %w", c.Server, err)
	}
	return nil
}

// Terminate stops and removes the container, then its host directory.
func (c *Container) Terminate(ctx context.Context, opts ...testcontainers.TerminateOption) error {
	err := c.Container.Terminate(ctx, opts...)
	if c.HostDir != "" {
		err = errors.Join(err, os.RemoveAll(c.HostDir))
	}
	return err
}

// RunEdge starts an Edge Transport server.
func RunEdge(ctx context.Context, img string, opts ...testcontainers.ContainerCustomizer) (*Container, error) {
	return run(ctx, scenario.RoleEdge, img, opts)
}

// RunHub starts a Hub Transport server (categorizer, site routing, queue); it needs
// WithDirectory and WithPeers.
func RunHub(ctx context.Context, img string, opts ...testcontainers.ContainerCustomizer) (*Container, error) {
	return run(ctx, scenario.RoleHub, img, opts)
}

// RunMailbox starts a Mailbox server (its store, fed over SMTP by Hubs); it needs
// WithDirectory. Stored messages come back through WithLogLines.
func RunMailbox(ctx context.Context, img string, opts ...testcontainers.ContainerCustomizer) (*Container, error) {
	return run(ctx, scenario.RoleMailbox, img, opts)
}

// RunClientAccess starts a Client Access server (an IMAP front end on IMAPPort that
// takes each login on to the user's Mailbox server); it needs WithDirectory and, as
// WithPeers, the Mailbox servers' IMAP addresses by name.
func RunClientAccess(ctx context.Context, img string, opts ...testcontainers.ContainerCustomizer) (*Container, error) {
	return run(ctx, scenario.RoleClientAccess, img, opts)
}

func run(ctx context.Context, role scenario.Role, img string, custom []testcontainers.ContainerCustomizer) (*Container, error) {
	o := options{role: role, startup: 2 * time.Minute, baseDN: "dc=contoso,dc=test"}
	var rest []testcontainers.ContainerCustomizer
	for _, c := range custom {
		if opt, ok := c.(Option); ok {
			opt(&o)
		} else {
			rest = append(rest, c)
		}
	}
	if o.server == "" || o.slice == nil {
		return nil, fmt.Errorf("mailflow %s: WithScenario is required", role)
	}
	cmd := []string{"server", "--scenario", scenarioPath, "--server", o.server, "--spool", spoolPath}
	// Bind mounts rather than files copied in: a copy is an archive the engine unpacks
	// into the container's file system, one per file, the costliest part of a start.
	hostDir, err := os.MkdirTemp("", "mailflow-"+strings.ToLower(o.server)+"-")
	if err != nil {
		return nil, fmt.Errorf("mailflow %s %s: %w", role, o.server, err)
	}
	keep := false
	defer func() {
		if !keep {
			os.RemoveAll(hostDir)
		}
	}()
	etc, spool := filepath.Join(hostDir, "etc"), filepath.Join(hostDir, "spool")
	for _, d := range []string{etc, spool} {
		if err := os.Mkdir(d, 0o755); err != nil {
			return nil, fmt.Errorf("mailflow %s %s: %w", role, o.server, err)
		}
	}
	files := []hostFile{{o.slice, scenarioPath, 0o644}}
	if o.dns != "" {
		cmd = append(cmd, "--dns", o.dns)
	}
	if o.ldap != "" {
		cmd = append(cmd, "--ldap", o.ldap, "--base-dn", o.baseDN)
	}
	if o.clamd != "" {
		cmd = append(cmd, "--clamd", o.clamd)
	}
	if o.spamd != "" {
		cmd = append(cmd, "--spamd", o.spamd)
	}
	for _, h := range o.hubs {
		cmd = append(cmd, "--hub", h)
	}
	cmd = append(cmd, nameFlags("--peer", o.peers)...)
	for _, r := range o.orgRanges {
		cmd = append(cmd, "--org-range", r)
	}
	if len(o.linkPeers) > 0 {
		cmd = append(cmd, "--link-state", ":"+strconv.Itoa(LinkStatePort))
		cmd = append(cmd, nameFlags("--link-peer", o.linkPeers)...)
	}
	if o.clock {
		cmd = append(cmd, "--clock-control", ":"+strconv.Itoa(ClockPort), "--clock-offset", o.offset.String())
	}
	if o.seed != 0 {
		cmd = append(cmd, "--seed", strconv.FormatUint(o.seed, 10))
	}
	if o.cert != nil {
		cmd = append(cmd, "--tls-cert", certPath, "--tls-key", keyPath)
		files = append(files, hostFile{o.cert, certPath, 0o644}, hostFile{o.key, keyPath, 0o600})
	}
	if o.ca != nil {
		cmd = append(cmd, "--ca", caPath)
		files = append(files, hostFile{o.ca, caPath, 0o644})
	}
	for _, f := range files {
		if err := os.WriteFile(filepath.Join(etc, filepath.Base(f.path)), f.data, f.mode); err != nil {
			return nil, fmt.Errorf("mailflow %s %s: %w", role, o.server, err)
		}
	}
	lines := newLineSplitter(o.onLine)
	req := testcontainers.GenericContainerRequest{
		ContainerRequest: testcontainers.ContainerRequest{
			Image: img,
			Name:  "",
			Cmd:   cmd,
			HostConfigModifier: func(hc *container.HostConfig) {
				hc.Binds = append(hc.Binds, etc+":"+filepath.Dir(scenarioPath)+":ro", spool+":"+spoolPath)
			},
			Labels:     map[string]string{"org.mailflow.server": o.server, "org.mailflow.role": string(role)},
			WaitingFor: wait.ForLog(logline.ReadyMarker).WithStartupTimeout(o.startup),
			LogConsumerCfg: &testcontainers.LogConsumerConfig{
				Consumers: []testcontainers.LogConsumer{lines},
			},
		},
		Started: true,
	}
	if o.network != "" {
		req.Networks = []string{o.network}
		req.NetworkAliases = map[string][]string{o.network: {strings.ToLower(o.server)}}
		if o.ip.IsValid() {
			nw, ip := o.network, o.ip
			req.EndpointSettingsModifier = func(m map[string]*network.EndpointSettings) {
				es := m[nw]
				if es == nil {
					es = &network.EndpointSettings{}
					m[nw] = es
				}
				es.IPAMConfig = &network.EndpointIPAMConfig{IPv4Address: ip}
			}
		}
	}
	for _, c := range rest {
		if err := c.Customize(&req); err != nil {
			return nil, fmt.Errorf("mailflow %s %s: %w", role, o.server, err)
		}
	}
	ctr, err := testcontainers.GenericContainer(ctx, req)
	var c *Container
	if ctr != nil {
		c = &Container{Container: ctr, Server: o.server, Role: role, IP: o.ip, HostDir: hostDir, lines: lines, startup: o.startup}
		keep = true
	}
	if err != nil {
		return c, fmt.Errorf("mailflow %s %s: %w", role, o.server, err)
	}
	if !c.IP.IsValid() {
		s, err := ctr.ContainerIP(ctx)
		if err != nil {
			return c, fmt.Errorf("mailflow %s %s: %w", role, o.server, err)
		}
		if c.IP, err = netip.ParseAddr(s); err != nil {
			return c, fmt.Errorf("mailflow %s %s: container address %q: %w", role, o.server, s, err)
		}
	}
	return c, nil
}

// IMAPPort is where a Mailbox server container serves IMAP (the server's default).
const IMAPPort = 143

// SubmissionPort is where a Mailbox server container takes client submission (the
// server's default).
const SubmissionPort = 587

// ClockURL is the clock control endpoint of a container started WithClockControl.
func (c *Container) ClockURL() string { return "http://" + c.Endpoint(ClockPort) }

// Mark asks a server started WithClockControl to write a mark line with token to its
// log (logline.MarkHandler); once the log's reader has read it, it has read every line
// the server wrote before.
func (c *Container) Mark(ctx context.Context, client *http.Client, token string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.ClockURL()+"/mark?token="+url.QueryEscape(token), nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("%s: mark: %w", c.Server, err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		return fmt.Errorf("%s: mark: %s", c.Server, resp.Status)
	}
	return nil
}

// Endpoint is where a client on the container's network reaches port.
func (c *Container) Endpoint(port int) string {
	return net.JoinHostPort(c.IP.String(), strconv.Itoa(port))
}

// QueueLen is how many messages the server's spool holds, read from the host side
// of its mount (what `mailflow queue --count` prints).
func (c *Container) QueueLen(context.Context) (int, error) {
	sp, err := queue.OpenSpool(c.spoolDir())
	if err != nil {
		return 0, fmt.Errorf("%s: queue: %w", c.Server, err)
	}
	ms, err := sp.List()
	if err != nil {
		return 0, fmt.Errorf("%s: queue: %w", c.Server, err)
	}
	return len(ms), nil
}

// Queues are the server's queues with their counts (Get-Queue, `mailflow queue`),
// shadow queues included, read from the host side of its mount.
func (c *Container) Queues(context.Context) ([]queue.Info, error) {
	sp, err := queue.OpenSpool(c.spoolDir())
	if err != nil {
		return nil, fmt.Errorf("%s: queue: %w", c.Server, err)
	}
	list, err := sp.List()
	if err != nil {
		return nil, fmt.Errorf("%s: queue: %w", c.Server, err)
	}
	ms := make([]queue.Message, len(list))
	for i, m := range list {
		ms[i] = *m
	}
	shadows, err := shadow.List(hub.ShadowDir(c.spoolDir()))
	if err != nil {
		return nil, fmt.Errorf("%s: queue: %w", c.Server, err)
	}
	return queue.Queues(append(ms, shadows...)), nil
}

func (c *Container) spoolDir() string { return filepath.Join(c.HostDir, "spool", c.Server) }

// nameFlags is flag NAME=addr for each server of m, by name, so that one scenario
// gives one command line.
func nameFlags(flag string, m map[string]string) []string {
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	sort.Strings(names)
	out := make([]string, 0, 2*len(names))
	for _, n := range names {
		out = append(out, flag, n+"="+m[n])
	}
	return out
}

// hostFile is a file of the container's configuration directory.
type hostFile struct {
	data []byte
	path string
	mode os.FileMode
}

// lineSplitter turns Docker's log frames (any size) into protocol lines, and counts
// the lines and the ready lines it passed on.
type lineSplitter struct {
	mu   sync.Mutex
	buf  []byte
	f    func(logline.Line)
	seen int // complete lines of standard output passed on
	skip int // lines of a log handed over again to pass over
	// ready counts the ready lines; readyCh is closed and replaced at each.
	ready   int
	readyCh chan struct{}
}

func newLineSplitter(f func(logline.Line)) *lineSplitter {
	return &lineSplitter{f: f, readyCh: make(chan struct{})}
}

func (s *lineSplitter) Accept(l testcontainers.Log) {
	if l.LogType == testcontainers.StderrLog && os.Getenv("MAILFLOW_DEBUG") != "" {
		fmt.Fprintf(os.Stderr, "%s", l.Content)
	}
	if l.LogType != testcontainers.StdoutLog {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.buf = append(s.buf, l.Content...)
	for {
		i := bytes.IndexByte(s.buf, '\n')
		if i < 0 {
			return
		}
		text := s.buf[:i]
		s.buf = s.buf[i+1:]
		if s.skip > 0 {
			s.skip--
			continue
		}
		s.seen++
		line, ok := logline.Parse(text)
		if !ok {
			continue
		}
		if line.Ready != nil {
			s.ready++
			close(s.readyCh)
			s.readyCh = make(chan struct{})
		}
		if s.f != nil {
			s.f(line)
		}
	}
}

// resume readies the splitter for the log of a container started again, which
// begins with every line already passed on; it returns the ready lines counted so far.
func (s *lineSplitter) resume() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.buf, s.skip = nil, s.seen
	return s.ready
}

// waitReady waits for more than n ready lines.
func (s *lineSplitter) waitReady(ctx context.Context, n int) error {
	for {
		s.mu.Lock()
		ready, ch := s.ready, s.readyCh
		s.mu.Unlock()
		if ready > n {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-ch:
		}
	}
}

// Starter is a container that can be started again: a *Container, which waits for
// its ready line, or any testcontainers.Container.
type Starter interface {
	GetContainerID() string
	Start(ctx context.Context) error
}

// Kill stops a container the way a crash would, SIGKILL with no warning, then starts it
// again: the same file system (and so the same spool), its readiness awaited again.
func Kill(ctx context.Context, c Starter) error {
	if out, err := exec.CommandContext(ctx, "docker", "kill", "--signal", "KILL", c.GetContainerID()).CombinedOutput(); err != nil {
		return fmt.Errorf("docker kill %s: %w: %s", c.GetContainerID(), err, bytes.TrimSpace(out))
	}
	// testcontainers follows the log with the context of the start, which must
	// outlive ctx (a *Container sees to that itself, and waits for its ready line).
	start := context.WithoutCancel(ctx)
	if _, ok := c.(*Container); ok {
		start = ctx
	}
	if err := c.Start(start); err != nil {
		return fmt.Errorf("restarting %s after the kill: %w", c.GetContainerID(), err)
	}
	return nil
}
