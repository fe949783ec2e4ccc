package mailbox

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/emersion/go-message/textproto"

	"github.com/mailflow/mailflow/reference/directory"
	"github.com/mailflow/mailflow/reference/esmtp"
	"github.com/mailflow/mailflow/reference/imapd"
	"github.com/mailflow/mailflow/reference/queue"
	"github.com/mailflow/mailflow/reference/replies"
	"github.com/mailflow/mailflow/reference/store"
	"github.com/mailflow/mailflow/trace"
)

type session struct {
	s     *Server
	conn  *esmtp.Conn
	rcpts map[string]string // accepted recipient -> its mailbox (primary address)
	size  int64             // MAIL's SIZE=, 0 when not declared
}

// backend starts a session per connection (esmtp.Backend).
type backend struct{ s *Server }

func (b backend) NewSession(c *esmtp.Conn) (esmtp.Session, error) {
	return &session{s: b.s, conn: c}, nil
}

// Mail is where TLS is enforced rather than at EHLO, so a client in the clear still
// learns that STARTTLS is offered and gets the reply RFC 3207 §4 prescribes.
func (ss *session) Mail(_ string, p esmtp.MailParams) error {
	if !ss.conn.TLS() {
		return replies.MustStartTLS()
	}
	ss.rcpts, ss.size = map[string]string{}, p.Size
	return nil
}

// Rcpt accepts only mailboxes the directory places on this server.
func (ss *session) Rcpt(to string, _ esmtp.RcptParams) (string, error) {
	at := strings.LastIndexByte(to, '@')
	if at <= 0 || at == len(to)-1 {
		return "", replies.BadAddress()
	}
	if !ss.s.enter() {
		return "", replies.ShuttingDown()
	}
	defer ss.s.leave()
	e, err := ss.s.cfg.Directory.Lookup(ss.s.ctx, to)
	switch {
	case errors.Is(err, directory.ErrNotFound):
		return "", replies.UnknownRecipient()
	case err != nil:
		ss.s.log.Warn("recipient lookup failed", "rcpt", to, "err", err)
		return "", replies.DirectoryUnavailable()
	case e.Type != directory.TypeMailbox:
		return "", replies.NotAMailbox()
	case !strings.EqualFold(e.MailboxServer, ss.s.name):
		ss.s.log.Info("recipient's mailbox is on another server", "rcpt", to, "mailbox_server", e.MailboxServer)
		return "", replies.WrongServer(ss.s.name)
	}
	mbox := e.Mail
	if mbox == "" {
		mbox = to
	}
	mbox = strings.ToLower(mbox)
	// Refused at RCPT, the one recipient alone fails: the rest of the transaction goes on.
	if ss.s.overQuota(mbox, ss.size) {
		ss.s.log.Info("recipient's mailbox is over its quota", "rcpt", to, "mailbox", mbox)
		return "", replies.MailboxFull()
	}
	ss.rcpts[to] = mbox
	return to, nil
}

// Data stores the message in every recipient's mailbox, or in none.
func (ss *session) Data(env *esmtp.Envelope, data []byte) error {
	if !ss.s.enter() {
		return replies.ShuttingDown()
	}
	defer ss.s.leave()
	hdr, _ := textproto.ReadHeader(bufio.NewReader(bytes.NewReader(data)))
	now := ss.s.cfg.Clock.Now()
	id := queue.NewID(now)
	rcpts := env.Addrs()
	stamped := append([]byte(ss.conn.Received(id, now, rcpts)), data...)
	mailboxes := make([]string, len(rcpts))
	for i, rc := range rcpts {
		mailboxes[i] = ss.rcpts[rc]
		// A message larger than MAIL's SIZE= said (or than nothing) is checked again.
		if ss.s.overQuota(mailboxes[i], int64(len(stamped))) {
			return replies.MailboxFull()
		}
	}
	junk, scl := junkFolder(hdr.Get(HeaderSCL))
	// The quarantine mailbox holds what the content filter quarantined in its INBOX.
	junk = junk && hdr.Get(HeaderQuarantine) == ""
	var ds []store.Delivery
	var err error
	fs, ok := ss.s.store.(FolderStore)
	if junk && ok {
		ds, err = fs.DeliverAllIn(ss.s.ctx, store.Junk, mailboxes, env.From, stamped)
	} else {
		junk = false
		ds, err = ss.s.store.DeliverAll(ss.s.ctx, mailboxes, env.From, stamped)
	}
	if err != nil {
		ss.s.log.Error("delivery failed", "msgid", id, "mailboxes", mailboxes, "err", err)
		return replies.StoreFailed(err)
	}
	headerID := strings.Trim(hdr.Get("Message-Id"), "<> \t")
	notices := make([]imapd.Notice, len(ds))
	for i, d := range ds {
		if !d.Duplicate && !junk && ss.s.imap != nil {
			notices[i] = ss.s.imap.Notify(d.Mailbox)
		}
	}
	for i, rc := range rcpts {
		detail := "stored in " + mailboxes[i]
		if junk {
			detail = fmt.Sprintf("stored in %s, Junk E-mail folder (SCL %d, junk threshold %d)", mailboxes[i], scl, JunkThreshold)
		}
		if ds[i].Duplicate {
			detail = "duplicate suppressed"
		}
		ss.s.cfg.Trace.Record(trace.Event{
			Time: now, Type: trace.Deliver, MessageID: id, HeaderID: headerID, Server: ss.s.name,
			Sender: env.From, Recipients: []string{rc}, Source: "STOREDRIVER", Detail: detail,
		})
		if n := notices[i]; n.Selected > 0 {
			ss.s.cfg.Trace.Record(trace.Event{
				Time: now, Type: trace.Notify, MessageID: id, HeaderID: headerID, Server: ss.s.name,
				Sender: env.From, Recipients: []string{rc}, Source: "IMAP",
				Detail: fmt.Sprintf("* %d EXISTS to the IMAP sessions with %s's INBOX selected: %d, %d of them in IDLE", n.Exists, mailboxes[i], n.Selected, n.Idling),
			})
		}
	}
	return replies.Delivered(id)
}

// HeaderSCL is the spam confidence level the Edge's content filter gave the message
// (FILTER-013); the Edge strips it from what an Internet client sends (TRACE-007),
// so a value here is the organisation's own.
const HeaderSCL = "X-MS-Exchange-Organization-SCL"

// HeaderQuarantine marks a message the Edge's content filter sent to the quarantine
// mailbox.
const HeaderQuarantine = "X-MS-Exchange-Organization-Quarantine"

// JunkThreshold is the SCL at or above which a message is filed in the recipient's
// Junk E-mail folder (Exchange's SCLJunkThreshold default).
const JunkThreshold = 4

// FolderStore is a Store that can deliver into a mailbox's folders; *store.Store is
// one. With a Store that cannot, every message goes to INBOX.
type FolderStore interface {
	DeliverAllIn(ctx context.Context, folder string, mailboxes []string, returnPath string, data []byte) ([]store.Delivery, error)
}

// junkFolder says whether a message with this SCL field goes to Junk E-mail, and
// the SCL read.
func junkFolder(field string) (bool, int) {
	n, err := strconv.Atoi(strings.TrimSpace(field))
	if err != nil {
		return false, 0
	}
	return n >= JunkThreshold, n
}
