package filtersuite

import (
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/mailflow/mailflow/scenario"
	f "github.com/mailflow/mailflow/suites/framework"
	"github.com/mailflow/mailflow/trace"
)

var _ = Describe("Sender filtering", Label("filter"), func() {
	DescribeTable("refuses blocked senders and domains at MAIL with 554 5.1.0", f.Clause("FILTER-014"),
		func(sender string, refused bool) {
			w := start()
			s := from(w, w.ClientIn(listedNet), "Internet")
			r := s.Cmd("MAIL FROM:<%s>", sender)
			if !refused {
				Expect(r).To(f.HaveClass(2), s.Explain("<%s> is not blocked", sender))
				Expect(s.Cmd("RCPT TO:<alice@contoso.test>")).To(f.HaveClass(2), s.Explain("and its recipient is accepted"))
				return
			}
			Expect(r).To(f.HaveReply(554, "5.1.0"), s.Explain("<%s> refused at MAIL with 554 5.1.0", sender))
			if w.Traced() {
				Eventually(func() []trace.Event { return agentEvents(w, trace.Fail, agentSender) }).Should(HaveLen(1), s.Explain("one FAIL event naming the %s", agentSender))
			}
		},
		Entry("a blocked address", "spammer@fabrikam.test", true),
		Entry("a blocked address in another case", "Spammer@FABRIKAM.test", true),
		Entry("another address of its domain", "bob@fabrikam.test", false),
		Entry("a blocked domain", "anyone@spam.test", true),
		Entry("a sub-domain of a domain blocked without *.", "anyone@mail.spam.test", false),
		Entry("a domain blocked as *.junk.test", "anyone@junk.test", true),
		Entry("a sub-domain blocked as *.junk.test", "anyone@relay.eu.junk.test", true),
		Entry("the blank sender, not blocked unless configured", "", false),
	)

	It("stamps a blocked sender's message with a raised SCL when set to stamp", f.Clause("FILTER-014"), func() {
		w := startWith(func(edge *scenario.Server) { edge.Agents.SenderFilter.Action = scenario.SenderFilterStamp })
		s := from(w, w.ClientIn(listedNet), "Internet")
		Expect(s.Cmd("MAIL FROM:<spammer@fabrikam.test>")).To(f.HaveClass(2), s.Explain("a stamping filter takes the blocked sender"))
		Expect(s.Cmd("RCPT TO:<alice@contoso.test>")).To(f.HaveClass(2), s.Explain("accepted"))
		id, msg := message("stamped")
		_, end := s.Data(msg)
		Expect(end).To(f.HaveClass(2), s.Explain("accepted"))
		// An SCL at or above the junk threshold files it in Junk E-mail (FILTER-013).
		w.IMAPEndpoint("alice@contoso.test")
		got, _ := inJunk(w, s, "alice@contoso.test", id)
		header := string(f.Header(got))
		Expect(header).To(ContainSubstring("X-MS-Exchange-Organization-SCL: 9\r\n"), s.Explain("the delivered copy carries the raised SCL"))
		Expect(header).To(ContainSubstring("X-MS-Exchange-Organization-Antispam-Report: SFV:BLK"), s.Explain("and the sender filter's stamp"))
	})

	It("exempts an authenticated session", f.Clause("FILTER-014"), func() {
		w := start()
		s := from(w, w.ClientIn(listedNet), "Clients")
		Expect(s.StartTLS(w.ClientTLS())).To(f.HaveReply(220), s.Explain("STARTTLS"))
		s.Cmd("EHLO mail.fabrikam.test")
		Expect(s.Cmd("AUTH PLAIN %s", f.PlainAuth("alice@contoso.test", "alice-secret"))).To(f.HaveReply(235), s.Explain("AUTH PLAIN succeeds"))
		Expect(s.Cmd("MAIL FROM:<spammer@fabrikam.test>")).To(f.HaveClass(2), s.Explain("authenticated sessions are exempt (FILTER-007)"))
	})
})
