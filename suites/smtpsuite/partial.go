package smtpsuite

import (
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	f "github.com/mailflow/mailflow/suites/framework"
)

// partial opens a transaction to alice on scenarios/timeouts.yaml and sends the start
// of a message, never its end.
func partial(w *f.World) *f.Session {
	GinkgoHelper()
	s, _ := w.Dial("EDGE1", "Internet")
	s.Cmd("EHLO mail.fabrikam.test")
	Expect(s.Cmd("MAIL FROM:<bob@fabrikam.test>")).To(f.HaveClass(2))
	Expect(s.Cmd("RCPT TO:<alice@contoso.test>")).To(f.HaveClass(2))
	Expect(s.Cmd("DATA")).To(f.HaveReply(354))
	Expect(s.Raw("From: bob@fabrikam.test\r\nSubject: partial\r\nMessage-ID: <partial@fabrikam.test>\r\n\r\nThe first half")).To(Succeed())
	return s
}

var _ = Describe("A client that does not finish DATA", Label("smtp"), func() {
	It("delivers nothing when the client drops the connection before the end of data", f.Clause("SMTP-022"), func() {
		w := f.StartShipped("timeouts.yaml")
		s := partial(w)
		s.Close()
		// A complete message after it shows when the server has had time to act.
		w.Submit(f.Internet, "after@fabrikam.test", "alice@contoso.test")
		Eventually(func() int { return len(w.Mailbox("alice@contoso.test")) }).Should(Equal(1), s.Explain("the complete message arrives"))
		Consistently(func() int { return len(w.Mailbox("alice@contoso.test")) }).WithTimeout(w.Quiet(time.Second)).Should(Equal(1), s.Explain("the partial message is never delivered"))
		Expect(string(w.Mailbox("alice@contoso.test")[0])).NotTo(ContainSubstring("partial@fabrikam.test"))
	})

	It("drops a client that stalls in the middle of DATA after its timeout, delivering nothing", f.Clause("SEC-005"), f.Long, func() {
		w := f.StartShipped("timeouts.yaml")
		timeout := w.InactivityTimeout("EDGE1")
		Expect(timeout).To(BeNumerically(">", 0), "the target's inactivity timeout is known")
		w.RequireWait(timeout+time.Minute, "the inactivity timeout")
		s := partial(w)
		start := time.Now()
		closed, _ := s.AwaitClose(timeout + time.Minute)
		Expect(closed).To(BeTrue(), s.Explain("the server drops the stalled client (timeout %v)", timeout))
		Expect(time.Since(start)).To(BeNumerically(">=", timeout*9/10), s.Explain("not before the configured timeout"))
		w.Submit(f.Internet, "after@fabrikam.test", "alice@contoso.test")
		Eventually(func() int { return len(w.Mailbox("alice@contoso.test")) }).Should(Equal(1), s.Explain("the complete message arrives"))
		Consistently(func() int { return len(w.Mailbox("alice@contoso.test")) }).WithTimeout(w.Quiet(time.Second)).Should(Equal(1), s.Explain("the partial message is never delivered"))
	})
})
