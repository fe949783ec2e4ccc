// Package mta runs a third-party MTA (Postfix, Exim, OpenSMTPD and chasquid from Debian
// packages, or any other a profile describes) in the role of a scenario's Edge server,
// configured from the scenario by its profile in package profiles, on a Docker network
// the target creates. The rest of the world is the same as on the other targets: fake DNS and fake
// Internet hosts in the test process on the bridge, and the organisation's Hubs as
// stand-in sinks there too (the MTA relays accepted-domain mail to them). There is no
// message-tracking log a suite could read and time is real.
package mta

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/testcontainers/testcontainers-go"
	tcexec "github.com/testcontainers/testcontainers-go/exec"

	"github.com/mailflow/mailflow/clock"
	"github.com/mailflow/mailflow/containers/mailflow"
	"github.com/mailflow/mailflow/containers/scanner"
	"github.com/mailflow/mailflow/fixtures/dnsfake"
	"github.com/mailflow/mailflow/fixtures/internet"
	"github.com/mailflow/mailflow/fixtures/ldapfake"
	"github.com/mailflow/mailflow/fixtures/testca"
	"github.com/mailflow/mailflow/profiles"
	"github.com/mailflow/mailflow/scenario"
	"github.com/mailflow/mailflow/targets/containers"
	"github.com/mailflow/mailflow/targets/dockernet"
	"github.com/mailflow/mailflow/targets/internal/fixtureset"
	"github.com/mailflow/mailflow/targets/internal/imagebuild"
	"github.com/mailflow/mailflow/targets/internal/mtaconf"
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
	// clamd is the ClamAV daemon the MTA scans with (nil when the Edge does not scan
	// or the profile lacks antivirus).
	clamd    *scanner.Container
	trace    *trace.Log
	stopOnce sync.Once
	logs     *tail
	// boxes are the recipients (lower case) whose mailbox is in the container's
	// Dovecot (mailboxes); nil when the MTA relays every recipient to the Hubs.
	boxes map[string]bool
}

// Ports of the container's mailbox services (when the scenario has mailboxes).
const (
	imapPort       = 143
	submissionPort = mtaconf.SubmissionPort
)

// Image builds (once; the script is idempotent) and names the profile's image.
func Image(ctx context.Context, p *profiles.Profile) (string, error) {
	img, err := imagebuild.Image(ctx, "MAILFLOW_MTA_BUILD", "containers/mta/build-image.sh", p.Image)
	if err != nil {
		return "", fmt.Errorf("mta %s: %w", p.Name, err)
	}
	return img, nil
}

// Start brings the scenario's world up with the MTA of a profile as its Edge: a built-in
// profile's name, or a profile directory (profiles.Load).
func Start(ctx context.Context, orig *scenario.Scenario, profile string) (_ *Topology, err error) {
	p, err := profiles.Load(profile)
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
		return nil, fmt.Errorf("mta %s: the scenario needs exactly one Edge server for the MTA to play (has %d)", p.Name, len(edges))
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
	// The organisation's Hubs: stand-in sinks.
	var hubIPs []netip.Addr
	var internal []string
	for range s.ServersByRole(scenario.RoleHub) {
		ip, err := nw.Next()
		if err != nil {
			return nil, err
		}
		hubIPs = append(hubIPs, ip)
		internal = append(internal, ip.String())
	}
	if err := fixtureset.StartHubStandIns(ctx, s, hubIPs, z, t.fleet); err != nil {
		return nil, fmt.Errorf("mta: %w", err)
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
	for _, m := range data.Mailboxes {
		if t.boxes == nil {
			t.boxes = map[string]bool{}
		}
		t.boxes[m.Address] = true
	}
	if err := t.startClamd(ctx, &data); err != nil {
		return nil, err
	}
	files, err := p.Render(data)
	if err != nil {
		return nil, fmt.Errorf("mta %s: %w", p.Name, err)
	}
	ca := testca.Shared()
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

// startClamd starts the ClamAV daemon the MTA scans with, in a container of the
// scanners' image on the world's network, when the Edge scans for malware and the
// profile can be configured to (FILTER-009, FILTER-010); d gets its address.
func (t *Topology) startClamd(ctx context.Context, d *profiles.Data) error {
	av := t.edge.Agents.Antivirus
	if !av.Enabled || t.profile.Lacks[profiles.FeatureAntivirus] != "" {
		return nil
	}
	img, err := containers.ScannerImage(ctx)
	if err != nil {
		return fmt.Errorf("mta: clamd: %w", err)
	}
	ip, err := t.Net.Container()
	if err != nil {
		return err
	}
	c, err := scanner.RunClamd(ctx, img, scanner.WithNetwork(t.Net.Name, ip), testcontainers.WithLabels(dockernet.Labels(nil)))
	t.clamd = c
	if err != nil {
		return fmt.Errorf("mta: %w", err)
	}
	d.Clamd = net.JoinHostPort(ip.String(), strconv.Itoa(scanner.ClamdPort))
	d.AntivirusAction = av.Action
	if d.AntivirusAction == "" {
		d.AntivirusAction = scenario.DefaultAntivirusAction
	}
	return nil
}

// StopClamd kills the ClamAV daemon the MTA scans with, as a scanner that dies under a
// running MTA (FILTER-009: the MTA must then defer, not accept unscanned). Its
// container stays until Stop, so its address refuses connections at once.
func (t *Topology) StopClamd() error {
	if t.clamd == nil {
		return errors.New("mta: no clamd in this world to stop")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return t.clamd.StopDaemon(ctx)
}

func (t *Topology) profileData(dnsIP netip.Addr, internal []string) profiles.Data {
	d := mtaconf.Data(t.scenario, t.edge, mtaconf.Inputs{
		DNS: dnsIP, Internal: internal, Retry: t.retry(), DelayWarning: t.delayWarning(), Expiry: t.expiry(),
		TLSCert: "/etc/mailflow/tls/cert.pem", TLSKey: "/etc/mailflow/tls/key.pem", CACert: "/etc/mailflow/tls/ca.pem",
	})
	// An MTA that can check SPF is told what to do with a failing sender; one that
	// cannot is left unconfigured (its specs are N/A there).
	if spf := t.edge.Agents.SPF; spf.Enabled && t.profile.Lacks[profiles.FeatureSPF] == "" {
		d.SPF = spf.Action
		if d.SPF == "" {
			d.SPF = scenario.DefaultSPFAction
		}
	}
	return d
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

// notApplicable is the error for a mailbox service this world's MTA does not have: the
// spec asking for it is N/A (suites/framework).
type notApplicable string

func (e notApplicable) Error() string       { return string(e) }
func (e notApplicable) NotApplicable() bool { return true }

// mailboxEndpoint is the container's port of a mailbox service for addr, when the
// container's Dovecot holds addr's mailbox.
func (t *Topology) mailboxEndpoint(addr string, port int) (string, error) {
	if len(t.boxes) == 0 {
		return "", notApplicable("no IMAP mailbox server in this scenario (the MTA relays to the organisation's internal host; it delivers to a Dovecot of its own only when recipients have passwords for their mailbox, not for SMTP AUTH at the Edge)")
	}
	if !t.boxes[strings.ToLower(addr)] {
		return "", fmt.Errorf("%s has no mailbox in the MTA's Dovecot (only recipients with a password do)", addr)
	}
	return net.JoinHostPort(t.ip.String(), strconv.Itoa(port)), nil
}

// IMAPEndpoint is the IMAP port (STARTTLS) of the Dovecot holding addr's mailbox.
func (t *Topology) IMAPEndpoint(addr string) (string, error) {
	return t.mailboxEndpoint(addr, imapPort)
}

// SubmissionEndpoint is the MTA's submission port, for a user with a mailbox in its
// Dovecot.
func (t *Topology) SubmissionEndpoint(addr string) (string, error) {
	return t.mailboxEndpoint(addr, submissionPort)
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
// or the one built into the MTA that its profile names (OpenSMTPD's five minutes).
func (t *Topology) InactivityTimeout(string) time.Duration {
	if d := t.profile.InactivityTimeout; d > 0 {
		return d
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

// MessageLimit is the message size limit the MTA keeps for a scenario's limit: the
// same, or rounded up to the unit the MTA takes it in (profiles.Profile.MessageSizeUnit).
func (t *Topology) MessageLimit(limit int) int {
	u := int(t.profile.MessageSizeUnit)
	if u <= 1 || limit <= 0 {
		return limit
	}
	return (limit + u - 1) / u * u
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

// QueueLen is how many messages the MTA's queue holds, by the MTA's own tools (the
// profile's queue_length command), or -1 when it cannot tell.
func (t *Topology) QueueLen(server string) int {
	cmd := t.profile.QueueLength
	if len(cmd) == 0 || !strings.EqualFold(server, t.edge.Name) {
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
		// Each container leaves the network first, one at a time, before any is
		// removed: endpoints of one network deleted concurrently can leave Docker's
		// count of them above zero, and the network unremovable (see Stop in
		// targets/containers).
		for _, c := range []testcontainers.Container{t.ctr, t.clamdContainer()} {
			if c != nil {
				_ = exec.CommandContext(ctx, "docker", "network", "disconnect", t.Net.ID, c.GetContainerID()).Run()
			}
		}
		if t.ctr != nil {
			errs = append(errs, t.ctr.Terminate(ctx, testcontainers.StopTimeout(2*time.Second)))
		}
		if t.clamd != nil {
			errs = append(errs, t.clamd.Terminate(ctx))
		}
		errs = append(errs, t.fleet.Close())
		if t.dns != nil {
			errs = append(errs, t.dns.Close())
		}
		errs = append(errs, t.Net.Remove(ctx))
	})
	return errors.Join(errs...)
}

// clamdContainer is the clamd's container, nil if none (not a nil interface holding a
// nil pointer).
func (t *Topology) clamdContainer() testcontainers.Container {
	if t.clamd == nil {
		return nil
	}
	return t.clamd
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
	return fixtureset.HubMailbox(t.scenario, t.fleet, addr)
}
