package scenario

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// Server finds a server by name, ignoring case as Active Directory does.
func (s *Scenario) Server(name string) (*Server, bool) {
	for i := range s.Org.Servers {
		if strings.EqualFold(s.Org.Servers[i].Name, name) {
			return &s.Org.Servers[i], true
		}
	}
	return nil, false
}

// ServersByRole lists the servers of one role in file order.
func (s *Scenario) ServersByRole(r Role) []*Server {
	var out []*Server
	for i := range s.Org.Servers {
		if s.Org.Servers[i].Role == r {
			out = append(out, &s.Org.Servers[i])
		}
	}
	return out
}

// ReceiveConnectorsOf lists a server's receive connectors in file order; the index
// in this list is the one in the default name "SERVER\DefaultN".
func (s *Scenario) ReceiveConnectorsOf(server string) []*ReceiveConnector {
	var out []*ReceiveConnector
	for i := range s.Org.ReceiveConnectors {
		if strings.EqualFold(s.Org.ReceiveConnectors[i].Server, server) {
			out = append(out, &s.Org.ReceiveConnectors[i])
		}
	}
	return out
}

// Host finds a fake Internet host by name, ignoring case and a trailing dot.
func (s *Scenario) Host(name string) (*Host, bool) {
	k := canonDomain(name)
	for i := range s.Internet.Hosts {
		if canonDomain(s.Internet.Hosts[i].Name) == k {
			return &s.Internet.Hosts[i], true
		}
	}
	return nil, false
}

// Recipient finds a recipient by its primary or proxy address, ignoring case.
func (s *Scenario) Recipient(addr string) (*Recipient, bool) {
	for i := range s.Org.Recipients {
		r := &s.Org.Recipients[i]
		if strings.EqualFold(r.Mail, addr) {
			return r, true
		}
		for _, p := range r.Proxies {
			if strings.EqualFold(p, addr) {
				return r, true
			}
		}
	}
	return nil, false
}

// AcceptedDomain finds the accepted domain that covers domain: an exact entry
// first, else the longest "*.parent" entry where domain is parent or below it
// (ACCEPT-008). Case and a trailing dot are ignored.
func (s *Scenario) AcceptedDomain(domain string) (*AcceptedDomain, bool) {
	d := canonDomain(domain)
	ads := s.Org.AcceptedDomains
	for i := range ads {
		if canonDomain(ads[i].Domain) == d {
			return &ads[i], true
		}
	}
	best, bestLen := -1, -1
	for i := range ads {
		ad := canonDomain(ads[i].Domain)
		parent, ok := strings.CutPrefix(ad, "*.")
		if !ok {
			continue
		}
		if (d == parent || strings.HasSuffix(d, "."+parent)) && len(parent) > bestLen {
			best, bestLen = i, len(parent)
		}
	}
	if best < 0 {
		return nil, false
	}
	return &ads[best], true
}

// DefaultDomain is the domain of postmaster and other organisation addresses: the
// accepted domain marked default, else the first one ("*." stripped), else
// FallbackDomain.
func (s *Scenario) DefaultDomain() string {
	for _, ad := range s.Org.AcceptedDomains {
		if ad.Default {
			return bareDomain(ad.Domain)
		}
	}
	return s.firstDomain()
}

func (s *Scenario) firstDomain() string {
	if len(s.Org.AcceptedDomains) > 0 {
		return bareDomain(s.Org.AcceptedDomains[0].Domain)
	}
	return FallbackDomain
}

func bareDomain(d string) string { return strings.TrimPrefix(canonDomain(d), "*.") }

// SmartHost is one parsed entry of a send connector's smart_hosts.
type SmartHost struct {
	// Host is a name or an IP address, without brackets.
	Host string
	// Port is 0 when the entry names none: the sender's default port applies.
	Port int
	// NoMX is true for an IP address or a bracketed name: connect to that host
	// directly and never look up MX for it (SMART-002).
	NoMX bool
}

// ParseSmartHost reads a smart-host entry: an FQDN, host:port, an IPv4 or IPv6
// literal, or [host] / [ip] with an optional :port.
func ParseSmartHost(s string) (SmartHost, error) {
	bad := fmt.Errorf("%q is not a smart host (want an FQDN, host:port, an IP address, or [host] with an optional :port)", s)
	if rest, ok := strings.CutPrefix(s, "["); ok {
		host, after, ok := strings.Cut(rest, "]")
		if !ok || !(validDomain(host) || isIP(host)) {
			return SmartHost{}, bad
		}
		h := SmartHost{Host: host, NoMX: true}
		if after != "" {
			port, ok := strings.CutPrefix(after, ":")
			if !ok || !validPort(port) {
				return SmartHost{}, bad
			}
			h.Port, _ = strconv.Atoi(port)
		}
		return h, nil
	}
	if isIP(s) {
		return SmartHost{Host: s, NoMX: true}, nil
	}
	if strings.Contains(s, ":") {
		host, port, err := net.SplitHostPort(s)
		// An IPv6 address with a port must be bracketed, which the branch above handles.
		if err != nil || !validPort(port) || strings.Contains(host, ":") || !(validDomain(host) || isIP(host)) {
			return SmartHost{}, bad
		}
		p, _ := strconv.Atoi(port)
		return SmartHost{Host: host, Port: p, NoMX: isIP(host)}, nil
	}
	if !validDomain(s) {
		return SmartHost{}, bad
	}
	return SmartHost{Host: s}, nil
}

// ParseIPRange reads an entry of an IP range list (remote_ip_ranges, an IP Allow or
// Block list): a CIDR prefix, or one address as the prefix of that address alone.
func ParseIPRange(s string) (netip.Prefix, error) {
	if p, err := netip.ParsePrefix(s); err == nil {
		return p, nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q is neither an IP prefix nor an address", s)
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// isIP accepts an IP address without a zone: a zone ("fe80::1%eth0") names an
// interface of one machine, which a scenario cannot know, and netip takes any text
// after "%" for one, so "::%]0" would pass and break "[host]:port" where it is dialled.
func isIP(s string) bool {
	a, err := netip.ParseAddr(s)
	return err == nil && a.Zone() == ""
}

// InactivityTimeout is the shortest inactivity timeout of server's receive connectors
// (0 when none sets one): what one listener serving them all enforces.
func (s *Scenario) InactivityTimeout(server string) time.Duration {
	var d time.Duration
	for _, rc := range s.ReceiveConnectorsOf(server) {
		if t := rc.InactivityTimeout.D(); t > 0 && (d == 0 || t < d) {
			d = t
		}
	}
	return d
}

// RoutingGroupOf is the routing group a server is in, nil for none.
func (s *Scenario) RoutingGroupOf(server string) *RoutingGroup {
	for i := range s.Org.RoutingGroups {
		for _, n := range s.Org.RoutingGroups[i].Servers {
			if strings.EqualFold(n, server) {
				return &s.Org.RoutingGroups[i]
			}
		}
	}
	return nil
}

// Location is where a server routes from: its site, else its routing group ("" for
// neither). An Edge hands inbound mail to the Hubs of its location (ROUTE-015).
func (s *Scenario) Location(server string) string {
	if sv, ok := s.Server(server); ok && sv.Site != "" {
		return sv.Site
	}
	if g := s.RoutingGroupOf(server); g != nil {
		return g.Name
	}
	return ""
}

// RoutingGroupConnector is a routing group connector by name (any case).
func (s *Scenario) RoutingGroupConnector(name string) (*RoutingGroupConnector, bool) {
	for i := range s.Org.RoutingGroupConnectors {
		if strings.EqualFold(s.Org.RoutingGroupConnectors[i].Name, name) {
			return &s.Org.RoutingGroupConnectors[i], true
		}
	}
	return nil, false
}
