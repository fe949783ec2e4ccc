package antivirus

import (
	"context"
	"fmt"
	"strings"

	"github.com/mailflow/mailflow/reference/agents"
	"github.com/mailflow/mailflow/reference/agents/attachfilter"
	"github.com/mailflow/mailflow/reference/clamd"
	"github.com/mailflow/mailflow/reference/replies"
)

// Name is the agent's name in trace events, as Exchange calls it.
const Name = "Malware Agent"

// Scanner scans a message: *clamd.Client.
type Scanner interface {
	Scan(ctx context.Context, data []byte) (clamd.Verdict, error)
}

// Action is what an infected message gets.
type Action string

const (
	// Delete takes the message and deletes it: no delivery, no DSN (Exchange's
	// default, DeleteMessage).
	Delete Action = "delete"
	// Reject refuses the message at end-of-data with 554 5.7.1.
	Reject Action = "reject"
	// Strip delivers the message with each infected part replaced by a notice
	// (DeleteAttachmentAndUseDefaultAlert).
	Strip Action = "strip"
)

// Notifier tells the envelope sender that malware was found in the message from
// sender to rcpts, and what became of it (the transport server queues the notice).
type Notifier interface {
	NotifyMalware(ctx context.Context, sender string, rcpts []string, what string) error
}

// Agent is the Malware Agent; it is shared by the sessions of a server.
type Agent struct {
	scanner Scanner
	action  Action
	text    string
	notify  Notifier
}

// Option configures New.
type Option func(*Agent)

// WithAction sets what an infected message gets; default Delete.
func WithAction(a Action) Option { return func(ag *Agent) { ag.action = a } }

// WithRejectText replaces the refusal's text (Reject).
func WithRejectText(text string) Option { return func(ag *Agent) { ag.text = text } }

// WithSenderNotification has the envelope sender of a message deleted or stripped
// after acceptance told so through n (Exchange's sender notifications). Without it
// nobody is: the sender of malware is likely forged, and a notice would be
// backscatter (FILTER-010).
func WithSenderNotification(n Notifier) Option { return func(ag *Agent) { ag.notify = n } }

// New makes the agent, scanning with s.
func New(s Scanner, opts ...Option) *Agent {
	a := &Agent{scanner: s, action: Delete}
	for _, o := range opts {
		o(a)
	}
	return a
}

func (a *Agent) Name() string              { return Name }
func (a *Agent) Priority() agents.Priority { return agents.Antivirus }

// Everyone: malware is scanned for on every session, those that bypass anti-spam
// included, as Exchange's malware filter scans all mail.
func (a *Agent) Everyone() bool { return true }

// OnEndOfData scans m and acts on what the scanner found.
func (a *Agent) OnEndOfData(ctx context.Context, _ *agents.Session, m *agents.Message) agents.Result {
	v, err := a.scanner.Scan(ctx, m.Data)
	if err != nil {
		return unavailable(err)
	}
	if !v.Infected {
		return agents.Passed()
	}
	var r agents.Result
	switch a.action {
	case Reject:
		// The client is told; its own MTA tells the sender, if anyone.
		return agents.Rejected(replies.MalwareRejected(a.text), "rejected the message: infected with %s", v.Signature)
	case Strip:
		r = a.strip(ctx, m, v)
	default:
		r = agents.Dropped("deleted the message: infected with %s", v.Signature)
	}
	return a.notifySender(ctx, m, r)
}

// notifySender tells the sender what became of a message the agent took, when so
// configured; the result's detail says whether it did.
func (a *Agent) notifySender(ctx context.Context, m *agents.Message, r agents.Result) agents.Result {
	if a.notify == nil || m.From == "" || r.Action == agents.Reject {
		return r
	}
	if err := a.notify.NotifyMalware(ctx, m.From, m.Rcpts, r.Detail); err != nil {
		r.Detail += "; the sender could not be notified: " + err.Error()
	} else {
		r.Detail += "; the sender " + m.From + " was notified"
	}
	return r
}

// strip replaces each infected leaf part of m with a notice, or deletes m when that
// does not leave it clean (the malware is in the message's own text, or in a part
// only the whole message's scan could read).
func (a *Agent) strip(ctx context.Context, m *agents.Message, whole clamd.Verdict) agents.Result {
	found := map[string]string{} // part path: signature
	var scanErr error
	data, removed, err := attachfilter.Remove(m.Data, func(p attachfilter.Part) bool {
		if scanErr != nil {
			return false
		}
		v, err := a.scanner.Scan(ctx, p.Content())
		if err != nil {
			scanErr = err
			return false
		}
		if v.Infected {
			found[p.Path] = v.Signature
		}
		return v.Infected
	}, func(removed []attachfilter.Part) string { return notice(removed, found) })
	if scanErr != nil {
		return unavailable(scanErr)
	}
	if err != nil || len(removed) == 0 {
		return agents.Dropped("deleted the message: infected with %s, in no part that could be removed", whole.Signature)
	}
	v, err := a.scanner.Scan(ctx, data)
	if err != nil {
		return unavailable(err)
	}
	if v.Infected {
		return agents.Dropped("deleted the message: still infected with %s once %s were removed", v.Signature, describe(removed, found))
	}
	m.Data = data
	return agents.Noted("replaced %s with a notice", describe(removed, found))
}

// unavailable is the temporary refusal for a message that could not be scanned.
func unavailable(err error) agents.Result {
	return agents.Rejected(replies.ScannerUnavailable(), "could not scan the message: %v", err)
}

func describe(removed []attachfilter.Part, found map[string]string) string {
	var out []string
	for _, p := range removed {
		what := "part " + p.Path
		if p.Name != "" {
			what = fmt.Sprintf("attachment %s (part %s)", p.Name, p.Path)
		}
		out = append(out, fmt.Sprintf("%s infected with %s", what, found[p.Path]))
	}
	return strings.Join(out, ", ")
}

// notice is the text that stands where the infected parts were.
func notice(removed []attachfilter.Part, found map[string]string) string {
	var names []string
	for _, p := range removed {
		n := p.Name
		if n == "" {
			n = "a " + p.Type + " part"
		}
		names = append(names, fmt.Sprintf("%s (%s)", n, found[p.Path]))
	}
	return "Malware was detected in this message and removed by the Malware Agent: " + strings.Join(names, ", ") +
		". The rest of the message is as it was sent."
}
