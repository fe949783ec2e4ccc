package mailbox

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/mail"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/emersion/go-message/textproto"
	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/mailflow/mailflow/reference/directory"
	"github.com/mailflow/mailflow/reference/esmtp"
	"github.com/mailflow/mailflow/reference/queue"
	"github.com/mailflow/mailflow/reference/replies"
	"github.com/mailflow/mailflow/reference/resolve"
	"github.com/mailflow/mailflow/reference/smtpout"
	"github.com/mailflow/mailflow/trace"
)

// Hub is a Hub Transport server of the Mailbox server's own site, where submitted mail
// is handed on (MBX-010).
type Hub struct {
	Name string
	Addr string // ip:port of its organisation connector
}

// SubmissionConnector names the client submission port in trace events.
const SubmissionConnector = "Client Submission"

// submitBackend starts a session per connection on the submission port.
type submitBackend struct{ s *Server }

func (b submitBackend) NewSession(c *esmtp.Conn) (esmtp.Session, error) {
	return &submitSession{s: b.s, conn: c}, nil
}

// submitSession is one client's session on the submission port (RFC 6409): AUTH only
// inside TLS, MAIL only once authenticated, and only as the user (MBX-004, MBX-005).
type submitSession struct {
	s    *Server
	conn *esmtp.Conn
	// user is the authenticated user's primary address, from the directory.
	user string
}

// AuthMechanisms offers PLAIN and LOGIN inside TLS only, as Exchange's Client
// connector does with BasicAuthRequireTLS (SMTP-021).
func (ss *submitSession) AuthMechanisms() []string {
	if !ss.conn.TLS() {
		return nil
	}
	return []string{sasl.Plain, sasl.Login}
}

// ClearAuthRefusal answers AUTH before STARTTLS (RFC 4954 §4).
func (ss *submitSession) ClearAuthRefusal() error { return replies.EncryptionRequired() }

// Authenticate checks the password with the directory and takes only users whose
// mailbox this server holds: their mail is submitted from their home server.
func (ss *submitSession) Authenticate(identity, user, pass string) error {
	if identity != "" && identity != user {
		return replies.AuthFailed()
	}
	if !ss.s.enter() {
		return replies.ShuttingDown()
	}
	defer ss.s.leave()
	auth, _ := ss.s.cfg.Directory.(Authenticator)
	if auth == nil {
		return replies.AuthFailed()
	}
	ctx, cancel := context.WithTimeout(ss.s.ctx, 10*time.Second)
	defer cancel()
	err := auth.Authenticate(ctx, user, pass)
	switch {
	case errors.Is(err, directory.ErrInvalidCredentials):
		return replies.AuthFailed()
	case err != nil:
		ss.s.log.Warn("submission login could not be checked", "user", user, "err", err)
		return replies.DirectoryUnavailable()
	}
	e, err := ss.s.cfg.Directory.Lookup(ctx, user)
	switch {
	case errors.Is(err, directory.ErrNotFound):
		return replies.AuthFailed()
	case err != nil:
		return replies.DirectoryUnavailable()
	case e.Type != directory.TypeMailbox || !strings.EqualFold(e.MailboxServer, ss.s.name):
		ss.s.log.Info("submission login for a mailbox on another server", "user", user, "mailbox_server", e.MailboxServer)
		return replies.AuthFailed()
	}
	ss.user = strings.ToLower(e.Mail)
	if ss.user == "" {
		ss.user = strings.ToLower(user)
	}
	return nil
}

// Mail needs TLS, then AUTH (RFC 6409 §4.3, RFC 4954 §6's 530 5.7.0), then a sender
// that is the user (MBX-005).
func (ss *submitSession) Mail(from string, _ esmtp.MailParams) error {
	switch {
	case !ss.conn.TLS():
		return replies.MustStartTLS()
	case ss.conn.AuthUser() == "" || ss.user == "":
		return replies.NotAuthenticated()
	}
	return ss.mayUse(from)
}

// mayUse says whether the user may send as addr: one of their own addresses, which
// the directory resolves to their entry. The null sender is no one's.
func (ss *submitSession) mayUse(addr string) error {
	if addr == "" {
		return replies.SendAsDenied()
	}
	if strings.EqualFold(addr, ss.user) {
		return nil
	}
	if !ss.s.enter() {
		return replies.ShuttingDown()
	}
	defer ss.s.leave()
	e, err := ss.s.cfg.Directory.Lookup(ss.s.ctx, addr)
	switch {
	case errors.Is(err, directory.ErrNotFound):
		return replies.SendAsDenied()
	case err != nil:
		return replies.DirectoryUnavailable()
	case !strings.EqualFold(e.Mail, ss.user):
		return replies.SendAsDenied()
	}
	return nil
}

// Rcpt takes any address: an authenticated user may send anywhere, and the Hub
// categorizes and routes each recipient.
func (ss *submitSession) Rcpt(to string, _ esmtp.RcptParams) (string, error) {
	at := strings.LastIndexByte(to, '@')
	if at <= 0 || at == len(to)-1 {
		return "", replies.BadAddress()
	}
	return to, nil
}

// Data checks the From: addresses (MBX-005), adds Date: and Message-ID: when missing
// (MBX-004, RFC 6409 §8.2, §8.3), and hands the message to a Hub of this server's site
// before answering: the reply is the Hub's, so a message no Hub took stays the
// client's (451) and nothing is lost (MBX-010).
func (ss *submitSession) Data(env *esmtp.Envelope, data []byte) error {
	hdr, err := textproto.ReadHeader(bufio.NewReader(bytes.NewReader(data)))
	if err != nil {
		return &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 6, 0}, Message: "Message header cannot be read"}
	}
	if err := ss.checkFrom(hdr); err != nil {
		return err
	}
	now := ss.s.cfg.Clock.Now()
	id := queue.NewID(now)
	data = ss.s.complete(data, hdr, id, now)
	rcpts := env.Addrs()
	stamped := append([]byte(ss.conn.Received(id, now, rcpts)), data...)
	stampedHdr := headerOf(stamped)
	headerID := strings.Trim(stampedHdr.Get("Message-Id"), "<> \t")
	ss.s.cfg.Trace.Record(trace.Event{
		Time: now, Type: trace.Receive, MessageID: id, HeaderID: headerID, Server: ss.s.name,
		Sender: env.From, Recipients: rcpts, Source: "SMTP", Connector: SubmissionConnector,
		Detail: "submitted by " + ss.user,
	})
	if !ss.s.enter() {
		return replies.ShuttingDown()
	}
	defer ss.s.leave()
	hub, res, err := ss.s.toHub(ss.s.ctx, env.From, rcpts, stamped)
	if err != nil {
		ss.s.cfg.Trace.Record(trace.Event{
			Time: ss.s.cfg.Clock.Now(), Type: trace.Defer, MessageID: id, HeaderID: headerID, Server: ss.s.name,
			Sender: env.From, Recipients: rcpts, Reply: replyLine(err), Detail: "no Hub of site " + ss.s.site() + " took it; the client keeps it",
		})
		return err
	}
	ss.s.recordSend(id, headerID, env.From, rcpts, hub, res, "")
	return replies.Queued(id)
}

// checkFrom lets the user send only as themselves in From: too (MBX-005).
func (ss *submitSession) checkFrom(hdr textproto.Header) error {
	v := hdr.Get("From")
	if v == "" {
		return nil
	}
	addrs, err := mail.ParseAddressList(v)
	if err != nil {
		return replies.SendAsDenied()
	}
	for _, a := range addrs {
		if err := ss.mayUse(a.Address); err != nil {
			return err
		}
	}
	return nil
}

func headerOf(data []byte) textproto.Header {
	h, _ := textproto.ReadHeader(bufio.NewReader(bytes.NewReader(data)))
	return h
}

// complete adds the Date: and Message-ID: a submission lacks, on top of the header.
func (s *Server) complete(data []byte, hdr textproto.Header, id string, now time.Time) []byte {
	var add []byte
	if !hdr.Has("Date") {
		add = fmt.Appendf(add, "Date: %s\r\n", now.Format(time.RFC1123Z))
	}
	if !hdr.Has("Message-Id") {
		add = fmt.Appendf(add, "Message-ID: <%s@%s>\r\n", id, s.hostname)
	}
	if add == nil {
		return data
	}
	return append(add, data...)
}

func (s *Server) site() string {
	if s.cfg.Server.Site == "" {
		return "(none)"
	}
	return s.cfg.Server.Site
}

// toHub hands a message to the first Hub of the server's site that takes it for every
// recipient (MBX-010). A Hub that refuses it permanently decides; one that does not
// answer or defers is passed over for the next.
func (s *Server) toHub(ctx context.Context, from string, rcpts []string, data []byte) (Hub, []smtpout.Result, error) {
	if len(s.cfg.Hubs) == 0 {
		return Hub{}, nil, replies.NoHub(s.site(), "none configured")
	}
	last := ""
	for _, h := range s.cfg.Hubs {
		res := s.out.Send(ctx, smtpout.Hop{Hosts: []string{h.Addr}, RequireTLS: true}, from, rcpts, data, nil)
		ok, perm := true, false
		for _, r := range res {
			if !r.Delivered {
				ok = false
				perm = perm || r.Permanent
				last = r.Reply
			}
		}
		switch {
		case ok:
			return h, res, nil
		case perm:
			return h, res, replyError(last)
		}
		s.log.Warn("hub did not take a submission", "hub", h.Name, "reply", last)
	}
	return Hub{}, nil, replies.NoHub(s.site(), last)
}

// recordSend traces the hand-off: the Hub that took the message, and the copy it holds.
func (s *Server) recordSend(id, headerID, from string, rcpts []string, hub Hub, res []smtpout.Result, detail string) {
	reply := ""
	if len(res) > 0 {
		reply = res[0].Reply
	}
	s.cfg.Trace.Record(trace.Event{
		Time: s.cfg.Clock.Now(), Type: trace.Send, MessageID: id, HeaderID: headerID, Server: s.name,
		Sender: from, Recipients: rcpts, Connector: "Mailbox submission", NextHop: hub.Name,
		Reply: reply, CopyID: replies.QueuedID(reply), Detail: detail,
	})
}

// replyError turns a next hop's reply line ("550 5.7.1 text") into the error that
// answers the client with it.
func replyError(line string) error {
	code, rest, _ := strings.Cut(line, " ")
	n, err := strconv.Atoi(code)
	if err != nil || n < 400 || n > 599 {
		return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 4, 0}, Message: line}
	}
	e := &smtp.SMTPError{Code: n, EnhancedCode: smtp.NoEnhancedCode, Message: rest}
	enh, text, _ := strings.Cut(rest, " ")
	if parts := strings.Split(enh, "."); len(parts) == 3 {
		var ec smtp.EnhancedCode
		// RFC 3463 §2: class, then subject and detail of one to three digits; a class
		// other than the reply's is no enhanced code of it (RFC 2034 §4).
		good := true
		for i, p := range parts {
			v, err := strconv.Atoi(p)
			good = good && err == nil && len(p) >= 1 && len(p) <= 3 && strings.Trim(p, "0123456789") == ""
			ec[i] = v
		}
		if good && ec[0] == n/100 {
			e.EnhancedCode, e.Message = ec, text
		}
	}
	return e
}

// noResolver serves a client whose next hops are all addresses: it never looks up.
type noResolver struct{}

func (noResolver) LookupMX(context.Context, string) ([]resolve.MX, error) {
	return nil, errors.New("mailbox: no resolver: next hops are addresses")
}

func (noResolver) LookupAddrs(context.Context, string) ([]netip.Addr, error) {
	return nil, errors.New("mailbox: no resolver: next hops are addresses")
}
