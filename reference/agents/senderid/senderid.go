package senderid

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"time"

	"blitiri.com.ar/go/spf"

	"github.com/mailflow/mailflow/reference/agents"
	"github.com/mailflow/mailflow/reference/replies"
	"github.com/mailflow/mailflow/reference/resolve"
)

// Name is the agent's name in trace events, as Exchange calls it.
const Name = "Sender Id Agent"

// HeaderReceivedSPF is the field the agent adds (RFC 7208 §9.1).
const HeaderReceivedSPF = "Received-SPF"

// Resolver is the Edge's DNS (reference/resolve).
type Resolver interface {
	LookupTXT(ctx context.Context, name string) ([]string, error)
	LookupMX(ctx context.Context, domain string) ([]resolve.MX, error)
	LookupAddrs(ctx context.Context, host string) ([]netip.Addr, error)
	LookupPTR(ctx context.Context, ip netip.Addr) ([]string, error)
}

// Filter is the agent; it is shared by the sessions of a server.
type Filter struct {
	dns      Resolver
	hostname string
	reject   bool
	timeout  time.Duration
}

// Option configures New.
type Option func(*Filter)

// WithReject refuses a fail at MAIL instead of stamping it.
func WithReject(on bool) Option { return func(f *Filter) { f.reject = on } }

// WithTimeout bounds one whole evaluation (default 5s); past it the result is
// temperror.
func WithTimeout(d time.Duration) Option {
	return func(f *Filter) {
		if d > 0 {
			f.timeout = d
		}
	}
}

// New makes the agent for the server hostname, which Received-SPF names.
func New(r Resolver, hostname string, opts ...Option) *Filter {
	f := &Filter{dns: r, hostname: hostname, timeout: 5 * time.Second}
	for _, o := range opts {
		o(f)
	}
	return f
}

func (f *Filter) Name() string              { return Name }
func (f *Filter) Priority() agents.Priority { return agents.SenderID }

// check is one transaction's evaluation.
type check struct {
	result        spf.Result
	from, comment string
}

// OnMail evaluates SPF for the sender and refuses a fail when set to reject.
func (f *Filter) OnMail(ctx context.Context, s *agents.Session, from string) agents.Result {
	c := agents.State(s, f, func() *check { return &check{} })
	ip := s.Conn.Remote.Unmap()
	helo := s.Conn.Helo()
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	res, err := spf.CheckHostWithSender(net.IP(ip.AsSlice()), helo, from,
		spf.WithResolver(resolver{f.dns}), spf.WithContext(ctx))
	domain := helo
	if _, d, ok := strings.Cut(from, "@"); ok {
		domain = d
	}
	*c = check{result: res, from: from, comment: comment(f.hostname, res, domain, ip, err)}
	if res == spf.Fail && f.reject {
		return agents.Rejected(replies.SPFFailed(domain, ip.String()), "SPF %s: %s", res, c.comment)
	}
	return agents.Passed()
}

// OnEndOfData adds the Received-SPF field of the transaction's result.
func (f *Filter) OnEndOfData(_ context.Context, s *agents.Session, m *agents.Message) agents.Result {
	c := agents.State(s, f, func() *check { return &check{} })
	if c.result == "" {
		return agents.Passed()
	}
	ip := s.Conn.Remote.Unmap()
	from := c.from
	if from == "" {
		from = "<>"
	}
	m.AddHeader(HeaderReceivedSPF, fmt.Sprintf("%s (%s) client-ip=%s; envelope-from=%s; helo=%s;",
		c.result, c.comment, ip, from, helo(s.Conn.Helo())))
	return agents.Noted("SPF %s: %s", c.result, c.comment)
}

// comment is the Received-SPF comment: who decided what about whom.
func comment(host string, res spf.Result, domain string, ip netip.Addr, err error) string {
	switch res {
	case spf.Pass:
		return fmt.Sprintf("%s: domain of %s designates %s as permitted sender", host, domain, ip)
	case spf.Fail, spf.SoftFail:
		return fmt.Sprintf("%s: domain of %s does not designate %s as permitted sender", host, domain, ip)
	case spf.None:
		return fmt.Sprintf("%s: %s publishes no SPF record", host, domain)
	case spf.TempError, spf.PermError:
		why := "error"
		if err != nil {
			why = oneLine(err.Error())
		}
		return fmt.Sprintf("%s: checking %s: %s", host, domain, why)
	}
	return fmt.Sprintf("%s: %s is neither permitted nor denied by %s", host, ip, domain)
}

func helo(h string) string {
	if h == "" {
		return "unknown"
	}
	return h
}

func oneLine(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || r == '(' || r == ')' {
			return ' '
		}
		return r
	}, s)
}

// resolver gives the SPF library the Edge's resolver in net's terms: the library
// tells "not found" from "try again" by *net.DNSError alone.
type resolver struct{ r Resolver }

func dnsError(name string, err error) error {
	e := &net.DNSError{Err: err.Error(), Name: name}
	switch {
	case errors.Is(err, resolve.ErrNXDomain), errors.Is(err, resolve.ErrNoData):
		e.IsNotFound = true
	case resolve.IsTemporary(err), errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		e.IsTemporary = true
		e.IsTimeout = errors.Is(err, context.DeadlineExceeded)
	}
	return e
}

func (a resolver) LookupTXT(ctx context.Context, name string) ([]string, error) {
	txt, err := a.r.LookupTXT(ctx, name)
	if err != nil {
		return nil, dnsError(name, err)
	}
	return txt, nil
}

func (a resolver) LookupMX(ctx context.Context, name string) ([]*net.MX, error) {
	mxs, err := a.r.LookupMX(ctx, name)
	if err != nil {
		return nil, dnsError(name, err)
	}
	out := make([]*net.MX, 0, len(mxs))
	for _, mx := range mxs {
		if mx.Host != "" { // a null MX names no host
			out = append(out, &net.MX{Host: mx.Host + ".", Pref: mx.Pref})
		}
	}
	return out, nil
}

func (a resolver) LookupIPAddr(ctx context.Context, host string) ([]net.IPAddr, error) {
	addrs, err := a.r.LookupAddrs(ctx, host)
	if err != nil {
		return nil, dnsError(host, err)
	}
	out := make([]net.IPAddr, len(addrs))
	for i, ad := range addrs {
		out[i] = net.IPAddr{IP: ad.AsSlice()}
	}
	return out, nil
}

func (a resolver) LookupAddr(ctx context.Context, addr string) ([]string, error) {
	ip, err := netip.ParseAddr(addr)
	if err != nil {
		return nil, &net.DNSError{Err: err.Error(), Name: addr}
	}
	names, err := a.r.LookupPTR(ctx, ip)
	if err != nil {
		return nil, dnsError(addr, err)
	}
	for i := range names {
		names[i] += "."
	}
	return names, nil
}
