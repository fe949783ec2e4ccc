// Package trace is message tracking: one event per thing that happens to a message on a
// server (RECEIVE, ROUTE, SEND, DEFER, FAIL, ...). Suites judge routing by these events
// (TRACE-001, TRACE-008); in-process they are read from a Log, in containers from each
// server's JSON log lines, which use the same Event encoding.
package trace

import (
	"encoding/json"
	"io"
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
)

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
	Reply  string `json:"reply,omitempty"`
	Detail string `json:"detail,omitempty"`
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
}

func (l *Log) Events() []Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]Event(nil), l.events...)
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
