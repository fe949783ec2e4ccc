package attachfilter

import (
	"context"
	"fmt"
	"path"
	"strings"

	"github.com/mailflow/mailflow/reference/agents"
	"github.com/mailflow/mailflow/reference/replies"
)

// Name is the agent's name in trace events, as Exchange calls it.
const Name = "Attachment Filtering Agent"

// Action is what a blocked attachment gets (Exchange's Add-AttachmentFilterEntry
// and Set-AttachmentFilterListConfig -Action).
type Action string

const (
	// Reject refuses the message at end-of-data with 550 5.7.1.
	Reject Action = "reject"
	// Strip takes the message without the attachment, with a notice part naming it.
	Strip Action = "strip"
	// SilentDelete takes the message and deletes it: no delivery, no DSN.
	SilentDelete Action = "silent_delete"
)

// Filter is the agent; it is shared by the sessions of a server.
type Filter struct {
	names  []string // lower-case path.Match patterns
	types  []string // lower-case media types
	action Action
	text   string
}

// Option configures New.
type Option func(*Filter)

// WithBlockedNames blocks attachments whose file name matches a pattern ("*.exe",
// "payroll.*"), whatever its case.
func WithBlockedNames(patterns ...string) Option {
	return func(f *Filter) {
		for _, p := range patterns {
			f.names = append(f.names, strings.ToLower(p))
		}
	}
}

// WithBlockedTypes blocks parts of these media types ("application/x-msdownload").
func WithBlockedTypes(types ...string) Option {
	return func(f *Filter) {
		for _, t := range types {
			f.types = append(f.types, strings.ToLower(strings.TrimSpace(t)))
		}
	}
}

// WithAction sets what a blocked attachment gets; default Reject.
func WithAction(a Action) Option { return func(f *Filter) { f.action = a } }

// WithRejectText replaces the refusal's text (RejectResponse).
func WithRejectText(text string) Option { return func(f *Filter) { f.text = text } }

// New makes the agent.
func New(opts ...Option) *Filter {
	f := &Filter{action: Reject}
	for _, o := range opts {
		o(f)
	}
	return f
}

func (f *Filter) Name() string              { return Name }
func (f *Filter) Priority() agents.Priority { return agents.AttachmentFiltering }

// Blocked says why p is blocked, or "".
func (f *Filter) Blocked(p Part) string {
	if p.Name != "" {
		n := strings.ToLower(p.Name)
		// A name with a path in it is judged by its last element, as a client saves it.
		if i := strings.LastIndexAny(n, `/\`); i >= 0 {
			n = n[i+1:]
		}
		for _, pat := range f.names {
			if ok, _ := path.Match(pat, n); ok {
				return fmt.Sprintf("file name %s matches %s", p.Name, pat)
			}
		}
	}
	for _, t := range f.types {
		if p.Type == t {
			return "content type " + t
		}
	}
	return ""
}

// OnEndOfData acts on the first blocked attachment of m.
func (f *Filter) OnEndOfData(_ context.Context, _ *agents.Session, m *agents.Message) agents.Result {
	if len(f.names)+len(f.types) == 0 {
		return agents.Passed()
	}
	var why []string
	blocked := func(p Part) bool {
		if w := f.Blocked(p); w != "" {
			why = append(why, describe(p)+" ("+w+")")
			return true
		}
		return false
	}
	r, err := rewrite(m.Data, blocked, notice, noticeText)
	if err != nil {
		// A message the walk cannot read in full is not let through unseen.
		if f.action == Reject || f.action == "" {
			return agents.Rejected(replies.AttachmentUnreadable(), "%v", err)
		}
		return agents.Passed()
	}
	if len(r.removed) == 0 {
		return agents.Passed()
	}
	list := strings.Join(why, ", ")
	switch f.action {
	case Strip:
		m.Data = r.data
		return agents.Noted("stripped %s", list)
	case SilentDelete:
		return agents.Dropped("silently deleted the message: %s", list)
	default:
		return agents.Rejected(replies.AttachmentBlocked(f.text), "rejected the message: %s", list)
	}
}

func describe(p Part) string {
	if p.Name != "" {
		return fmt.Sprintf("attachment %s (part %s, %s)", p.Name, p.Path, p.Type)
	}
	return fmt.Sprintf("part %s (%s)", p.Path, p.Type)
}

// noticeText names what Strip removed, as the notice part says it.
func noticeText(removed []Part) string {
	var names []string
	for _, p := range removed {
		if p.Name != "" {
			names = append(names, p.Name)
		} else {
			names = append(names, "a "+p.Type+" part")
		}
	}
	return "The Attachment Filtering Agent removed from this message: " + strings.Join(names, ", ") + "."
}

// notice is the text part Strip adds where the attachments were.
func notice(removed []Part) []byte {
	return []byte("Content-Type: text/plain; charset=utf-8\r\nContent-Disposition: inline\r\n\r\n" + noticeText(removed) + "\r\n")
}
