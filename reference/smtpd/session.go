package smtpd

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/emersion/go-message/textproto"
	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/mailflow/mailflow/reference/queue"
	"github.com/mailflow/mailflow/reference/replies"
	"github.com/mailflow/mailflow/scenario"
	"github.com/mailflow/mailflow/trace"
)

type session struct {
	s         *Server
	conn      *smtp.Conn
	connector *Connector
	remote    netip.Addr
	authUser  string

	from  string
	rcpts []string
	// dsn holds the RFC 3461 parameters of the transaction: Ret and EnvID from MAIL,
	// one Recipient (Notify, ORCPT) per accepted RCPT, in rcpts' order.
	dsn queue.Message
}

func (s *Server) newSession(c *smtp.Conn) (smtp.Session, error) {
	ip := remoteIP(c.Conn().RemoteAddr())
	conn, ok := s.connectorFor(ip)
	if !ok {
		return nil, replies.NoConnector()
	}
	return &session{s: s, conn: c, connector: conn, remote: ip}, nil
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

func (ss *session) rights() rights {
	return rightsFor(ss.connector, ss.authUser != "", ss.tls())
}

func (ss *session) Reset() {
	ss.from = ""
	ss.rcpts = nil
	ss.dsn = queue.Message{}
}

func (ss *session) Logout() error { return nil }

func (ss *session) AuthMechanisms() []string {
	if ss.s.auth == nil || !ss.connector.offersAuth() {
		return nil
	}
	return []string{sasl.Plain}
}

func (ss *session) Auth(mech string) (sasl.Server, error) {
	if mech != sasl.Plain || ss.s.auth == nil || !ss.connector.offersAuth() {
		return nil, replies.UnrecognizedAuthType()
	}
	return sasl.NewPlainServer(func(identity, user, pass string) error {
		if identity != "" && identity != user {
			return replies.AuthFailed()
		}
		if err := ss.s.auth.Authenticate(context.Background(), user, pass); err != nil {
			return replies.AuthFailed()
		}
		ss.authUser = user
		return nil
	}), nil
}

func (ss *session) Mail(from string, opts *smtp.MailOptions) error {
	r := ss.rights()
	if !r.Submit {
		return replies.NotAuthenticated()
	}
	if ss.s.mx != nil && from != "" && ss.authUser == "" && !r.AcceptAnyRecipient && !r.AcceptOrgHeaders {
		if _, domain, ok := strings.Cut(from, "@"); ok && ss.nullMX(domain) {
			return replies.SenderNullMX()
		}
	}
	ss.from = from
	ss.rcpts = nil
	ss.dsn = queue.Message{}
	if opts != nil {
		ss.dsn.Ret, ss.dsn.EnvID = string(opts.Return), opts.EnvelopeID
	}
	return nil
}

// normalizeRcpt strips an RFC 5321 source route (the final hop is the address, §3.6.1
// and §4.1.1.3) and splits the address. A bare "postmaster" has no domain.
func normalizeRcpt(to string) (addr, local, domain string, err error) {
	addr = to
	if strings.HasPrefix(addr, "@") {
		i := strings.IndexByte(addr, ':')
		if i < 0 {
			return "", "", "", replies.BadAddress()
		}
		addr = addr[i+1:]
	}
	at := strings.LastIndexByte(addr, '@')
	if at < 0 {
		if strings.EqualFold(addr, "postmaster") {
			return addr, addr, "", nil
		}
		return "", "", "", replies.BadAddress()
	}
	local, domain = addr[:at], strings.TrimSuffix(strings.ToLower(addr[at+1:]), ".")
	if domain == postmasterSentinel {
		return local, local, "", nil
	}
	if local == "" || domain == "" {
		return "", "", "", replies.BadAddress()
	}
	return local + "@" + domain, local, domain, nil
}

func (ss *session) Rcpt(to string, opts *smtp.RcptOptions) error {
	addr, local, domain, err := normalizeRcpt(to)
	if err != nil {
		return err
	}
	if err := ss.checkRecipient(addr, local, domain); err != nil {
		return err
	}
	ss.rcpts = append(ss.rcpts, addr)
	qr := queue.Recipient{Addr: addr}
	if opts != nil {
		for _, n := range opts.Notify {
			qr.Notify = append(qr.Notify, string(n))
		}
		qr.ORCPT = opts.OriginalRecipient
	}
	ss.dsn.Recipients = append(ss.dsn.Recipients, qr)
	return nil
}

func (ss *session) checkRecipient(addr, local, domain string) error {
	if domain == "" { // bare postmaster, RFC 5321 §4.5.1
		return nil
	}
	ad, ok := ss.accepted(domain)
	if !ok {
		if ss.rights().AcceptAnyRecipient {
			return nil
		}
		return replies.RelayDenied()
	}
	if strings.EqualFold(local, "postmaster") {
		return nil
	}
	if ad.Type != scenario.Authoritative || !ss.s.filtering {
		// The recipient filter never looks up relay domains (ACCEPT-005).
		return nil
	}
	if ss.s.blockList[strings.ToLower(addr)] {
		return replies.UnknownRecipient()
	}
	if ss.s.directory == nil {
		return nil
	}
	switch err := ss.s.directory.Exists(context.Background(), addr); {
	case err == nil:
		return nil
	case errors.Is(err, ErrUnknown):
		return replies.UnknownRecipient()
	default:
		ss.s.log.Warn("recipient lookup failed", "rcpt", addr, "err", err)
		return replies.DirectoryUnavailable()
	}
}

func (ss *session) accepted(domain string) (*scenario.AcceptedDomain, bool) {
	if ss.s.domains == nil || strings.HasPrefix(domain, "[") {
		return nil, false
	}
	return ss.s.domains.AcceptedDomain(domain)
}

func (ss *session) Data(r io.Reader) error {
	var buf bytes.Buffer
	limit := int64(ss.connector.MaxMessageSize)
	if limit > 0 {
		r = io.LimitReader(r, limit+1)
	}
	if _, err := io.Copy(&buf, r); err != nil {
		return err
	}
	if limit > 0 && int64(buf.Len()) > limit {
		return replies.MessageTooBig()
	}
	hdr, _ := textproto.ReadHeader(bufio.NewReader(bytes.NewReader(buf.Bytes())))
	if n := len(hdr.Values("Received")); n > ss.s.maxHops {
		return replies.HopCountExceeded(ss.s.maxHops)
	}
	now := ss.s.clock.Now()
	id := queue.NewID(now)
	var data bytes.Buffer
	data.WriteString(ss.received(id, now))
	data.Write(buf.Bytes())
	m := &queue.Message{ID: id, HeaderID: strings.Trim(hdr.Get("Message-Id"), "<> "), From: ss.from, Received: now,
		Ret: ss.dsn.Ret, EnvID: ss.dsn.EnvID}
	m.Recipients = append(m.Recipients, ss.dsn.Recipients...)
	if ss.s.queue == nil {
		return replies.NotStored()
	}
	if err := ss.s.queue.Enqueue(context.Background(), m, data.Bytes()); err != nil {
		ss.s.log.Error("enqueue failed", "msgid", id, "err", err)
		return replies.NotStored()
	}
	ss.s.trace.Record(trace.Event{
		Time: now, Type: trace.Receive, MessageID: id, HeaderID: m.HeaderID, Server: ss.s.server,
		Sender: ss.from, Recipients: append([]string(nil), ss.rcpts...), Source: "SMTP",
		Connector: ss.connector.Name, Detail: fmt.Sprintf("from %s [%s]", ss.conn.Hostname(), ss.remote),
	})
	return replies.Queued(id)
}

// received builds the RFC 5321 §4.4 trace line this server prepends (TRACE-001,
// TRACE-002, TRACE-003): the EHLO name as From-domain, then the TCP-info, which is what
// the connection says (the peer's address literal; no reverse lookup is made), never
// the EHLO name again.
func (ss *session) received(id string, now time.Time) string {
	with := "ESMTP"
	if ss.tls() {
		with += "S"
	}
	if ss.authUser != "" {
		with += "A"
	}
	helo := ss.conn.Hostname()
	var b strings.Builder
	fmt.Fprintf(&b, "Received: from %s ([%s])\r\n\tby %s (mailflow) with %s id %s", helo, ss.remote, ss.s.hostname, with, id)
	if len(ss.rcpts) == 1 {
		fmt.Fprintf(&b, "\r\n\tfor <%s>", ss.rcpts[0])
	}
	fmt.Fprintf(&b, "; %s\r\n", now.Format("Mon, 02 Jan 2006 15:04:05 -0700"))
	return b.String()
}

// nullMX says whether domain publishes exactly "MX 0 ."; a lookup that fails says no,
// since the check is a courtesy to the sender, not a filter.
func (ss *session) nullMX(domain string) bool {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	mxs, err := ss.s.mx.LookupMX(ctx, domain)
	return err == nil && len(mxs) == 1 && mxs[0].Host == ""
}
