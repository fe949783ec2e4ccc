package smtpsuite

import (
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/mailflow/mailflow/fixtures/internet"
	f "github.com/mailflow/mailflow/suites/framework"
)

// msg is a short message with Message-ID <id> to find it by, and body.
func msg(id, body string) string {
	return "From: bob@fabrikam.test\r\nTo: alice@contoso.test\r\nSubject: " + id + "\r\nMessage-ID: <" + id + ">\r\n\r\n" + body
}

// delivered waits for the message with Message-ID <id> in alice's mailbox and returns it.
func delivered(w *f.World, s *f.Session, id string) []byte {
	GinkgoHelper()
	var got []byte
	Eventually(func() []byte {
		got = f.WithMessageID(w.Mailbox("alice@contoso.test"), id)
		return got
	}).ShouldNot(BeNil(), s.Explain("the message reaches alice"))
	return got
}

// relayed waits for the message with Message-ID <id> at the smart host and returns it
// with the bytes of it that crossed the wire after DATA: nil when it came in BDAT
// chunks (RFC 3030), which carry the message as it is, with no dot stuffing.
func relayed(w *f.World, s *f.Session, id string) (internet.Message, []byte) {
	GinkgoHelper()
	sink := w.MustHost("smarthost.isp.test")
	var m internet.Message
	Eventually(func() bool {
		for _, x := range sink.Messages() {
			if f.WithMessageID([][]byte{x.Data}, id) != nil {
				m = x
				return true
			}
		}
		return false
	}).Should(BeTrue(), s.Explain("the smart host receives the message"))
	for _, ss := range sink.Sessions() {
		for _, p := range ss.Payloads() {
			if strings.Contains(string(p), "<"+id+">") {
				return m, p
			}
		}
	}
	return m, nil
}

// sendRaw opens a transaction from v to rcpt, sends data as it is (dot stuffing and
// terminator included) and expects it accepted.
func sendRaw(w *f.World, v f.Via, rcpt, data string) *f.Session {
	GinkgoHelper()
	w.RequireRelay(v, rcpt)
	s := w.DialVia(v)
	Expect(s.Cmd("MAIL FROM:<%s>", v.From)).To(f.HaveClass(2), s.Explain("sender accepted"))
	Expect(s.Cmd("RCPT TO:<%s>", rcpt)).To(f.HaveClass(2), s.Explain("%s accepted", rcpt))
	Expect(s.Cmd("DATA")).To(f.HaveReply(354), s.Explain("354 to DATA"))
	Expect(s.Raw(data)).To(Succeed())
	Expect(s.Read()).To(f.HaveClass(2), s.Explain("the message accepted"))
	return s
}
