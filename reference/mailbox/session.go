package mailbox

import (
	"bufio"
	"bytes"
	"errors"
	"strings"

	"github.com/emersion/go-message/textproto"

	"github.com/mailflow/mailflow/reference/directory"
	"github.com/mailflow/mailflow/reference/esmtp"
	"github.com/mailflow/mailflow/reference/queue"
	"github.com/mailflow/mailflow/reference/replies"
	"github.com/mailflow/mailflow/trace"
)

type session struct {
	s     *Server
	conn  *esmtp.Conn
	rcpts map[string]string // accepted recipient -> its mailbox (primary address)
}

// backend starts a session per connection (esmtp.Backend).
type backend struct{ s *Server }

func (b backend) NewSession(c *esmtp.Conn) (esmtp.Session, error) {
	return &session{s: b.s, conn: c}, nil
}

// Mail is where TLS is enforced rather than at EHLO, so a client in the clear still
// learns that STARTTLS is offered and gets the reply RFC 3207 §4 prescribes.
func (ss *session) Mail(string, esmtp.MailParams) error {
	if !ss.conn.TLS() {
		return replies.MustStartTLS()
	}
	ss.rcpts = map[string]string{}
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
	ss.rcpts[to] = strings.ToLower(mbox)
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
	}
	ds, err := ss.s.store.DeliverAll(ss.s.ctx, mailboxes, env.From, stamped)
	if err != nil {
		ss.s.log.Error("delivery failed", "msgid", id, "mailboxes", mailboxes, "err", err)
		return replies.StoreFailed(err)
	}
	headerID := strings.Trim(hdr.Get("Message-Id"), "<> \t")
	for i, rc := range rcpts {
		detail := "stored in " + mailboxes[i]
		if ds[i].Duplicate {
			detail = "duplicate suppressed"
		}
		ss.s.cfg.Trace.Record(trace.Event{
			Time: now, Type: trace.Deliver, MessageID: id, HeaderID: headerID, Server: ss.s.name,
			Sender: env.From, Recipients: []string{rc}, Source: "STOREDRIVER", Detail: detail,
		})
	}
	return replies.Delivered(id)
}
