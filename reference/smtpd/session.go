package smtpd

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/emersion/go-message/textproto"
	"github.com/emersion/go-sasl"

	"github.com/mailflow/mailflow/reference/agents"
	"github.com/mailflow/mailflow/reference/esmtp"
	"github.com/mailflow/mailflow/reference/queue"
	"github.com/mailflow/mailflow/reference/replies"
	"github.com/mailflow/mailflow/scenario"
	"github.com/mailflow/mailflow/trace"
)

type session struct {
	s         *Server
	conn      *esmtp.Conn
	connector *Connector
	agents    *agents.Session // nil without agents
}

// NewSession picks the receive connector that serves the client (esmtp.Backend).
func (s *Server) NewSession(c *esmtp.Conn) (esmtp.Session, error) {
	conn, ok := s.connectorFor(c.RemoteAddr())
	if !ok {
		return nil, replies.NoConnector()
	}
	ss := &session{s: s, conn: c, connector: conn}
	if s.agents != nil {
		as, err := s.agents.Connect(c.Context(), agents.Conn{
			Remote: c.RemoteAddr(), Connector: conn.Name,
			Bypass: func() bool { return ss.rights().BypassAntiSpam },
			Helo:   c.Hostname,
		})
		if err != nil {
			return nil, replies.ShuttingDown()
		}
		ss.agents = as
	}
	return ss, nil
}

func (ss *session) authenticated() bool { return ss.conn.AuthUser() != "" }

func (ss *session) rights() rights {
	return rightsFor(ss.connector, ss.authenticated(), ss.conn.TLS())
}

// Limits are the connector's (esmtp.LimitedSession).
func (ss *session) Limits() esmtp.Limits {
	size := int64(ss.connector.MaxMessageSize)
	if size <= 0 {
		size = DefaultMaxMessageSize
	}
	return esmtp.Limits{MaxMessageSize: size, MaxRecipients: ss.connector.MaxRecipients, Timeout: ss.connector.InactivityTimeout}
}

// AuthMechanisms offers PLAIN where the connector takes authenticated users, and only
// inside TLS when it requires TLS for AUTH (BasicAuthRequireTLS, SMTP-021).
func (ss *session) AuthMechanisms() []string {
	if ss.s.auth == nil || !ss.connector.offersAuth() || ss.connector.AuthRequiresTLS && !ss.conn.TLS() {
		return nil
	}
	return []string{sasl.Plain}
}

// Authenticate checks PLAIN credentials against the directory.
func (ss *session) Authenticate(identity, user, pass string) error {
	if identity != "" && identity != user {
		return replies.AuthFailed()
	}
	if err := ss.s.auth.Authenticate(context.Background(), user, pass); err != nil {
		return replies.AuthFailed()
	}
	return nil
}

func (ss *session) Mail(from string, _ esmtp.MailParams) error {
	r := ss.rights()
	if !r.Submit {
		return replies.NotAuthenticated()
	}
	if ss.s.mx != nil && from != "" && !ss.authenticated() && !r.AcceptAnyRecipient && !r.AcceptOrgHeaders {
		if _, domain, ok := strings.Cut(from, "@"); ok && ss.nullMX(domain) {
			return replies.SenderNullMX()
		}
	}
	if ss.agents != nil {
		return ss.agents.Mail(ss.conn.Context(), from)
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
	if local == "" || domain == "" {
		return "", "", "", replies.BadAddress()
	}
	return local + "@" + domain, local, domain, nil
}

func (ss *session) Rcpt(to string, _ esmtp.RcptParams) (string, error) {
	addr, local, domain, err := normalizeRcpt(to)
	if err != nil {
		return "", err
	}
	// Connection filtering acts before recipient filtering (FILTER-018), so a listed
	// client learns nothing of which recipients exist.
	if ss.agents != nil {
		if err := ss.agents.Rcpt(ss.conn.Context(), addr); err != nil {
			return "", err
		}
		// Inbound address rewriting (FILTER-017): the internal form is the one looked
		// up and queued.
		if next := ss.agents.RewriteRcpt(ss.conn.Context(), addr); next != addr {
			if addr, local, domain, err = normalizeRcpt(next); err != nil {
				return "", err
			}
		}
	}
	if err := ss.checkRecipient(addr, local, domain); err != nil {
		return "", err
	}
	return addr, nil
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
		return ss.unknown()
	}
	if ss.s.directory == nil {
		return nil
	}
	switch err := ss.s.directory.Exists(context.Background(), addr); {
	case err == nil:
		return nil
	case errors.Is(err, ErrUnknown):
		return ss.unknown()
	default:
		ss.s.log.Warn("recipient lookup failed", "rcpt", addr, "err", err)
		return replies.DirectoryUnavailable()
	}
}

// unknown refuses an unknown recipient, after the connector's tarpit interval for an
// anonymous session: a harvester learns each answer slowly (ACCEPT-004). The wait is on
// the server's clock, so suites step it rather than wait.
func (ss *session) unknown() error {
	if d := ss.connector.TarpitInterval; d > 0 && !ss.authenticated() {
		select {
		case <-ss.s.clock.After(d):
		case <-ss.conn.Context().Done():
			return replies.ShuttingDown()
		}
	}
	return replies.UnknownRecipient()
}

func (ss *session) accepted(domain string) (*scenario.AcceptedDomain, bool) {
	if ss.s.domains == nil || strings.HasPrefix(domain, "[") {
		return nil, false
	}
	return ss.s.domains.AcceptedDomain(domain)
}

// Data queues the message for the transaction's recipients, durably, before the 250.
func (ss *session) Data(env *esmtp.Envelope, data []byte) error {
	if ss.s.queue == nil {
		return replies.NotStored()
	}
	if !ss.rights().AcceptOrgHeaders {
		data = stripOrgHeaders(data)
	}
	rcpts, from := env.Addrs(), env.From
	queued := make([]queue.Recipient, 0, len(env.Rcpts))
	for _, r := range env.Rcpts {
		queued = append(queued, queue.Recipient{Addr: r.Addr, Notify: r.Notify, ORCPT: r.ORCPT})
	}
	if ss.agents != nil {
		m := &agents.Message{From: env.From, Rcpts: slices.Clone(rcpts), Data: data}
		switch err := ss.agents.EndOfData(ss.conn.Context(), m); {
		case errors.Is(err, agents.ErrDropped):
			// Deleted (FILTER-016 SilentDelete, FILTER-011 (f)): the client is told what
			// a queued message's client is told, and nothing is queued.
			return replies.Queued(queue.NewID(ss.s.clock.Now()))
		case err != nil:
			return err
		}
		data = m.Data
		if h := m.Header(); len(h) > 0 {
			data = append(h, data...)
		}
		if !slices.Equal(m.Rcpts, rcpts) {
			rcpts, queued = m.Rcpts, agentRecipients(m.Rcpts, queued)
		}
		from = m.From
	}
	hdr, _ := textproto.ReadHeader(bufio.NewReader(bytes.NewReader(data)))
	now := ss.s.clock.Now()
	id := queue.NewID(now)
	stamped := append([]byte(ss.conn.Received(id, now, rcpts)), data...)
	m := &queue.Message{ID: id, HeaderID: strings.Trim(hdr.Get("Message-Id"), "<> "), From: from, Received: now,
		Ret: env.Mail.Ret, EnvID: env.Mail.EnvID, Recipients: queued}
	if a, ok := ss.s.queue.(interface{ Admit(int) error }); ok {
		if err := a.Admit(len(stamped)); err != nil {
			ss.s.log.Warn("back pressure: message refused", "err", err)
			return replies.InsufficientStorage()
		}
	}
	if err := ss.s.queue.Enqueue(context.Background(), m, stamped); err != nil {
		ss.s.log.Error("enqueue failed", "msgid", id, "err", err)
		return replies.StoreFailed(err)
	}
	ss.s.trace.Record(trace.Event{
		Time: now, Type: trace.Receive, MessageID: id, HeaderID: m.HeaderID, Server: ss.s.server,
		Sender: from, Recipients: rcpts, Source: "SMTP",
		Connector: ss.connector.Name, Detail: fmt.Sprintf("from %s [%s]", ss.conn.Hostname(), ss.conn.RemoteAddr()),
	})
	return replies.Queued(id)
}

// agentRecipients are the recipients the agents left (a transport rule's redirect or
// blind copy): one the client gave keeps its DSN parameters, one an agent added has
// none.
func agentRecipients(addrs []string, given []queue.Recipient) []queue.Recipient {
	out := make([]queue.Recipient, 0, len(addrs))
	for _, a := range addrs {
		r := queue.Recipient{Addr: a}
		for _, g := range given {
			if strings.EqualFold(g.Addr, a) {
				r = g
				break
			}
		}
		out = append(out, r)
	}
	return out
}

// nullMX says whether domain publishes exactly "MX 0 ."; a lookup that fails says no,
// since the check is a courtesy to the sender, not a filter.
func (ss *session) nullMX(domain string) bool {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	mxs, err := ss.s.mx.LookupMX(ctx, domain)
	return err == nil && len(mxs) == 1 && mxs[0].Host == ""
}
