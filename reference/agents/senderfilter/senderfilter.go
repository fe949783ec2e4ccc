package senderfilter

import (
	"context"
	"strconv"
	"strings"

	"github.com/mailflow/mailflow/reference/agents"
	"github.com/mailflow/mailflow/reference/replies"
)

// Name is the agent's name in trace events, as Exchange calls it.
const Name = "Sender Filter Agent"

// The fields a stamped message carries inside the organisation; an Edge strips every
// X-MS-Exchange-Organization-* field an Internet client writes, so these can only be
// the agent's.
const (
	HeaderSCL          = "X-MS-Exchange-Organization-SCL"
	HeaderSenderFilter = "X-MS-Exchange-Organization-Antispam-Report"
)

// Filter is the agent; it is shared by the sessions of a server.
type Filter struct {
	senders    map[string]bool
	domains    map[string]bool
	subdomains []string // ".domain" suffixes
	blank      bool
	stamp      bool
	scl        int
}

// Option configures New.
type Option func(*Filter)

// WithBlockedSenders blocks addresses.
func WithBlockedSenders(as ...string) Option {
	return func(f *Filter) {
		for _, a := range as {
			f.senders[strings.ToLower(a)] = true
		}
	}
}

// WithBlockedDomains blocks domains; "*.domain" blocks the domain and every
// sub-domain of it.
func WithBlockedDomains(ds ...string) Option {
	return func(f *Filter) {
		for _, d := range ds {
			d = strings.TrimSuffix(strings.ToLower(d), ".")
			if rest, ok := strings.CutPrefix(d, "*."); ok {
				f.domains[rest] = true
				f.subdomains = append(f.subdomains, "."+rest)
				continue
			}
			f.domains[d] = true
		}
	}
}

// WithBlankSenderBlocking blocks MAIL FROM:<> too.
func WithBlankSenderBlocking(on bool) Option { return func(f *Filter) { f.blank = on } }

// WithStamp makes the agent stamp rather than refuse: the message gets an SCL of at
// least scl.
func WithStamp(scl int) Option { return func(f *Filter) { f.stamp, f.scl = true, scl } }

// New makes the agent; it refuses unless WithStamp.
func New(opts ...Option) *Filter {
	f := &Filter{senders: map[string]bool{}, domains: map[string]bool{}}
	for _, o := range opts {
		o(f)
	}
	return f
}

func (f *Filter) Name() string              { return Name }
func (f *Filter) Priority() agents.Priority { return agents.SenderFiltering }

// blocked says why from is blocked, or "".
func (f *Filter) blocked(from string) string {
	if from == "" {
		if f.blank {
			return "blank sender"
		}
		return ""
	}
	a := strings.ToLower(from)
	if f.senders[a] {
		return "blocked sender " + from
	}
	at := strings.LastIndexByte(a, '@')
	if at < 0 {
		return ""
	}
	d := strings.TrimSuffix(a[at+1:], ".")
	if f.domains[d] {
		return "blocked domain " + d
	}
	for _, suffix := range f.subdomains {
		if strings.HasSuffix(d, suffix) {
			return "blocked domain " + d + " (under *" + suffix + ")"
		}
	}
	return ""
}

type transaction struct{ why string }

// OnMail refuses a blocked sender, or remembers it for the stamp.
func (f *Filter) OnMail(_ context.Context, s *agents.Session, from string) agents.Result {
	t := agents.State(s, f, func() *transaction { return &transaction{} })
	t.why = ""
	why := f.blocked(from)
	if why == "" {
		return agents.Passed()
	}
	if !f.stamp {
		return agents.Rejected(replies.SenderDenied(), "%s", why)
	}
	t.why = why
	return agents.Passed()
}

// OnEndOfData stamps a message from a blocked sender when the agent stamps.
func (f *Filter) OnEndOfData(_ context.Context, s *agents.Session, m *agents.Message) agents.Result {
	t := agents.State(s, f, func() *transaction { return &transaction{} })
	if t.why == "" {
		return agents.Passed()
	}
	m.AddHeader(HeaderSenderFilter, "SFV:BLK; "+t.why)
	m.AddHeader(HeaderSCL, strconv.Itoa(f.scl))
	return agents.Noted("%s: stamped, SCL %d", t.why, f.scl)
}
