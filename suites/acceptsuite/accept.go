// Package acceptsuite holds the ACCEPT-* clause specs: accepted domains and recipient
// filtering at the Edge.
package acceptsuite

import (
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	f "github.com/mailflow/mailflow/suites/framework"
	"github.com/mailflow/mailflow/trace"
)

const body = "From: bob@fabrikam.test\r\nTo: x@contoso.test\r\nSubject: accept\r\nMessage-ID: <accept@fabrikam.test>\r\n\r\nbody\r\n"

func start() *f.World { return f.StartShipped("edge-relay.yaml") }

func send(w *f.World, rcpt string) *f.Session {
	GinkgoHelper()
	s, _ := w.Dial("EDGE1", "Internet")
	s.Cmd("EHLO mail.fabrikam.test")
	s.Cmd("MAIL FROM:<bob@fabrikam.test>")
	Expect(s.Cmd("RCPT TO:<%s>", rcpt)).To(f.HaveReply(250), s.Explain("250 for %s", rcpt))
	_, end := s.Data(body)
	Expect(end).To(f.HaveClass(2), s.Explain("message accepted"))
	return s
}

var _ = Describe("Accepted domains", Label("accept"), func() {
	It("accepts an existing recipient of an authoritative domain and delivers it inward", f.Clause("ACCEPT-001"), func() {
		w := start()
		s := send(w, "alice@contoso.test")
		Eventually(func() int { return len(w.Mailbox("alice@contoso.test")) }).Should(Equal(1), s.Explain("the message reaches alice's mailbox"))
		Expect(string(w.Mailbox("alice@contoso.test")[0])).To(ContainSubstring("Message-ID: <accept@fabrikam.test>"))
		if !w.Traced() {
			return
		}
		// The Edge's log is read as it comes in containers: its RECEIVE may trail the
		// stored copy.
		Eventually(func() []trace.Event { return trace.OfType(w.Trace().Events(), trace.Receive, "EDGE1") }).
			Should(HaveLen(1), s.Explain("one RECEIVE event on the Edge"))
		ev := trace.OfType(w.Trace().Events(), trace.Receive, "EDGE1")
		Expect(ev[0].HeaderID).To(Equal("accept@fabrikam.test"), s.Explain("tracking carries the Message-ID"))
		Eventually(func() []trace.Event { return w.Events(trace.Route) }).Should(ContainElement(HaveField("Connector", "EdgeSync - Inbound")),
			s.Explain("ROUTE to the subscribed site's Hub through the EdgeSync inbound connector"))
	})

	It("filters recipients at RCPT: 550 5.1.1 unknown, 250 2.1.5 known", f.Clause("ACCEPT-002"), func() {
		w := start()
		s, _ := w.Dial("EDGE1", "Internet")
		s.Cmd("EHLO mail.fabrikam.test")
		s.Cmd("MAIL FROM:<bob@fabrikam.test>")
		Expect(s.Cmd("RCPT TO:<nobody@contoso.test>")).To(f.HaveReply(550, "5.1.1"), s.Explain("550 5.1.1 for an unknown recipient"))
		Expect(s.Cmd("RCPT TO:<alice@contoso.test>")).To(f.HaveReply(250, "2.1.5"), s.Explain("250 2.1.5 for a known recipient"))
		Expect(s.Cmd("RCPT TO:<A.Smith@Contoso.test>")).To(f.HaveReply(250, "2.1.5"), s.Explain("250 2.1.5 for a proxy address in another case"))
	})

	It("does not look up recipients of relay domains", f.Clause("ACCEPT-005"), func() {
		w := start()
		s, _ := w.Dial("EDGE1", "Internet")
		s.Cmd("EHLO mail.fabrikam.test")
		s.Cmd("MAIL FROM:<bob@fabrikam.test>")
		before := len(w.Directory().Searches())
		Expect(s.Cmd("RCPT TO:<unknown@partner-int.test>")).To(f.HaveReply(250), s.Explain("250 for an unknown address in an internal relay domain"))
		Expect(s.Cmd("RCPT TO:<unknown@outsourced.test>")).To(f.HaveReply(250), s.Explain("250 for an unknown address in an external relay domain"))
		Expect(w.Directory().Searches()[before:]).To(BeEmpty(), s.Explain("no directory lookup at RCPT for relay domains"))
	})

	It("delivers internal-relay recipients inward when known and outward otherwise; external relay always outward", f.Clause("ACCEPT-007"), func() {
		w := start()
		s := send(w, "carol@partner-int.test")
		Eventually(func() int { return len(w.Mailbox("carol@partner-int.test")) }).Should(Equal(1), s.Explain("a known internal-relay recipient is delivered inside"))

		s = send(w, "dave@partner-int.test")
		Eventually(func() []string {
			var to []string
			for _, m := range w.Received("smarthost.isp.test") {
				to = append(to, m.RcptTo...)
			}
			return to
		}).Should(ContainElement("dave@partner-int.test"), s.Explain("an unknown internal-relay recipient leaves through the send connector"))

		s = send(w, "erin@outsourced.test")
		Eventually(func() int { return len(w.Received("mx.outsourcer.test")) }).Should(Equal(1), s.Explain("external-relay mail leaves through its connector"))
		Consistently(func() int { return len(w.Mailbox("erin@outsourced.test")) + len(w.Mailbox("dave@partner-int.test")) }).WithTimeout(200*time.Millisecond).
			Should(BeZero(), s.Explain("relay-domain mail for recipients outside never lands in a mailbox"))
		Expect(w.Events("FAIL")).To(BeEmpty(), s.Explain("no NDR for relay domains"))
	})

	It("accepts and delivers recipients in the subdomains of a wildcard accepted domain", f.Clause("ACCEPT-008"), func() {
		w := f.StartShipped("wildcard-domain.yaml")
		s := fromInternet(w)
		Expect(s.Cmd("RCPT TO:<nobody@x.contoso.test>")).To(f.HaveClass(5, "5.1.1"), s.Explain("a subdomain is accepted: unknown, not relay"))
		Expect(s.Cmd("RCPT TO:<ann@a.b.contoso.test>")).To(f.HaveReply(250), s.Explain("a recipient two levels down is accepted"))
		_, end := s.Data("Subject: wildcard\r\nMessage-ID: <wild@fabrikam.test>\r\n\r\nhi\r\n")
		Expect(end).To(f.HaveClass(2), s.Explain("message accepted"))
		Eventually(func() int { return len(w.Mailbox("ann@a.b.contoso.test")) }).Should(Equal(1), s.Explain("delivered to ann's mailbox"))
	})

	It("refuses a blocked recipient as unknown although it exists", f.Clause("ACCEPT-003"), func() {
		w := f.StartShipped("block-list.yaml")
		s := fromInternet(w)
		Expect(s.Cmd("RCPT TO:<CEO@contoso.test>")).To(f.HaveReply(550, "5.1.1"), s.Explain("550 5.1.1 for the blocked address, in any letter case"))
		Expect(s.Cmd("RCPT TO:<alice@contoso.test>")).To(f.HaveReply(250), s.Explain("others still accepted"))
	})
})

// fromInternet opens a session on the Edge's Internet connector up to MAIL FROM.
func fromInternet(w *f.World) *f.Session {
	GinkgoHelper()
	s, _ := w.Dial("EDGE1", "Internet")
	s.Cmd("EHLO mail.fabrikam.test")
	Expect(s.Cmd("MAIL FROM:<bob@fabrikam.test>")).To(f.HaveClass(2), s.Explain("sender accepted"))
	return s
}
