package live

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
)

// Scheme is how a live host target is written: smtp://HOST[:PORT].
const Scheme = "smtp://"

// DefaultPort is the port of a target URL without one.
const DefaultPort = 25

// Host is the MTA a live run talks to, as the --target URL names it.
type Host struct {
	// Name is the host as written: an IP literal (without brackets) or a DNS name.
	Name string
	Port uint16
}

// String is the URL form, smtp://HOST:PORT.
func (h Host) String() string {
	return Scheme + net.JoinHostPort(h.Name, strconv.Itoa(int(h.Port)))
}

// IsTarget says whether a --target value names a live host.
func IsTarget(s string) bool {
	return len(s) >= len(Scheme) && strings.EqualFold(s[:len(Scheme)], Scheme)
}

// ParseTarget reads smtp://HOST[:PORT] (port 25 unless given). HOST is an IP
// literal, IPv6 in brackets, or a name the run resolves once; nothing else (user,
// path, query) belongs in it.
func ParseTarget(raw string) (Host, error) {
	bad := func(format string, args ...any) (Host, error) {
		return Host{}, fmt.Errorf("target %q: %s (a live host is smtp://HOST[:PORT], e.g. smtp://192.0.2.25:25)", raw, fmt.Sprintf(format, args...))
	}
	if !IsTarget(raw) {
		return bad("not an smtp:// URL")
	}
	u, err := url.Parse(raw)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return bad("%v", err)
	}
	switch {
	case u.User != nil:
		return bad("no user or password belongs in it")
	case u.Path != "" && u.Path != "/":
		return bad("no path belongs in it (%q)", u.Path)
	case u.RawQuery != "" || u.ForceQuery:
		return bad("no query belongs in it")
	case u.Fragment != "":
		return bad("no fragment belongs in it")
	case u.Opaque != "":
		return bad("the host must follow smtp://")
	}
	name := u.Hostname()
	if name == "" {
		return bad("no host")
	}
	h := Host{Name: name, Port: DefaultPort}
	if p := u.Port(); p != "" {
		n, err := strconv.ParseUint(p, 10, 16)
		if err != nil || n == 0 {
			return bad("port %q is not 1-65535", p)
		}
		h.Port = uint16(n)
	} else if strings.HasSuffix(u.Host, ":") {
		return bad("empty port")
	}
	if strings.HasPrefix(u.Host, "[") {
		a, err := netip.ParseAddr(name)
		if err != nil || !a.Is6() || a.Is4In6() {
			return bad("%q in brackets is not an IPv6 address", name)
		}
	} else if _, err := netip.ParseAddr(name); err != nil && !validName(name) {
		return bad("host %q is neither an IP address nor a DNS name", name)
	}
	return h, nil
}

// validName says whether s is a DNS host name (letters, digits, hyphens, dots).
func validName(s string) bool {
	s = strings.TrimSuffix(s, ".")
	if s == "" || len(s) > 253 {
		return false
	}
	for _, label := range strings.Split(s, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, c := range label {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}

// MaxListen is how many addresses of --listen a run uses at most: a world needs a few
// (the fake DNS, a Hub stand-in, each fake Internet host, each client range).
const MaxListen = 1024

// Pool is the addresses of this host the harness may serve the fake DNS and sinks on,
// and dial from as the scenario's clients, in the order given.
type Pool struct {
	// Spec is --listen as given.
	Spec  string
	Addrs []netip.Addr
}

// ParseListen reads --listen: addresses and prefixes separated by commas
// ("192.0.2.100,192.0.2.101", "192.0.2.96/28"). A prefix gives its host addresses
// (an IPv4 prefix of /30 or wider without its network and broadcast addresses), in
// order; ports are fixed (53 for the DNS, 25 for the sinks), so none may be given.
func ParseListen(spec string) (Pool, error) {
	bad := func(format string, args ...any) (Pool, error) {
		return Pool{}, fmt.Errorf("--listen %q: %s (give addresses of this host, ADDR[,ADDR...] or a prefix such as 192.0.2.96/28)", spec, fmt.Sprintf(format, args...))
	}
	if strings.TrimSpace(spec) == "" {
		return bad("no address")
	}
	p := Pool{Spec: spec}
	seen := map[netip.Addr]bool{}
	add := func(a netip.Addr, item string) error {
		a = a.Unmap()
		switch {
		case a.IsUnspecified():
			return fmt.Errorf("%s is the unspecified address; the MTA needs one it can reach", item)
		case a.IsMulticast():
			return fmt.Errorf("%s is a multicast address", item)
		case a.Zone() != "":
			return fmt.Errorf("%s has a zone; use a global or unique local address", item)
		case seen[a]:
			return fmt.Errorf("%s is given twice", a)
		}
		seen[a] = true
		if len(p.Addrs) < MaxListen {
			p.Addrs = append(p.Addrs, a)
		}
		return nil
	}
	for _, item := range strings.Split(spec, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			return bad("an empty entry")
		}
		if strings.Contains(item, "/") {
			pfx, err := netip.ParsePrefix(item)
			if err != nil {
				return bad("%q is not a prefix", item)
			}
			if err := hostsOf(pfx, func(a netip.Addr) error { return add(a, a.String()) }); err != nil {
				return bad("%v", err)
			}
			continue
		}
		a, err := netip.ParseAddr(item)
		if err != nil {
			if ap, perr := netip.ParseAddrPort(item); perr == nil {
				return bad("%q has a port; give the address alone (the fake DNS listens on port 53, the sinks on 25)", ap)
			}
			return bad("%q is not an IP address", item)
		}
		if err := add(a, item); err != nil {
			return bad("%v", err)
		}
	}
	return p, nil
}

// hostsOf calls f for each host address of pfx in order, up to MaxListen of them.
func hostsOf(pfx netip.Prefix, f func(netip.Addr) error) error {
	pfx = pfx.Masked()
	a := pfx.Addr()
	// An IPv4 network and broadcast address serve no host, nor does an IPv6
	// subnet-router anycast address.
	skipEnds := a.Is4() && pfx.Bits() <= 30
	if skipEnds || a.Is6() && pfx.Bits() <= 126 {
		a = a.Next()
	}
	for n := 0; n < MaxListen && a.IsValid() && pfx.Contains(a); n++ {
		next := a.Next()
		if skipEnds && !pfx.Contains(next) {
			break // a is the broadcast address
		}
		if err := f(a); err != nil {
			return err
		}
		a = next
	}
	return nil
}

// CheckLocal says which address of the pool is not this host's: the harness must be
// able to listen on each, and the MTA must reach it there.
func (p Pool) CheckLocal() error {
	for _, a := range p.Addrs {
		l, err := net.Listen("tcp", net.JoinHostPort(a.String(), "0"))
		if err != nil {
			return fmt.Errorf("--listen %q: %s is not an address of this host (%w)", p.Spec, a, err)
		}
		l.Close()
	}
	return nil
}
