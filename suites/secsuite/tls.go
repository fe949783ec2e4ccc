package secsuite

import (
	"regexp"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	f "github.com/mailflow/mailflow/suites/framework"
)

// replyLine finds reply lines in what a server wrote, TLS records among them.
var replyLine = regexp.MustCompile(`(?m)^[2-5][0-9]{2}[ -]`)

var _ = Describe("STARTTLS", Label("security"), func() {
	It("discards commands pipelined with STARTTLS instead of running them inside TLS", f.Clause("SEC-003"), func() {
		w := f.StartShipped("edge-tls.yaml")
		s, _ := w.GreetTLS("EDGE1", "Internet")
		Expect(s.Raw("STARTTLS\r\nNOOP\r\n")).To(Succeed())
		Expect(s.Read()).To(f.HaveReply(220), s.Explain("220 to STARTTLS"))
		if err := s.Handshake(w.ClientTLS()); err != nil {
			Fail(s.Explain("the TLS handshake succeeds: the NOOP sent with STARTTLS is dropped, not read as handshake bytes (handshake: %v)", err)())
		}
		Expect(s.Raw("QUIT\r\n")).To(Succeed())
		_, said := s.AwaitClose(replyWait)
		replies := f.ParseReplies(said)
		Expect(replies).To(HaveLen(1), s.Explain("inside TLS, one reply to the client's first command and none to the injected NOOP"))
		Expect(replies[0]).To(f.HaveReply(221), s.Explain("that reply is QUIT's 221"))
	})

	It("ends the session when the TLS handshake fails", f.Clause("SEC-008"), func() {
		w := f.StartShipped("edge-tls.yaml")
		s, _ := w.GreetTLS("EDGE1", "Internet")
		Expect(s.Cmd("STARTTLS")).To(f.HaveReply(220), s.Explain("220 to STARTTLS"))
		// The client rejects the certificate (wrong name) and aborts the handshake with
		// an alert, which is how the server sees a failed handshake.
		cfg := w.ClientTLS()
		cfg.ServerName = "not-this-server.invalid"
		Expect(s.Handshake(cfg)).NotTo(Succeed(), s.Explain("the handshake fails"))
		_ = s.Raw("NOOP\r\nNOOP\r\n") // the server may have gone already
		closed, said := s.AwaitClose(replyWait)
		Expect(closed).To(BeTrue(), s.Explain("the server closes the connection after the failed handshake"))
		Expect(len(replyLine.FindAllString(said, -1))).To(BeNumerically("<=", 1), s.Explain("no reply to the NOOPs sent in the clear (one notice of the failure at most)"))
	})

	It("refuses a second STARTTLS with 503 or 554", f.Clause("SEC-008"), func() {
		w := f.StartShipped("edge-tls.yaml")
		s, _ := w.GreetTLS("EDGE1", "Internet")
		Expect(s.StartTLS(w.ClientTLS())).To(f.HaveReply(220), s.Explain("the first STARTTLS succeeds"))
		Expect(s.Cmd("EHLO mail.fabrikam.test")).To(f.HaveReply(250), s.Explain("EHLO inside TLS"))
		r := s.Cmd("STARTTLS")
		Expect(r.Code).To(Or(Equal(503), Equal(554)), s.Explain("503 or 554 to STARTTLS inside TLS"))
	})
})
