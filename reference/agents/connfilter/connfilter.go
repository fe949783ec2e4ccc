package connfilter

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/mailflow/mailflow/reference/agents"
	"github.com/mailflow/mailflow/reference/replies"
	"github.com/mailflow/mailflow/reference/resolve"
)

// Name is the agent's name in trace events, as Exchange calls it.
const Name = "Connection Filtering Agent"

// Resolver is the DNS the block list providers are asked through: the Edge's own
// (reference/resolve).
type Resolver interface {
	LookupA(ctx context.Context, name string) ([]netip.Addr, error)
	LookupTXT(ctx context.Context, name string) ([]string, error)
}

// Provider is one DNS block list (Exchange's IP Block List provider).
type Provider struct {
	// Name is what the refusal names; Zone what is queried.
	Name, Zone string
	// Match limits a listing to these return codes; Bitmask to codes that share a bit
	// with it. With neither, any A record is a listing.
	Match   []netip.Addr
	Bitmask netip.Addr
	// Response replaces the TXT reason in the refusal.
	Response string
}

// matches says whether return code a is a listing for p (FILTER-005).
func (p Provider) matches(a netip.Addr) bool {
	switch {
	case len(p.Match) > 0:
		for _, m := range p.Match {
			if m == a {
				return true
			}
		}
		return false
	case p.Bitmask.IsValid():
		// Exchange's BitmaskMatch: the last octet carries the list bits.
		if !a.Is4() || !p.Bitmask.Is4() {
			return false
		}
		return a.As4()[3]&p.Bitmask.As4()[3] != 0
	}
	return true
}

// Filter is the agent; it is shared by the sessions of a server.
type Filter struct {
	resolver  Resolver
	allow     []netip.Prefix
	block     []netip.Prefix
	providers []Provider
	bypassed  map[string]bool
	timeout   time.Duration
}

// Option configures New.
type Option func(*Filter)

// WithAllowList: clients in these ranges skip the block list and providers.
func WithAllowList(ps ...netip.Prefix) Option {
	return func(f *Filter) { f.allow = append(f.allow, ps...) }
}

// WithBlockList: clients in these ranges are refused at RCPT.
func WithBlockList(ps ...netip.Prefix) Option {
	return func(f *Filter) { f.block = append(f.block, ps...) }
}

// WithProviders adds DNS block lists, asked in order.
func WithProviders(ps ...Provider) Option {
	return func(f *Filter) { f.providers = append(f.providers, ps...) }
}

// WithBypassedRecipients: these recipients get 250 from a listed client; an entry
// without "@" is a local part at every domain, and alone.
func WithBypassedRecipients(rs ...string) Option {
	return func(f *Filter) {
		for _, r := range rs {
			f.bypassed[strings.ToLower(r)] = true
		}
	}
}

// WithLookupTimeout bounds each provider's answer (default 2s).
func WithLookupTimeout(d time.Duration) Option {
	return func(f *Filter) {
		if d > 0 {
			f.timeout = d
		}
	}
}

// New makes the agent.
func New(r Resolver, opts ...Option) *Filter {
	f := &Filter{resolver: r, bypassed: map[string]bool{}, timeout: 2 * time.Second}
	for _, o := range opts {
		o(f)
	}
	return f
}

func (f *Filter) Name() string              { return Name }
func (f *Filter) Priority() agents.Priority { return agents.ConnectionFiltering }

// verdict is what the agent learnt at connect.
type verdict struct {
	// refusal is the reply every recipient but the bypassed ones gets; nil: none.
	refusal *smtp.SMTPError
	why     string
}

func (f *Filter) state(s *agents.Session) *verdict {
	return agents.State(s, f, func() *verdict { return &verdict{} })
}

// OnConnect decides about the client once per session, as Exchange does; the
// refusal waits for RCPT (FILTER-006).
func (f *Filter) OnConnect(ctx context.Context, s *agents.Session) agents.Result {
	ip := s.Conn.Remote.Unmap()
	v := f.state(s)
	if in(f.allow, ip) {
		return agents.Noted("%s is on the IP Allow list", ip)
	}
	if in(f.block, ip) {
		v.refusal, v.why = replies.ClientIPBlocked(ip.String()), fmt.Sprintf("%s is on the IP Block list", ip)
		return agents.Passed()
	}
	var notes []string
	for _, p := range f.providers {
		listed, reason, err := f.lookup(ctx, p, ip)
		if err != nil {
			// A provider in trouble lists nobody, as Exchange's connection filter
			// goes on to the next provider when one does not answer: a 4yz instead
			// would hold back every Internet sender for as long as a block list is
			// down, and a 5yz would lose their mail (FILTER-008).
			notes = append(notes, fmt.Sprintf("%s did not answer for %s (%v): not listed", p.Name, ip, err))
			continue
		}
		if listed == "" {
			continue
		}
		if p.Response != "" {
			reason = p.Response
		}
		v.refusal, v.why = replies.ClientBlockListed(ip.String(), p.Name, reason), fmt.Sprintf("%s is listed by %s (%s)", ip, p.Name, listed)
		break
	}
	if len(notes) > 0 {
		return agents.Noted("%s", strings.Join(notes, "; "))
	}
	return agents.Passed()
}

// lookup asks one provider about ip: the return code that lists it ("" when none
// does) and the TXT reason published with it.
func (f *Filter) lookup(ctx context.Context, p Provider, ip netip.Addr) (listed, reason string, err error) {
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	name := resolve.ReverseName(ip, p.Zone)
	codes, err := f.resolver.LookupA(ctx, name)
	switch {
	case errors.Is(err, resolve.ErrNXDomain), errors.Is(err, resolve.ErrNoData):
		return "", "", nil // not listed (FILTER-003)
	case err != nil:
		return "", "", err
	}
	for _, c := range codes {
		if p.matches(c) {
			listed = c.String()
			break
		}
	}
	if listed == "" {
		return "", "", nil
	}
	// The reason is a courtesy: a listing stands without it.
	if txts, err := f.resolver.LookupTXT(ctx, name); err == nil && len(txts) > 0 {
		reason = oneLine(txts[0])
	}
	return listed, reason, nil
}

// OnRcpt refuses the recipient when the client was found listed, unless the
// recipient is bypassed (FILTER-006).
func (f *Filter) OnRcpt(_ context.Context, s *agents.Session, rcpt string) agents.Result {
	v := f.state(s)
	if v.refusal == nil {
		return agents.Passed()
	}
	if f.isBypassed(rcpt) {
		return agents.Noted("%s; %s is a bypassed recipient", v.why, rcpt)
	}
	return agents.Rejected(v.refusal, "%s", v.why)
}

func (f *Filter) isBypassed(rcpt string) bool {
	r := strings.ToLower(rcpt)
	if f.bypassed[r] {
		return true
	}
	local, _, _ := strings.Cut(r, "@")
	return f.bypassed[local]
}

func in(ps []netip.Prefix, ip netip.Addr) bool {
	for _, p := range ps {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// oneLine keeps a TXT reason to one printable line: it goes into a reply.
func oneLine(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
}
