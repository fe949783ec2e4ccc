package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/mailflow/mailflow/clock"
	"github.com/mailflow/mailflow/containers/logline"
	"github.com/mailflow/mailflow/reference/clientaccess"
	"github.com/mailflow/mailflow/reference/directory"
	"github.com/mailflow/mailflow/reference/edge"
	"github.com/mailflow/mailflow/reference/hub"
	"github.com/mailflow/mailflow/reference/linkstate"
	"github.com/mailflow/mailflow/reference/linkwire"
	"github.com/mailflow/mailflow/reference/mailbox"
	"github.com/mailflow/mailflow/reference/queue"
	"github.com/mailflow/mailflow/reference/resolve"
	"github.com/mailflow/mailflow/reference/shadow"
	"github.com/mailflow/mailflow/reference/smtpout"
	"github.com/mailflow/mailflow/reference/store"
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
	clamdAddr := fs.String("clamd", "", "ClamAV daemon an Edge's antivirus agent scans with (unix:/path or tcp:host:port); needed when the scenario enables antivirus on it")
	spamdAddr := fs.String("spamd", "", "spamd (host:port) an Edge's content filter asks when the scenario names none")
	baseDN := fs.String("base-dn", "dc=contoso,dc=test", "directory base DN")
	spool := fs.String("spool", "/spool", "spool directory")
	certFile := fs.String("tls-cert", "", "certificate chain (PEM) offered with STARTTLS")
	keyFile := fs.String("tls-key", "", "private key (PEM)")
	caFile := fs.String("ca", "", "CA certificate (PEM) that next hops' certificates chain to")
	outPort := fs.Int("out-port", 25, "port of next hops that name none")
	imapPort := fs.Int("imap-port", 143, "IMAP port of a Mailbox server")
	submissionPort := fs.Int("submission-port", 587, "client submission port of a Mailbox server")
	listen := fs.String("listen", "0.0.0.0", "address the receive connectors bind")
	clockControl := fs.String("clock-control", "", "ip:port where a harness steps this server's clock over HTTP (POST /advance?by=1h) and marks its log (POST /mark?token=T); empty: wall time")
	seed := fs.Uint64("seed", 0, "seed of the random first choice among equal-preference MXs, so a run can be repeated; 0: random (servers sharing a seed choose alike)")
	clockOffset := fs.Duration("clock-offset", 0, "with --clock-control: how far the clock starts ahead of wall time (a restarted server rejoins a stepped world)")
	linkAddr := fs.String("link-state", "", "ip:port where a Hub of a routing group takes link state from the Hubs it exchanges it with (Exchange's port 691); empty: none")
	var hubs, peers, orgRanges, linkPeers stringList
	fs.Var(&linkPeers, "link-peer", "NAME=ip:port where another Hub of the routing groups takes link state: its master, or a master's members and the other masters (repeatable)")
	fs.Var(&hubs, "hub", "ip:port of a Hub of the subscribed site, or of the Mailbox server's own site, where a Mailbox server may name it NAME=ip:port (repeatable)")
	fs.Var(&peers, "peer", "NAME=ip:port of another server of the organisation (repeatable)")
	fs.Var(&orgRanges, "org-range", "CIDR the organisation's servers send from (a Hub lets them relay; repeatable)")
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
	var clk clock.Clock = clock.Real{}
	if *clockControl != "" {
		o := clock.NewOffset(*clockOffset)
		ln, err := net.Listen("tcp", *clockControl)
		if err != nil {
			fmt.Fprintln(os.Stderr, "mailflow server: --clock-control:", err)
			return 2
		}
		// A harness reading the log from outside (a container's) asks for a mark and
		// waits for it, so it has read every trace event written before it asked.
		mux := http.NewServeMux()
		mux.Handle("/mark", logline.MarkHandler(out, srv.Name))
		mux.Handle("/", clock.ControlHandler(o))
		cs := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		go func() { _ = cs.Serve(ln) }()
		defer cs.Close()
		clk = o
	}

	var closeFn func() error
	var listeners []string
	// The queue's fsyncs are logged on SIGUSR1, so `mailflow bench` can count them per
	// accepted message.
	var spoolStats func() queue.SpoolStats
	if srv.Role == scenario.RoleEdge || srv.Role == scenario.RoleHub {
		// A queue makes its spool with its first message, but `mailflow queue` reads this
		// one from outside the server, where a spool not there yet would read as an error.
		if err := os.MkdirAll(*spool+"/"+srv.Name, 0o700); err != nil {
			fmt.Fprintln(os.Stderr, "mailflow server:", err)
			return 1
		}
	}
	switch srv.Role {
	case scenario.RoleClientAccess:
		if *ldapURL == "" {
			fmt.Fprintln(os.Stderr, "mailflow server: a Client Access server needs --ldap")
			return 2
		}
		// Its peers are the Mailbox servers' IMAP addresses, where logins are taken on.
		backends, err := nameAddrs("--peer", peers)
		if err != nil {
			fmt.Fprintln(os.Stderr, "mailflow server:", err)
			return 2
		}
		dir := directory.New(*ldapURL, *baseDN)
		c, err := clientaccess.Start(ctx, clientaccess.Config{
			Name: srv.Name, Addr: net.JoinHostPort(addr.String(), strconv.Itoa(*imapPort)), Backends: backends,
			Directory: dir, ServerTLS: serverTLS, ClientTLS: clientTLS, Trace: out, Clock: clk, Logger: log,
		})
		if err != nil {
			fmt.Fprintln(os.Stderr, "mailflow server:", err)
			return 1
		}
		listeners = append(listeners, "client-access-imap="+c.Addr())
		closeFn = func() error { return errors.Join(c.Close(), dir.Close()) }
	case scenario.RoleEdge:
		if *dnsAddr == "" || *ldapURL == "" {
			fmt.Fprintln(os.Stderr, "mailflow server: an Edge needs --dns and --ldap")
			return 2
		}
		dir := directory.New(*ldapURL, *baseDN)
		e, err := edge.Start(ctx, edge.Config{
			Scenario: s, Server: srv, Addr: addr, OutPort: *outPort, Hubs: hubs, OrgRanges: orgRanges,
			SpoolDir: *spool + "/" + srv.Name, Directory: dir, Resolver: resolve.New(*dnsAddr),
			Trace: out, Clock: clk, ServerTLS: serverTLS, ClientTLS: clientTLS, Logger: log, Seed: *seed,
			Clamd: *clamdAddr, Spamd: *spamdAddr,
		})
		if err != nil {
			fmt.Fprintln(os.Stderr, "mailflow server:", err)
			return 1
		}
		for _, l := range e.Listeners() {
			listeners = append(listeners, l.Name+"="+l.Addr)
		}
		closeFn = func() error { return errors.Join(e.Close(), dir.Close()) }
		spoolStats = e.Queue().SpoolStats
	case scenario.RoleHub:
		if *ldapURL == "" {
			fmt.Fprintln(os.Stderr, "mailflow server: a Hub needs --ldap")
			return 2
		}
		peerMap, err := nameAddrs("--peer", peers)
		if err != nil {
			fmt.Fprintln(os.Stderr, "mailflow server:", err)
			return 2
		}
		linkMap, err := nameAddrs("--link-peer", linkPeers)
		if err != nil {
			fmt.Fprintln(os.Stderr, "mailflow server:", err)
			return 2
		}
		// Link state travels between Hub processes only when this Hub listens for it:
		// a Hub of an Exchange 2007 site, or one run alone, keeps its own.
		var links linkstate.Transport
		if *linkAddr != "" && len(linkstate.Peers(s, srv.Name)) > 0 {
			links = linkwire.NewClient(linkMap)
		}
		dir := directory.New(*ldapURL, *baseDN)
		var res smtpout.Resolver
		if *dnsAddr != "" {
			res = resolve.New(*dnsAddr)
		}
		h, err := hub.Start(ctx, hub.Config{
			Scenario: s, Server: srv, Addr: addr, OutPort: *outPort, Peers: peerMap, OrgRanges: orgRanges,
			SpoolDir: *spool + "/" + srv.Name, Directory: dir, Resolver: res, Trace: out, Clock: clk,
			ServerTLS: serverTLS, ClientTLS: clientTLS, Logger: log, Seed: *seed, LinkTransport: links,
		})
		if err != nil {
			fmt.Fprintln(os.Stderr, "mailflow server:", err)
			return 1
		}
		for _, l := range h.Listeners() {
			listeners = append(listeners, l.Name+"="+l.Addr)
		}
		closeFn = func() error { return errors.Join(h.Close(), dir.Close()) }
		if links != nil {
			ls, err := linkwire.Listen(*linkAddr, srv.Name, h.LinkState())
			if err != nil {
				fmt.Fprintln(os.Stderr, "mailflow server: --link-state:", err)
				_ = closeFn()
				return 1
			}
			listeners = append(listeners, "link-state="+ls.Addr())
			closeHub := closeFn
			// The listener goes first: what arrives after is refused, as by a server down.
			closeFn = func() error { return errors.Join(ls.Close(), closeHub()) }
		}
		spoolStats = h.Queue().SpoolStats
	default:
		if *ldapURL == "" {
			fmt.Fprintln(os.Stderr, "mailflow server: a Mailbox server needs --ldap")
			return 2
		}
		st, err := store.Open(*spool+"/"+srv.Name+"/store", store.WithClock(clk))
		if err != nil {
			fmt.Fprintln(os.Stderr, "mailflow server:", err)
			return 1
		}
		dir := directory.New(*ldapURL, *baseDN)
		var siteHubs []mailbox.Hub
		for _, h := range hubs {
			name, a, ok := strings.Cut(h, "=")
			if !ok {
				name, a = h, h
			}
			siteHubs = append(siteHubs, mailbox.Hub{Name: name, Addr: a})
		}
		m, err := mailbox.Start(ctx, mailbox.Config{
			Scenario: s, Server: srv, Addr: addr, Port: *outPort, IMAPPort: *imapPort, Store: reportingStore{st, out, srv.Name},
			SubmissionPort: *submissionPort, Hubs: siteHubs, ClientTLS: clientTLS,
			ServerTLS: serverTLS, Directory: dir, Trace: out, Clock: clk, Logger: log,
		})
		if err != nil {
			fmt.Fprintln(os.Stderr, "mailflow server:", err)
			return 1
		}
		listeners = append(listeners, "mailbox="+m.Addr())
		if a := m.IMAPAddr(); a != "" {
			listeners = append(listeners, "imap="+a)
		}
		listeners = append(listeners, "submission="+m.SubmissionAddr())
		closeFn = func() error { return errors.Join(m.Close(), dir.Close()) }
	}
	// Reading a big spool back leaves its records behind as garbage: return that memory
	// now rather than hold it until the runtime gets round to it.
	debug.FreeOSMemory()
	if spoolStats != nil {
		usr1 := make(chan os.Signal, 1)
		signal.Notify(usr1, syscall.SIGUSR1)
		defer signal.Stop(usr1)
		go func() {
			for range usr1 {
				st := spoolStats()
				log.Info(spoolStatsMsg, "fsyncs", st.Fsyncs, "batches", st.Batches)
			}
		}()
	}
	out.Write(logline.Line{Ready: &logline.Ready{Server: srv.Name, Role: string(srv.Role), Listeners: listeners}})
	<-ctx.Done()
	if err := closeFn(); err != nil {
		fmt.Fprintln(os.Stderr, "mailflow server: stop:", err)
		return 1
	}
	return 0
}

// nameAddrs reads repeated NAME=ip:port flags.
func nameAddrs(flagName string, list []string) (map[string]string, error) {
	out := make(map[string]string, len(list))
	for _, p := range list {
		name, a, ok := strings.Cut(p, "=")
		if !ok || name == "" || a == "" {
			return nil, fmt.Errorf("%s %q: want NAME=ip:port", flagName, p)
		}
		out[name] = a
	}
	return out, nil
}

// spoolStatsMsg is the message of the log line SIGUSR1 asks for.
const spoolStatsMsg = "spool stats"

// runQueue lists what a server's spool holds, like Exchange's Get-Message: one line per
// message with its pending recipients, then the count.
func runQueue(args []string) int {
	fs := flag.NewFlagSet("queue", flag.ContinueOnError)
	dir := fs.String("spool", "", "the server's spool directory, or with SERVER the spool root of `mailflow serve --spool`")
	count := fs.Bool("count", false, "print only the number of messages")
	asJSON := fs.Bool("json", false, "print queues and messages as JSON")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *dir == "" || fs.NArg() > 1 {
		fmt.Fprintln(os.Stderr, "usage: mailflow queue --spool DIR [SERVER] [--count | --json]")
		return 2
	}
	if fs.NArg() == 1 {
		*dir = filepath.Join(*dir, fs.Arg(0))
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
	list, err := sp.List()
	if err != nil {
		fmt.Fprintln(os.Stderr, "mailflow queue:", err)
		return 1
	}
	ms := make([]queue.Message, len(list))
	for i, m := range list {
		ms[i] = *m
	}
	if *count {
		fmt.Println(len(ms))
		return 0
	}
	// A Hub's shadow copies wait in its shadow queues (QUEUE-012); they are not the
	// messages it has to deliver, so --count leaves them out.
	shadows, err := shadow.List(hub.ShadowDir(*dir))
	if err != nil {
		fmt.Fprintln(os.Stderr, "mailflow queue:", err)
		return 1
	}
	ms = append(ms, shadows...)
	if *asJSON {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(map[string]any{"queues": queue.Queues(ms), "messages": ms})
		return 0
	}
	printQueues(os.Stdout, ms)
	return 0
}

// printQueues is Get-Queue then Get-Message: the queues with their counts, then each
// message with the queue it waits in.
func printQueues(w io.Writer, ms []queue.Message) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "QUEUE\tMESSAGES\tNEXT RETRY\tLAST ERROR")
	for _, in := range queue.Queues(ms) {
		next := ""
		if !in.NextRetry.IsZero() {
			next = in.NextRetry.UTC().Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\n", in.Name, in.Messages, next, in.LastError)
	}
	tw.Flush()
	if len(ms) > 0 {
		fmt.Fprintln(w)
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "MESSAGE\tQUEUE\tFROM\tPENDING\tATTEMPTS")
		for _, m := range ms {
			fmt.Fprintf(tw, "%s\t%s\t<%s>\t%s\t%d\n", m.ID, m.Queue, m.From, strings.Join(m.Pending(), ","), m.Attempts)
		}
		tw.Flush()
	}
	fmt.Fprintf(w, "%d messages\n", len(ms))
}

// reportingStore writes every stored copy to the protocol log as well, so a test
// outside the container sees the mailbox as the store holds it.
type reportingStore struct {
	*store.Store
	out    *logline.Writer
	server string
}

func (r reportingStore) DeliverAll(ctx context.Context, mailboxes []string, returnPath string, data []byte) ([]store.Delivery, error) {
	ds, err := r.Store.DeliverAll(ctx, mailboxes, returnPath, data)
	if err != nil {
		return ds, err
	}
	for _, d := range ds {
		if d.Duplicate {
			continue
		}
		if b, rerr := os.ReadFile(d.Path); rerr == nil {
			r.out.Write(logline.Line{Stored: &logline.Stored{Server: r.server, Mailbox: d.Mailbox, Data: b}})
		}
	}
	return ds, nil
}
