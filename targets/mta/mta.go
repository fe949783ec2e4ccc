// Package mta runs a third-party MTA (Postfix, Exim, OpenSMTPD from Debian packages) in
// the role of a scenario's Edge server, configured from the scenario by its profile in
// package profiles, on a Docker network the target creates. The rest of the world is the
// same as on the other targets: fake DNS and fake Internet hosts in the test process on the
// bridge, and the organisation's Hubs as stand-in sinks there too (the MTA relays
// accepted-domain mail to them). There is no message-tracking log a suite could read and
// time is real.
package mta

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"github.com/mailflow/mailflow/containers/mailflow"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/testcontainers/testcontainers-go"
	tcexec "github.com/testcontainers/testcontainers-go/exec"

	"github.com/mailflow/mailflow/clock"
	"github.com/mailflow/mailflow/fixtures/dnsfake"
	"github.com/mailflow/mailflow/fixtures/internet"
	"github.com/mailflow/mailflow/fixtures/ldapfake"
	"github.com/mailflow/mailflow/fixtures/testca"
	"github.com/mailflow/mailflow/profiles"
	"github.com/mailflow/mailflow/scenario"
	"github.com/mailflow/mailflow/targets/dockernet"
	"github.com/mailflow/mailflow/targets/internal/fixtureset"
	"github.com/mailflow/mailflow/trace"
)

// Short timers a profile gets unless it sets shorter ones (profiles.Timers): retries
// within a spec's patience, warnings and expiry within a run's (expiry is longer on an
// MTA whose first retry comes later).
const (
	RetryInterval = 10 * time.Second
	DelayWarning  = time.Minute
	Expiry        = 5 * time.Minute
)

// Topology is a running MTA world.
type Topology struct {
	Net      *dockernet.Net
	profile  *profiles.Profile
	scenario *scenario.Scenario
	edge     *scenario.Server
	dns      *dnsfake.Server
	fleet    *internet.Fleet
	ctr      testcontainers.Container
	ip       netip.Addr
	trace    *trace.Log
	stopOnce sync.Once
	logs     *tail
}

var (
	imageMu sync.Mutex
	images  = map[string]string{}
)

// Image builds (once; the script is idempotent) and names the profile's image.
func Image(ctx context.Context, p *profiles.Profile) (string, error) {
	imageMu.Lock()
	defer imageMu.Unlock()
	if img, ok := images[p.Image]; ok {
		return img, nil
	}
	script, err := findScript()
	if err != nil {
		return "", err
	}
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, script, p.Image)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("mta %s: %s %s: %w: %s", p.Name, script, p.Image, err, strings.TrimSpace(stderr.String()))
	}
	img := strings.TrimSpace(string(out))
	images[p.Image] = img
	return img, nil
}

// findScript looks for containers/mta/build-image.sh from the working directory up
// (go test runs in the package directory, mailflow conformance in the clone).
func findScript() (string, error) {
	if s := os.Getenv("MAILFLOW_MTA_BUILD"); s != "" {
		return s, nil
	}
	dir, _ := os.Getwd()
	for {
		p := filepath.Join(dir, "containers", "mta", "build-image.sh")
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("mta: containers/mta/build-image.sh not found above the working directory (set MAILFLOW_MTA_BUILD)")
		}
		dir = parent
	}
}

// Start brings the scenario's world up with the named MTA as its Edge.
func Start(ctx context.Context, orig *scenario.Scenario, name string) (_ *Topology, err error) {
	p, err := profiles.Load(name)
	if err != nil {
		return nil, fmt.Errorf("mta: %w", err)
	}
	img, err := Image(ctx, p)
	if err != nil {
		return nil, err
	}
	s, err := orig.Clone()
	if err != nil {
		return nil, fmt.Errorf("mta: %w", err)
	}
	edges := s.ServersByRole(scenario.RoleEdge)
	if len(edges) != 1 {
		return nil, fmt.Errorf("mta %s: the scenario needs exactly one Edge server for the MTA to play (has %d)", name, len(edges))
	}
	nw, err := dockernet.New(ctx)
	if err != nil {
		return nil, fmt.Errorf("mta: %w", err)
	}
	t := &Topology{Net: nw, profile: p, scenario: s, edge: edges[0], fleet: internet.NewFleet(), trace: trace.NewLog(nil), logs: &tail{}}
	defer func() {
		if err != nil {
			_ = t.Stop(context.Background())
		}
	}()
	z, err := fixtureset.OnNetwork(ctx, s, nw, t.fleet)
	if err != nil {
		return nil, fmt.Errorf("mta: %w", err)
	}
	// The organisation's Hubs: stand-in sinks (with STARTTLS, as org peers offer it).
	ca := testca.Shared()
	var internal []string
	for _, h := range s.ServersByRole(scenario.RoleHub) {
		ip, err := nw.Next()
		if err != nil {
			return nil, err
		}
		tc, err := ca.ServerConfig(h.FQDN, ip.String())
		if err != nil {
			return nil, err
		}
		host, err := internet.Start(ctx, h.Name, net.JoinHostPort(ip.String(), "25"), internet.WithTLS(tc))
		if err != nil {
			return nil, fmt.Errorf("mta: hub stand-in %s: %w", h.Name, err)
		}
		t.fleet.Add(host)
		internal = append(internal, ip.String())
		z.Add(h.FQDN, ip)
	}
	if t.ip, err = nw.Container(); err != nil {
		return nil, err
	}
	z.Add(t.edge.FQDN, t.ip)
	dnsIP, err := nw.Next()
	if err != nil {
		return nil, err
	}
	if t.dns, err = fixtureset.StartDNS(ctx, s, net.JoinHostPort(dnsIP.String(), "53"), z); err != nil {
		return nil, fmt.Errorf("mta: %w", err)
	}
	data := t.profileData(dnsIP, internal)
	files, err := p.Render(data)
	if err != nil {
		return nil, fmt.Errorf("mta %s: %w", name, err)
	}
	cert, key, err := ca.IssuePEM(t.edge.FQDN, t.ip.String())
	if err != nil {
		return nil, err
	}
	files = append(files,
		profiles.File{Path: data.TLSCert, Mode: 0o644, Content: cert},
		profiles.File{Path: data.TLSKey, Mode: 0o600, Content: key},
		profiles.File{Path: data.CACert, Mode: 0o644, Content: ca.CertPEM()})
	if err := t.run(context.WithoutCancel(ctx), img, files); err != nil {
		return nil, err
	}
	if err := t.waitReady(ctx); err != nil {
		return nil, err
	}
	return t, nil
}

func (t *Topology) profileData(dnsIP netip.Addr, internal []string) profiles.Data {
	s := t.scenario
	d := profiles.Data{
		Hostname: strings.TrimSuffix(t.edge.FQDN, "."), DNS: dnsIP.String(),
		HopLimit: t.edge.MaxHopCount, RetryInterval: t.retry(), DelayWarning: t.delayWarning(), Expiry: t.expiry(),
		InactivityTimeout: s.InactivityTimeout(t.edge.Name),
		TLSCert:           "/etc/mailflow/tls/cert.pem", TLSKey: "/etc/mailflow/tls/key.pem", CACert: "/etc/mailflow/tls/ca.pem",
	}
	if len(internal) > 0 {
		d.InternalHost = internal[0]
	}
	auth := map[string]bool{}
	for _, ad := range s.Org.AcceptedDomains {
		d.AcceptedDomains = append(d.AcceptedDomains, profiles.Domain{Name: strings.ToLower(ad.Domain), Type: string(ad.Type)})
		if ad.Type == scenario.Authoritative {
			auth[strings.ToLower(ad.Domain)] = true
		}
	}
	for _, r := range s.Org.Recipients {
		for _, a := range append([]string{r.Mail}, r.Proxies...) {
			a = strings.ToLower(a)
			if i := strings.LastIndexByte(a, '@'); i > 0 && auth[a[i+1:]] {
				d.Recipients = append(d.Recipients, a)
			}
		}
		if r.Password != "" {
			d.Users = append(d.Users, profiles.User{Name: r.Mail, Password: r.Password})
		}
	}
	sort.Strings(d.Recipients)
	for _, sc := range s.Org.SendConnectors {
		if !containsFold(sc.Source, t.edge.Name) {
			continue
		}
		r := profiles.Route{Domains: sc.AddressSpaces, SmartHosts: sc.SmartHosts, TLS: sc.TLS}
		if sc.Auth != nil {
			r.Username, r.Password = sc.Auth.Username, sc.Auth.Password
		}
		d.Routes = append(d.Routes, r)
	}
	for _, rc := range s.ReceiveConnectorsOf(t.edge.Name) {
		_, port, _ := net.SplitHostPort(rc.Bind)
		n, _ := strconv.Atoi(port)
		l := profiles.Listener{Name: rc.Name, Port: n, TLS: rc.TLS, AcceptAnyRecipient: rc.AcceptAnyRecipient, RemoteRanges: rc.RemoteIPRanges}
		anonymous := false
		for _, p := range rc.Permissions {
			switch p {
			case scenario.PermExchangeUsers:
				l.Auth = true
			case scenario.PermAnonymous, scenario.PermPartners:
				anonymous = true
			}
		}
		l.RequireAuth = l.Auth && !anonymous
		if rc.AcceptAnyRecipient && len(rc.RemoteIPRanges) > 0 {
			d.RelayNetworks = append(d.RelayNetworks, rc.RemoteIPRanges...)
		}
		if rc.MaxMessageSize > 0 && (d.MaxMessageSize == 0 || int64(rc.MaxMessageSize) < d.MaxMessageSize) {
			d.MaxMessageSize = int64(rc.MaxMessageSize)
		}
		if rc.MaxRecipients > 0 && (d.MaxRecipients == 0 || rc.MaxRecipients < d.MaxRecipients) {
			d.MaxRecipients = rc.MaxRecipients
		}
		d.Listeners = append(d.Listeners, l)
	}
	for _, z := range s.Internet.DNSBL {
		d.DNSBL = append(d.DNSBL, z.Zone)
	}
	return d
}

func containsFold(list []string, s string) bool {
	for _, x := range list {
		if strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}

func (t *Topology) run(ctx context.Context, img string, files []profiles.File) error {
	var cf []testcontainers.ContainerFile
	for _, f := range files {
		cf = append(cf, testcontainers.ContainerFile{Reader: bytes.NewReader(f.Content), ContainerFilePath: f.Path, FileMode: f.Mode})
	}
	nw, ip := t.Net.Name, t.ip
	req := testcontainers.GenericContainerRequest{
		ContainerRequest: testcontainers.ContainerRequest{
			Image:                    img,
			Cmd:                      t.profile.Start,
			Files:                    cf,
			Hostname:                 strings.SplitN(strings.TrimSuffix(t.edge.FQDN, "."), ".", 2)[0],
			Labels:                   dockernet.Labels(map[string]string{"org.mailflow.server": t.edge.Name, "org.mailflow.mta": t.profile.Name}),
			Networks:                 []string{nw},
			EndpointSettingsModifier: dockernet.StaticIP(nw, ip),
			LogConsumerCfg:           &testcontainers.LogConsumerConfig{Consumers: []testcontainers.LogConsumer{t.logs}},
		},
		Started: true,
	}
	c, err := testcontainers.GenericContainer(ctx, req)
	t.ctr = c
	if err != nil {
		return fmt.Errorf("mta %s: %w", t.profile.Name, err)
	}
	return nil
}

// waitReady waits for the MTA's greeting on its port: the profile's start script does
// set-up first, so a listening socket alone does not say it is ready. Any SMTP reply
// counts: a listener limited to some client ranges answers the test host with a
// refusal, and that is the MTA up and judging.
func (t *Topology) waitReady(ctx context.Context) error {
	port := t.profile.Port
	if port == 0 {
		port = 25
	}
	addr := net.JoinHostPort(t.ip.String(), strconv.Itoa(port))
	deadline := time.Now().Add(60 * time.Second)
	var last error
	for time.Now().Before(deadline) {
		if err := ctx.Err(); err != nil {
			return err
		}
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
			line, rerr := bufio.NewReader(c).ReadString('\n')
			_, _ = io.WriteString(c, "QUIT\r\n")
			c.Close()
			if rerr == nil && smtpReply(line) {
				return nil
			}
			last = fmt.Errorf("greeting %q (%v)", strings.TrimSpace(line), rerr)
		} else {
			last = err
		}
		time.Sleep(200 * time.Millisecond)
	}
	return fmt.Errorf("mta %s: no 220 greeting on %s within 60s (%v); last log lines:\n%s", t.profile.Name, addr, last, t.logs.String())
}

// Endpoint is the MTA's address and the connector's port ("" for port 25).
func (t *Topology) Endpoint(server, connector string) (string, error) {
	if !strings.EqualFold(server, t.edge.Name) {
		return "", fmt.Errorf("server %q: not the Edge the MTA plays (%s)", server, t.edge.Name)
	}
	port := 25
	for _, rc := range t.scenario.ReceiveConnectorsOf(server) {
		if strings.EqualFold(rc.Name, connector) {
			_, p, _ := net.SplitHostPort(rc.Bind)
			port, _ = strconv.Atoi(p)
		}
	}
	return net.JoinHostPort(t.ip.String(), strconv.Itoa(port)), nil
}

// ClientIn is an address inside a client range the scenario names.
func (t *Topology) ClientIn(p netip.Prefix) (netip.Addr, error) { return t.Net.ClientIn(p) }

func (t *Topology) Host(name string) *internet.Host { return t.fleet.Host(name) }
func (t *Topology) DNS() *dnsfake.Server            { return t.dns }
func (t *Topology) Directory() *ldapfake.Server     { return nil }
func (t *Topology) Trace() trace.Reader             { return t.trace }
func (t *Topology) Clock() clock.Controller         { return clock.Real{} }

// FixedRetryInterval says why the interval between attempts is not one the profile
// configures ("" when it is).
func (t *Topology) FixedRetryInterval() string { return t.profile.FixedRetry }

// CrashServer kills the MTA's container with SIGKILL and starts it again on the same
// file system, its queue included (QUEUE-010).
func (t *Topology) CrashServer(name string) error {
	if !strings.EqualFold(name, t.edge.Name) {
		return fmt.Errorf("server %q: the MTA plays %s only", name, t.edge.Name)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	return mailflow.Kill(ctx, t.ctr)
}

// InactivityTimeout is how long the MTA waits on a silent client: the scenario's,
// or OpenSMTPD's built-in five minutes, which smtpd.conf cannot change.
func (t *Topology) InactivityTimeout(string) time.Duration {
	if t.profile.Name == "opensmtpd" {
		return 5 * time.Minute
	}
	return t.scenario.InactivityTimeout(t.edge.Name)
}

// QueueTimers are the timers the profile is given, whatever the scenario says.
func (t *Topology) QueueTimers(string) (retry, delay, expiry time.Duration) {
	return t.retry(), t.delayWarning(), t.expiry()
}

// retry is the retry interval the profile is given.
func (t *Topology) retry() time.Duration {
	if r := t.profile.Timers.Retry; r > 0 {
		return r
	}
	return RetryInterval
}

// delayWarning is when the profile's MTA warns of a delayed message.
func (t *Topology) delayWarning() time.Duration {
	if d := t.profile.Timers.DelayWarning; d > 0 {
		return d
	}
	return DelayWarning
}

// expiry is the queue lifetime the profile is given.
func (t *Topology) expiry() time.Duration {
	if e := t.profile.Timers.Expiry; e > 0 {
		return e
	}
	return Expiry
}

// RetryInterval is the retry interval the profile is given.
func (t *Topology) RetryInterval() time.Duration { return t.retry() }

// HopLimit is the Received-header limit the MTA enforces: the scenario's, which the
// profile configures (HopLimit in profiles.Data), unless the MTA's is compiled in.
func (t *Topology) HopLimit(server string) int {
	if t.profile.HopLimit > 0 {
		return t.profile.HopLimit
	}
	return t.edge.MaxHopCount
}

// Traced is false: a third-party MTA's own log is not the message-tracking log.
func (t *Topology) Traced() bool { return false }

// Logs is the tail of the MTA's output.
func (t *Topology) Logs() string { return t.logs.String() }

// queueCommands count the messages an MTA holds, by its own tools.
var queueCommands = map[string][]string{
	"postfix":   {"/bin/sh", "-c", "postqueue -c /etc/postfix -j 2>/dev/null | wc -l"},
	"exim":      {"/bin/sh", "-c", "exim4 -C /etc/exim4/exim4.conf -bpc"},
	"opensmtpd": {"/bin/sh", "-c", "smtpctl show queue 2>/dev/null | wc -l"},
}

// QueueLen is how many messages the MTA's queue holds (-1 when it cannot tell).
func (t *Topology) QueueLen(server string) int {
	cmd, ok := queueCommands[t.profile.Name]
	if !ok || !strings.EqualFold(server, t.edge.Name) {
		return -1
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	code, out, err := t.ctr.Exec(ctx, cmd, tcexec.Multiplexed())
	if err != nil || code != 0 {
		return -1
	}
	b, _ := io.ReadAll(out)
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return -1
	}
	return n
}

// Stop terminates the container, the fixtures and the network.
func (t *Topology) Stop(ctx context.Context) error {
	var errs []error
	t.stopOnce.Do(func() {
		if os.Getenv("MAILFLOW_DEBUG") != "" {
			fmt.Fprintf(os.Stderr, "--- %s log ---\n%s\n", t.profile.Name, t.logs.String())
		}
		if t.ctr != nil {
			errs = append(errs, t.ctr.Terminate(ctx, testcontainers.StopTimeout(2*time.Second)))
		}
		errs = append(errs, t.fleet.Close())
		if t.dns != nil {
			errs = append(errs, t.dns.Close())
		}
		errs = append(errs, t.Net.Remove(ctx))
	})
	return errors.Join(errs...)
}

// tail keeps the last lines of a container's output for error messages.
type tail struct {
	mu    sync.Mutex
	lines []string
}

func (l *tail) Accept(lg testcontainers.Log) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, strings.Split(strings.TrimRight(string(lg.Content), "\n"), "\n")...)
	if len(l.lines) > 200 {
		l.lines = l.lines[len(l.lines)-200:]
	}
}

func (l *tail) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "\n")
}

// smtpReply says whether line starts like an SMTP reply ("220 ", "554-").
func smtpReply(line string) bool {
	return len(line) >= 4 && line[0] >= '2' && line[0] <= '5' &&
		line[1] >= '0' && line[1] <= '9' && line[2] >= '0' && line[2] <= '9' && (line[3] == ' ' || line[3] == '-')
}

// Mailbox is what the MTA handed the organisation's internal host (the Hub stand-ins)
// for addr: the MTA's view of "delivered to the organisation".
func (t *Topology) Mailbox(addr string) [][]byte {
	var out [][]byte
	for _, h := range t.scenario.ServersByRole(scenario.RoleHub) {
		host := t.fleet.Host(h.Name)
		if host == nil {
			continue
		}
		for _, m := range host.Messages() {
			for _, rc := range m.RcptTo {
				if strings.EqualFold(rc, addr) {
					// As a store would keep it: the reverse-path on top.
					out = append(out, append([]byte("Return-Path: <"+m.MailFrom+">\r\n"), m.Data...))
					break
				}
			}
		}
	}
	return out
}
