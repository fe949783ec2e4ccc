package framework

import (
	"bytes"
	"crypto/tls"
	"encoding/base64"
	"fmt"
	"net"
	"net/netip"
	"net/textproto"
	"strings"
	"sync/atomic"
	"time"

	"github.com/onsi/ginkgo/v2"
	"github.com/onsi/gomega"

	"github.com/mailflow/mailflow/fixtures/testca"
	"github.com/mailflow/mailflow/internal/report"
)

// PlainAuth is the AUTH PLAIN initial response for user and password (RFC 4616).
func PlainAuth(user, password string) string {
	return base64.StdEncoding.EncodeToString([]byte("\x00" + user + "\x00" + password))
}

// ClientTLS trusts the test CA every in-process server and fixture certificate comes from.
func (w *World) ClientTLS() *tls.Config {
	return testca.Shared().ClientConfig("")
}

var srcSeq atomic.Uint32

// LoopbackIn picks a fresh client address inside prefix (a 127.0.0.0/8 range), distinct
// per parallel process, so a spec can connect "from" a network the scenario names.
func LoopbackIn(prefix string) netip.Addr {
	ginkgo.GinkgoHelper()
	p, err := netip.ParsePrefix(prefix)
	gomega.Expect(err).NotTo(gomega.HaveOccurred())
	gomega.Expect(p.Addr().IsLoopback()).To(gomega.BeTrue(), "%s is not loopback", prefix)
	b := p.Masked().Addr().As4()
	n := srcSeq.Add(1)
	b[2] = byte(ginkgo.GinkgoParallelProcess())
	b[3] = byte(n%250 + 1)
	a := netip.AddrFrom4(b)
	gomega.Expect(p.Contains(a)).To(gomega.BeTrue(), "%s too small to pick a client address", prefix)
	return a
}

// DialFrom connects from a chosen local address and reads the greeting.
func DialFrom(local netip.Addr, addr string) (*Session, Reply) {
	ginkgo.GinkgoHelper()
	d := net.Dialer{Timeout: 10 * time.Second, LocalAddr: &net.TCPAddr{IP: local.AsSlice()}}
	conn, err := d.Dial("tcp", addr)
	gomega.Expect(err).NotTo(gomega.HaveOccurred(), "connecting from %s to %s", local, addr)
	s := &Session{addr: addr, conn: conn, tp: textproto.NewConn(conn)}
	fmt.Fprintf(&s.log, "   (connected from %s to %s)\n", local, addr)
	ginkgo.DeferCleanup(s.Close)
	return s, s.read()
}

// Should records a SHOULD inside a clause: when ok is false the spec still passes but
// the clause's verdict becomes WARN with the reason (a MUST clause whose "SHOULD be
// 550" part got 554, say). The observed exchange goes with it.
func Should(ok bool, s *Session, format string, args ...any) {
	if ok {
		return
	}
	msg := fmt.Sprintf(format, args...)
	if s != nil {
		msg += "\n" + s.Transcript()
	}
	ginkgo.AddReportEntry(report.EntryVerdict, report.WarnPrefix+" "+msg)
}

// Info makes a passing spec's clause INFO with what was observed: the clause held, but
// only in part applied or there is something a reader should know.
func Info(format string, args ...any) {
	ginkgo.AddReportEntry(report.EntryVerdict, report.InfoPrefix+" "+fmt.Sprintf(format, args...))
}

// Via is where, and as whom, a spec submits mail.
type Via struct {
	Server, Connector string
	// ClientIn is the network the client connects from ("" for any).
	ClientIn   string
	Helo, From string
}

// FromOrg is alice@contoso.test, inside the organisation, relaying through EDGE1's
// "From Org" connector (127.66.0.0/16).
var FromOrg = Via{Server: "EDGE1", Connector: "From Org", ClientIn: "127.66.0.0/16", Helo: "hub1.contoso.test", From: "alice@contoso.test"}

// Typed normalises an RFC 3464 "type; value" field ("rfc822; a@b" becomes
// "rfc822;a@b"): white space around the ";" is optional and the type is
// case-insensitive.
func Typed(v string) string {
	t, val, ok := strings.Cut(v, ";")
	if !ok {
		return strings.TrimSpace(v)
	}
	return strings.ToLower(strings.TrimSpace(t)) + ";" + strings.TrimSpace(val)
}

// DialVia opens a session as v says and sends EHLO.
func (w *World) DialVia(v Via) *Session {
	ginkgo.GinkgoHelper()
	var s *Session
	if v.ClientIn == "" {
		s, _ = w.Dial(v.Server, v.Connector)
	} else {
		addr, err := w.Endpoint(v.Server, v.Connector)
		gomega.Expect(err).NotTo(gomega.HaveOccurred())
		s, _ = DialFrom(w.ClientIn(v.ClientIn), addr)
	}
	s.Cmd("EHLO %s", v.Helo)
	return s
}

// Internet is a sender on the Internet at EDGE1's "Internet" connector.
var Internet = Via{Server: "EDGE1", Connector: "Internet", Helo: "mail.fabrikam.test", From: "bob@fabrikam.test"}

// Submit sends one short message with Message-ID <id> to rcpts as v says, and expects
// every step accepted; it returns the session for explanations.
func (w *World) Submit(v Via, id string, rcpts ...string) *Session {
	ginkgo.GinkgoHelper()
	return w.SubmitMessage(v, "From: "+v.From+"\r\nSubject: "+id+"\r\nMessage-ID: <"+id+">\r\n\r\nHello.\r\n", rcpts...)
}

// SubmitMessage sends msg to rcpts as v says, and expects every step accepted; it
// returns the session for explanations. The spec is N/A on a target that cannot relay
// rcpts as the scenario would through v (RequireRelay).
func (w *World) SubmitMessage(v Via, msg string, rcpts ...string) *Session {
	ginkgo.GinkgoHelper()
	w.RequireRelay(v, rcpts...)
	s := w.DialVia(v)
	gomega.Expect(s.Cmd("MAIL FROM:<%s>", v.From)).To(HaveClass(2), s.Explain("sender accepted"))
	for _, r := range rcpts {
		gomega.Expect(s.Cmd("RCPT TO:<%s>", r)).To(HaveClass(2), s.Explain("%s accepted", r))
	}
	_, end := s.Data(msg)
	gomega.Expect(end).To(HaveClass(2), s.Explain("message accepted"))
	return s
}

// SendInternet submits one message from the Internet (Internet) to rcpts.
func (w *World) SendInternet(id string, rcpts ...string) *Session {
	ginkgo.GinkgoHelper()
	return w.Submit(Internet, id, rcpts...)
}

// WithMessageID is the message among ms whose header names Message-ID <id>, or nil:
// how a spec finds its own message in a mailbox or among what a host received.
func WithMessageID(ms [][]byte, id string) []byte {
	for _, m := range ms {
		if h, _, _ := bytes.Cut(m, []byte("\r\n\r\n")); bytes.Contains(h, []byte("<"+id+">")) {
			return m
		}
	}
	return nil
}

// Header is the header section of a message, up to the empty line.
func Header(m []byte) []byte {
	h, _, _ := bytes.Cut(m, []byte("\r\n\r\n"))
	return h
}

// MessageLimit is the largest message a receive connector takes, in bytes, as the
// scenario sets it, or as the target rounds it (an MTA that takes its limit in MiB); a
// spec that needs a limit fails when the scenario sets none.
func (w *World) MessageLimit(server, connector string) int {
	ginkgo.GinkgoHelper()
	for _, rc := range w.Scenario.ReceiveConnectorsOf(server) {
		if rc.Name == connector {
			gomega.Expect(rc.MaxMessageSize).To(gomega.BeNumerically(">", 0), "%s sets no max_message_size on %s's %q", w.Scenario.File, server, connector)
			if t, ok := w.Topology.(interface{ MessageLimit(limit int) int }); ok {
				return t.MessageLimit(rc.MaxMessageSize)
			}
			return rc.MaxMessageSize
		}
	}
	ginkgo.Fail(fmt.Sprintf("%s has no receive connector %q on %s", w.Scenario.File, connector, server))
	return 0
}

// Oversize is a message with Message-ID <id> twice the limit in size, in lines of 80
// octets.
func Oversize(id string, limit int) string {
	return "From: bob@fabrikam.test\r\nSubject: big\r\nMessage-ID: <" + id + ">\r\n\r\n" +
		strings.Repeat(strings.Repeat("x", 78)+"\r\n", 2*limit/80+1)
}

// SendOversize offers alice, over EDGE1's Internet connector, a message with
// Message-ID <id> twice the connector's limit. With declare it says so with SIZE= and
// returns the reply to MAIL; without, it sends the message and returns the reply to
// the end of data (or to MAIL, RCPT or DATA when one of them refused).
func (w *World) SendOversize(id string, declare bool) (Reply, *Session) {
	ginkgo.GinkgoHelper()
	limit := w.MessageLimit("EDGE1", "Internet")
	msg := Oversize(id, limit)
	s := w.DialVia(Internet)
	if declare {
		return s.Cmd("MAIL FROM:<%s> SIZE=%d", Internet.From, len(msg)), s
	}
	if r := s.Cmd("MAIL FROM:<%s>", Internet.From); r.Code/100 != 2 {
		return r, s
	}
	if r := s.Cmd("RCPT TO:<alice@contoso.test>"); r.Code/100 != 2 {
		return r, s
	}
	r, end := s.Data(msg)
	if r.Code != 354 {
		return r, s
	}
	return end, s
}

// Copies counts the messages with Message-ID <id> in addr's mailbox.
func (w *World) Copies(addr, id string) int {
	n := 0
	for _, m := range w.Mailbox(addr) {
		if WithMessageID([][]byte{m}, id) != nil {
			n++
		}
	}
	return n
}

// SendMarker submits one ordinary message from the Internet to alice@contoso.test and
// waits until it is in her mailbox: what the server was going to deliver before it
// has then arrived too, so a spec can check what must not have been.
func (w *World) SendMarker() {
	ginkgo.GinkgoHelper()
	s := w.SendInternet("marker@fabrikam.test", "alice@contoso.test")
	gomega.Eventually(func() int { return w.Copies("alice@contoso.test", "marker@fabrikam.test") }).Should(gomega.Equal(1), s.Explain("the marker message reaches alice"))
}

// GreetTLS connects to a server's receive connector and sends EHLO, making the spec
// N/A when STARTTLS is not offered there: the STARTTLS clauses bind a server that
// offers it.
func (w *World) GreetTLS(server, connector string) (*Session, Reply) {
	ginkgo.GinkgoHelper()
	s, _ := w.Dial(server, connector)
	ehlo := s.Cmd("EHLO mail.fabrikam.test")
	if !ehlo.Advertises("STARTTLS") {
		ginkgo.Skip(fmt.Sprintf("N/A: %s's %s connector does not offer STARTTLS\n%s", server, connector, s.Transcript()))
	}
	return s, ehlo
}
