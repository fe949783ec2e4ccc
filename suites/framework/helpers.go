package framework

import (
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
// returns the session for explanations.
func (w *World) SubmitMessage(v Via, msg string, rcpts ...string) *Session {
	ginkgo.GinkgoHelper()
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
