// Package profiles renders the configuration of a third-party MTA (Postfix, Exim,
// OpenSMTPD) from a scenario, and says how to start it in its container.
//
// A profile is a set of text/template files embedded from profiles/NAME/ plus a
// row of the table below: which image it runs in (the argument of
// containers/mta/build-image.sh), which command starts it and which port to wait
// for. Render turns a Data into the files to copy into the container; one of them
// is the start script, which writes /etc/resolv.conf (only Data.DNS), creates and
// owns the spool and log directories, and then execs the MTA in the foreground,
// logging to stdout/stderr.
//
// What each MTA cannot express of a scenario is written at the top of its
// templates and in profiles/README.md.
package profiles

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"net"
	"path"
	"sort"
	"strconv"
	"strings"
	"text/template"
	"time"
)

// Data is what a profile renders from (already translated to the test's Docker network).
type Data struct {
	Hostname        string   // FQDN the MTA announces, e.g. "edge1.contoso.test"
	DNS             string   // IPv4 of the fake DNS server (port 53 UDP and TCP); the MTA uses only it
	AcceptedDomains []Domain // accepted domains of the organisation
	// Recipients is every valid address of the authoritative domains (lower case):
	// recipient filtering, unknown -> 550 5.1.1.
	Recipients []string
	// InternalHost is the IPv4 of the organisation's internal host (SMTP on port 25):
	// mail for authoritative and internal-relay domains is relayed there, never
	// looked up in DNS.
	InternalHost  string
	Routes        []Route    // outbound routes in order
	RelayNetworks []string   // CIDRs allowed to relay without AUTH
	Listeners     []Listener // port 25 always present
	Users         []User     // SMTP AUTH users
	DNSBL         []string   // DNSBL zones to check clients against (reject 5.7.1)
	HopLimit      int        // max Received headers (30 if 0)
	// Short timers for tests (e.g. 10s, 1m, 5m); 0 keeps the MTA's default.
	RetryInterval, DelayWarning, Expiry time.Duration
	// InactivityTimeout drops a client silent for this long, DATA included (0: the
	// MTA's default).
	InactivityTimeout time.Duration
	MaxMessageSize    int64 // bytes, 0 = MTA default
	// MaxRecipients is the most recipients one transaction takes (0: the MTA's
	// default); a recipient past it gets the MTA's temporary refusal. Each MTA sets it
	// for every listener, so the lowest of the scenario's listeners applies.
	MaxRecipients           int
	TLSCert, TLSKey, CACert string // paths inside the container (PEM)
}

// Domain is an accepted domain. Type is "authoritative", "internal-relay" or
// "external-relay".
type Domain struct {
	Name string
	Type string
}

// Accepted domain types.
const (
	Authoritative = "authoritative"
	InternalRelay = "internal-relay"
	ExternalRelay = "external-relay"
)

// Route is an outbound route. Domains "*" means every other domain. SmartHosts are
// "name", "[1.2.3.4]", "1.2.3.4", each optionally with ":port"; none means MX from
// DNS.
type Route struct {
	Domains            []string
	SmartHosts         []string
	TLS                bool
	Username, Password string
}

// Listener is a receive endpoint. TLS: STARTTLS offered (and AUTH only after TLS);
// Auth: AUTH PLAIN/LOGIN offered, authenticated users may relay;
// AcceptAnyRecipient: clients of RemoteRanges (all when empty) may relay;
// RequireAuth: an MSA (a connector with ExchangeUsers and no anonymous permission):
// MAIL before AUTH gets 530 5.7.0 (SMTP-021).
type Listener struct {
	Name               string
	Port               int
	TLS                bool
	Auth               bool
	RequireAuth        bool
	AcceptAnyRecipient bool
	RemoteRanges       []string
}

// User is an SMTP AUTH account.
type User struct {
	Name, Password string
}

// File is a file to place in the container.
type File struct {
	Path    string
	Mode    int64
	Content []byte
}

// Profile says which image an MTA runs in and how to start it.
type Profile struct {
	Name  string   // "postfix"
	Image string   // the argument for containers/mta/build-image.sh
	Start []string // the container command; runs the MTA in the foreground, logging to stdout/stderr
	Port  int      // SMTP port to wait for (25)
	// HopLimit is the Received-header limit the MTA enforces whatever Data.HopLimit
	// says, for an MTA whose limit is compiled in; 0 when the profile configures it.
	HopLimit int
	// FixedRetry says why the interval between attempts is not a configured one, on an
	// MTA whose back-off is built in ("" otherwise).
	FixedRetry string
	// Timers are the queue timers the profile gives the MTA: the shortest its
	// configuration takes that it still acts on in time, since specs wait them out in
	// real time. Zero fields take the target's defaults.
	Timers Timers
}

// Timers are an MTA's queue timers as a profile sets them.
type Timers struct {
	Retry, DelayWarning, Expiry time.Duration
}

// StartScript is where every profile's start script is placed in the container.
const StartScript = "/etc/mailflow/start.sh"

type fileSpec struct {
	template string // name under profiles/NAME/
	path     string // path in the container
	mode     int64
}

type entry struct {
	profile Profile
	files   []fileSpec
}

//go:embed postfix/*.tmpl exim/*.tmpl opensmtpd/*.tmpl
var templates embed.FS

var table = map[string]entry{
	"postfix": {
		// queue_run_delay and minimal_backoff_time of 2 s: qmgr looks at the deferred
		// queue every 2 s, so delay warnings and expiry act within seconds of their time.
		profile: Profile{Name: "postfix", Image: "postfix", Start: []string{"/bin/sh", StartScript}, Port: 25,
			Timers: Timers{Retry: 2 * time.Second, DelayWarning: 20 * time.Second, Expiry: time.Minute}},
		files: []fileSpec{
			{"start.sh.tmpl", StartScript, 0o755},
			{"main.cf.tmpl", "/etc/postfix/main.cf", 0o644},
			{"master.cf.tmpl", "/etc/postfix/master.cf", 0o644},
			{"transport.tmpl", "/etc/postfix/transport", 0o644},
			{"relay_recipients.tmpl", "/etc/postfix/relay_recipients", 0o644},
			{"tls_policy.tmpl", "/etc/postfix/tls_policy", 0o644},
			{"sasl_passwd.tmpl", "/etc/postfix/sasl_passwd", 0o600},
			{"smtpd.conf.tmpl", "/etc/postfix/sasl/smtpd.conf", 0o644},
			{"users.tmpl", "/etc/mailflow/users", 0o600},
		},
	},
	"exim": {
		// A queue runner every 2 s (-q2s) and a retry rule of F,60s,2s.
		profile: Profile{Name: "exim", Image: "exim", Start: []string{"/bin/sh", StartScript}, Port: 25,
			Timers: Timers{Retry: 2 * time.Second, DelayWarning: 20 * time.Second, Expiry: time.Minute}},
		files: []fileSpec{
			{"start.sh.tmpl", StartScript, 0o755},
			{"exim4.conf.tmpl", "/etc/exim4/exim4.conf", 0o644},
			{"recipients.tmpl", "/etc/exim4/mailflow/recipients", 0o644},
			{"passwd.tmpl", "/etc/exim4/mailflow/passwd", 0o640},
			{"client-user.tmpl", "/etc/exim4/mailflow/client-user", 0o640},
			{"client-pass.tmpl", "/etc/exim4/mailflow/client-pass", 0o640},
		},
	},
	"opensmtpd": {
		// MAX_HOPS_COUNT in smtpd.h; smtpd.conf(5) has no setting for it. The retry
		// back-off is built in (400 s x retries squared, scheduler_backoff in
		// scheduler_ramqueue.c): the start script forces a queue run every 2 s
		// (smtpctl schedule all), as Exim's -q2s does, so a deferred message is tried
		// again within seconds and a short ttl no longer expires it untried.
		profile: Profile{Name: "opensmtpd", Image: "opensmtpd", Start: []string{"/bin/sh", StartScript}, Port: 25, HopLimit: 100,
			FixedRetry: "OpenSMTPD's back-off is built in (smtpd.conf(5) offers only queue ttl and bounce warn-interval); the profile forces a queue run every 2 s (smtpctl schedule all), so attempts come at that run's pace, not at an interval the MTA keeps",
			Timers:     Timers{Retry: 2 * time.Second, DelayWarning: 20 * time.Second, Expiry: time.Minute}},
		files: []fileSpec{
			{"start.sh.tmpl", StartScript, 0o755},
			{"smtpd.conf.tmpl", "/etc/smtpd.conf", 0o644},
			{"recipients.tmpl", "/etc/mailflow/opensmtpd/recipients", 0o644},
			{"relaynets.tmpl", "/etc/mailflow/opensmtpd/relaynets", 0o644},
			{"users.tmpl", "/etc/mailflow/opensmtpd/users.plain", 0o600},
			{"secrets.tmpl", "/etc/mailflow/opensmtpd/secrets", 0o600},
		},
	},
}

// Names lists the profiles, sorted.
func Names() []string {
	names := make([]string, 0, len(table))
	for n := range table {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Load returns the named profile.
func Load(name string) (*Profile, error) {
	e, ok := table[name]
	if !ok {
		return nil, fmt.Errorf("profiles: unknown profile %q (have %s)", name, strings.Join(Names(), ", "))
	}
	p := e.profile
	p.Start = append([]string(nil), e.profile.Start...)
	return &p, nil
}

// Render renders the profile's templates from d. The result includes the start
// script (StartScript) and is ordered as the profile lists its files.
func (p *Profile) Render(d Data) ([]File, error) {
	e, ok := table[p.Name]
	if !ok {
		return nil, fmt.Errorf("profiles: unknown profile %q", p.Name)
	}
	v, err := newView(d)
	if err != nil {
		return nil, fmt.Errorf("profiles: %s: %w", p.Name, err)
	}
	files := make([]File, 0, len(e.files))
	for _, f := range e.files {
		name := path.Join(p.Name, f.template)
		src, err := templates.ReadFile(name)
		if err != nil {
			return nil, fmt.Errorf("profiles: %w", err)
		}
		t, err := template.New(f.template).Funcs(funcs).Option("missingkey=error").Parse(string(src))
		if err != nil {
			return nil, fmt.Errorf("profiles: %s: %w", name, err)
		}
		var b bytes.Buffer
		if err := t.Execute(&b, v); err != nil {
			return nil, fmt.Errorf("profiles: %s: %w", name, err)
		}
		files = append(files, File{Path: f.path, Mode: f.mode, Content: b.Bytes()})
	}
	return files, nil
}

// view is what the templates see: Data plus the scenario sorted into the shapes
// the three configurations need.
type view struct {
	Data
	HopLimit         int
	AuthDomains      []string // authoritative
	InternalDomains  []string // internal-relay
	ExternalDomains  []externalDomain
	RelayToDomains   []string // every accepted domain
	Recipients       []string // lower case, sorted, unique
	Ports            []port   // listeners merged by port, ascending
	Routes           []route  // Routes in order, with their domains not claimed by an earlier route
	Default          *route   // the "*" route, nil if none
	RetrySecs        int
	WarnSecs         int
	ExpirySecs       int
	InactivitySecs   int
	RouteAuth        bool // some route authenticates
	ListenerAuth     bool // some listener offers AUTH
	AuthPorts        []int
	RequireAuthPorts []int
	TLSPorts         []int
}

type externalDomain struct {
	Name  string
	Route *route // nil: no route covers it (MX)
}

// port is every listener on one port merged: an MTA listens once per port.
type port struct {
	Port  int
	Names []string
	TLS   bool
	Auth  bool
	// RequireAuth: every listener on the port requires AUTH before MAIL.
	RequireAuth bool
	// RelayAll: some listener on the port has AcceptAnyRecipient with no ranges.
	RelayAll bool
	// RelayRanges: client ranges with AcceptAnyRecipient (when not RelayAll).
	RelayRanges []string
	// ClientRanges: when non-nil only these clients may use the port (every
	// listener on it has RemoteRanges).
	ClientRanges []string
}

type route struct {
	ID       string // "route1"
	Domains  []string
	Default  bool // has "*"
	Hosts    []smartHost
	TLS      bool
	Username string
	Password string
}

type smartHost struct {
	Host string // name or IPv4 address, no brackets
	IP   bool
	Port int // 0: default (25)
}

func newView(d Data) (*view, error) {
	if d.Hostname == "" {
		return nil, errors.New("profile data: Hostname is empty")
	}
	v := &view{Data: d, HopLimit: d.HopLimit}
	if v.HopLimit == 0 {
		v.HopLimit = 30
	}
	v.RetrySecs = secs(d.RetryInterval)
	v.InactivitySecs = secs(d.InactivityTimeout)
	v.WarnSecs = secs(d.DelayWarning)
	v.ExpirySecs = secs(d.Expiry)
	if v.DNS == "" {
		// No fake DNS: point the resolver at nothing rather than at the host's.
		v.DNS = "127.0.0.1"
	} else if net.ParseIP(d.DNS) == nil {
		return nil, fmt.Errorf("DNS %q is not an IP address", d.DNS)
	}
	needInternal := false
	seen := map[string]bool{}
	var external []string
	for _, dom := range d.AcceptedDomains {
		name := strings.ToLower(strings.TrimSuffix(dom.Name, "."))
		if name == "" || seen[name] {
			continue
		}
		seen[name] = true
		switch dom.Type {
		case Authoritative:
			v.AuthDomains = append(v.AuthDomains, name)
			needInternal = true
		case InternalRelay:
			v.InternalDomains = append(v.InternalDomains, name)
			needInternal = true
		case ExternalRelay:
			external = append(external, name)
		default:
			return nil, fmt.Errorf("accepted domain %s: unknown type %q", name, dom.Type)
		}
		v.RelayToDomains = append(v.RelayToDomains, name)
	}
	if needInternal && net.ParseIP(d.InternalHost).To4() == nil {
		return nil, fmt.Errorf("InternalHost %q is not an IPv4 address", d.InternalHost)
	}
	v.Recipients = uniqueLower(d.Recipients)

	claimed := map[string]bool{}
	hasDefault := false
	for i, r := range d.Routes {
		rt := route{ID: fmt.Sprintf("route%d", i+1), TLS: r.TLS, Username: r.Username, Password: r.Password}
		for _, dom := range r.Domains {
			dom = strings.ToLower(strings.TrimSuffix(dom, "."))
			switch {
			case dom == "*":
				rt.Default = true
			case dom != "" && !claimed[dom]:
				claimed[dom] = true
				rt.Domains = append(rt.Domains, dom)
			}
		}
		for _, s := range r.SmartHosts {
			h, err := parseSmartHost(s)
			if err != nil {
				return nil, fmt.Errorf("route %d: %w", i+1, err)
			}
			rt.Hosts = append(rt.Hosts, h)
		}
		if rt.Username != "" {
			if len(rt.Hosts) == 0 {
				return nil, fmt.Errorf("route %d: credentials need a smart host", i+1)
			}
			v.RouteAuth = true
		}
		if rt.Default && hasDefault {
			rt.Default = false // the first "*" route wins
		}
		hasDefault = hasDefault || rt.Default
		if !rt.Default && len(rt.Domains) == 0 {
			continue // every domain of it is claimed by earlier routes
		}
		v.Routes = append(v.Routes, rt)
	}
	// v.Routes is complete: pointers into it are stable from here on.
	for i := range v.Routes {
		if v.Routes[i].Default {
			v.Default = &v.Routes[i]
		}
	}
	for _, name := range external {
		ed := externalDomain{Name: name, Route: v.Default}
		for i := range v.Routes {
			if contains(v.Routes[i].Domains, name) {
				ed.Route = &v.Routes[i]
				break
			}
		}
		v.ExternalDomains = append(v.ExternalDomains, ed)
	}

	listeners := d.Listeners
	has25 := false
	for _, l := range listeners {
		has25 = has25 || l.Port == 25
	}
	if !has25 {
		listeners = append([]Listener{{Name: "default", Port: 25}}, listeners...)
	}
	byPort := map[int]*port{}
	open := map[int]bool{} // some listener on the port has no RemoteRanges
	for _, l := range listeners {
		if l.Port <= 0 || l.Port > 65535 {
			return nil, fmt.Errorf("listener %s: bad port %d", l.Name, l.Port)
		}
		p := byPort[l.Port]
		if p == nil {
			p = &port{Port: l.Port, RequireAuth: true}
			byPort[l.Port] = p
		}
		p.RequireAuth = p.RequireAuth && l.Auth && l.RequireAuth && !l.AcceptAnyRecipient
		p.Names = append(p.Names, l.Name)
		p.TLS = p.TLS || l.TLS
		p.Auth = p.Auth || l.Auth
		ranges := nonEmpty(l.RemoteRanges)
		if len(ranges) == 0 || containsAny(ranges, "0.0.0.0/0", "0.0.0.0-255.255.255.255") {
			open[l.Port] = true
			ranges = nil
		}
		if l.AcceptAnyRecipient {
			if ranges == nil {
				p.RelayAll = true
			} else {
				p.RelayRanges = append(p.RelayRanges, ranges...)
			}
		}
		p.ClientRanges = append(p.ClientRanges, ranges...)
	}
	for n, p := range byPort {
		if open[n] {
			p.ClientRanges = nil
		}
		if p.RelayAll {
			p.RelayRanges = nil
		}
		if p.TLS && d.TLSCert == "" {
			return nil, fmt.Errorf("listener on port %d offers TLS but TLSCert is empty", n)
		}
		v.Ports = append(v.Ports, *p)
	}
	sort.Slice(v.Ports, func(i, j int) bool { return v.Ports[i].Port < v.Ports[j].Port })
	for _, p := range v.Ports {
		if p.Auth {
			v.ListenerAuth = true
			v.AuthPorts = append(v.AuthPorts, p.Port)
		}
		if p.RequireAuth {
			v.RequireAuthPorts = append(v.RequireAuthPorts, p.Port)
		}
		if p.TLS {
			v.TLSPorts = append(v.TLSPorts, p.Port)
		}
	}
	for _, u := range d.Users {
		if u.Name == "" || strings.ContainsAny(u.Name, " \t\r\n:\"\\") || strings.ContainsAny(u.Password, "\r\n") {
			return nil, fmt.Errorf("user %q: name or password not representable", u.Name)
		}
	}
	return v, nil
}

// parseSmartHost reads "name", "[1.2.3.4]", "1.2.3.4", each with an optional ":port".
func parseSmartHost(s string) (smartHost, error) {
	s = strings.TrimSpace(s)
	var h smartHost
	hostPart, portPart := s, ""
	if strings.HasPrefix(s, "[") {
		end := strings.Index(s, "]")
		if end < 0 {
			return h, fmt.Errorf("smart host %q: missing ]", s)
		}
		hostPart = s[1:end]
		rest := s[end+1:]
		if rest != "" {
			if !strings.HasPrefix(rest, ":") {
				return h, fmt.Errorf("smart host %q: junk after ]", s)
			}
			portPart = rest[1:]
		}
	} else if i := strings.LastIndex(s, ":"); i >= 0 {
		hostPart, portPart = s[:i], s[i+1:]
	}
	if hostPart == "" || strings.ContainsAny(hostPart, " \t:;,") {
		return h, fmt.Errorf("smart host %q: bad host", s)
	}
	h.Host = hostPart
	h.IP = net.ParseIP(hostPart) != nil
	if portPart != "" {
		n, err := strconv.Atoi(portPart)
		if err != nil || n <= 0 || n > 65535 {
			return h, fmt.Errorf("smart host %q: bad port", s)
		}
		h.Port = n
	}
	return h, nil
}

func secs(d time.Duration) int {
	if d <= 0 {
		return 0
	}
	return int((d + time.Second - 1) / time.Second)
}

func uniqueLower(in []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range in {
		s = strings.ToLower(strings.TrimSpace(s))
		if s == "" || seen[s] {
			continue
		}
		seen[s] = true
		out = append(out, s)
	}
	sort.Strings(out)
	return out
}

func nonEmpty(in []string) []string {
	var out []string
	for _, s := range in {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func containsAny(list []string, ss ...string) bool {
	for _, s := range ss {
		if contains(list, s) {
			return true
		}
	}
	return false
}

var funcs = template.FuncMap{
	"join": func(sep string, list any) string {
		switch l := list.(type) {
		case []string:
			return strings.Join(l, sep)
		case []int:
			s := make([]string, len(l))
			for i, n := range l {
				s[i] = strconv.Itoa(n)
			}
			return strings.Join(s, sep)
		}
		return fmt.Sprint(list)
	},
	// sh quotes a string for the POSIX shell.
	"sh": func(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" },
	// postfixNexthop: "[host]" or "[host]:port" (brackets: no MX lookup).
	"postfixNexthop": func(h smartHost) string {
		s := "[" + h.Host + "]"
		if h.Port != 0 {
			s += ":" + strconv.Itoa(h.Port)
		}
		return s
	},
	// eximHost: an item of an Exim host list, the port after a doubled colon.
	"eximHost": func(h smartHost) string {
		if h.Port != 0 {
			return h.Host + "::" + strconv.Itoa(h.Port)
		}
		return h.Host
	},
	// eximKey: a quoted lsearch key.
	"eximKey": func(s string) string {
		return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
	},
	// eximCaret doubles ^ for a plaintext client_send string.
	"eximCaret": func(s string) string { return strings.ReplaceAll(s, "^", "^^") },
	// smtpdURL: an OpenSMTPD relay URL for a route's first smart host.
	"smtpdURL": func(r route) string {
		h := r.Hosts[0]
		proto := "smtp"
		if r.TLS || r.Username != "" {
			proto = "smtp+tls"
		}
		s := proto + "://"
		if r.Username != "" {
			s += r.ID + "@"
		}
		s += h.Host
		if h.Port != 0 {
			s += ":" + strconv.Itoa(h.Port)
		}
		return s
	},
	// userPart/realmPart split "user@realm" (Cyrus SASL), realm defaulting to def.
	"userPart": func(name string) string {
		if i := strings.LastIndex(name, "@"); i >= 0 {
			return name[:i]
		}
		return name
	},
	"realmPart": func(name, def string) string {
		if i := strings.LastIndex(name, "@"); i >= 0 {
			return name[i+1:]
		}
		return def
	},
	// froms: the OpenSMTPD match sources that may relay.
	"froms": func(v *view) []string {
		f := []string{"from local", "from src <relaynets>"}
		if v.ListenerAuth {
			f = append(f, "from auth")
		}
		for _, p := range v.Ports {
			switch {
			case p.RelayAll:
				f = append(f, fmt.Sprintf("from any tag port%d", p.Port))
			case len(p.RelayRanges) > 0:
				f = append(f, fmt.Sprintf("from src <relay_port%d> tag port%d", p.Port, p.Port))
			}
		}
		return f
	},
}
