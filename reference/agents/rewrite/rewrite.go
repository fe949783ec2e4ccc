package rewrite

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"mime"
	"regexp"
	"strings"

	"github.com/emersion/go-message/textproto"

	"github.com/mailflow/mailflow/reference/agents"
)

// Name is the agent's name in trace events.
const Name = "Address Rewriting Agent"

// Entry is one rewriting entry (New-AddressRewriteEntry).
type Entry struct {
	// Internal is an address, a domain ("sales.contoso.test" or
	// "*@sales.contoso.test") or "*.domain" for the domain and its sub-domains.
	Internal string
	// External is an address for an address, a domain otherwise.
	External string
	// Bidirectional rewrites inbound recipients in the external form back too.
	Bidirectional bool
}

type kind int

const (
	address kind = iota
	domain
	subdomains
)

type entry struct {
	kind     kind
	internal string // address or domain, lower case
	external string
	both     bool
}

// Agent is the address rewriting agent.
type Agent struct{ entries []entry }

// New makes the agent of entries, applied first match first.
func New(entries ...Entry) *Agent {
	a := &Agent{}
	for _, e := range entries {
		in := strings.ToLower(strings.TrimSpace(e.Internal))
		x := entry{internal: in, external: strings.ToLower(strings.TrimSpace(e.External)), both: e.Bidirectional}
		switch {
		case strings.HasPrefix(in, "*@"):
			x.kind, x.internal = domain, in[2:]
		case strings.HasPrefix(in, "*."):
			x.kind, x.internal, x.both = subdomains, in[2:], false
		case strings.Contains(in, "@"):
			x.kind = address
		default:
			x.kind = domain
		}
		a.entries = append(a.entries, x)
	}
	return a
}

func (a *Agent) Name() string              { return Name }
func (a *Agent) Priority() agents.Priority { return agents.AddressRewriting }

// Everyone: the organisation's own outbound mail, which bypasses anti-spam, is what
// the outbound rewriting is for.
func (a *Agent) Everyone() bool { return true }

func split(addr string) (local, dom string, ok bool) {
	i := strings.LastIndexByte(addr, '@')
	if i < 0 {
		return "", "", false
	}
	return addr[:i], strings.TrimSuffix(strings.ToLower(addr[i+1:]), "."), true
}

// Outbound is addr's external form, or addr.
func (a *Agent) Outbound(addr string) string {
	local, dom, ok := split(addr)
	if !ok {
		return addr
	}
	for _, e := range a.entries {
		switch {
		case e.kind == address && strings.EqualFold(addr, e.internal):
			return e.external
		case e.kind == domain && dom == e.internal,
			e.kind == subdomains && (dom == e.internal || strings.HasSuffix(dom, "."+e.internal)):
			return local + "@" + e.external
		}
	}
	return addr
}

// Inbound is addr's internal form under a bidirectional entry, or addr.
func (a *Agent) Inbound(addr string) string {
	local, dom, ok := split(addr)
	if !ok {
		return addr
	}
	for _, e := range a.entries {
		switch {
		case !e.both:
		case e.kind == address && strings.EqualFold(addr, e.external):
			return e.internal
		case e.kind == domain && dom == e.external:
			return local + "@" + e.internal
		}
	}
	return addr
}

// RewriteRcpt rewrites an Internet client's recipient in the external form back to
// the internal one.
func (a *Agent) RewriteRcpt(_ context.Context, s *agents.Session, rcpt string) (string, string) {
	if s.Conn.Bypass() {
		return rcpt, ""
	}
	next := a.Inbound(rcpt)
	return next, fmt.Sprintf("inbound: recipient %s rewritten to %s", rcpt, next)
}

// rewritten are the fields whose addresses outbound rewriting changes (FILTER-017).
var rewritten = map[string]bool{"from": true, "reply-to": true, "to": true, "cc": true}

// addrSpec finds the addresses in a field's value; display names and comments
// around them are kept as they are.
var addrSpec = regexp.MustCompile("[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9-]+(?:\\.[A-Za-z0-9-]+)*")

// OnEndOfData rewrites the organisation's outbound mail.
func (a *Agent) OnEndOfData(_ context.Context, s *agents.Session, m *agents.Message) agents.Result {
	if !s.Conn.Bypass() {
		return agents.Passed()
	}
	hdr, _ := textproto.ReadHeader(bufio.NewReader(bytes.NewReader(m.Data)))
	if t, _, err := mime.ParseMediaType(hdr.Get("Content-Type")); err == nil && t == "multipart/signed" {
		if a.Outbound(m.From) != m.From {
			return agents.Noted("outbound: a signed message (multipart/signed) is left unchanged")
		}
		return agents.Passed()
	}
	var did []string
	if next := a.Outbound(m.From); next != m.From {
		did = append(did, fmt.Sprintf("MAIL FROM %s -> %s", m.From, next))
		m.From = next
	}
	data, fields := a.header(m.Data)
	if len(fields) > 0 {
		m.Data = data
		did = append(did, "header fields "+strings.Join(fields, ", "))
	}
	if len(did) == 0 {
		return agents.Passed()
	}
	return agents.Noted("outbound: rewrote %s", strings.Join(did, "; "))
}

// header rewrites the addresses of the From:, Reply-To:, To: and Cc: fields of data,
// folded lines included, and names the fields it changed.
func (a *Agent) header(data []byte) ([]byte, []string) {
	end := bytes.Index(data, []byte("\r\n\r\n"))
	if end < 0 {
		return data, nil
	}
	head := data[:end+2]
	var out bytes.Buffer
	var changed []string
	field := "" // the field the line belongs to, when it is one to rewrite
	for _, l := range bytes.SplitAfter(head, []byte("\r\n")) {
		if len(l) == 0 {
			continue
		}
		nl := l
		if l[0] != ' ' && l[0] != '\t' {
			field = ""
			if name, rest, ok := bytes.Cut(l, []byte(":")); ok && rewritten[strings.ToLower(strings.TrimSpace(string(name)))] {
				field = string(name)
				nl = append(append([]byte(nil), l[:len(name)+1]...), a.replace(rest)...)
			}
		} else if field != "" {
			nl = a.replace(l)
		}
		if field != "" && !bytes.Equal(nl, l) && (len(changed) == 0 || changed[len(changed)-1] != field) {
			changed = append(changed, field)
		}
		out.Write(nl)
	}
	if len(changed) == 0 {
		return data, nil
	}
	out.Write(data[end+2:])
	return out.Bytes(), changed
}

func (a *Agent) replace(b []byte) []byte {
	return addrSpec.ReplaceAllFunc(b, func(m []byte) []byte { return []byte(a.Outbound(string(m))) })
}
