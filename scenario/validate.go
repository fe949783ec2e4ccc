package scenario

import (
	"fmt"
	"net"
	"net/mail"
	"net/netip"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

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
	v.receiveConnectors()
	v.sendConnectors()
	v.recipients()
	v.internet()
	v.messages()
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
		case RoleEdge, RoleHub, RoleMailbox:
		case "":
			v.errorf(p+".role", "missing; want one of edge, hub, mailbox")
		default:
			v.errorf(p+".role", "unknown role %q; want one of edge, hub, mailbox", sv.Role)
		}
		switch {
		case sv.Site != "":
			if _, ok := v.sites[strings.ToLower(sv.Site)]; !ok {
				v.errorf(p+".site", "unknown site %q%s", sv.Site, known(siteNames, "sites"))
			}
		case len(v.s.Org.Sites) > 0 && (sv.Role == RoleHub || sv.Role == RoleMailbox):
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
		if r.ForwardTo != "" && typ != RecipientMailbox {
			v.errorf(p+".forward_to", "only mailboxes forward")
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
		if m.Via == "" {
			v.errorf(p+".via", "missing (the server the message is submitted to)")
		} else if _, ok := v.server(m.Via); !ok {
			v.unknownServer(p+".via", m.Via)
		}
	}
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
	if _, err := netip.ParsePrefix(s); err == nil {
		return true
	}
	_, err := netip.ParseAddr(s)
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
