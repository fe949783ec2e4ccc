// Package profiles renders the configuration of a third-party MTA (Postfix, Exim,
// OpenSMTPD, chasquid, or one a user adds) from a scenario, and says how to start it
// in its container.
//
// A profile is a directory: profile.yaml (the Manifest: the container command, the
// port to wait for, the files to render and where they go, the timers and limits the
// MTA keeps whatever it is told, the features it lacks and why), the text/template
// files it lists, and the Debian packages of its image (packages, read by
// containers/mta/build-image.sh). The directories under profiles/ are built in
// (embedded, loaded by name); Load takes a directory path as well. Render turns a
// Data into the files to copy into the container; one of them is the start script,
// which writes /etc/resolv.conf (only Data.DNS), creates and owns the spool and log
// directories, and then execs the MTA in the foreground, logging to stdout/stderr.
//
// What each MTA cannot express of a scenario is written at the top of its
// templates, in its manifest's lacks and in profiles/README.md.
package profiles

import (
	"errors"
	"fmt"
	"net"
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
	// Mailboxes are the recipients whose mail the MTA delivers itself, over LMTP to
	// the Dovecot in its container (IMAP on port 143), instead of relaying it to
	// InternalHost. When there are any, Render adds Dovecot's configuration and the
	// start script starts Dovecot before the MTA.
	Mailboxes []Mailbox
	// Clamd is the "ip:port" of the ClamAV daemon the MTA scans every message with,
	// "" when the Edge does not scan (FILTER-009, FILTER-010).
	Clamd string
	// AntivirusAction is what an infected message gets (AntivirusReject,
	// AntivirusDelete, AntivirusStrip), when Clamd is set.
	AntivirusAction string
	// SPF is what the MTA does with a sender whose SPF record fails (FILTER-015):
	// SPFReject or SPFStamp; "" checks no SPF.
	SPF string
}

// Mailbox is a recipient's mailbox in the container's Dovecot: Address logs in with
// Password over IMAP; Quota (bytes, 0 for none) refuses a delivery that would
// exceed it (LMTP 552 5.2.2).
type Mailbox struct {
	Address, Password string
	Quota             int64
}

// LMTPSocket is where the container's Dovecot takes LMTP: the MTA delivers the
// Mailboxes there.
const LMTPSocket = "/run/dovecot/lmtp"

// Antivirus actions (as the scenario names them).
const (
	AntivirusReject = "reject"
	AntivirusDelete = "delete"
	AntivirusStrip  = "strip"
)

// SPF actions (as the scenario names them).
const (
	SPFStamp  = "stamp"
	SPFReject = "reject"
)

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
	Mailboxes        []Mailbox // lower-case addresses, sorted
	LMTPSocket       string
	// ClamdIP and ClamdPort are Clamd split, for MTAs that take them apart.
	ClamdIP   string
	ClamdPort int
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
	if d.Clamd != "" {
		host, p, err := net.SplitHostPort(d.Clamd)
		n, perr := strconv.Atoi(p)
		if err != nil || perr != nil || net.ParseIP(host) == nil {
			return nil, fmt.Errorf("clamd address %q is not an ip:port", d.Clamd)
		}
		v.ClamdIP, v.ClamdPort = host, n
		switch d.AntivirusAction {
		case AntivirusReject, AntivirusDelete, AntivirusStrip:
		default:
			return nil, fmt.Errorf("antivirus action %q: want %s, %s or %s", d.AntivirusAction, AntivirusReject, AntivirusDelete, AntivirusStrip)
		}
	}
	switch d.SPF {
	case "", SPFStamp, SPFReject:
	default:
		return nil, fmt.Errorf("SPF action %q: want %s or %s", d.SPF, SPFStamp, SPFReject)
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
	seenBox := map[string]bool{}
	for _, m := range d.Mailboxes {
		m.Address = strings.ToLower(strings.TrimSpace(m.Address))
		local, domain, ok := strings.Cut(m.Address, "@")
		if !ok || local == "" || domain == "" || strings.ContainsAny(m.Address, " \t\r\n:\"\\/%") || strings.ContainsAny(m.Password, "\r\n:") {
			return nil, fmt.Errorf("mailbox %q: address or password not representable", m.Address)
		}
		if m.Quota < 0 {
			return nil, fmt.Errorf("mailbox %s: negative quota", m.Address)
		}
		if !contains(v.AuthDomains, domain) {
			return nil, fmt.Errorf("mailbox %s: not in an authoritative accepted domain", m.Address)
		}
		if !seenBox[m.Address] {
			seenBox[m.Address] = true
			v.Mailboxes = append(v.Mailboxes, m)
		}
	}
	sort.Slice(v.Mailboxes, func(i, j int) bool { return v.Mailboxes[i].Address < v.Mailboxes[j].Address })
	v.LMTPSocket = LMTPSocket
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
	// quote is a double-quoted string with C-style escapes (Go's strconv.Quote), as
	// text protobuf and many configuration formats read it.
	"quote": strconv.Quote,
	// lower is the string in lower case.
	"lower": strings.ToLower,
	// concat is the string lists one after the other.
	"concat": func(lists ...[]string) []string {
		var out []string
		for _, l := range lists {
			out = append(out, l...)
		}
		return out
	},
	// ceilDiv is a / b rounded up (sizes in coarser units: ceilDiv .MaxMessageSize 1048576).
	"ceilDiv": func(a, b int64) int64 { return (a + b - 1) / b },
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
