// Package scanner is a testcontainers-go module for the daemons the reference's Edges
// scan with when they run in containers: ClamAV's clamd (FILTER-009, FILTER-010) and
// SpamAssassin's spamd (FILTER-013), each in a container of the Debian image that
// containers/scanners/build-image.sh builds. Both are configured by the code that
// configures the in-process world's daemons (fixtures/clamdaemon, fixtures/spamdaemon):
// clamd with the one-line EICAR database, spamd with the rules the package ships; no
// freshclam, no sa-update, no network.
//
//	c, err := scanner.RunClamd(ctx, img, scanner.WithNetwork(nw, ip))
//	defer c.Terminate(ctx)
//	edge := mailflow.RunEdge(ctx, ref, mailflow.WithClamd(c.Addr()), ...)
//
// Run returns once the daemon answers PING from the caller's side.
package scanner

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/testcontainers/testcontainers-go"

	"github.com/mailflow/mailflow/fixtures/clamdaemon"
	"github.com/mailflow/mailflow/fixtures/spamdaemon"
	"github.com/mailflow/mailflow/reference/clamd"
	"github.com/mailflow/mailflow/reference/spamc"
	"github.com/mailflow/mailflow/targets/dockernet"
)

// The daemons, as Container.Daemon names them.
const (
	Clamd = "clamd"
	Spamd = "spamd"
)

// Ports the daemons listen on in their containers (their usual ones).
const (
	ClamdPort = 3310
	SpamdPort = 783
)

// confDir is where a container finds its configuration, a mount of a host directory
// (clamd also logs there, where an error can quote it).
const confDir = "/scanner"

// Label marks a scanner container (its value is the daemon's name).
const Label = "org.mailflow.scanner"

type options struct {
	network string
	ip      netip.Addr
	allowed string
	startup time.Duration
}

// Option configures a scanner container.
type Option func(*options)

// Customize lets an Option stand among testcontainers.ContainerCustomizer arguments;
// the work is done by Run.
func (o Option) Customize(*testcontainers.GenericContainerRequest) error { return nil }

// WithNetwork attaches the container to a network at a fixed address.
func WithNetwork(name string, ip netip.Addr) Option {
	return func(o *options) { o.network, o.ip = name, ip }
}

// WithAllowed are the addresses or CIDR ranges spamd serves (spamd --allowed-ips;
// default: every IPv4 address).
func WithAllowed(ranges string) Option { return func(o *options) { o.allowed = ranges } }

// WithStartupTimeout bounds the wait for the daemon's answer (default 2 min: spamd
// compiles its rules for seconds, longer on a loaded machine).
func WithStartupTimeout(d time.Duration) Option { return func(o *options) { o.startup = d } }

// Container is one running daemon.
type Container struct {
	testcontainers.Container
	Daemon string
	IP     netip.Addr
	// HostDir is the host side of the container's configuration mount.
	HostDir string
}

// Addr is where a reference Edge reaches the daemon: "tcp:ip:port" for clamd (as
// reference/clamd.New and `mailflow server --clamd` take it), "ip:port" for spamd
// (reference/spamc.New, `mailflow server --spamd`).
func (c *Container) Addr() string { return Addr(c.Daemon, c.IP) }

// Addr is Container.Addr for a daemon that is to run at ip, known before it starts.
func Addr(daemon string, ip netip.Addr) string {
	if daemon == Clamd {
		return "tcp:" + net.JoinHostPort(ip.String(), strconv.Itoa(ClamdPort))
	}
	return net.JoinHostPort(ip.String(), strconv.Itoa(SpamdPort))
}

// RunClamd starts clamd with the one-line EICAR database (clamdaemon.Config) on
// ClamdPort, and waits until it answers PING.
func RunClamd(ctx context.Context, img string, opts ...testcontainers.ContainerCustomizer) (*Container, error) {
	files, err := clamdaemon.Config(confDir, "tcp::"+strconv.Itoa(ClamdPort))
	if err != nil {
		return nil, err
	}
	return run(ctx, Clamd, img, files, "", []string{"/usr/sbin/clamd", "--config-file=" + confDir + "/" + clamdaemon.ConfFile}, opts)
}

// RunSpamd starts spamd on SpamdPort with the in-process world's arguments and site
// configuration (spamdaemon.Args, the image's packaged .pre files and
// spamdaemon.LocalCF), and waits until it answers PING.
func RunSpamd(ctx context.Context, img string, opts ...testcontainers.ContainerCustomizer) (*Container, error) {
	o := parse(opts)
	allowed := o.allowed
	if allowed == "" {
		allowed = "0.0.0.0/0"
	}
	site := "/run/spamd-site"
	args := spamdaemon.Args(spamdaemon.Settings{SiteDir: site, Listen: net.JoinHostPort("0.0.0.0", strconv.Itoa(SpamdPort)), AllowedIPs: allowed, Root: true})
	// The site directory is the in-process daemon's: the package's .pre files (which
	// load the plugins the rules need) and local.cf, nothing else.
	prep := "mkdir -p " + site + " && cp " + spamdaemon.PackageSiteDir + "/*.pre " + confDir + "/local.cf " + site + "/"
	return run(ctx, Spamd, img, map[string]string{"local.cf": spamdaemon.LocalCF}, prep, append([]string{"/usr/sbin/spamd"}, args...), opts)
}

// wrapper runs the daemon under a shell that stays PID 1 when StopDaemon has killed
// it: the container keeps its address, which then refuses connections at once, as a
// host whose scanner died does. A daemon that dies on its own ends the container.
const wrapper = `set -e
%s
"$@" &
echo $! >/run/daemon.pid
set +e
wait $!
rc=$?
[ -e /run/stopped ] || exit $rc
exec sleep infinity`

func parse(custom []testcontainers.ContainerCustomizer) options {
	o := options{startup: 2 * time.Minute}
	for _, c := range custom {
		if opt, ok := c.(Option); ok {
			opt(&o)
		}
	}
	return o
}

func run(ctx context.Context, daemon, img string, files map[string]string, prep string, cmd []string, custom []testcontainers.ContainerCustomizer) (*Container, error) {
	o := parse(custom)
	var rest []testcontainers.ContainerCustomizer
	for _, c := range custom {
		if _, ok := c.(Option); !ok {
			rest = append(rest, c)
		}
	}
	hostDir, err := os.MkdirTemp("", "mailflow-"+daemon+"-")
	if err != nil {
		return nil, fmt.Errorf("scanner %s: %w", daemon, err)
	}
	keep := false
	defer func() {
		if !keep {
			os.RemoveAll(hostDir)
		}
	}()
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(hostDir, name), []byte(content), 0o644); err != nil {
			return nil, fmt.Errorf("scanner %s: %w", daemon, err)
		}
	}
	if prep == "" {
		prep = ":"
	}
	req := testcontainers.GenericContainerRequest{
		ContainerRequest: testcontainers.ContainerRequest{
			Image:      img,
			Entrypoint: []string{"/bin/sh", "-c", fmt.Sprintf(wrapper, prep), daemon},
			Cmd:        cmd,
			HostConfigModifier: func(hc *container.HostConfig) {
				hc.Binds = append(hc.Binds, hostDir+":"+confDir)
			},
			Labels: map[string]string{"org.mailflow.server": daemon, "org.mailflow.role": "scanner", Label: daemon},
		},
		Started: true,
	}
	if o.network != "" {
		req.Networks = []string{o.network}
		req.NetworkAliases = map[string][]string{o.network: {daemon}}
		if o.ip.IsValid() {
			req.EndpointSettingsModifier = dockernet.StaticIP(o.network, o.ip)
		}
	}
	for _, c := range rest {
		if err := c.Customize(&req); err != nil {
			return nil, fmt.Errorf("scanner %s: %w", daemon, err)
		}
	}
	ctr, err := testcontainers.GenericContainer(ctx, req)
	var c *Container
	if ctr != nil {
		c = &Container{Container: ctr, Daemon: daemon, IP: o.ip, HostDir: hostDir}
		keep = true
	}
	if err != nil {
		return c, fmt.Errorf("scanner %s: %w", daemon, err)
	}
	if !c.IP.IsValid() {
		s, err := ctr.ContainerIP(ctx)
		if err != nil {
			return c, fmt.Errorf("scanner %s: %w", daemon, err)
		}
		if c.IP, err = netip.ParseAddr(s); err != nil {
			return c, fmt.Errorf("scanner %s: container address %q: %w", daemon, s, err)
		}
	}
	wctx, cancel := context.WithTimeout(ctx, o.startup)
	defer cancel()
	if err := c.waitReady(wctx); err != nil {
		return c, err
	}
	return c, nil
}

// Ping asks the daemon whether it is there, as the Edge's client would reach it.
func (c *Container) Ping(ctx context.Context) error {
	if c.Daemon == Clamd {
		return clamd.New(c.Addr(), clamd.WithTimeout(time.Second)).Ping(ctx)
	}
	return spamc.New(c.Addr(), spamc.WithTimeout(time.Second)).Ping(ctx)
}

// waitReady pings the daemon until it answers, its container stops or ctx ends; the
// error then quotes what the daemon said.
func (c *Container) waitReady(ctx context.Context) error {
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		err := c.Ping(ctx)
		if err == nil {
			return nil
		}
		if st, serr := c.State(ctx); serr == nil && !st.Running {
			return fmt.Errorf("scanner %s: exited (status %d) before it answered: %s", c.Daemon, st.ExitCode, c.said(context.WithoutCancel(ctx)))
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("scanner %s: did not answer at %s: %v (%w): %s", c.Daemon, c.Addr(), err, ctx.Err(), c.said(context.WithoutCancel(ctx)))
		case <-tick.C:
		}
	}
}

// said is the end of the container's output and of clamd's log.
func (c *Container) said(ctx context.Context) string {
	var out []byte
	if rc, err := c.Logs(ctx); err == nil {
		out, _ = io.ReadAll(rc)
		rc.Close()
	}
	if b, err := os.ReadFile(filepath.Join(c.HostDir, clamdaemon.LogFile)); err == nil {
		out = append(append(out, "\n"+clamdaemon.LogFile+":\n"...), b...)
	}
	out = bytes.TrimSpace(out)
	if len(out) > 2048 {
		out = out[len(out)-2048:]
	}
	return string(out)
}

// StopDaemon kills the daemon, children and all, and returns once it no longer
// answers. The container stays, its address refusing connections, until Terminate.
func (c *Container) StopDaemon(ctx context.Context) error {
	// Process -1 is every process of the container's own PID namespace but its PID 1
	// (the wrapper) and the caller.
	out, err := exec.CommandContext(ctx, "docker", "exec", c.GetContainerID(), "/bin/sh", "-c", "touch /run/stopped && kill -s KILL -- -1").CombinedOutput()
	if err != nil {
		return fmt.Errorf("scanner %s: stopping the daemon: %w: %s", c.Daemon, err, bytes.TrimSpace(out))
	}
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for c.Ping(ctx) == nil {
		select {
		case <-ctx.Done():
			return fmt.Errorf("scanner %s: still answers after it was killed: %w", c.Daemon, ctx.Err())
		case <-tick.C:
		}
	}
	return nil
}

// Terminate removes the container at once (nothing in it needs a clean stop), then
// its host directory.
func (c *Container) Terminate(ctx context.Context, opts ...testcontainers.TerminateOption) error {
	opts = append([]testcontainers.TerminateOption{testcontainers.StopTimeout(0)}, opts...)
	err := c.Container.Terminate(ctx, opts...)
	if c.HostDir != "" {
		err = errors.Join(err, os.RemoveAll(c.HostDir))
	}
	return err
}
