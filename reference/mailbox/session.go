package mailbox

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/emersion/go-message/textproto"
	"github.com/emersion/go-smtp"

	"github.com/mailflow/mailflow/reference/directory"
	"github.com/mailflow/mailflow/reference/queue"
	"github.com/mailflow/mailflow/reference/replies"
	"github.com/mailflow/mailflow/trace"
)

type session struct {
	s      *Server
	conn   *smtp.Conn
	remote netip.Addr

	from  string
	rcpts []recipient
}

// recipient is an accepted RCPT and the mailbox (primary address) it resolved to.
type recipient struct {
	addr, mailbox string
}

func (s *Server) newSession(c *smtp.Conn) (smtp.Session, error) {
	return &session{s: s, conn: c, remote: remoteIP(c.Conn().RemoteAddr())}, nil
}

func remoteIP(a net.Addr) netip.Addr {
	if ta, ok := a.(*net.TCPAddr); ok {
		if ip, ok := netip.AddrFromSlice(ta.IP); ok {
			return ip.Unmap()
		}
	}
	ap, _ := netip.ParseAddrPort(a.String())
	return ap.Addr().Unmap()
}

func (ss *session) tls() bool {
	_, ok := ss.conn.TLSConnectionState()
	return ok
}

func (ss *session) Reset() {
	ss.from = ""
	ss.rcpts = nil
}

func (ss *session) Logout() error { return nil }

// Mail is where TLS is enforced rather than at EHLO, so a client in the clear still
// learns that STARTTLS is offered and gets the reply RFC 3207 §4 prescribes.
func (ss *session) Mail(from string, _ *smtp.MailOptions) error {
	if !ss.tls() {
		return replies.MustStartTLS()
	}
	ss.from = from
	ss.rcpts = nil
	return nil
}

// Rcpt accepts only mailboxes the directory places on this server.
func (ss *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	at := strings.LastIndexByte(to, '@')
	if at <= 0 || at == len(to)-1 {
		return replies.BadAddress()
	}
	if !ss.s.enter() {
		return replies.ShuttingDown()
	}
	defer ss.s.leave()
	e, err := ss.s.cfg.Directory.Lookup(ss.s.ctx, to)
	switch {
	case errors.Is(err, directory.ErrNotFound):
		return replies.UnknownRecipient()
	case err != nil:
		ss.s.log.Warn("recipient lookup failed", "rcpt", to, "err", err)
		return replies.DirectoryUnavailable()
	case e.Type != directory.TypeMailbox:
		return replies.NotAMailbox()
	case !strings.EqualFold(e.MailboxServer, ss.s.name):
		ss.s.log.Info("recipient's mailbox is on another server", "rcpt", to, "mailbox_server", e.MailboxServer)
		return replies.WrongServer(ss.s.name)
	}
	mbox := e.Mail
	if mbox == "" {
		mbox = to
	}
	ss.rcpts = append(ss.rcpts, recipient{addr: to, mailbox: strings.ToLower(mbox)})
	return nil
}

func (ss *session) Data(r io.Reader) error {
	var buf bytes.Buffer
	if _, err := io.Copy(&buf, r); err != nil {
		var se *smtp.SMTPError
		if errors.As(err, &se) {
			return se // go-smtp only recognises a bare *SMTPError
		}
		return err
	}
	if !ss.s.enter() {
		return replies.ShuttingDown()
	}
	defer ss.s.leave()
	hdr, _ := textproto.ReadHeader(bufio.NewReader(bytes.NewReader(buf.Bytes())))
	if n := len(hdr.Values("Received")); n > ss.s.maxHops {
		return replies.HopCountExceeded(ss.s.maxHops)
	}
	now := ss.s.cfg.Clock.Now()
	id := queue.NewID(now)
	var data bytes.Buffer
	data.WriteString(ss.received(id, now))
	data.Write(buf.Bytes())
	mailboxes := make([]string, len(ss.rcpts))
	for i, rc := range ss.rcpts {
		mailboxes[i] = rc.mailbox
	}
	ds, err := ss.s.store.DeliverAll(ss.s.ctx, mailboxes, ss.from, data.Bytes())
	if err != nil {
		ss.s.log.Error("delivery failed", "msgid", id, "mailboxes", mailboxes, "err", err)
		return replies.NotStored()
	}
	headerID := strings.Trim(hdr.Get("Message-Id"), "<> \t")
	for i, rc := range ss.rcpts {
		detail := "stored in " + rc.mailbox
		if ds[i].Duplicate {
			detail = "duplicate suppressed"
		}
		ss.s.cfg.Trace.Record(trace.Event{
			Time: now, Type: trace.Deliver, MessageID: id, HeaderID: headerID, Server: ss.s.name,
			Sender: ss.from, Recipients: []string{rc.addr}, Source: "STOREDRIVER", Detail: detail,
		})
	}
	return replies.Delivered(id)
}

// received builds the RFC 5321 §4.4 trace line a server adds on final delivery too;
// the store then puts Return-Path above it (MBX-002).
func (ss *session) received(id string, now time.Time) string {
	with := "ESMTP"
	if ss.tls() {
		with += "S"
	}
	helo := ss.conn.Hostname()
	var b strings.Builder
	fmt.Fprintf(&b, "Received: from %s ([%s])\r\n\tby %s (mailflow) with %s id %s", helo, ss.remote, ss.s.hostname, with, id)
	if len(ss.rcpts) == 1 {
		fmt.Fprintf(&b, "\r\n\tfor <%s>", ss.rcpts[0].addr)
	}
	fmt.Fprintf(&b, "; %s\r\n", now.Format("Mon, 02 Jan 2006 15:04:05 -0700"))
	return b.String()
}
