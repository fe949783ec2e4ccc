// Package secsuite holds the SEC-* clause specs, the security battery any MTA can be
// put through: end-of-data smuggling in and out, STARTTLS injection and failure,
// command-line injection, transaction state and resource limits. The open-relay
// vectors (SEC-004) live beside the relay suite, the stalled DATA (SEC-005) beside
// the SMTP suite.
package secsuite

import (
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	f "github.com/mailflow/mailflow/suites/framework"
)

// replyWait bounds the wait for a reply that a server which misreads the input never
// sends, because it is still reading what the spec meant as the end of data; a server
// that reads it right answers in milliseconds.
const replyWait = 10 * time.Second

// victim is the smuggled recipient: outside the organisation, so a message for it
// can only end up at the smart host, where the suite sees it.
const victim = "victim@fabrikam.test"

// message is a short message with Message-ID <id> to find it by, and body.
func message(id, body string) string {
	return "From: bob@fabrikam.test\r\nTo: alice@contoso.test\r\nSubject: " + id + "\r\nMessage-ID: <" + id + ">\r\n\r\n" + body
}

// openData opens a transaction from v to rcpts and sends DATA, expecting every step
// accepted; the message is the spec's to send.
func openData(w *f.World, v f.Via, rcpts ...string) *f.Session {
	GinkgoHelper()
	w.RequireRelay(v, rcpts...)
	s := w.DialVia(v)
	Expect(s.Cmd("MAIL FROM:<%s>", v.From)).To(f.HaveClass(2), s.Explain("sender accepted"))
	for _, r := range rcpts {
		Expect(s.Cmd("RCPT TO:<%s>", r)).To(f.HaveClass(2), s.Explain("%s accepted", r))
	}
	Expect(s.Cmd("DATA")).To(f.HaveReply(354), s.Explain("354 to DATA"))
	return s
}

// endOfData reads the reply to the end of data the spec sent with Raw, failing when
// none comes: the server is then still in DATA, reading on past the terminator.
func endOfData(s *f.Session) f.Reply {
	GinkgoHelper()
	r := s.ReadWithin(replyWait)
	if r.Err != nil {
		Fail(s.Explain("a reply within %v to <CRLF>.<CRLF>; none came (%v), so the server reads on past the real end of data", replyWait, r.Err)())
	}
	return r
}

// closing says whether a reply announces that the server closes the connection
// (RFC 5321 §3.8, RFC 7504): a server may end a session that sent it bare newlines.
func closing(r f.Reply) bool { return r.Code == 421 || r.Code == 521 }

// closes expects the server to end the session after a closing reply.
func closes(s *f.Session) {
	GinkgoHelper()
	closed, _ := s.AwaitClose(replyWait)
	Expect(closed).To(BeTrue(), s.Explain("the connection closes after a 421 or 521"))
}

// toVictim are the messages the smart host accepted for the smuggled recipient.
func toVictim(w *f.World) int {
	n := 0
	for _, m := range w.Received("smarthost.isp.test") {
		for _, r := range m.RcptTo {
			if r == victim {
				n++
			}
		}
	}
	return n
}
