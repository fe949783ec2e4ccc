package resolve

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/miekg/dns"
)

const (
	defaultTimeout  = 2 * time.Second
	defaultAttempts = 2
	// maxHops bounds CNAME chasing across queries, as resolvers do, against loops.
	maxHops = 8
	// ednsSize is the DNS Flag Day 2020 buffer size: large enough for most test answers,
	// small enough that TCP fallback still gets exercised by big ones.
	ednsSize = 1232
)

// MX is one mail exchanger. Host is lower-case without trailing dot; a null MX (RFC 7505)
// has Host "".
type MX struct {
	Host string
	Pref uint16
}

// Option configures New.
type Option func(*Resolver)

// WithTimeout bounds each query attempt (default 2s).
func WithTimeout(d time.Duration) Option {
	return func(r *Resolver) {
		if d > 0 {
			r.timeout = d
		}
	}
}

// WithAttempts sets how often a query is sent before it counts as timed out (default 2).
func WithAttempts(n int) Option {
	return func(r *Resolver) {
		if n > 0 {
			r.attempts = n
		}
	}
}

// Resolver queries one DNS server. It is safe for concurrent use.
type Resolver struct {
	server   string
	timeout  time.Duration
	attempts int
}

// New returns a resolver for the server at host:port.
func New(server string, opts ...Option) *Resolver {
	r := &Resolver{server: server, timeout: defaultTimeout, attempts: defaultAttempts}
	for _, o := range opts {
		o(r)
	}
	return r
}

// LookupMX returns the MX records of domain, following a CNAME at the name (DNS-009), sorted
// by preference with the server's order kept among equals.
func (r *Resolver) LookupMX(ctx context.Context, domain string) ([]MX, error) {
	rrs, err := r.lookup(ctx, domain, dns.TypeMX)
	if err != nil {
		return nil, err
	}
	out := make([]MX, 0, len(rrs))
	for _, rr := range rrs {
		mx := rr.(*dns.MX)
		out = append(out, MX{Host: strings.ToLower(strings.TrimSuffix(mx.Mx, ".")), Pref: mx.Preference})
	}
	slices.SortStableFunc(out, func(a, b MX) int { return cmp.Compare(a.Pref, b.Pref) })
	return out, nil
}

// LookupA returns the IPv4 addresses of name in resolver order.
func (r *Resolver) LookupA(ctx context.Context, name string) ([]netip.Addr, error) {
	return r.lookupAddrs(ctx, name, dns.TypeA)
}

// LookupAddrs returns the A then the AAAA addresses of host, each in resolver order
// (DNS-013). When one family has addresses, a failure of the other is not reported, because
// delivery can proceed; otherwise a temporary failure wins over NXDOMAIN and NODATA.
func (r *Resolver) LookupAddrs(ctx context.Context, host string) ([]netip.Addr, error) {
	v4, err4 := r.lookupAddrs(ctx, host, dns.TypeA)
	if errors.Is(err4, ErrNXDomain) {
		return nil, err4
	}
	v6, err6 := r.lookupAddrs(ctx, host, dns.TypeAAAA)
	if addrs := append(v4, v6...); len(addrs) > 0 {
		return addrs, nil
	}
	for _, err := range []error{err4, err6} {
		if IsTemporary(err) {
			return nil, err
		}
	}
	if err6 != nil && !errors.Is(err6, ErrNoData) {
		return nil, err6
	}
	return nil, err4
}

// LookupTXT returns each TXT record of name as one string, its character-strings joined.
func (r *Resolver) LookupTXT(ctx context.Context, name string) ([]string, error) {
	rrs, err := r.lookup(ctx, name, dns.TypeTXT)
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(rrs))
	for _, rr := range rrs {
		out = append(out, strings.Join(rr.(*dns.TXT).Txt, ""))
	}
	return out, nil
}

func (r *Resolver) lookupAddrs(ctx context.Context, name string, qtype uint16) ([]netip.Addr, error) {
	rrs, err := r.lookup(ctx, name, qtype)
	if err != nil {
		return nil, err
	}
	out := make([]netip.Addr, 0, len(rrs))
	for _, rr := range rrs {
		var ip netip.Addr
		switch v := rr.(type) {
		case *dns.A:
			ip, _ = netip.AddrFromSlice(v.A.To4())
		case *dns.AAAA:
			ip, _ = netip.AddrFromSlice(v.AAAA.To16())
		}
		if ip.IsValid() {
			out = append(out, ip)
		}
	}
	return out, nil
}

// lookup returns the records of qtype at name, following CNAMEs inside an answer and, when
// the server stops at a CNAME whose target it did not include, with a new query.
func (r *Resolver) lookup(ctx context.Context, name string, qtype uint16) ([]dns.RR, error) {
	qname := dns.Fqdn(strings.TrimSpace(name))
	if _, ok := dns.IsDomainName(qname); !ok {
		return nil, fmt.Errorf("resolve %s: invalid name %q", dns.TypeToString[qtype], name)
	}
	cur := qname
	for range maxHops {
		msg, err := r.exchange(ctx, cur, qtype)
		if err != nil {
			return nil, err
		}
		var rrs []dns.RR
		rrs, cur = chase(msg.Answer, cur, qtype)
		if len(rrs) > 0 {
			return rrs, nil
		}
		switch {
		case msg.Rcode == dns.RcodeNameError:
			return nil, fmt.Errorf("resolve %s %s: %w", qname, dns.TypeToString[qtype], ErrNXDomain)
		case !endsInCNAME(msg.Answer, cur):
			return nil, fmt.Errorf("resolve %s %s: %w", qname, dns.TypeToString[qtype], ErrNoData)
		}
	}
	return nil, &TempError{Name: qname, Reason: "CNAME chain too long"}
}

// chase walks the CNAME chain from name inside answer and returns the records of qtype at its
// end, and the name it ended at.
func chase(answer []dns.RR, name string, qtype uint16) ([]dns.RR, string) {
	seen := map[string]bool{}
	for !seen[strings.ToLower(name)] {
		seen[strings.ToLower(name)] = true
		var out []dns.RR
		next := ""
		for _, rr := range answer {
			h := rr.Header()
			if !strings.EqualFold(h.Name, name) {
				continue
			}
			if h.Rrtype == qtype {
				out = append(out, rr)
			} else if c, ok := rr.(*dns.CNAME); ok && qtype != dns.TypeCNAME {
				next = c.Target
			}
		}
		if len(out) > 0 || next == "" {
			return out, name
		}
		name = next
	}
	return nil, name
}

// endsInCNAME reports whether the chain stopped at name because name is a CNAME target the
// server did not resolve, so another query is needed.
func endsInCNAME(answer []dns.RR, name string) bool {
	for _, rr := range answer {
		if c, ok := rr.(*dns.CNAME); ok && strings.EqualFold(c.Target, name) {
			return true
		}
	}
	return false
}

// exchange sends one question, retrying on timeouts and network errors and switching to TCP
// when the UDP answer is truncated. Only NOERROR and NXDOMAIN answers are returned.
func (r *Resolver) exchange(ctx context.Context, name string, qtype uint16) (*dns.Msg, error) {
	q := new(dns.Msg)
	q.SetQuestion(name, qtype)
	q.RecursionDesired = true
	q.SetEdns0(ednsSize, false)

	var lastErr error
	for range r.attempts {
		if err := ctx.Err(); err != nil {
			return nil, &TempError{Name: name, Reason: err.Error(), err: err}
		}
		resp, err := r.once(ctx, "udp", q)
		if err == nil && resp.Truncated {
			resp, err = r.once(ctx, "tcp", q)
		}
		if err != nil {
			lastErr = err
			continue
		}
		switch resp.Rcode {
		case dns.RcodeSuccess, dns.RcodeNameError:
			return resp, nil
		default:
			// SERVFAIL and REFUSED are the server's considered answer; asking again at once
			// would only double the query log.
			return nil, &TempError{Name: name, Reason: dns.RcodeToString[resp.Rcode]}
		}
	}
	reason := lastErr.Error()
	var te interface{ Timeout() bool }
	if errors.As(lastErr, &te) && te.Timeout() {
		reason = "timeout"
	}
	return nil, &TempError{Name: name, Reason: reason, err: lastErr}
}

func (r *Resolver) once(ctx context.Context, network string, q *dns.Msg) (*dns.Msg, error) {
	c := &dns.Client{Net: network, Timeout: r.timeout}
	conn, err := c.DialContext(ctx, r.server)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	// The client honours only context deadlines; closing the socket makes cancellation
	// interrupt a read too.
	stop := context.AfterFunc(ctx, func() { _ = conn.Close() })
	defer stop()
	resp, _, err := c.ExchangeWithConnContext(ctx, q, conn)
	if err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return nil, ctxErr
		}
		return nil, err
	}
	return resp, nil
}

// LookupPTR returns the names the PTR records of ip's reverse name point to, lower-case
// without the trailing dot (SPF's ptr mechanism and %{p} macro, RFC 7208 §5.5).
func (r *Resolver) LookupPTR(ctx context.Context, ip netip.Addr) ([]string, error) {
	name := reverseAddr(ip)
	if name == "" {
		return nil, fmt.Errorf("resolve PTR: invalid address %v", ip)
	}
	rrs, err := r.lookup(ctx, name, dns.TypePTR)
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(rrs))
	for _, rr := range rrs {
		out = append(out, strings.ToLower(strings.TrimSuffix(rr.(*dns.PTR).Ptr, ".")))
	}
	return out, nil
}

// reverseAddr is ip's name under in-addr.arpa or ip6.arpa.
func reverseAddr(ip netip.Addr) string {
	if !ip.IsValid() {
		return ""
	}
	if ip.Unmap().Is4() {
		return ReverseName(ip, "in-addr.arpa")
	}
	return ReverseName(ip, "ip6.arpa")
}
