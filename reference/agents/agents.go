package agents

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/emersion/go-smtp"

	"github.com/mailflow/mailflow/clock"
	"github.com/mailflow/mailflow/trace"
)

// Priority is an agent's place in the order of FILTER-018: at one event, the agent
// with the lower priority acts first, and a refusal stops the others.
type Priority int

// The agents' order (FILTER-018, EX-AGENTS).
const (
	ConnectionFiltering Priority = 10 * (iota + 1)
	SenderFiltering
	RecipientFiltering
	SenderID
	AttachmentFiltering
	Antivirus
	ContentFiltering
	EdgeRules
	// AddressRewriting is last: the outbound rewriting acts on the message as the
	// other agents left it, as Exchange's acts when the message is routed.
	AddressRewriting
)

// Agent is one agent. It acts at the events whose hook interface it implements
// (ConnectHook, MailHook, RcptHook, DataHook).
type Agent interface {
	// Name is what trace events and logs call the agent ("Connection Filtering Agent").
	Name() string
	Priority() Priority
}

// Everyone is an agent that is not anti-spam and so acts on every session, those
// that bypass anti-spam included (the Edge Rules agent, address rewriting).
type Everyone interface {
	Everyone() bool
}

// ConnectHook runs when a client connects, before the greeting.
type ConnectHook interface {
	OnConnect(ctx context.Context, s *Session) Result
}

// MailHook runs at MAIL FROM; from is "" for the null sender.
type MailHook interface {
	OnMail(ctx context.Context, s *Session, from string) Result
}

// RcptHook runs at each RCPT TO, before the recipient filter looks the address up.
type RcptHook interface {
	OnRcpt(ctx context.Context, s *Session, rcpt string) Result
}

// RcptRewriter may change a recipient at RCPT before the recipient filter looks it
// up (inbound address rewriting); it returns rcpt unchanged, or the new address and
// why.
type RcptRewriter interface {
	RewriteRcpt(ctx context.Context, s *Session, rcpt string) (string, string)
}

// DataHook runs at end-of-data, before the message is queued.
type DataHook interface {
	OnEndOfData(ctx context.Context, s *Session, m *Message) Result
}

// Action is what an agent did.
type Action int

const (
	// Pass: the agent has nothing to say.
	Pass Action = iota
	// Info: the agent let the message through but has something to record (a stamp,
	// a provider that did not answer).
	Info
	// Reject: the agent refused the command with Reply.
	Reject
	// Drop: the agent deleted the message at end-of-data; the client gets 250 and
	// nobody gets the message or a DSN.
	Drop
)

// ErrDropped is what Session.EndOfData returns when an agent deleted the message.
var ErrDropped = errors.New("agents: message deleted by an agent")

// Result is an agent's answer at one event.
type Result struct {
	Action Action
	// Reply is the refusal, an *smtp.SMTPError from reference/replies (Reject).
	Reply *smtp.SMTPError
	// Detail says why, for the trace.
	Detail string
	// Close ends the session after the refusal (an Edge transport rule's SMTP reject,
	// FILTER-012).
	Close bool
}

// Passed is the result of an agent with nothing to say.
func Passed() Result { return Result{} }

// Rejected refuses the command with reply, saying why.
func Rejected(reply *smtp.SMTPError, format string, args ...any) Result {
	return Result{Action: Reject, Reply: reply, Detail: fmt.Sprintf(format, args...)}
}

// Dropped deletes the message at end-of-data, saying why.
func Dropped(format string, args ...any) Result {
	return Result{Action: Drop, Detail: fmt.Sprintf(format, args...)}
}

// Noted lets the command through and records why.
func Noted(format string, args ...any) Result {
	return Result{Action: Info, Detail: fmt.Sprintf(format, args...)}
}

// Pipeline runs a server's agents in their order.
type Pipeline struct {
	server string
	agents []Agent
	trace  trace.Recorder
	clock  clock.Clock
}

// Option configures New.
type Option func(*Pipeline)

// WithTrace records the agents' actions; default: nowhere.
func WithTrace(r trace.Recorder) Option { return func(p *Pipeline) { p.trace = r } }

// WithClock stamps the events; default: the real clock.
func WithClock(c clock.Clock) Option { return func(p *Pipeline) { p.clock = c } }

// New makes the pipeline of server's agents; their order is their priority's,
// whatever the order given.
func New(server string, agents []Agent, opts ...Option) *Pipeline {
	p := &Pipeline{server: server, agents: slices.Clone(agents), clock: clock.Real{}}
	for _, o := range opts {
		o(p)
	}
	if p.trace == nil {
		p.trace = trace.NewLog(nil)
	}
	slices.SortStableFunc(p.agents, func(a, b Agent) int { return int(a.Priority()) - int(b.Priority()) })
	return p
}

// Agents are the pipeline's agents in the order they act.
func (p *Pipeline) Agents() []Agent { return slices.Clone(p.agents) }

// Conn is what the agents know of a connection.
type Conn struct {
	Remote    netip.Addr
	Connector string
	// Bypass says whether the session holds ms-Exch-Bypass-Anti-Spam (FILTER-007); it
	// is asked at every event, since AUTH may grant it in the middle of a session.
	Bypass func() bool
	// Helo is the name the client gave in EHLO or HELO, "" before it did.
	Helo func() string
}

// Session is one SMTP session's run through the pipeline; an agent keeps what it
// learns at one event for the next ones in it (State).
type Session struct {
	p     *Pipeline
	Conn  Conn
	state map[Agent]any
	from  string
	rcpts []string
}

// Message is the message at end-of-data: its envelope and what the agents add. An
// agent may replace Data (an attachment stripped, an address rewritten) and Rcpts
// (a message redirected or copied); the receive connector queues what is left.
type Message struct {
	From   string
	Rcpts  []string
	Data   []byte
	header []string
}

// AddHeader puts a header field on top of the message as it is queued.
func (m *Message) AddHeader(name, value string) {
	m.header = append(m.header, name+": "+value+"\r\n")
}

// SetHeader is AddHeader for a field an agent before may have added already (the
// SCL, which the sender filter stamps and the content filter raises): it replaces
// that one, so the message carries the field once.
func (m *Message) SetHeader(name, value string) {
	prefix := strings.ToLower(name) + ":"
	for i, f := range m.header {
		if strings.HasPrefix(strings.ToLower(f), prefix) {
			m.header[i] = name + ": " + value + "\r\n"
			return
		}
	}
	m.AddHeader(name, value)
}

// HeaderValue is the value of a field the agents added, "" when none did.
func (m *Message) HeaderValue(name string) string {
	prefix := strings.ToLower(name) + ":"
	for _, f := range m.header {
		if strings.HasPrefix(strings.ToLower(f), prefix) {
			return strings.TrimSpace(f[len(prefix):])
		}
	}
	return ""
}

// Header is the fields the agents added, in the order added.
func (m *Message) Header() []byte { return []byte(strings.Join(m.header, "")) }

// State is the agent's own state in the session, made by mk the first time.
func State[T any](s *Session, a Agent, mk func() *T) *T {
	if v, ok := s.state[a]; ok {
		return v.(*T)
	}
	v := mk()
	s.state[a] = v
	return v
}

// Connect runs the connect hooks for a new session.
func (p *Pipeline) Connect(ctx context.Context, c Conn) (*Session, error) {
	if c.Bypass == nil {
		c.Bypass = func() bool { return false }
	}
	if c.Helo == nil {
		c.Helo = func() string { return "" }
	}
	s := &Session{p: p, Conn: c, state: map[Agent]any{}}
	return s, s.run(ctx, func(a Agent) (Result, bool) {
		h, ok := a.(ConnectHook)
		if !ok {
			return Result{}, false
		}
		return h.OnConnect(ctx, s), true
	})
}

// Mail runs the MAIL hooks; a new transaction begins.
func (s *Session) Mail(ctx context.Context, from string) error {
	s.from, s.rcpts = from, nil
	return s.run(ctx, func(a Agent) (Result, bool) {
		h, ok := a.(MailHook)
		if !ok {
			return Result{}, false
		}
		return h.OnMail(ctx, s, from), true
	})
}

// Rcpt runs the RCPT hooks for one recipient.
func (s *Session) Rcpt(ctx context.Context, rcpt string) error {
	err := s.run(ctx, func(a Agent) (Result, bool) {
		h, ok := a.(RcptHook)
		if !ok {
			return Result{}, false
		}
		return h.OnRcpt(ctx, s, rcpt), true
	}, rcpt)
	if err == nil {
		s.rcpts = append(s.rcpts, rcpt)
	}
	return err
}

// RewriteRcpt gives each agent that rewrites recipients the address in turn, and
// records each change; it returns the address the transaction keeps.
func (s *Session) RewriteRcpt(ctx context.Context, rcpt string) string {
	bypass := s.Conn.Bypass()
	for _, a := range s.p.agents {
		rw, ok := a.(RcptRewriter)
		if !ok {
			continue
		}
		if e, ok := a.(Everyone); bypass && (!ok || !e.Everyone()) {
			continue
		}
		next, why := rw.RewriteRcpt(ctx, s, rcpt)
		if next == rcpt {
			continue
		}
		s.p.trace.Record(trace.Event{
			Time: s.p.clock.Now(), Type: trace.AgentInfo, Server: s.p.server, Sender: s.from,
			Recipients: []string{rcpt}, Source: trace.SourceAgent, Connector: s.Conn.Connector,
			Agent: a.Name(), Detail: a.Name() + ": " + why,
		})
		rcpt = next
	}
	return rcpt
}

// EndOfData runs the end-of-data hooks on m; the fields they add are m.Header().
func (s *Session) EndOfData(ctx context.Context, m *Message) error {
	return s.run(ctx, func(a Agent) (Result, bool) {
		h, ok := a.(DataHook)
		if !ok {
			return Result{}, false
		}
		return h.OnEndOfData(ctx, s, m), true
	}, m.Rcpts...)
}

// Sender is the transaction's MAIL FROM address.
func (s *Session) Sender() string { return s.from }

// run gives each agent its hook in order, unless the session bypasses anti-spam,
// records what they did and stops at the first refusal.
func (s *Session) run(ctx context.Context, hook func(Agent) (Result, bool), rcpts ...string) error {
	if len(s.p.agents) == 0 {
		return nil
	}
	bypass := s.Conn.Bypass()
	if len(rcpts) == 0 {
		rcpts = s.rcpts
	}
	for _, a := range s.p.agents {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("agents: %w", err)
		}
		if bypass {
			if e, ok := a.(Everyone); !ok || !e.Everyone() {
				continue
			}
		}
		r, ok := hook(a)
		if !ok || r.Action == Pass {
			continue
		}
		e := trace.Event{
			Time: s.p.clock.Now(), Type: trace.AgentInfo, Server: s.p.server, Sender: s.from,
			Recipients: slices.Clone(rcpts), Source: trace.SourceAgent, Connector: s.Conn.Connector,
			Agent: a.Name(), Detail: a.Name() + ": " + r.Detail,
		}
		switch r.Action {
		case Reject:
			e.Type = trace.Fail
			e.Reply = replyText(r.Reply)
		case Drop:
			e.Type = trace.Drop
		}
		s.p.trace.Record(e)
		switch r.Action {
		case Reject:
			if r.Reply == nil {
				return errors.New("agents: " + a.Name() + " refused without a reply")
			}
			if r.Close {
				return &ClosingError{r.Reply}
			}
			return r.Reply
		case Drop:
			return ErrDropped
		}
	}
	return nil
}

// ClosingError is a refusal after which the server ends the session (FILTER-012).
type ClosingError struct{ Reply *smtp.SMTPError }

func (e *ClosingError) Error() string { return e.Reply.Error() }
func (e *ClosingError) Unwrap() error { return e.Reply }

// EndsSession tells the SMTP server to close the connection after the reply
// (reference/esmtp).
func (e *ClosingError) EndsSession() bool { return true }

func replyText(r *smtp.SMTPError) string {
	if r == nil {
		return ""
	}
	e := r.EnhancedCode
	return fmt.Sprintf("%d %d.%d.%d %s", r.Code, e[0], e[1], e[2], r.Message)
}
