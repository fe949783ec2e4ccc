// Package relaysuite holds the RELAY-* clause specs and the open-relay vector battery
// (SEC-004): who may relay through a receive connector, and that nobody else can.
package relaysuite

import (
	"fmt"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	f "github.com/mailflow/mailflow/suites/framework"
	"github.com/mailflow/mailflow/trace"
)

const body = "From: sender@example.test\r\nTo: someone@example.test\r\nSubject: relay test\r\n\r\nrelay test\r\n"

func start() *f.World { return f.StartShipped("edge-relay.yaml") }

// outside are the hosts relayed mail could reach: the victim's MX and the smart host.
var outside = []string{"mx1.fabrikam.test", "smarthost.isp.test", "mx.outsourcer.test"}

// noRelayedMail waits for the queue to settle, then checks no outside host got mail.
func noRelayedMail(w *f.World, s *f.Session) {
	GinkgoHelper()
	Consistently(func() int { return len(w.Received(outside...)) }).
		WithTimeout(300*time.Millisecond).WithPolling(50*time.Millisecond).
		Should(BeZero(), s.Explain("no message reaches any host outside the organisation"))
}

var _ = Describe("Relay restrictions", Label("relay"), func() {
	It("refuses an anonymous client relaying to a foreign domain at RCPT with 5.7.1", f.Clause("RELAY-001"), func() {
		w := start()
		s, _ := w.Dial("EDGE1", "Internet")
		s.Cmd("EHLO client.example.test")
		s.Cmd("MAIL FROM:<spammer@example.test>")
		r := s.Cmd("RCPT TO:<victim@fabrikam.test>")
		Expect(r).To(f.HaveClass(5, "5.7.1"), s.Explain("5yz with 5.7.1 at RCPT"))
		f.Should(r.Code == 550, s, "%d where RFC 5321 says the relay denial SHOULD be 550 (Exchange: 550 5.7.1 Unable to relay)", r.Code)
	})

	It("sends nothing and generates no DSN after a relay denial", f.Clause("RELAY-002"), func() {
		w := start()
		s, _ := w.Dial("EDGE1", "Internet")
		s.Cmd("EHLO client.example.test")
		s.Cmd("MAIL FROM:<spammer@example.test>")
		Expect(s.Cmd("RCPT TO:<victim@fabrikam.test>")).To(f.HaveClass(5), s.Explain("refused"))
		Expect(s.Cmd("RCPT TO:<alice@contoso.test>")).To(f.HaveClass(2), s.Explain("accepted"))
		_, end := s.Data(body)
		Expect(end).To(f.HaveClass(2), s.Explain("the local recipient is accepted"))
		Eventually(func() int { return len(w.Mailbox("alice@contoso.test")) }).Should(Equal(1), s.Explain("the local recipient's copy is delivered"))
		noRelayedMail(w, s)
		if w.Traced() {
			Expect(w.Events(trace.DSN)).To(BeEmpty(), s.Explain("no DSN for an in-session rejection"))
			Expect(w.Events(trace.Fail)).To(BeEmpty(), s.Explain("no failed recipient after acceptance"))
		}
		Consistently(func() int { return len(w.Mailbox("alice@contoso.test")) }).WithTimeout(w.Quiet(time.Second)).Should(Equal(1), s.Explain("one copy, and nothing else delivered"))
	})

	DescribeTable("is not bypassed by address tricks", f.Clause("RELAY-003"),
		func(rcpt string) {
			w := start()
			s, _ := w.Dial("EDGE1", "Internet")
			s.Cmd("EHLO client.example.test")
			s.Cmd("MAIL FROM:<spammer@example.test>")
			if r := s.Cmd("RCPT TO:<%s>", rcpt); r.Code/100 == 2 {
				s.Data(body)
			}
			noRelayedMail(w, s)
		},
		Entry("source route", "@contoso.test:victim@fabrikam.test"),
		Entry("percent hack", "victim%fabrikam.test@contoso.test"),
	)

	DescribeTable("does not grant relay on the strength of the sender", f.Clause("RELAY-004"),
		func(from string) {
			w := start()
			s, _ := w.Dial("EDGE1", "Internet")
			s.Cmd("EHLO client.example.test")
			Expect(s.Cmd("MAIL FROM:<%s>", from)).To(f.HaveClass(2), s.Explain("anonymous senders may claim any sender"))
			Expect(s.Cmd("RCPT TO:<victim@fabrikam.test>")).To(f.HaveClass(5, "5.7.1"), s.Explain("relay still refused"))
		},
		Entry("local authoritative sender", "alice@contoso.test"),
		Entry("null sender", ""),
	)

	It("lets an authenticated client relay over TLS", f.Clause("RELAY-005"), func() {
		w := start()
		w.RequireRelay(f.Via{Server: "EDGE1", Connector: "Clients"}, "friend@fabrikam.test")
		s, _ := w.Dial("EDGE1", "Clients")
		s.Cmd("EHLO client.contoso.test")
		Expect(s.StartTLS(w.ClientTLS())).To(f.HaveReply(220), s.Explain("STARTTLS"))
		s.Cmd("EHLO client.contoso.test")
		Expect(s.Cmd("AUTH PLAIN %s", f.PlainAuth("alice@contoso.test", "alice-secret"))).To(f.HaveReply(235), s.Explain("AUTH PLAIN succeeds"))
		Expect(s.Cmd("MAIL FROM:<alice@contoso.test>")).To(f.HaveClass(2), s.Explain("accepted"))
		Expect(s.Cmd("RCPT TO:<friend@fabrikam.test>")).To(f.HaveClass(2), s.Explain("authenticated relay accepted"))
		_, end := s.Data(body)
		Expect(end).To(f.HaveClass(2), s.Explain("accepted"))
		Eventually(func() int { return len(w.Received("smarthost.isp.test")) }).Should(Equal(1), s.Explain("the smart host receives the relayed message"))
		Expect(w.Received("smarthost.isp.test")[0].RcptTo).To(Equal([]string{"friend@fabrikam.test"}))
	})

	It("accepts accepted domains and refuses others on an AnonymousUsers-only connector", f.Clause("RELAY-006"), func() {
		w := start()
		s, _ := w.Dial("EDGE1", "Internet")
		s.Cmd("EHLO client.example.test")
		s.Cmd("MAIL FROM:<bob@example.test>")
		for _, rc := range []string{"alice@contoso.test", "carol@partner-int.test", "anyone@outsourced.test"} {
			Expect(s.Cmd("RCPT TO:<%s>", rc)).To(f.HaveReply(250), s.Explain("250 for %s in an accepted domain", rc))
		}
		Expect(s.Cmd("RCPT TO:<victim@fabrikam.test>")).To(f.HaveReply(550, "5.7.1"), s.Explain("550 5.7.1 for a foreign domain"))
	})

	It("does not let a Partners session relay", f.Clause("RELAY-007"), func() {
		w := start()
		s, _ := w.Dial("EDGE1", "Partners")
		s.Cmd("EHLO mail.partner.test")
		Expect(s.StartTLS(w.ClientTLS())).To(f.HaveReply(220), s.Explain("STARTTLS (domain-secure partner session)"))
		s.Cmd("EHLO mail.partner.test")
		Expect(s.Cmd("MAIL FROM:<someone@partner.test>")).To(f.HaveClass(2), s.Explain("partners may submit"))
		Expect(s.Cmd("RCPT TO:<alice@contoso.test>")).To(f.HaveClass(2), s.Explain("partners may send to accepted domains"))
		Expect(s.Cmd("RCPT TO:<victim@fabrikam.test>")).To(f.HaveClass(5, "5.7.1"), s.Explain("partners may not relay"))
	})

	It("grants IP-scoped relay only inside the configured range", f.Clause("RELAY-008"), func() {
		w := start()
		w.RequireRelay(f.Via{Server: "EDGE1", Connector: "AppRelay"}, "customer@fabrikam.test")
		addr, err := w.Endpoint("EDGE1", "AppRelay")
		Expect(err).NotTo(HaveOccurred())
		inside, _ := f.DialFrom(w.ClientIn("127.77.0.0/16"), addr)
		inside.Cmd("EHLO app1.contoso.test")
		inside.Cmd("MAIL FROM:<app@contoso.test>")
		Expect(inside.Cmd("RCPT TO:<customer@fabrikam.test>")).To(f.HaveClass(2), inside.Explain("relay granted from inside 127.77.0.0/16"))
		_, end := inside.Data(body)
		Expect(end).To(f.HaveClass(2), inside.Explain("accepted"))
		Eventually(func() int { return len(w.Received("smarthost.isp.test")) }).Should(Equal(1), inside.Explain("relayed via the smart host"))

		outsideS, _ := f.DialFrom(w.ClientIn("127.78.0.0/16"), addr)
		outsideS.Cmd("EHLO app2.example.test")
		outsideS.Cmd("MAIL FROM:<app@contoso.test>")
		Expect(outsideS.Cmd("RCPT TO:<customer@fabrikam.test>")).To(f.HaveClass(5, "5.7.1"), outsideS.Explain("5.7.1 from outside the range"))
	})

	Describe("open-relay vector catalog", func() {
		It("delivers nothing outside for any vector", f.Clause("SEC-004"), f.Long, func() {
			// One world for the catalog: each vector's message carries its own
			// Message-ID, so whatever reaches an outside host, however late, is
			// attributed to the vector that sent it.
			w := start()
			replies := make([]f.Reply, len(Vectors))
			var last *f.Session
			for i, v := range Vectors {
				s, _ := w.Dial("EDGE1", "Internet")
				s.Cmd("EHLO client.example.test")
				s.Cmd("MAIL FROM:<%s>", v.From)
				replies[i] = s.Cmd("RCPT TO:<%s>", v.Rcpt)
				if replies[i].Code/100 == 2 {
					s.Data(fmt.Sprintf("Message-ID: <vector-%d@example.test>\r\n", i) + body)
				}
				s.Cmd("QUIT")
				last = s
			}
			// The whole window is watched, so a late delivery counts too; the verdicts
			// per vector come before the spec's own.
			_ = InterceptGomegaFailures(func() {
				Consistently(func() int { return len(w.Received(outside...)) }).
					WithTimeout(w.Quiet(2 * time.Second)).WithPolling(50 * time.Millisecond).Should(BeZero())
			})
			failed := 0
			for i, v := range Vectors {
				verdict := "PASS"
				for _, m := range w.Received(outside...) {
					if strings.Contains(string(m.Data), fmt.Sprintf("<vector-%d@example.test>", i)) {
						verdict = "FAIL"
					}
				}
				if verdict == "FAIL" {
					failed++
				}
				AddReportEntry("mailflow.vector", fmt.Sprintf("%s: %s (RCPT reply %s)", v.Name, verdict, replies[i]), ReportEntryVisibilityFailureOrVerbose)
			}
			Expect(failed).To(BeZero(), last.Explain("no vector's message reaches an outside host (see the vector lines; the last vector's session follows)"))
		})
	})
})
