package mailbox

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/mail"
	"strings"
	"time"

	"github.com/emersion/go-message/textproto"
	"github.com/emersion/go-smtp"

	"github.com/mailflow/mailflow/reference/queue"
	"github.com/mailflow/mailflow/trace"
)

// Folders the store-submission path uses.
const (
	OutboxFolder = "Outbox"
	SentFolder   = "Sent Items"
)

// OutboxConnector names the store-submission path in trace events.
const OutboxConnector = "Outbox"

// OutboxRetryInterval is how long a message no Hub of the site took waits in the
// Outbox before the next try (MBX-010). Exchange retries a store submission with no
// Hub at hand at its own pace; a minute is the reference's.
const OutboxRetryInterval = time.Minute

// outboxItem is what the submission service remembers of a message in an Outbox.
type outboxItem struct {
	id     string // the message's ID in trace events, the same at every try
	failed bool   // refused for good: left in the Outbox, not tried again
}

// kickOutbox tells the submission service a message was put in mailbox's Outbox.
func (s *Server) kickOutbox(mailbox, folder string) {
	if folder != OutboxFolder {
		return
	}
	select {
	case s.outboxKick <- struct{}{}:
	default: // a pass is due anyway
	}
}

// runOutbox is the Mailbox server's submission service (MBX-006, MBX-010): it takes
// every message a client placed in an Outbox, hands it to a Hub of this server's site
// and, once the Hub took it, moves it to the owner's Sent Items. A message no Hub took
// stays in the Outbox and is tried again after OutboxRetryInterval. Every Outbox is
// looked at when the server starts, so a restart loses nothing placed there.
func (s *Server) runOutbox() {
	defer s.wg.Done()
	items := map[string]*outboxItem{} // by mailbox + "/" + Maildir ID
	// One retry timer at a time: a pass a new message started keeps the one armed.
	var due <-chan time.Time
	for {
		switch retry := s.outboxPass(items); {
		case !retry:
			due = nil
		case due == nil:
			due = s.cfg.Clock.After(OutboxRetryInterval)
		}
		select {
		case <-s.ctx.Done():
			return
		case <-s.outboxKick:
		case <-due:
			due = nil
		}
	}
}

// outboxPass submits what waits in every Outbox; it says whether something is left to
// try again.
func (s *Server) outboxPass(items map[string]*outboxItem) (retry bool) {
	boxes, err := s.imap.Mailboxes()
	if err != nil {
		s.log.Warn("outboxes unreadable", "err", err)
		return true
	}
	seen := map[string]bool{}
	for _, mbox := range boxes {
		msgs, err := s.imap.Messages(mbox, OutboxFolder)
		if err != nil {
			s.log.Warn("outbox unreadable", "mailbox", mbox, "err", err)
			retry = true
			continue
		}
		for _, m := range msgs {
			if s.ctx.Err() != nil {
				return false
			}
			key := mbox + "/" + m.ID
			seen[key] = true
			it := items[key]
			if it == nil {
				it = &outboxItem{id: queue.NewID(s.cfg.Clock.Now())}
				items[key] = it
			}
			if it.failed {
				continue
			}
			if !s.submitFromOutbox(mbox, m.ID, m.Data, it) && !it.failed {
				retry = true
			}
		}
	}
	for k := range items {
		if !seen[k] {
			delete(items, k)
		}
	}
	return retry
}

// submitFromOutbox hands one Outbox message to a Hub, as its owner, to the addresses
// of its To:, Cc: and Bcc: fields, and files it in Sent Items once a Hub took it.
func (s *Server) submitFromOutbox(mbox, maildirID string, data []byte, it *outboxItem) bool {
	now := s.cfg.Clock.Now()
	hdr, err := textproto.ReadHeader(bufio.NewReader(bytes.NewReader(data)))
	rcpts := recipientsOf(hdr)
	if err != nil || len(rcpts) == 0 {
		it.failed = true
		s.cfg.Trace.Record(trace.Event{
			Time: now, Type: trace.Fail, MessageID: it.id, Server: s.name, Sender: mbox,
			Connector: OutboxConnector, Detail: "no recipient in To:, Cc: or Bcc:; left in the Outbox",
		})
		return false
	}
	completed := s.complete(data, hdr, it.id, now)
	out := withoutBcc(completed)
	received := fmt.Sprintf("Received: from %s's Outbox\r\n\tby %s (mailflow) with MAPI id %s; %s\r\n",
		mbox, s.hostname, it.id, now.Format("Mon, 02 Jan 2006 15:04:05 -0700"))
	out = append([]byte(received), out...)
	outHdr := headerOf(out)
	headerID := strings.Trim(outHdr.Get("Message-Id"), "<> \t")
	s.cfg.Trace.Record(trace.Event{
		Time: now, Type: trace.Receive, MessageID: it.id, HeaderID: headerID, Server: s.name,
		Sender: mbox, Recipients: rcpts, Source: "STOREDRIVER", Connector: OutboxConnector,
		Detail: "submitted from " + mbox + "'s Outbox",
	})
	hub, res, err := s.toHub(s.ctx, mbox, rcpts, out)
	if err != nil {
		if s.ctx.Err() != nil {
			return false
		}
		typ, detail := trace.Defer, fmt.Sprintf("no Hub of site %s took it; kept in the Outbox, next try in %s", s.site(), OutboxRetryInterval)
		if isPermanent(err) {
			typ, detail, it.failed = trace.Fail, "refused by "+hub.Name+"; left in the Outbox", true
		}
		s.cfg.Trace.Record(trace.Event{
			Time: s.cfg.Clock.Now(), Type: typ, MessageID: it.id, HeaderID: headerID, Server: s.name,
			Sender: mbox, Recipients: rcpts, NextHop: hub.Name, Reply: replyLine(err), Detail: detail,
		})
		return false
	}
	// Traced before the move, in the order it happens: Outbox, Hub, Sent Items.
	s.recordSend(it.id, headerID, mbox, rcpts, hub, res, "taken from the Outbox; filed in Sent Items")
	// The Sent copy is what the owner wrote, Bcc: included, as a client files it, with
	// the Date: and Message-ID: it was sent with.
	if err := s.imap.Move(mbox, maildirID, OutboxFolder, SentFolder, completed); err != nil {
		s.log.Error("submitted message not moved to Sent Items", "mailbox", mbox, "msgid", it.id, "err", err)
		s.cfg.Trace.Record(trace.Event{
			Time: s.cfg.Clock.Now(), Type: trace.Fail, MessageID: it.id, HeaderID: headerID, Server: s.name,
			Sender: mbox, Connector: OutboxConnector, Detail: "sent, but not filed in Sent Items: " + err.Error(),
		})
		it.failed = true // the Hub has it: never send it twice
		return false
	}
	return true
}

func isPermanent(err error) bool {
	var se *smtp.SMTPError
	return errors.As(err, &se) && se.Code >= 500
}

// replyLine writes a refusal as the reply line it is ("451 4.4.1 text").
func replyLine(err error) string {
	var se *smtp.SMTPError
	if !errors.As(err, &se) {
		return err.Error()
	}
	if se.EnhancedCode == smtp.NoEnhancedCode || se.EnhancedCode == (smtp.EnhancedCode{}) {
		return fmt.Sprintf("%d %s", se.Code, se.Message)
	}
	e := se.EnhancedCode
	return fmt.Sprintf("%d %d.%d.%d %s", se.Code, e[0], e[1], e[2], se.Message)
}

// recipientsOf are the addresses of To:, Cc: and Bcc:, each once.
func recipientsOf(hdr textproto.Header) []string {
	var out []string
	seen := map[string]bool{}
	for _, k := range []string{"To", "Cc", "Bcc"} {
		for _, v := range hdr.Values(k) {
			addrs, err := mail.ParseAddressList(v)
			if err != nil {
				continue
			}
			for _, a := range addrs {
				if k := strings.ToLower(a.Address); !seen[k] {
					seen[k] = true
					out = append(out, a.Address)
				}
			}
		}
	}
	return out
}

// withoutBcc drops the Bcc: field from what leaves the store: its recipients get the
// message, and no one learns of them from it (RFC 5322 §3.6.3).
func withoutBcc(data []byte) []byte {
	br := bufio.NewReader(bytes.NewReader(data))
	hdr, err := textproto.ReadHeader(br)
	if err != nil || !hdr.Has("Bcc") {
		return data
	}
	hdr.Del("Bcc")
	var b bytes.Buffer
	if err := textproto.WriteHeader(&b, hdr); err != nil {
		return data
	}
	_, _ = io.Copy(&b, br)
	return b.Bytes()
}
