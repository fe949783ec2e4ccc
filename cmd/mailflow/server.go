package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/mailflow/mailflow/containers/logline"
	"github.com/mailflow/mailflow/fixtures/internet"
	"github.com/mailflow/mailflow/reference/directory"
	"github.com/mailflow/mailflow/reference/edge"
	"github.com/mailflow/mailflow/reference/queue"
	"github.com/mailflow/mailflow/reference/resolve"
	"github.com/mailflow/mailflow/scenario"
)

// stringList is a repeatable flag.
type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

// runServer runs ONE server of a scenario, as a container or a lab host does: the
// fixtures (DNS, directory) and the other servers are elsewhere, named by flags.
func runServer(args []string) int {
	fs := flag.NewFlagSet("server", flag.ContinueOnError)
	file := fs.String("scenario", "", "scenario file (a generated slice is enough)")
	name := fs.String("server", "", "which server of the scenario to run")
	dnsAddr := fs.String("dns", "", "resolver address ip:port")
	ldapURL := fs.String("ldap", "", "directory URL (ldap://ip:port)")
	baseDN := fs.String("base-dn", "dc=contoso,dc=test", "directory base DN")
	spool := fs.String("spool", "/spool", "spool directory")
	certFile := fs.String("tls-cert", "", "certificate chain (PEM) offered with STARTTLS")
	keyFile := fs.String("tls-key", "", "private key (PEM)")
	caFile := fs.String("ca", "", "CA certificate (PEM) that next hops' certificates chain to")
	outPort := fs.Int("out-port", 25, "port of next hops that name none")
	listen := fs.String("listen", "0.0.0.0", "address the receive connectors bind")
	var hubs stringList
	fs.Var(&hubs, "hub", "ip:port of a Hub of the subscribed site (repeatable)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *file == "" || *name == "" {
		fmt.Fprintln(os.Stderr, "usage: mailflow server --scenario FILE --server NAME [--dns ip:port --ldap URL --hub ip:port ...]")
		return 2
	}
	s, err := loadScenario(*file)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	srv, ok := s.Server(*name)
	if !ok {
		fmt.Fprintf(os.Stderr, "mailflow server: %s: no server %q\n", *file, *name)
		return 2
	}
	log := slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	out := logline.NewWriter(os.Stdout)
	var serverTLS *tls.Config
	if *certFile != "" {
		c, err := tls.LoadX509KeyPair(*certFile, *keyFile)
		if err != nil {
			fmt.Fprintln(os.Stderr, "mailflow server: TLS key pair:", err)
			return 2
		}
		serverTLS = &tls.Config{Certificates: []tls.Certificate{c}, MinVersion: tls.VersionTLS12}
	}
	clientTLS := &tls.Config{MinVersion: tls.VersionTLS12}
	if *caFile != "" {
		pemData, err := os.ReadFile(*caFile)
		if err != nil {
			fmt.Fprintln(os.Stderr, "mailflow server:", err)
			return 2
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pemData) {
			fmt.Fprintf(os.Stderr, "mailflow server: %s: no certificate in it\n", *caFile)
			return 2
		}
		clientTLS.RootCAs = pool
	}
	addr, err := netip.ParseAddr(*listen)
	if err != nil {
		fmt.Fprintln(os.Stderr, "mailflow server: --listen:", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	var closeFn func() error
	var listeners []string
	switch srv.Role {
	case scenario.RoleEdge:
		if *dnsAddr == "" || *ldapURL == "" {
			fmt.Fprintln(os.Stderr, "mailflow server: an Edge needs --dns and --ldap")
			return 2
		}
		dir := directory.New(*ldapURL, *baseDN)
		e, err := edge.Start(ctx, edge.Config{
			Scenario: s, Server: srv, Addr: addr, OutPort: *outPort, Hubs: hubs,
			SpoolDir: *spool + "/" + srv.Name, Directory: dir, Resolver: resolve.New(*dnsAddr),
			Trace: out, ServerTLS: serverTLS, ClientTLS: clientTLS, Logger: log,
		})
		if err != nil {
			fmt.Fprintln(os.Stderr, "mailflow server:", err)
			return 1
		}
		for _, l := range e.Listeners() {
			listeners = append(listeners, l.Name+"="+l.Addr)
		}
		closeFn = func() error { return errors.Join(e.Close(), dir.Close()) }
	default:
		// Hub and Mailbox servers are stand-ins in this version: SMTP sinks that take
		// what the Edge hands them (over STARTTLS, as org peers do) and report it.
		opts := []internet.Option{internet.WithOnMessage(func(m internet.Message) { out.Write(logline.Line{Received: &m}) })}
		if serverTLS != nil {
			opts = append(opts, internet.WithTLS(serverTLS))
		}
		h, err := internet.Start(ctx, srv.Name, net.JoinHostPort(addr.String(), fmt.Sprint(*outPort)), opts...)
		if err != nil {
			fmt.Fprintln(os.Stderr, "mailflow server:", err)
			return 1
		}
		listeners = append(listeners, "stand-in="+h.Addr())
		closeFn = h.Close
	}
	out.Write(logline.Line{Ready: &logline.Ready{Server: srv.Name, Role: string(srv.Role), Listeners: listeners}})
	<-ctx.Done()
	if err := closeFn(); err != nil {
		fmt.Fprintln(os.Stderr, "mailflow server: stop:", err)
		return 1
	}
	return 0
}

// runQueue lists what a server's spool holds, like Exchange's Get-Message: one line per
// message with its pending recipients, then the count.
func runQueue(args []string) int {
	fs := flag.NewFlagSet("queue", flag.ContinueOnError)
	dir := fs.String("spool", "", "the server's spool directory")
	count := fs.Bool("count", false, "print only the number of messages")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *dir == "" {
		fmt.Fprintln(os.Stderr, "usage: mailflow queue --spool DIR [--count]")
		return 2
	}
	if _, err := os.Stat(*dir); err != nil {
		fmt.Fprintln(os.Stderr, "mailflow queue:", err)
		return 1
	}
	sp, err := queue.OpenSpool(*dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, "mailflow queue:", err)
		return 1
	}
	ms, err := sp.List()
	if err != nil {
		fmt.Fprintln(os.Stderr, "mailflow queue:", err)
		return 1
	}
	if *count {
		fmt.Println(len(ms))
		return 0
	}
	for _, m := range ms {
		fmt.Printf("%s from=<%s> pending=%s\n", m.ID, m.From, strings.Join(m.Pending(), ","))
	}
	fmt.Printf("%d messages\n", len(ms))
	return 0
}
