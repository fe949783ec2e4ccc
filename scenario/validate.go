package scenario

import (
	"fmt"
	"mime"
	"net"
	"net/mail"
	"net/netip"
	"path"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"unicode"

	"github.com/miekg/dns"
	"gopkg.in/yaml.v3"
)

// validator checks what the types cannot: names that must exist, values from closed
// sets, syntax of addresses, records and codes. It sees the decoded Scenario, before
// defaults, and the node map of the walk for positions.
type validator struct {
	s     *Scenario
	file  string
	nodes map[string]nodeRef
	errs  Errors

	sites   map[string]int    // lower-case site name -> index
	servers map[string]int    // lower-case server name -> index
	addrs   map[string]string // lower-case recipient address -> path of its first use
}

func (v *validator) validate() {
	v.acceptedDomains()
	v.sitesAndLinks()
	v.serverList()
	v.routingGroups()
	v.receiveConnectors()
	v.sendConnectors()
	v.recipients()
	v.transportRules("org.transport_rules", v.s.Org.TransportRules, true)
	v.internet()
	v.messages()
	v.timeline()
}

// node is the value at path, or the nearest enclosing one when the key is absent
// (a missing key is reported where its mapping starts).
func (v *validator) node(path string) *yaml.Node {
	for p := path; p != ""; p = parentPath(p) {
		if r, ok := v.nodes[p]; ok {
			return r.val
		}
	}
	return &yaml.Node{Line: 1, Column: 1}
}

func parentPath(p string) string {
	if strings.HasSuffix(p, "]") {
		return p[:strings.LastIndex(p, "[")]
	}
	if i := strings.LastIndexAny(p, ".["); i >= 0 {
		return p[:i]
	}
	return ""
}

func (v *validator) line(path string) int { return v.node(path).Line }

func (v *validator) at(n *yaml.Node, path, format string, args ...any) {
	v.errs = append(v.errs, &Error{File: v.file, Line: n.Line, Col: n.Column, Key: path, Problem: fmt.Sprintf(format, args...)})
}

func (v *validator) errorf(path, format string, args ...any) {
	v.at(v.node(path), path, format, args...)
}

// keyErrorf points at a mapping key itself (a map key that is the problem).
func (v *validator) keyErrorf(path, format string, args ...any) {
	n := v.node(path)
	if r, ok := v.nodes[path]; ok && r.key != nil {
		n = r.key
	}
	v.at(n, path, format, args...)
}

func (v *validator) server(name string) (*Server, bool) {
	i, ok := v.servers[strings.ToLower(name)]
	if !ok {
		return nil, false
	}
	return &v.s.Org.Servers[i], true
}

// unknownServer reports a dangling server name with the names that do exist.
func (v *validator) unknownServer(path, name string) {
	names := make([]string, 0, len(v.s.Org.Servers))
	for _, s := range v.s.Org.Servers {
		if s.Name != "" {
			names = append(names, s.Name)
		}
	}
	v.errorf(path, "unknown server %q%s", name, known(names, "servers"))
}

func known(names []string, what string) string {
	if len(names) == 0 {
		return fmt.Sprintf(" (no %s are declared)", what)
	}
	if len(names) > 8 {
		names = append(names[:8:8], "…")
	}
	return " (known: " + strings.Join(names, ", ") + ")"
}

func (v *validator) acceptedDomains() {
	seen := map[string]string{}
	firstDefault := ""
	for i, d := range v.s.Org.AcceptedDomains {
		p := fmt.Sprintf("org.accepted_domains[%d]", i)
		switch {
		case d.Domain == "":
			v.errorf(p+".domain", "missing (want a domain name or *.domain)")
		case !validDomainPattern(d.Domain):
			v.errorf(p+".domain", "%q is not a domain name or *.domain", d.Domain)
		default:
			k := canonDomain(d.Domain)
			if first, dup := seen[k]; dup {
				v.errorf(p+".domain", "duplicate domain %q (first at line %d)", d.Domain, v.line(first))
			} else {
				seen[k] = p + ".domain"
			}
		}
		switch d.Type {
		case "", Authoritative, InternalRelay, ExternalRelay:
		default:
			v.errorf(p+".type", "unknown type %q; want one of authoritative, internal-relay, external-relay", d.Type)
		}
		if d.Default {
			if firstDefault != "" {
				v.errorf(p+".default", "more than one default domain (first at line %d)", v.line(firstDefault))
			} else {
				firstDefault = p + ".default"
			}
		}
	}
}

func (v *validator) sitesAndLinks() {
	v.sites = map[string]int{}
	names := []string{}
	for i, s := range v.s.Org.Sites {
		p := fmt.Sprintf("org.sites[%d].name", i)
		if s.Name == "" {
			v.errorf(p, "missing (a site needs a name)")
			continue
		}
		k := strings.ToLower(s.Name)
		if first, dup := v.sites[k]; dup {
			v.errorf(p, "duplicate site name %q (first at line %d)", s.Name, v.line(fmt.Sprintf("org.sites[%d].name", first)))
			continue
		}
		v.sites[k] = i
		names = append(names, s.Name)
	}
	for i, l := range v.s.Org.SiteLinks {
		p := fmt.Sprintf("org.site_links[%d]", i)
		if len(l.Sites) != 2 {
			v.errorf(p+".sites", "want exactly 2 sites, got %d", len(l.Sites))
		}
		for j, name := range l.Sites {
			if _, ok := v.sites[strings.ToLower(name)]; !ok {
				v.errorf(fmt.Sprintf("%s.sites[%d]", p, j), "unknown site %q%s", name, known(names, "sites"))
			}
		}
		if len(l.Sites) == 2 && strings.EqualFold(l.Sites[0], l.Sites[1]) {
			v.errorf(p+".sites[1]", "links site %q to itself", l.Sites[1])
		}
		if l.Cost < 0 {
			v.errorf(p+".cost", "must not be negative, got %d", l.Cost)
		}
		if l.ExchangeCost < 0 {
			v.errorf(p+".exchange_cost", "must not be negative, got %d", l.ExchangeCost)
		}
		if l.MaxMessageSize < 0 {
			v.errorf(p+".max_message_size", "must not be negative, got %d", l.MaxMessageSize)
		}
	}
}

func (v *validator) serverList() {
	v.servers = map[string]int{}
	siteNames := make([]string, 0, len(v.s.Org.Sites))
	for _, s := range v.s.Org.Sites {
		siteNames = append(siteNames, s.Name)
	}
	for i, sv := range v.s.Org.Servers {
		p := fmt.Sprintf("org.servers[%d]", i)
		switch k := strings.ToLower(sv.Name); {
		case sv.Name == "":
			v.errorf(p+".name", "missing (a server needs a name)")
		case !validLabel(sv.Name):
			// The name becomes the first label of the default FQDN.
			v.errorf(p+".name", "%q is not a valid server name (letters, digits and inner hyphens, at most 63)", sv.Name)
		default:
			if first, dup := v.servers[k]; dup {
				v.errorf(p+".name", "duplicate server name %q (first at line %d)", sv.Name, v.line(fmt.Sprintf("org.servers[%d].name", first)))
			} else {
				v.servers[k] = i
			}
		}
		switch sv.Role {
		case RoleEdge, RoleHub, RoleMailbox, RoleClientAccess:
		case "":
			v.errorf(p+".role", "missing; want one of edge, hub, mailbox, client_access")
		default:
			v.errorf(p+".role", "unknown role %q; want one of edge, hub, mailbox, client_access", sv.Role)
		}
		switch {
		case sv.Site != "":
			if _, ok := v.sites[strings.ToLower(sv.Site)]; !ok {
				v.errorf(p+".site", "unknown site %q%s", sv.Site, known(siteNames, "sites"))
			}
		case len(v.s.Org.Sites) > 0 && (sv.Role == RoleHub || sv.Role == RoleMailbox) && v.s.RoutingGroupOf(sv.Name) == nil:
			v.errorf(p+".site", "missing; a %s server needs a site when sites are declared", sv.Role)
		}
		if sv.FQDN != "" && !validDomain(sv.FQDN) {
			v.errorf(p+".fqdn", "%q is not a valid FQDN", sv.FQDN)
		}
		for j, a := range sv.RecipientBlockList {
			if problem := addressProblem(a); problem != "" {
				v.errorf(fmt.Sprintf("%s.recipient_block_list[%d]", p, j), "%s", problem)
			}
		}
		if sv.MaxHopCount < 0 {
			v.errorf(p+".max_hop_count", "must not be negative, got %d", sv.MaxHopCount)
		}
		for _, d := range []struct {
			key string
			val Duration
		}{{"retry_interval", sv.RetryInterval}, {"transient_retry_interval", sv.TransientRetryInterval},
			{"delay_notification", sv.DelayNotification}, {"message_expiration", sv.MessageExpiration},
			{"shadow_heartbeat_timeout", sv.ShadowHeartbeatTimeout}, {"shadow_message_auto_discard", sv.ShadowMessageAutoDiscard}} {
			if d.val < 0 {
				v.errorf(p+"."+d.key, "must be positive, got %s", d.val)
			}
		}
		if sv.PoisonThreshold != nil && *sv.PoisonThreshold < 0 {
			v.errorf(p+".poison_threshold", "must not be negative, got %d", *sv.PoisonThreshold)
		}
		if sv.ShadowHeartbeatRetryCount != nil && *sv.ShadowHeartbeatRetryCount < 1 {
			v.errorf(p+".shadow_heartbeat_retry_count", "must be at least 1, got %d", *sv.ShadowHeartbeatRetryCount)
		}
		if sv.TransientRetryCount != nil && *sv.TransientRetryCount < 0 {
			v.errorf(p+".transient_retry_count", "must not be negative, got %d", *sv.TransientRetryCount)
		}
		v.agents(p+".agents", sv)
	}
}

var permissions = []Permission{PermAnonymous, PermPartners, PermExchangeUsers, PermExchangeServers}

func (v *validator) receiveConnectors() {
	names := map[string]string{} // server \x00 name -> path
	perServer := map[string]int{}
	for i, rc := range v.s.Org.ReceiveConnectors {
		p := fmt.Sprintf("org.receive_connectors[%d]", i)
		server := rc.Server
		if rc.Server == "" {
			v.errorf(p+".server", "missing (a receive connector belongs to a server)")
		} else if sv, ok := v.server(rc.Server); !ok {
			v.unknownServer(p+".server", rc.Server)
		} else {
			server = sv.Name
		}
		if rc.Bind != "" {
			if problem := bindProblem(rc.Bind); problem != "" {
				v.errorf(p+".bind", "%s", problem)
			}
		}
		if len(rc.Permissions) == 0 {
			v.errorf(p+".permissions", "missing; want at least one of anonymous, partners, exchange_users, exchange_servers")
		}
		for j, perm := range rc.Permissions {
			if !containsPerm(perm) {
				v.errorf(fmt.Sprintf("%s.permissions[%d]", p, j), "unknown permission %q; want one of anonymous, partners, exchange_users, exchange_servers", perm)
			}
		}
		for j, r := range rc.RemoteIPRanges {
			if !validIPRange(r) {
				v.errorf(fmt.Sprintf("%s.remote_ip_ranges[%d]", p, j), "%q is not a CIDR prefix or IP address", r)
			}
		}
		if rc.ExternallySecured {
			// Without ranges, any client on the Internet would be the organisation.
			switch {
			case !slices.Contains(rc.Permissions, PermExchangeServers):
				v.errorf(p+".externally_secured", "needs the exchange_servers permission")
			case len(rc.RemoteIPRanges) == 0:
				v.errorf(p+".externally_secured", "needs remote_ip_ranges: only the organisation's own servers may be trusted so")
			}
		}
		if rc.MaxRecipients < 0 {
			v.errorf(p+".max_recipients", "must not be negative, got %d", rc.MaxRecipients)
		}
		if rc.MaxMessageSize < 0 {
			v.errorf(p+".max_message_size", "must not be negative, got %d", rc.MaxMessageSize)
		}
		if rc.InactivityTimeout < 0 {
			v.errorf(p+".inactivity_timeout", "must be positive, got %s", rc.InactivityTimeout)
		}
		sk := strings.ToLower(server)
		name := rc.Name
		if name == "" {
			name = defaultReceiveConnectorName(server, perServer[sk])
		}
		perServer[sk]++
		k := sk + "\x00" + strings.ToLower(name)
		if first, dup := names[k]; dup {
			v.errorf(p+".name", "duplicate receive connector name \"%s\" on server %s (first at line %d)", name, server, v.line(first))
		} else {
			names[k] = p + ".name"
		}
	}
}

func containsPerm(p Permission) bool {
	for _, q := range permissions {
		if p == q {
			return true
		}
	}
	return false
}

func (v *validator) sendConnectors() {
	names := map[string]string{}
	for i, sc := range v.s.Org.SendConnectors {
		p := fmt.Sprintf("org.send_connectors[%d]", i)
		if sc.Name == "" {
			v.errorf(p+".name", "missing (a send connector needs a name)")
		} else if first, dup := names[strings.ToLower(sc.Name)]; dup {
			v.errorf(p+".name", "duplicate send connector name %q (first at line %d)", sc.Name, v.line(first))
		} else {
			names[strings.ToLower(sc.Name)] = p + ".name"
		}
		if len(sc.AddressSpaces) == 0 {
			v.errorf(p+".address_spaces", "missing; want at least one of *, a domain or *.domain")
		}
		for j, a := range sc.AddressSpaces {
			if a != "*" && !validDomainPattern(a) {
				v.errorf(fmt.Sprintf("%s.address_spaces[%d]", p, j), "%q is not *, a domain or *.domain", a)
			}
		}
		for j, src := range sc.Source {
			if _, ok := v.server(src); !ok {
				v.unknownServer(fmt.Sprintf("%s.source[%d]", p, j), src)
			}
		}
		if sc.Cost < 0 {
			v.errorf(p+".cost", "must not be negative, got %d", sc.Cost)
		}
		for j, h := range sc.SmartHosts {
			if _, err := ParseSmartHost(h); err != nil {
				v.errorf(fmt.Sprintf("%s.smart_hosts[%d]", p, j), "%v", err)
			}
		}
		if sc.Auth != nil {
			v.credentials(p+".auth", sc.Auth)
			if len(sc.SmartHosts) == 0 {
				v.errorf(p+".auth", "smart-host authentication needs smart_hosts")
			}
		}
		if sc.MaxMessageSize < 0 {
			v.errorf(p+".max_message_size", "must not be negative, got %d", sc.MaxMessageSize)
		}
	}
}

func (v *validator) credentials(p string, c *Credentials) {
	if c.Username == "" {
		v.errorf(p+".username", "missing; auth needs a username and a password")
	}
	if c.Password == "" {
		v.errorf(p+".password", "missing; auth needs a username and a password")
	}
}

// maxPasswordLen bounds a recipient's password, as directories bound userPassword.
const maxPasswordLen = 256

func (v *validator) recipients() {
	v.addrs = map[string]string{}
	hasMailboxServer := false
	for _, sv := range v.s.Org.Servers {
		hasMailboxServer = hasMailboxServer || sv.Role == RoleMailbox
	}
	for i, r := range v.s.Org.Recipients {
		p := fmt.Sprintf("org.recipients[%d]", i)
		typ := r.Type
		if typ == "" {
			typ = RecipientMailbox
		}
		switch typ {
		case RecipientMailbox, RecipientGroup, RecipientContact:
		default:
			v.errorf(p+".type", "unknown type %q; want one of mailbox, group, contact", r.Type)
		}
		if r.Mail == "" {
			v.errorf(p+".mail", "missing (a recipient needs an address)")
		} else {
			v.address(p+".mail", r.Mail, typ)
		}
		for j, px := range r.Proxies {
			v.address(fmt.Sprintf("%s.proxies[%d]", p, j), px, typ)
		}
		switch {
		case r.Mailbox != "" && typ != RecipientMailbox:
			v.errorf(p+".mailbox", "only mailbox recipients live on a mailbox server")
		case r.Mailbox != "":
			if sv, ok := v.server(r.Mailbox); !ok {
				v.unknownServer(p+".mailbox", r.Mailbox)
			} else if sv.Role != RoleMailbox {
				v.errorf(p+".mailbox", "server %q has role %s, want mailbox", r.Mailbox, sv.Role)
			}
		case r.Invalid:
			// Deliberately without its home server (CAT-005).
		case typ == RecipientMailbox && hasMailboxServer:
			// Otherwise the address resolves but the message has nowhere to go.
			v.errorf(p+".mailbox", "missing; a mailbox recipient needs a mailbox server")
		}
		if len(r.Members) > 0 && typ != RecipientGroup {
			v.errorf(p+".members", "only groups have members")
		}
		if r.Invalid {
			switch {
			case typ == RecipientGroup:
				v.errorf(p+".invalid", "only mailboxes and contacts can be written without their critical attribute")
			case r.Mailbox != "" || r.External != "":
				v.errorf(p+".invalid", "an invalid object lacks what delivery needs: drop its mailbox and external")
			}
		}
		switch {
		case r.Quota < 0:
			v.errorf(p+".quota", "negative; a quota is a size in bytes, 0 for none")
		case r.Quota > 0 && typ != RecipientMailbox:
			v.errorf(p+".quota", "only mailboxes have a quota")
		}
		if r.ForwardTo != "" && typ != RecipientMailbox {
			v.errorf(p+".forward_to", "only mailboxes forward")
		}
		switch {
		case r.Password != "" && typ != RecipientMailbox:
			v.errorf(p+".password", "only mailbox recipients sign in")
		case strings.ContainsFunc(r.Password, unicode.IsControl):
			// SASL PLAIN separates its fields with NUL, and IMAP LOGIN's quoted strings
			// carry no line breaks: such a password could not be typed.
			v.errorf(p+".password", "has a control character")
		case len(r.Password) > maxPasswordLen:
			v.errorf(p+".password", "longer than %d bytes", maxPasswordLen)
		}
		switch {
		case typ == RecipientContact && r.External == "" && !r.Invalid:
			v.errorf(p+".external", "missing; a contact needs an external address")
		case r.External != "" && typ != RecipientContact:
			v.errorf(p+".external", "only contacts have an external address")
		case r.External != "":
			if problem := addressProblem(r.External); problem != "" {
				v.errorf(p+".external", "%s", problem)
			}
		}
	}
	// Members and forwarding targets may name recipients listed later, so they are
	// checked once all are known.
	for i, r := range v.s.Org.Recipients {
		if _, ok := v.addrs[strings.ToLower(r.ForwardTo)]; r.ForwardTo != "" && !ok {
			v.errorf(fmt.Sprintf("org.recipients[%d].forward_to", i), "unknown recipient %q", r.ForwardTo)
		}
		for j, m := range r.Members {
			if _, ok := v.addrs[strings.ToLower(m)]; !ok {
				v.errorf(fmt.Sprintf("org.recipients[%d].members[%d]", i, j), "unknown recipient %q", m)
			}
		}
	}
}

// address checks one recipient address and claims it; an address may belong to
// only one recipient, as a proxyAddresses value in the directory.
func (v *validator) address(path, a string, typ RecipientType) {
	if problem := addressProblem(a); problem != "" {
		v.errorf(path, "%s", problem)
		return
	}
	k := strings.ToLower(a)
	if first, dup := v.addrs[k]; dup {
		v.errorf(path, "duplicate address %q (first at line %d)", a, v.line(first))
		return
	}
	v.addrs[k] = path
	if typ == RecipientMailbox || typ == RecipientGroup {
		domain := a[strings.LastIndex(a, "@")+1:]
		if _, ok := v.s.AcceptedDomain(domain); !ok {
			v.errorf(path, "domain of %q is not an accepted domain, so mail to it could not arrive", a)
		}
	}
}

var (
	dnsFailureModes = []string{"servfail", "nxdomain", "timeout", "truncate"}
	actions         = []string{"accept", "defer", "reject", "drop", "stall"}
	stages          = []string{"greeting", "mail", "rcpt", "data"}
)

func oneOf(s string, set []string) bool {
	for _, x := range set {
		if s == x {
			return true
		}
	}
	return false
}

func (v *validator) internet() {
	in := &v.s.Internet
	for i, rec := range in.DNS {
		p := fmt.Sprintf("internet.dns[%d]", i)
		rr, err := dns.NewRR(rec)
		switch {
		case err != nil:
			v.errorf(p, "bad record: %v", err)
		case rr == nil:
			v.errorf(p, "empty record")
		}
	}
	for i, f := range in.DNSFailures {
		p := fmt.Sprintf("internet.dns_failures[%d]", i)
		if f.Name == "" {
			v.errorf(p+".name", "missing (a DNS failure needs a name)")
		} else if !validDomainPattern(f.Name) {
			v.errorf(p+".name", "%q is not a domain name or *.domain", f.Name)
		}
		if !oneOf(f.Mode, dnsFailureModes) {
			v.errorf(p+".mode", "unknown mode %q; want one of %s", f.Mode, strings.Join(dnsFailureModes, ", "))
		}
	}
	hosts := map[string]string{}
	for i, h := range in.Hosts {
		p := fmt.Sprintf("internet.hosts[%d]", i)
		switch k := canonDomain(h.Name); {
		case h.Name == "":
			v.errorf(p+".name", "missing (a host needs a name)")
		case !validDomain(h.Name):
			v.errorf(p+".name", "%q is not a valid host name", h.Name)
		case hosts[k] != "":
			v.errorf(p+".name", "duplicate host %q (first at line %d)", h.Name, v.line(hosts[k]))
		default:
			hosts[k] = p + ".name"
		}
		if h.Address != "" {
			if a, err := netip.ParseAddr(h.Address); err != nil || !a.Unmap().Is4() || a.Unmap().As4()[0] != 127 {
				v.errorf(p+".address", "%q is not an IP address in 127.0.0.0/8", h.Address)
			}
		}
		v.behaviour(p+".behaviour", h.Behaviour)
		v.hostRecipients(p+".recipients", h.Recipients)
		if h.MaxRecipients < 0 {
			v.errorf(p+".max_recipients", "must not be negative, got %d", h.MaxRecipients)
		}
		for j, x := range h.Extensions {
			if !slices.Contains(HostExtensions, strings.ToUpper(x)) {
				v.errorf(fmt.Sprintf("%s.extensions[%d]", p, j), "%q is not an extension a fake host can offer (one of %s)", x, strings.Join(HostExtensions, ", "))
			}
		}
		if h.Auth != nil {
			v.credentials(p+".auth", h.Auth)
		}
	}
	zones := map[string]string{}
	for i, z := range in.DNSBL {
		p := fmt.Sprintf("internet.dnsbl[%d]", i)
		switch k := canonDomain(z.Zone); {
		case z.Zone == "":
			v.errorf(p+".zone", "missing (a DNSBL needs a zone)")
		case !validDomain(z.Zone):
			v.errorf(p+".zone", "%q is not a valid zone name", z.Zone)
		case zones[k] != "":
			v.errorf(p+".zone", "duplicate zone %q (first at line %d)", z.Zone, v.line(zones[k]))
		default:
			zones[k] = p + ".zone"
		}
		for j, a := range z.Listed {
			if _, err := netip.ParseAddr(a); err != nil {
				v.errorf(fmt.Sprintf("%s.listed[%d]", p, j), "%q is not an IP address", a)
			}
		}
	}
}

func (v *validator) hostRecipients(p string, rs map[string]Behaviour) {
	keys := make([]string, 0, len(rs))
	for k := range rs {
		keys = append(keys, k)
	}
	// File order, so "first" in a duplicate report is the earlier line.
	sort.Slice(keys, func(i, j int) bool {
		return v.line(p+"["+keys[i]+"]") < v.line(p+"["+keys[j]+"]")
	})
	seen := map[string]string{}
	for _, a := range keys {
		kp := p + "[" + a + "]"
		if problem := addressProblem(a); problem != "" {
			v.keyErrorf(kp, "%s", problem)
		} else if first, dup := seen[strings.ToLower(a)]; dup {
			v.keyErrorf(kp, "duplicate address %q (first at line %d)", a, v.line(first))
		} else {
			seen[strings.ToLower(a)] = kp
		}
		v.behaviour(kp, rs[a])
	}
}

var enhancedCode = regexp.MustCompile(`^([245])\.(\d{1,3})\.(\d{1,3})$`)

func (v *validator) behaviour(p string, b Behaviour) {
	if b.Action == "" {
		if b != (Behaviour{}) {
			v.errorf(p+".action", "missing; want one of %s", strings.Join(actions, ", "))
		}
		return // an absent behaviour is the default one
	}
	if !oneOf(b.Action, actions) {
		v.errorf(p+".action", "unknown action %q; want one of %s", b.Action, strings.Join(actions, ", "))
		return
	}
	if b.Stage != "" && !oneOf(b.Stage, stages) {
		v.errorf(p+".stage", "unknown stage %q; want one of %s", b.Stage, strings.Join(stages, ", "))
	}
	class := map[string]int{"accept": 2, "defer": 4, "reject": 5}[b.Action]
	if b.Code != 0 {
		switch {
		case b.Code < 200 || b.Code > 599:
			v.errorf(p+".code", "reply code %d is outside 200-599", b.Code)
		case b.Action == "drop":
			v.errorf(p+".code", "drop closes the connection without a reply, so it takes no code")
		case class != 0 && b.Code/100 != class:
			v.errorf(p+".code", "%s needs a %dxx code, got %d", b.Action, class, b.Code)
		}
		class = b.Code / 100
	}
	if b.Enhanced != "" {
		m := enhancedCode.FindStringSubmatch(b.Enhanced)
		switch {
		case m == nil:
			v.errorf(p+".enhanced", "%q is not an enhanced status code (want class.subject.detail with class 2, 4 or 5, e.g. 5.7.1)", b.Enhanced)
		case class != 0 && int(m[1][0]-'0') != class:
			v.errorf(p+".enhanced", "class %s of %q does not match %s", m[1], b.Enhanced, classSource(b))
		}
	}
	if b.Action == "stall" && b.Duration <= 0 {
		v.errorf(p+".duration", "stall needs a duration > 0")
	}
	if b.MidData && b.Action != "drop" {
		v.errorf(p+".mid_data", "applies only to drop")
	}
}

func classSource(b Behaviour) string {
	if b.Code != 0 {
		return "reply code " + strconv.Itoa(b.Code)
	}
	return "action " + b.Action
}

func (v *validator) messages() {
	for i, m := range v.s.Messages {
		p := fmt.Sprintf("messages[%d]", i)
		if m.From != "" { // "" is the null reverse-path <>
			if problem := addressProblem(m.From); problem != "" {
				v.errorf(p+".from", "%s", problem)
			}
		}
		if len(m.To) == 0 {
			v.errorf(p+".to", "missing; a message needs at least one recipient")
		}
		for j, to := range m.To {
			if problem := addressProblem(to); problem != "" {
				v.errorf(fmt.Sprintf("%s.to[%d]", p, j), "%s", problem)
			}
		}
		if m.Client != "" {
			if a, err := netip.ParseAddr(m.Client); err != nil || !a.IsLoopback() {
				v.errorf(p+".client", "%q is not a loopback address (127.0.0.0/8 or ::1)", m.Client)
			}
		}
		switch m.Submit {
		case "":
			if m.Via == "" {
				v.errorf(p+".via", "missing (the server the message is submitted to: %s)", v.serversOf("an Edge or a Hub", RoleEdge, RoleHub))
			} else if srv, ok := v.server(m.Via); !ok {
				v.errorf(p+".via", "unknown server %q; via names the server a client submits to: %s", m.Via, v.serversOf("an Edge or a Hub", RoleEdge, RoleHub))
			} else if srv.Role != RoleEdge && srv.Role != RoleHub {
				v.errorf(p+".via", "%q is a %s server, which takes mail only from the Hubs; via names the server a client submits to by SMTP: %s (or give submit: outbox to place the message in the sender's Outbox)",
					m.Via, srv.Role, v.serversOf("an Edge or a Hub", RoleEdge, RoleHub))
			}
		case SubmitOutbox:
			v.outbox(p, m)
		default:
			v.errorf(p+".submit", "unknown %q; submit is left out (SMTP to via) or %q (the sender's mail client places it in the Outbox at via)", m.Submit, SubmitOutbox)
		}
		for j, a := range m.Idle {
			ip := fmt.Sprintf("%s.idle[%d]", p, j)
			if r, ok := v.s.Recipient(a); !ok || r.Mailbox == "" {
				v.errorf(ip, "%q is no recipient with a mailbox in the scenario; idle names recipients whose mail client idles on their INBOX", a)
			} else if r.Password == "" {
				v.errorf(ip, "%q has no password in recipients:, so no mail client of theirs can log in", a)
			}
		}
		v.content(p, m)
		v.expect(p+".expect", m)
	}
}

// SubmitOutbox is Message.Submit for store submission through the Outbox.
const SubmitOutbox = "outbox"

// outbox checks a message placed in the sender's Outbox: the sender logs in, so it
// is a recipient with a password, at its own Mailbox server or a Client Access
// server.
func (v *validator) outbox(p string, m Message) {
	where := func() string {
		return v.serversOf("the sender's Mailbox server or a Client Access server", RoleMailbox, RoleClientAccess)
	}
	r, ok := v.s.Recipient(m.From)
	switch {
	case !ok || r.Mailbox == "":
		v.errorf(p+".from", "%q has no mailbox in the scenario; with submit: outbox the sender logs in to place the message in its Outbox", m.From)
	case r.Password == "":
		v.errorf(p+".from", "%q has no password in recipients:, so it cannot log in to place the message in its Outbox", m.From)
	}
	srv, found := v.server(m.Via)
	switch {
	case m.Via == "":
		v.errorf(p+".via", "missing (where the sender's mail client logs in: %s)", where())
	case !found:
		v.errorf(p+".via", "unknown server %q; with submit: outbox via is %s", m.Via, where())
	case srv.Role == RoleMailbox && ok && !strings.EqualFold(srv.Name, r.Mailbox):
		v.errorf(p+".via", "%q is not %s's Mailbox server (%s); with submit: outbox via is %s", m.Via, m.From, r.Mailbox, where())
	case srv.Role != RoleMailbox && srv.Role != RoleClientAccess:
		v.errorf(p+".via", "%q is a %s server, with no Outbox; with submit: outbox via is %s", m.Via, srv.Role, where())
	}
}

// serversOf names the scenario's servers of the given roles, for an error that says
// what is allowed ("an Edge or a Hub (EDGE1, HUB-LON)").
func (v *validator) serversOf(what string, roles ...Role) string {
	var names []string
	for _, s := range v.s.Org.Servers {
		if s.Name != "" && slices.Contains(roles, s.Role) {
			names = append(names, s.Name)
		}
	}
	if len(names) == 0 {
		return what + ", of which the scenario has none"
	}
	if len(names) > 8 {
		names = append(names[:8:8], "…")
	}
	return what + " (" + strings.Join(names, ", ") + ")"
}

// expect checks a message's expectations against what `mailflow repro` can observe.
func (v *validator) expect(p string, m Message) {
	mailboxes := func() string { return v.serversOf("a mailbox server", RoleMailbox) }
	for j, d := range m.Expect.Delivered {
		dp := fmt.Sprintf("%s.delivered[%d]", p, j)
		server, local, ok := strings.Cut(d, "/")
		if !ok || server == "" || local == "" || strings.ContainsAny(local, "@/ ") {
			v.errorf(dp, "%q is not SERVER/local-part: want the mailbox server and the recipient's local part, e.g. MBX-BER/bob; SERVER is %s", d, mailboxes())
			continue
		}
		switch srv, found := v.server(server); {
		case !found:
			v.errorf(dp, "unknown server %q; SERVER is %s", server, mailboxes())
		case srv.Role != RoleMailbox:
			v.errorf(dp, "%q is a %s server, which stores no mail; SERVER is %s", server, srv.Role, mailboxes())
		}
	}
	if m.Expect.Rejected != "" {
		if _, err := ParseReplyCode(m.Expect.Rejected); err != nil {
			v.errorf(p+".rejected", "%v", err)
		}
	}
	origin := m.Via
	if r, ok := v.s.Recipient(m.From); ok && m.Submit == SubmitOutbox && r.Mailbox != "" {
		// Through a Client Access server too, the Outbox is on the sender's Mailbox
		// server, where the path begins.
		origin = r.Mailbox
	}
	for j, path := range m.Expect.Path {
		if problem := v.pathProblem(path, origin); problem != "" {
			v.errorf(fmt.Sprintf("%s.path[%d]", p, j), "%s", problem)
		}
	}
}

// pathProblem says what is wrong with an expected hop path, or "". A path is the
// servers the recipient's copy went through, from via, joined by " -> ", ending with
// where it ended: MAILBOX-SERVER:local-part when stored, "HOST (SEND CONNECTOR)" when
// it left the organisation, "failed: REPLY" when it failed.
func (v *validator) pathProblem(path, via string) string {
	const want = `a path is "SERVER -> SERVER -> ... -> END" from the via server, END being MAILBOX-SERVER:local-part, HOST (SEND CONNECTOR) or failed: REPLY`
	hops := strings.Split(path, " -> ")
	if len(hops) < 2 {
		return fmt.Sprintf("%q has no hops: %s", path, want)
	}
	if via != "" && !strings.EqualFold(hops[0], via) {
		return fmt.Sprintf("%q starts at %q, not at the via server %s: %s", path, hops[0], via, want)
	}
	for i, h := range hops[:len(hops)-1] {
		if i == 0 && via != "" {
			// The origin: an Edge or a Hub for SMTP, the sender's Mailbox server for
			// a message from its Outbox; which one via may be is checked with via.
			continue
		}
		if srv, ok := v.server(h); !ok || srv.Role != RoleEdge && srv.Role != RoleHub {
			return fmt.Sprintf("%q: %q is not an Edge or a Hub; a hop before the end is %s", path, h, v.serversOf("a transport server", RoleEdge, RoleHub))
		}
	}
	end := hops[len(hops)-1]
	switch {
	case strings.HasPrefix(end, "failed: "):
		return ""
	case strings.HasSuffix(end, ")") && strings.Contains(end, " ("):
		conn := end[strings.LastIndex(end, " (")+2 : len(end)-1]
		for _, c := range v.s.Org.SendConnectors {
			if strings.EqualFold(c.Name, conn) {
				return ""
			}
		}
		for _, c := range []string{"EdgeSync - Inbound", "Intra-Organization SMTP"} {
			if strings.EqualFold(c, conn) {
				return ""
			}
		}
		return fmt.Sprintf("%q ends at unknown send connector %q: %s", path, conn, want)
	}
	server, local, ok := strings.Cut(end, ":")
	if !ok || local == "" {
		return fmt.Sprintf("%q ends at %q: %s", path, end, want)
	}
	switch srv, found := v.server(server); {
	case !found:
		return fmt.Sprintf("%q ends at unknown server %q; MAILBOX-SERVER is %s", path, server, v.serversOf("a mailbox server", RoleMailbox))
	case srv.Role != RoleMailbox:
		return fmt.Sprintf("%q ends at %q, a %s server, which stores no mail; MAILBOX-SERVER is %s", path, server, srv.Role, v.serversOf("a mailbox server", RoleMailbox))
	}
	return ""
}

// addressProblem says why s is not a bare local@domain address, or "" when it is.
func addressProblem(s string) string {
	a, err := mail.ParseAddress(s)
	if err != nil {
		return fmt.Sprintf("%q is not a valid address (want local@domain)", s)
	}
	if a.Name != "" || strings.ContainsAny(s, "<>") {
		return fmt.Sprintf("%q is not a bare address (want local@domain, no display name or brackets)", s)
	}
	// net/mail skips white space around an address (" bob@b.test" reads as
	// bob@b.test), but suites and servers use the text as written, so the text must be
	// the address itself, quoted only where its local part needs quotes.
	if a.String() != "<"+s+">" {
		return fmt.Sprintf("%q is not a bare address (want local@domain with nothing around it)", s)
	}
	if d := s[strings.LastIndex(s, "@")+1:]; !validDomain(d) {
		return fmt.Sprintf("%q is not a valid address (%q is not a domain name)", s, d)
	}
	return ""
}

func canonDomain(d string) string { return strings.TrimSuffix(strings.ToLower(d), ".") }

// validDomain accepts a host name: dot-separated LDH labels, an optional trailing
// dot, and a last label that is not all digits (so "10.0.0.1" is not a domain).
func validDomain(d string) bool {
	d = strings.TrimSuffix(d, ".")
	if d == "" || len(d) > 253 {
		return false
	}
	labels := strings.Split(d, ".")
	for _, l := range labels {
		if !validLabel(l) {
			return false
		}
	}
	_, err := strconv.Atoi(labels[len(labels)-1])
	return err != nil
}

func validLabel(l string) bool {
	if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
		return false
	}
	for _, c := range l {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// validDomainPattern accepts a domain or "*.domain".
func validDomainPattern(d string) bool {
	return validDomain(strings.TrimPrefix(d, "*."))
}

func validIPRange(s string) bool {
	_, err := ParseIPRange(s)
	return err == nil
}

func validPort(s string) bool {
	n, err := strconv.Atoi(s)
	return err == nil && n >= 1 && n <= 65535 && s[0] != '+'
}

func bindProblem(s string) string {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return fmt.Sprintf("%q is not host:port or :port", s)
	}
	if host != "" && !validDomain(host) {
		if _, err := netip.ParseAddr(host); err != nil {
			return fmt.Sprintf("%q: %q is not an IP address or host name", s, host)
		}
	}
	if !validPort(port) {
		return fmt.Sprintf("%q: invalid port %q (want 1-65535)", s, port)
	}
	return ""
}

// agents checks an Edge's agent settings (FILTER-018); the agents run on Edge servers
// only, so settings on another role would silently do nothing.
func (v *validator) agents(p string, sv Server) {
	if sv.Role != RoleEdge && sv.Role != "" && sv.Agents.configured() {
		v.errorf(p, "agents run on edge servers only, not on a %s server", sv.Role)
		return
	}
	cf := sv.Agents.ConnectionFilter
	cp := p + ".connection_filter"
	for _, l := range []struct {
		key  string
		list []string
	}{{"ip_allow_list", cf.IPAllowList}, {"ip_block_list", cf.IPBlockList}} {
		for j, r := range l.list {
			if !validIPRange(r) {
				v.errorf(fmt.Sprintf("%s.%s[%d]", cp, l.key, j), "%q is not a CIDR prefix or IP address", r)
			}
		}
	}
	if cf.LookupTimeout < 0 {
		v.errorf(cp+".lookup_timeout", "must be positive, got %s", cf.LookupTimeout)
	}
	zones := map[string]string{}
	for i, pr := range cf.Providers {
		pp := fmt.Sprintf("%s.block_list_providers[%d]", cp, i)
		switch k := canonDomain(pr.Zone); {
		case pr.Zone == "":
			v.errorf(pp+".zone", "missing (a block list provider needs a zone)")
		case !validDomain(pr.Zone):
			v.errorf(pp+".zone", "%q is not a valid zone name", pr.Zone)
		case zones[k] != "":
			v.errorf(pp+".zone", "duplicate zone %q (first at line %d)", pr.Zone, v.line(zones[k]))
		default:
			zones[k] = pp + ".zone"
		}
		for j, a := range pr.IPAddressesMatch {
			if problem := returnCodeProblem(a); problem != "" {
				v.errorf(fmt.Sprintf("%s.ip_addresses_match[%d]", pp, j), "%s", problem)
			}
		}
		if pr.BitmaskMatch != "" {
			if problem := returnCodeProblem(pr.BitmaskMatch); problem != "" {
				v.errorf(pp+".bitmask_match", "%s", problem)
			} else if len(pr.IPAddressesMatch) > 0 {
				v.errorf(pp+".bitmask_match", "set with ip_addresses_match; a provider matches one way (Exchange's BitmaskMatch or IPAddressesMatch)")
			}
		}
		if strings.ContainsAny(pr.RejectionResponse, "\r\n") {
			v.errorf(pp+".rejection_response", "must be one line")
		}
	}
	for j, r := range cf.BypassedRecipients {
		if strings.Contains(r, "@") {
			if problem := addressProblem(r); problem != "" {
				v.errorf(fmt.Sprintf("%s.bypassed_recipients[%d]", cp, j), "%s", problem)
			}
		} else if r == "" || strings.ContainsAny(r, " <>\t") {
			v.errorf(fmt.Sprintf("%s.bypassed_recipients[%d]", cp, j), "%q is neither an address nor a local part", r)
		}
	}
	sf := sv.Agents.SenderFilter
	sp := p + ".sender_filter"
	for j, a := range sf.BlockedSenders {
		if problem := addressProblem(a); problem != "" {
			v.errorf(fmt.Sprintf("%s.blocked_senders[%d]", sp, j), "%s", problem)
		}
	}
	for j, d := range sf.BlockedDomains {
		if !validDomainPattern(d) {
			v.errorf(fmt.Sprintf("%s.blocked_domains[%d]", sp, j), "%q is not a domain name or *.domain", d)
		}
	}
	switch sf.Action {
	case "", SenderFilterReject, SenderFilterStamp:
	default:
		v.errorf(sp+".action", "unknown action %q; want one of %s, %s", sf.Action, SenderFilterReject, SenderFilterStamp)
	}
	if sf.StampSCL != nil && (*sf.StampSCL < 0 || *sf.StampSCL > 9) {
		v.errorf(sp+".stamp_scl", "an SCL is 0-9, got %d", *sf.StampSCL)
	}
	switch sv.Agents.SPF.Action {
	case "", SPFStamp, SPFReject:
	default:
		v.errorf(p+".spf.action", "unknown action %q; want one of %s, %s", sv.Agents.SPF.Action, SPFStamp, SPFReject)
	}
	v.attachmentFilter(p+".attachment_filter", sv.Agents.AttachmentFilter)
	switch av := sv.Agents.Antivirus; av.Action {
	case "", AntivirusDelete, AntivirusReject, AntivirusStrip:
	default:
		v.errorf(p+".antivirus.action", "unknown action %q; want one of %s, %s, %s", av.Action, AntivirusDelete, AntivirusReject, AntivirusStrip)
	}
	if strings.ContainsAny(sv.Agents.Antivirus.RejectResponse, "\r\n") {
		v.errorf(p+".antivirus.reject_response", "must be one line")
	}
	v.contentFilter(p+".content_filter", sv.Agents.ContentFilter)
	v.transportRules(p+".transport_rules", sv.Agents.TransportRules, false)
	v.addressRewriting(p+".address_rewriting", sv.Agents.AddressRewriting)
}

// addressRewriting checks the address rewriting entries (FILTER-017): an address
// maps to an address, a domain to a domain, and "*.domain" outbound only.
func (v *validator) addressRewriting(p string, es []AddressRewrite) {
	for i, e := range es {
		ep := fmt.Sprintf("%s[%d]", p, i)
		in := e.Internal
		isAddr := false
		switch {
		case strings.HasPrefix(in, "*@"):
			in = in[2:]
		case strings.HasPrefix(in, "*."):
			in = in[2:]
			if e.Bidirectional {
				v.errorf(ep+".bidirectional", "%q covers sub-domains: it rewrites outbound only", e.Internal)
			}
		case strings.Contains(in, "@"):
			isAddr = true
		}
		switch {
		case isAddr:
			if problem := addressProblem(in); problem != "" {
				v.errorf(ep+".internal", "%s", problem)
			}
			if problem := addressProblem(e.External); problem != "" {
				v.errorf(ep+".external", "%s (an address rewrites to an address)", problem)
			}
		default:
			if !validDomain(in) {
				v.errorf(ep+".internal", "%q is not an address, a domain, *@domain or *.domain", e.Internal)
			}
			if !validDomain(e.External) {
				v.errorf(ep+".external", "%q is not a domain (a domain rewrites to a domain)", e.External)
			}
		}
	}
}

// transportRules checks a list of transport rules (FILTER-011, FILTER-012): names and
// priorities unique, every condition and action well-formed, and a refusal's status
// one that rules may give: on a Hub (org) the NDR's 5.7.1 or 5.7.900 to 5.7.999.
func (v *validator) transportRules(p string, rs []TransportRule, org bool) {
	names, prios := map[string]string{}, map[int]string{}
	for i, r := range rs {
		rp := fmt.Sprintf("%s[%d]", p, i)
		switch k := strings.ToLower(r.Name); {
		case r.Name == "":
			v.errorf(rp+".name", "missing (a rule needs a name)")
		case names[k] != "":
			v.errorf(rp+".name", "duplicate rule name %q (first at line %d)", r.Name, v.line(names[k]))
		default:
			names[k] = rp + ".name"
		}
		prio := i
		if r.Priority != nil {
			prio = *r.Priority
			if prio < 0 {
				v.errorf(rp+".priority", "must not be negative, got %d", prio)
			}
		}
		if first, ok := prios[prio]; ok {
			v.errorf(rp+".priority", "priority %d is also %s's; rules apply in one order", prio, first)
		} else {
			prios[prio] = rp
		}
		v.ruleConditions(rp+".when", r.When)
		v.ruleActions(rp+".then", r.Then, org)
	}
}

func (v *validator) ruleConditions(p string, c RuleConditions) {
	for _, l := range []struct {
		key  string
		list []string
	}{{"from", c.From}, {"sent_to", c.SentTo}} {
		for j, a := range l.list {
			if problem := addressProblem(a); problem != "" {
				v.errorf(fmt.Sprintf("%s.%s[%d]", p, l.key, j), "%s", problem)
			}
		}
	}
	for j, d := range c.RecipientDomainIs {
		if !validDomain(d) {
			v.errorf(fmt.Sprintf("%s.recipient_domain_is[%d]", p, j), "%q is not a domain name", d)
		}
	}
	for j, w := range c.SubjectOrBodyContains {
		if strings.TrimSpace(w) == "" || strings.ContainsAny(w, "\r\n") {
			v.errorf(fmt.Sprintf("%s.subject_or_body_contains[%d]", p, j), "%q is not a word or phrase", w)
		}
	}
	if h := c.HeaderContains; h != nil && !validFieldName(h.Name) {
		v.errorf(p+".header_contains.name", "%q is not a header field name", h.Name)
	}
	for j, n := range c.AttachmentNameMatches {
		if _, err := path.Match(n, ""); err != nil || n == "" || strings.ContainsAny(n, "/\\\r\n") {
			v.errorf(fmt.Sprintf("%s.attachment_name_matches[%d]", p, j), "%q is not a file name pattern (\"*.exe\")", n)
		}
	}
	if c.SCLAtLeast != nil && (*c.SCLAtLeast < 0 || *c.SCLAtLeast > 9) {
		v.errorf(p+".scl_at_least", "an SCL is 0-9, got %d", *c.SCLAtLeast)
	}
}

func (v *validator) ruleActions(p string, a RuleActions, org bool) {
	n := 0
	if a.PrependSubject != "" || a.SetHeader != nil || len(a.RedirectTo)+len(a.BlindCopyTo) > 0 {
		n++
	}
	if a.Reject != nil {
		n++
	}
	if a.Delete {
		n++
	}
	switch {
	case n == 0:
		v.errorf(p, "no action (want reject, prepend_subject, set_header, redirect_to, blind_copy_to or delete)")
	case n > 1:
		v.errorf(p, "reject and delete end a message's rules: neither goes with another action")
	}
	if strings.ContainsAny(a.PrependSubject, "\r\n") {
		v.errorf(p+".prepend_subject", "must be one line")
	}
	if h := a.SetHeader; h != nil {
		if !validFieldName(h.Name) {
			v.errorf(p+".set_header.name", "%q is not a header field name", h.Name)
		}
		if strings.ContainsAny(h.Value, "\r\n") {
			v.errorf(p+".set_header.value", "must be one line")
		}
	}
	for _, l := range []struct {
		key  string
		list []string
	}{{"redirect_to", a.RedirectTo}, {"blind_copy_to", a.BlindCopyTo}} {
		for j, addr := range l.list {
			if problem := addressProblem(addr); problem != "" {
				v.errorf(fmt.Sprintf("%s.%s[%d]", p, l.key, j), "%s", problem)
			}
		}
	}
	if r := a.Reject; r != nil {
		if strings.ContainsAny(r.Text, "\r\n") {
			v.errorf(p+".reject.text", "must be one line")
		}
		if r.Status != "" {
			if problem := ruleStatusProblem(r.Status, org); problem != "" {
				v.errorf(p+".reject.status", "%s", problem)
			}
		}
	}
}

// ruleStatusProblem checks a rule's refusal status; "" when it is fine.
func ruleStatusProblem(s string, org bool) string {
	c, err := ParseReplyCode(s)
	if err != nil {
		return err.Error()
	}
	if org {
		if c.Enhanced == "" {
			return fmt.Sprintf("%q has no enhanced code: an organisation rule's NDR says 5.7.1 or 5.7.900 to 5.7.999", s)
		}
		var x, y, z int
		if _, err := fmt.Sscanf(c.Enhanced, "%d.%d.%d", &x, &y, &z); err != nil || x != 5 || y != 7 || z != 1 && (z < 900 || z > 999) {
			return fmt.Sprintf("%q: an organisation rule's NDR says 5.7.1 or 5.7.900 to 5.7.999", s)
		}
	}
	return ""
}

// validFieldName says whether s is an RFC 5322 field name.
func validFieldName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 33 || s[i] > 126 || s[i] == ':' {
			return false
		}
	}
	return true
}

// attachmentFilter checks the Attachment Filtering agent's settings (FILTER-016).
func (v *validator) attachmentFilter(p string, af AttachmentFilter) {
	for j, n := range af.BlockedNames {
		if _, err := path.Match(n, ""); err != nil || n == "" || strings.ContainsAny(n, "/\\\r\n") {
			v.errorf(fmt.Sprintf("%s.blocked_names[%d]", p, j), "%q is not a file name pattern (\"*.exe\")", n)
		}
	}
	for j, t := range af.BlockedTypes {
		if mt, params, err := mime.ParseMediaType(t); err != nil || len(params) > 0 || !strings.Contains(mt, "/") {
			v.errorf(fmt.Sprintf("%s.blocked_types[%d]", p, j), "%q is not a media type (type/subtype)", t)
		}
	}
	switch af.Action {
	case "", AttachmentReject, AttachmentStrip, AttachmentSilentDelete:
	default:
		v.errorf(p+".action", "unknown action %q; want one of %s, %s, %s", af.Action, AttachmentReject, AttachmentStrip, AttachmentSilentDelete)
	}
	if strings.ContainsAny(af.RejectResponse, "\r\n") {
		v.errorf(p+".reject_response", "must be one line")
	}
}

// contentFilter checks the Content Filter agent's settings (FILTER-013).
func (v *validator) contentFilter(p string, cf ContentFilter) {
	if cf.Spamd != "" {
		if _, port, err := net.SplitHostPort(cf.Spamd); err != nil || port == "" {
			v.errorf(p+".spamd", "%q is not host:port (the spamd the filter asks)", cf.Spamd)
		}
	}
	for _, t := range []struct {
		name string
		scl  *int
	}{{"scl_delete_threshold", cf.SCLDeleteThreshold}, {"scl_reject_threshold", cf.SCLRejectThreshold}, {"scl_quarantine_threshold", cf.SCLQuarantineThreshold}} {
		if t.scl != nil && (*t.scl < 0 || *t.scl > 9) {
			v.errorf(p+"."+t.name, "an SCL is 0-9, got %d", *t.scl)
		}
	}
	if cf.SCLQuarantineThreshold != nil {
		if problem := addressProblem(cf.QuarantineMailbox); problem != "" {
			v.errorf(p+".quarantine_mailbox", "%s (the quarantine threshold needs a mailbox)", problem)
		}
	}
	if strings.ContainsAny(cf.RejectResponse, "\r\n") {
		v.errorf(p+".reject_response", "must be one line")
	}
}

func (af AttachmentFilter) configured() bool {
	return af.Enabled != nil || len(af.BlockedNames)+len(af.BlockedTypes) > 0 || af.Action != "" || af.RejectResponse != ""
}

// returnCodeProblem checks a DNSBL return code: an IPv4 address in 127.0.0.0/8 (RFC
// 5782 §2.1), which is all a listing ever answers.
func returnCodeProblem(s string) string {
	a, err := netip.ParseAddr(s)
	if err != nil || !a.Is4() || !a.IsLoopback() {
		return fmt.Sprintf("%q is not a return code (an IPv4 address in 127.0.0.0/8)", s)
	}
	return ""
}

// configured says whether any agent setting is given (an empty list is none).
func (a Agents) configured() bool {
	cf, sf := a.ConnectionFilter, a.SenderFilter
	return cf.Enabled != nil || len(cf.IPAllowList)+len(cf.IPBlockList)+len(cf.Providers)+len(cf.BypassedRecipients) > 0 ||
		cf.LookupTimeout != 0 || sf.Enabled != nil || len(sf.BlockedSenders)+len(sf.BlockedDomains) > 0 ||
		sf.BlankSenderBlocking || sf.Action != "" || sf.StampSCL != nil || a.SPF.Enabled || a.SPF.Action != "" ||
		a.AttachmentFilter.configured() || a.Antivirus != (Antivirus{}) || a.ContentFilter.configured() || len(a.TransportRules)+len(a.AddressRewriting) > 0
}
