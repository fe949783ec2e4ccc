package queue

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/mailflow/mailflow/reference/internal/lazydir"
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

// Spool is a directory of messages: ID.eml (data) and ID.json (envelope).
type Spool struct {
	dir  string
	made *lazydir.Dir
}

// OpenSpool opens the spool in dir. The directory is made with the first message;
// until then the spool is empty.
func OpenSpool(dir string) (*Spool, error) {
	made, err := lazydir.Open(dir, syncDir)
	if err != nil {
		return nil, fmt.Errorf("spool %s: %w", dir, err)
	}
	return &Spool{dir: dir, made: made}, nil
}

// Dir is the spool directory.
func (s *Spool) Dir() string { return s.dir }

// NewID makes a queue ID that sorts by time of arrival.
func NewID(now time.Time) string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("%x%s", now.UnixNano(), hex.EncodeToString(b[:]))
}

// Put stores data then envelope, each fsynced, then fsyncs the directory. A message is
// in the spool exactly when its envelope file exists, so a crash mid-Put leaves at most
// an orphan data file, never a half message.
func (s *Spool) Put(m *Message, data []byte) error {
	if m.ID == "" {
		return errors.New("spool put: message has no ID")
	}
	if err := s.made.Make(); err != nil {
		return fmt.Errorf("spool put %s: %w", m.ID, err)
	}
	eml := filepath.Join(s.dir, m.ID+".eml")
	if err := writeFileSync(eml, data); err != nil {
		// A full disk leaves a short or empty file: nothing of a message that was not
		// taken stays behind (SEC-010).
		_ = os.Remove(eml)
		return fmt.Errorf("spool put %s: %w", m.ID, err)
	}
	if err := s.Save(m); err != nil {
		_ = os.Remove(filepath.Join(s.dir, m.ID+".json.tmp"))
		_ = os.Remove(eml)
		return err
	}
	return nil
}

// Save atomically replaces the envelope of m.
func (s *Spool) Save(m *Message) error {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return fmt.Errorf("spool save %s: %w", m.ID, err)
	}
	if err := s.made.Make(); err != nil {
		return fmt.Errorf("spool save %s: %w", m.ID, err)
	}
	final := filepath.Join(s.dir, m.ID+".json")
	tmp := final + ".tmp"
	if err := writeFileSync(tmp, b); err != nil {
		return fmt.Errorf("spool save %s: %w", m.ID, err)
	}
	if err := os.Rename(tmp, final); err != nil {
		return fmt.Errorf("spool save %s: %w", m.ID, err)
	}
	return syncDir(s.dir)
}

// Data reads a message's data.
func (s *Spool) Data(id string) ([]byte, error) {
	b, err := os.ReadFile(filepath.Join(s.dir, id+".eml"))
	if err != nil {
		return nil, fmt.Errorf("spool data %s: %w", id, err)
	}
	return b, nil
}

// Remove deletes a message whose recipients are all done. The directory is not
// fsynced: a crash that brings the message back costs a duplicate delivery, never a
// loss, and a sync here would cost every message an fsync.
func (s *Spool) Remove(id string) error {
	if err := os.Remove(filepath.Join(s.dir, id+".json")); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("spool remove %s: %w", id, err)
	}
	_ = os.Remove(filepath.Join(s.dir, id+".eml"))
	return nil
}

// List reads every envelope in the spool, oldest first.
func (s *Spool) List() ([]*Message, error) {
	ents, err := os.ReadDir(s.dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil // no message was ever spooled here
	}
	if err != nil {
		return nil, fmt.Errorf("spool list: %w", err)
	}
	var out []*Message
	for _, e := range ents {
		if !strings.HasSuffix(e.Name(), ".json") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(s.dir, e.Name()))
		if err != nil {
			return nil, fmt.Errorf("spool list: %w", err)
		}
		var m Message
		if err := json.Unmarshal(b, &m); err != nil {
			return nil, fmt.Errorf("spool list: %s: %w", e.Name(), err)
		}
		out = append(out, &m)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

func writeFileSync(path string, data []byte) error { return lazydir.WriteFileSync(path, data) }

func syncDir(dir string) error { return lazydir.SyncDir(dir) }
