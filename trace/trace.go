// Package trace is message tracking: one event per thing that happens to a message on a
// server (RECEIVE, ROUTE, SEND, DEFER, FAIL, ...). Suites judge routing by these events
// (TRACE-001, TRACE-008); in-process they are read from a Log, in containers from each
// server's JSON log lines, which use the same Event encoding.
package trace

import (
	"encoding/json"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Type is a message-tracking event type (EX-TRACK vocabulary).
type Type string

const (
	Receive    Type = "RECEIVE"
	Categorize Type = "CATEGORIZE"
	Route      Type = "ROUTE"
	Send       Type = "SEND"
	Defer      Type = "DEFER"
	Deliver    Type = "DELIVER"
	Fail       Type = "FAIL"
	DSN        Type = "DSN"
	Expire     Type = "EXPIRE"
	// Expand is a distribution group replaced by its members.
	Expand Type = "EXPAND"
	// Resolve is an address rewritten to the recipient's primary address (or a
	// contact's target).
	Resolve Type = "RESOLVE"
	// Redirect is a mailbox's mail sent on to its forwarding address.
	Redirect Type = "REDIRECT"
	// Transfer is recipients moved to a new, forked message (bifurcation).
	Transfer Type = "TRANSFER"
	// Resubmit is a shadow copy put back in the queue because the server it was relayed
	// to failed before delivering it onward (shadow redundancy, QUEUE-012).
	Resubmit Type = "RESUBMIT"
	// AgentInfo is an agent that acted on a message without refusing it (stamped it,
	// or let it pass when it could not decide); a refusal by an agent is a FAIL with
	// Source AGENT. Both name the agent (FILTER-018).
	AgentInfo Type = "AGENTINFO"
	// Drop is a message an agent or a transport rule deleted: the client got 250,
	// nobody gets the message and nobody a DSN (FILTER-011 (f), FILTER-016
	// SilentDelete).
	Drop Type = "DROP"
	// LinkState is a routing group connector's state changing in one server's
	// link-state table, or a state passed between servers (Exchange 2003's link-state
	// routing, ROUTE-020): a bridgehead reporting to its routing group master, a master
	// telling its members and the other groups' masters. Connector names the
	// connector, Source the server the state came from.
	LinkState Type = "LINKSTATE"
	// Proxy is a client's login at a Client Access server handed on to the user's
	// Mailbox server, which NextHop names (MBX-011); it concerns no message.
	Proxy Type = "PROXY"
	// Notify is a delivery announced to the IMAP sessions that have the recipient's
	// INBOX selected, EXISTS with the new count, at once for a client in IDLE
	// (MBX-012). A delivery nobody is watching has none.
	Notify Type = "NOTIFY"
)

// SourceAgent is the Source of the events an agent causes.
const SourceAgent = "AGENT"

// Event is one tracking record.
type Event struct {
	Time time.Time `json:"time"`
	Type Type      `json:"event"`
	// MessageID is the queue ID on Server; HeaderID the Message-ID header shared by hops.
	MessageID  string   `json:"message_id"`
	HeaderID   string   `json:"header_id,omitempty"`
	Server     string   `json:"server"`
	Sender     string   `json:"sender"`
	Recipients []string `json:"recipients,omitempty"`
	// Source is how the message arrived (SMTP) or the connector it left by.
	Source    string `json:"source,omitempty"`
	Connector string `json:"connector,omitempty"`
	NextHop   string `json:"next_hop,omitempty"`
	// Reply is the SMTP reply that caused the event, when there was one.
	Reply string `json:"reply,omitempty"`
	// Agent names the agent that acted (Source AGENT).
	Agent  string `json:"agent,omitempty"`
	Detail string `json:"detail,omitempty"`
	// CopyID names the message the event handed its recipients to, by the ID it has
	// where it went: on SEND the next hop's queue ID for the copy it took (the
	// MessageID of that server's RECEIVE or DELIVER), on TRANSFER the categorized
	// message, on DSN the notification. A message split per next hop is one copy per
	// hop, so following CopyID from a RECEIVE gives each recipient its own path.
	CopyID string `json:"copy_id,omitempty"`
}

// Recorder is what servers write events to.
type Recorder interface {
	Record(e Event)
}

// Reader is what suites read events from.
type Reader interface {
	Events() []Event
}

// Log keeps every event in memory and, optionally, writes each as a JSON line.
type Log struct {
	mu      sync.Mutex
	events  []Event
	out     io.Writer
	ordered bool
	watch   []func(Event)
}

// Watch calls f with every event recorded from now on, in the order recorded, from the
// recording goroutine; f must not block or record.
func (l *Log) Watch(f func(Event)) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.watch = append(l.watch, f)
}

// NewLog makes a log; out may be nil.
func NewLog(out io.Writer) *Log { return &Log{out: out} }

// NewOrderedLog makes a log that keeps events in the order of their time stamps (equal
// ones in the order recorded): events collected from several servers' logs, each
// followed on its own, arrive out of order.
func NewOrderedLog() *Log { return &Log{ordered: true} }

func (l *Log) Record(e Event) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.events = append(l.events, e)
	if l.ordered {
		// Mostly in order already: move the new event back past later ones only.
		for i := len(l.events) - 1; i > 0 && l.events[i-1].Time.After(e.Time); i-- {
			l.events[i], l.events[i-1] = l.events[i-1], l.events[i]
		}
	}
	if l.out != nil {
		b, _ := json.Marshal(e)
		_, _ = l.out.Write(append(b, '\n'))
	}
	for _, f := range l.watch {
		f(e)
	}
}

// Line is the event as one line for a person watching a server: time, server, event,
// message ID, recipients, then whatever else it says (connector, next hop, the copy it
// handed the recipients to, reply, detail).
func Line(e Event) string {
	var b strings.Builder
	b.WriteString(e.Time.UTC().Format("15:04:05.000"))
	for _, f := range []string{e.Server, string(e.Type), e.MessageID} {
		b.WriteByte(' ')
		if f == "" {
			f = "-"
		}
		b.WriteString(f)
	}
	if e.Sender != "" || e.Type == Receive {
		b.WriteString(" from=<" + e.Sender + ">")
	}
	if len(e.Recipients) > 0 {
		b.WriteString(" to=" + strings.Join(e.Recipients, ","))
	}
	for _, kv := range [][2]string{{"source", e.Source}, {"connector", e.Connector}, {"next_hop", e.NextHop}, {"copy", e.CopyID}} {
		if kv[1] != "" {
			b.WriteString(" " + kv[0] + "=" + quoteIfSpaced(kv[1]))
		}
	}
	if e.Reply != "" {
		b.WriteString(` reply="` + oneLine(e.Reply) + `"`)
	}
	if e.Detail != "" {
		b.WriteString(" " + oneLine(e.Detail))
	}
	return b.String()
}

func quoteIfSpaced(s string) string {
	if strings.ContainsAny(s, " \t\"") {
		return strconv.Quote(s)
	}
	return s
}

func oneLine(s string) string {
	return strings.NewReplacer("\r\n", " ", "\n", " ", "\r", " ").Replace(s)
}

func (l *Log) Events() []Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]Event(nil), l.events...)
}

// Copy is one copy of a message on one server: the events with that Server and
// MessageID.
type Copy struct{ Server, ID string }

// CopyOf is the copy an event is about.
func CopyOf(e Event) Copy { return Copy{Server: e.Server, ID: e.MessageID} }

// Parents maps each copy to the copy it came from: a copy received or stored by one
// server from another's SEND, a categorized message from the message it was made
// of. Copies made by a DSN event are not in it: a notification is a message of its
// own (see Notifications).
func Parents(events []Event) map[Copy]Copy {
	// The SEND names the copy's ID, not the server that took it: the RECEIVE or
	// DELIVER with that ID says which.
	at := map[string]string{}
	for _, e := range events {
		if e.Type == Receive || e.Type == Deliver {
			at[e.MessageID] = e.Server
		}
	}
	out := map[Copy]Copy{}
	for _, e := range events {
		if e.CopyID == "" {
			continue
		}
		switch e.Type {
		case Send:
			if srv, ok := at[e.CopyID]; ok {
				out[Copy{srv, e.CopyID}] = CopyOf(e)
			}
		case Transfer:
			out[Copy{e.Server, e.CopyID}] = CopyOf(e)
		}
	}
	return out
}

// Lineage is the chain of copies from the first one in the trace (a submission's, or
// a notification's) to c, c last.
func Lineage(parents map[Copy]Copy, c Copy) []Copy {
	chain := []Copy{c}
	seen := map[Copy]bool{c: true}
	for {
		p, ok := parents[chain[0]]
		if !ok || seen[p] {
			return chain
		}
		seen[p] = true
		chain = append([]Copy{p}, chain...)
	}
}

// Notifications are the copies that DSN events made (the first copy of each DSN),
// each mapped to the copy of the message it reports on.
func Notifications(events []Event) map[Copy]Copy {
	out := map[Copy]Copy{}
	for _, e := range events {
		if e.Type == DSN && e.CopyID != "" {
			out[Copy{e.Server, e.CopyID}] = CopyOf(e)
		}
	}
	return out
}

// Filter returns the events for which keep is true.
func Filter(events []Event, keep func(Event) bool) []Event {
	var out []Event
	for _, e := range events {
		if keep(e) {
			out = append(out, e)
		}
	}
	return out
}

// OfType keeps the events of type t, optionally on one server ("" for any).
func OfType(events []Event, t Type, server string) []Event {
	return Filter(events, func(e Event) bool {
		return e.Type == t && (server == "" || e.Server == server)
	})
}
