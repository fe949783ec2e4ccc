package queue

import (
	"strings"
	"time"
)

// State of one recipient.
type State string

const (
	Pending   State = "pending"
	Delivered State = "delivered"
	Failed    State = "failed"
)

// Recipient is one envelope recipient and what has happened to it.
type Recipient struct {
	Addr string `json:"addr"`
	// ORCPT is the original recipient when the address was rewritten.
	ORCPT    string `json:"orcpt,omitempty"`
	State    State  `json:"state"`
	Reply    string `json:"reply,omitempty"`
	Attempts int    `json:"attempts"`
	// Notify is the RCPT NOTIFY list (RFC 3461 §4.1): NEVER, or any of SUCCESS,
	// FAILURE, DELAY; empty when the client gave none.
	Notify []string `json:"notify,omitempty"`
}

// DSN kinds a recipient's NOTIFY asks for (RFC 3461 §4.1).
const (
	NotifySuccess = "SUCCESS"
	NotifyFailure = "FAILURE"
	NotifyDelay   = "DELAY"
	NotifyNever   = "NEVER"
)

// Wants says whether the sender asked for a DSN of this kind about the recipient.
// Without NOTIFY a server sends failures and delays, not successes (RFC 3461 §4.1:
// "NOTIFY=FAILURE or NOTIFY=FAILURE,DELAY").
func (r Recipient) Wants(kind string) bool {
	if len(r.Notify) == 0 {
		return kind == NotifyFailure || kind == NotifyDelay
	}
	for _, n := range r.Notify {
		if strings.EqualFold(n, kind) {
			return true
		}
	}
	return false
}

// Message is the envelope of a spooled message; the data lives beside it.
type Message struct {
	ID         string      `json:"id"`
	HeaderID   string      `json:"header_id,omitempty"`
	From       string      `json:"from"`
	Recipients []Recipient `json:"recipients"`
	// Ret and EnvID are the MAIL parameters of RFC 3461 §4.3, §4.4: "FULL", "HDRS" or
	// "" (the server's choice), and the sender's envelope ID, xtext-decoded.
	Ret         string    `json:"ret,omitempty"`
	EnvID       string    `json:"envid,omitempty"`
	Received    time.Time `json:"received"`
	NextAttempt time.Time `json:"next_attempt"`
	Attempts    int       `json:"attempts"`
	LastReply   string    `json:"last_reply,omitempty"`
	// Categorized marks a message whose recipients a Hub's categorizer has already
	// resolved (primary addresses, group members, contact targets).
	Categorized bool `json:"categorized,omitempty"`
	// Queue is the queue the message waits in (QUEUE-011): Submission until its first
	// attempt, then the delivery queue of its next hop, Unreachable, or Poison.
	Queue string `json:"queue,omitempty"`
	// DelayNotified records that the delay DSN went out, so it goes once (QUEUE-006).
	DelayNotified bool `json:"delay_notified,omitempty"`
	// Crashes counts attempts that began and never finished: the spool says so before
	// each attempt and clears it after, so a process that died mid-attempt leaves it
	// counted. Two make the message poison.
	Crashes int `json:"crashes,omitempty"`

	// Size is the length of the message's data, counted against the spool limit.
	Size int64 `json:"size,omitempty"`

	// fresh marks a message enqueued by this process whose first attempt has not
	// begun: its spooled envelope already counts that attempt in Crashes.
	fresh bool
	// data is the message's octets as accepted, kept for its first attempt.
	data []byte
}

// Recipient finds the recipient addr, or nil.
func (m *Message) Recipient(addr string) *Recipient {
	for i := range m.Recipients {
		if m.Recipients[i].Addr == addr {
			return &m.Recipients[i]
		}
	}
	for i := range m.Recipients {
		if strings.EqualFold(m.Recipients[i].Addr, addr) {
			return &m.Recipients[i]
		}
	}
	return nil
}

// Queue names of Exchange (EX-QUEUES) that are not a next hop's.
const (
	QueueSubmission  = "Submission"
	QueueUnreachable = "Unreachable"
	QueuePoison      = "Poison"
)

// PoisonThreshold is how many interrupted attempts make a message poison, Exchange's
// default (EX-QUEUES).
const PoisonThreshold = 2

// Pending lists the recipients still to deliver.
func (m *Message) Pending() []string {
	var out []string
	for _, r := range m.Recipients {
		if r.State == Pending {
			out = append(out, r.Addr)
		}
	}
	return out
}
