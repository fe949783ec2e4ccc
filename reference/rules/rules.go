package rules

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"mime"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/emersion/go-message"
	"github.com/emersion/go-message/textproto"

	"github.com/mailflow/mailflow/reference/agents/attachfilter"
)

// HeaderSCL is the field that carries a message's spam confidence level inside the
// organisation.
const HeaderSCL = "X-MS-Exchange-Organization-SCL"

// Rule is one transport rule.
type Rule struct {
	Name string
	// Priority orders the rules: 0 is applied first.
	Priority int
	When     Conditions
	Then     Actions
}

// Conditions must all hold for a rule to apply; a rule with none applies to every
// message. Within one condition any listed value is enough. Matching ignores case.
type Conditions struct {
	From                  []string
	SentTo                []string
	RecipientDomainIs     []string
	SubjectOrBodyContains []string
	// HeaderName's value contains one of HeaderWords.
	HeaderName  string
	HeaderWords []string
	// AttachmentNameMatches are file name patterns ("*.exe").
	AttachmentNameMatches []string
	// SCLAtLeast holds when the message's SCL is at least this; nil for no test.
	SCLAtLeast *int
}

// Actions are what a matching rule does.
type Actions struct {
	// Reject refuses the message: Code and Enhanced with Text.
	Reject *Reject
	// PrependSubject is put at the start of Subject:.
	PrependSubject string
	// SetHeader sets HeaderName to HeaderValue, replacing the field if present.
	SetHeaderName, SetHeaderValue string
	// RedirectTo replaces the recipients.
	RedirectTo []string
	// BlindCopyTo adds envelope recipients, named in no header.
	BlindCopyTo []string
	// Delete drops the message: no delivery, no DSN.
	Delete bool
}

// Reject is a rule's refusal.
type Reject struct {
	Code     int
	Enhanced [3]int
	Text     string
}

// Message is what the rules see and change.
type Message struct {
	From  string
	Rcpts []string
	Data  []byte
}

// Outcome is what the rules did to a message.
type Outcome struct {
	// Reject is the refusal of the rule that rejected, nil when none did.
	Reject *Reject
	// Deleted is true when a rule deleted the message.
	Deleted bool
	// Rule names the rule that rejected or deleted.
	Rule string
	// Applied says what each applied rule did, in order, for the trace.
	Applied []string
	// Changed is true when the data or the recipients changed.
	Changed bool
}

// Set is a server's rules, in priority order.
type Set struct{ rules []Rule }

// New orders rules by priority (stable for equal priorities).
func New(rules []Rule) *Set {
	rs := slices.Clone(rules)
	slices.SortStableFunc(rs, func(a, b Rule) int { return a.Priority - b.Priority })
	return &Set{rules: rs}
}

// Len is the number of rules.
func (s *Set) Len() int { return len(s.rules) }

// Apply runs the rules on m, changing it in place.
func (s *Set) Apply(m *Message) Outcome {
	var out Outcome
	for _, r := range s.rules {
		if !r.When.match(m) {
			continue
		}
		a := r.Then
		if a.Reject != nil {
			out.Reject, out.Rule = a.Reject, r.Name
			out.Applied = append(out.Applied, fmt.Sprintf("rule %q rejected the message (%d %d.%d.%d)", r.Name, a.Reject.Code, a.Reject.Enhanced[0], a.Reject.Enhanced[1], a.Reject.Enhanced[2]))
			return out
		}
		if a.Delete {
			out.Deleted, out.Rule = true, r.Name
			out.Applied = append(out.Applied, fmt.Sprintf("rule %q deleted the message", r.Name))
			return out
		}
		var did []string
		if a.PrependSubject != "" {
			m.Data = prependSubject(m.Data, a.PrependSubject)
			did = append(did, fmt.Sprintf("prepended %q to the subject", a.PrependSubject))
		}
		if a.SetHeaderName != "" {
			m.Data = setHeader(m.Data, a.SetHeaderName, a.SetHeaderValue)
			did = append(did, fmt.Sprintf("set %s: %s", a.SetHeaderName, a.SetHeaderValue))
		}
		if len(a.RedirectTo) > 0 {
			m.Rcpts = slices.Clone(a.RedirectTo)
			did = append(did, "redirected to "+strings.Join(a.RedirectTo, ", "))
		}
		for _, b := range a.BlindCopyTo {
			if !slices.ContainsFunc(m.Rcpts, func(r string) bool { return strings.EqualFold(r, b) }) {
				m.Rcpts = append(m.Rcpts, b)
			}
		}
		if len(a.BlindCopyTo) > 0 {
			did = append(did, "blind copy to "+strings.Join(a.BlindCopyTo, ", "))
		}
		if len(did) > 0 {
			out.Changed = true
			out.Applied = append(out.Applied, fmt.Sprintf("rule %q: %s", r.Name, strings.Join(did, "; ")))
		}
	}
	return out
}

func anyEqual(list []string, s string) bool {
	return slices.ContainsFunc(list, func(x string) bool { return strings.EqualFold(x, s) })
}

func domain(addr string) string {
	if i := strings.LastIndexByte(addr, '@'); i >= 0 {
		return strings.TrimSuffix(strings.ToLower(addr[i+1:]), ".")
	}
	return ""
}

func containsWord(text string, words []string) bool {
	t := strings.ToLower(text)
	for _, w := range words {
		if w != "" && strings.Contains(t, strings.ToLower(w)) {
			return true
		}
	}
	return false
}

var words = mime.WordDecoder{CharsetReader: func(_ string, r io.Reader) (io.Reader, error) { return r, nil }}

func (c Conditions) match(m *Message) bool {
	if len(c.From) > 0 && !anyEqual(c.From, m.From) {
		return false
	}
	if len(c.SentTo) > 0 && !slices.ContainsFunc(m.Rcpts, func(r string) bool { return anyEqual(c.SentTo, r) }) {
		return false
	}
	if len(c.RecipientDomainIs) > 0 && !slices.ContainsFunc(m.Rcpts, func(r string) bool { return anyEqual(c.RecipientDomainIs, domain(r)) }) {
		return false
	}
	needHeader := len(c.SubjectOrBodyContains) > 0 || c.HeaderName != "" || c.SCLAtLeast != nil
	var h textproto.Header
	var body []byte
	if needHeader {
		br := bufio.NewReader(bytes.NewReader(m.Data))
		h, _ = textproto.ReadHeader(br)
		body, _ = io.ReadAll(br)
	}
	if len(c.SubjectOrBodyContains) > 0 {
		subject := h.Get("Subject")
		if d, err := words.DecodeHeader(subject); err == nil {
			subject = d
		}
		if !containsWord(subject, c.SubjectOrBodyContains) && !containsWord(string(body), c.SubjectOrBodyContains) &&
			!containsWord(bodyText(m.Data), c.SubjectOrBodyContains) {
			return false
		}
	}
	if c.HeaderName != "" {
		vs := h.Values(c.HeaderName)
		if len(vs) == 0 || len(c.HeaderWords) > 0 && !slices.ContainsFunc(vs, func(v string) bool { return containsWord(v, c.HeaderWords) }) {
			return false
		}
	}
	if c.SCLAtLeast != nil {
		scl, err := strconv.Atoi(strings.TrimSpace(h.Get(HeaderSCL)))
		if err != nil || scl < *c.SCLAtLeast {
			return false
		}
	}
	if len(c.AttachmentNameMatches) > 0 {
		parts, _ := attachfilter.Scan(m.Data)
		if !slices.ContainsFunc(parts, func(p attachfilter.Part) bool {
			n := strings.ToLower(p.Name)
			for _, pat := range c.AttachmentNameMatches {
				if ok, _ := path.Match(strings.ToLower(pat), n); ok && n != "" {
					return true
				}
			}
			return false
		}) {
			return false
		}
	}
	return true
}

// bodyText is the text of the message's text parts, their transfer encodings undone,
// so that a word in a base64 or quoted-printable body is found too.
func bodyText(data []byte) string {
	e, err := message.Read(bytes.NewReader(data))
	if err != nil && !message.IsUnknownCharset(err) {
		return ""
	}
	var b strings.Builder
	_ = e.Walk(func(_ []int, part *message.Entity, err error) error {
		if err != nil && !message.IsUnknownCharset(err) || part.MultipartReader() != nil {
			return nil
		}
		if t, _, _ := part.Header.ContentType(); t == "" || strings.HasPrefix(t, "text/") {
			_, _ = io.Copy(&b, io.LimitReader(part.Body, 1<<20))
			b.WriteByte('\n')
		}
		return nil
	})
	return b.String()
}

// split cuts data after its header's empty line; the header keeps its last CRLF.
func split(data []byte) (header, body []byte) {
	if i := bytes.Index(data, []byte("\r\n\r\n")); i >= 0 {
		return data[:i+2], data[i+2:]
	}
	return data, nil
}

// prependSubject puts text at the start of Subject:, or adds the field.
func prependSubject(data []byte, text string) []byte {
	header, body := split(data)
	lines := bytes.SplitAfter(header, []byte("\r\n"))
	for i, l := range lines {
		name, rest, ok := bytes.Cut(l, []byte(":"))
		if ok && strings.EqualFold(string(name), "Subject") {
			lines[i] = append([]byte("Subject: "+text), bytes.TrimLeft(rest, " \t")...)
			return append(bytes.Join(lines, nil), body...)
		}
	}
	return append(append(slices.Clone(header), []byte("Subject: "+text+"\r\n")...), body...)
}

// setHeader replaces every name: field with one of value, where the first was, or
// adds it at the top.
func setHeader(data []byte, name, value string) []byte {
	header, body := split(data)
	var out [][]byte
	lines := bytes.SplitAfter(header, []byte("\r\n"))
	placed, skipping := false, false
	for _, l := range lines {
		if len(l) == 0 {
			continue
		}
		if skipping && (l[0] == ' ' || l[0] == '\t') {
			continue // the replaced field's folded lines
		}
		skipping = false
		if n, _, ok := bytes.Cut(l, []byte(":")); ok && strings.EqualFold(string(n), name) {
			skipping = true
			if !placed {
				out = append(out, []byte(name+": "+value+"\r\n"))
				placed = true
			}
			continue
		}
		out = append(out, l)
	}
	if !placed {
		out = append([][]byte{[]byte(name + ": " + value + "\r\n")}, out...)
	}
	return append(bytes.Join(out, nil), body...)
}
