// Package smtpsuite holds the SMTP-* clause specs: protocol basics any MTA must get right.
package smtpsuite

import (
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	f "github.com/mailflow/mailflow/suites/framework"
)

var _ = Describe("SMTP protocol basics", Label("smtp"), func() {
	var w *f.World
	BeforeEach(func() {
		w = f.StartShipped("edge-smarthost.yaml")
	})

	It("greets with 220", f.Clause("SMTP-001"), func() {
		s, greet := w.Dial("EDGE1", "")
		Expect(greet).To(f.HaveReply(220), s.Explain("a 220 greeting on connect"))
	})

	It("answers EHLO with a multi-line 250 and accepts HELO", f.Clause("SMTP-002"), func() {
		s, _ := w.Dial("EDGE1", "")
		r := s.Cmd("EHLO client.fabrikam.test")
		Expect(r).To(f.HaveReply(250), s.Explain("250 to EHLO"))
		Expect(len(r.Lines)).To(BeNumerically(">", 1), s.Explain("a multi-line EHLO reply listing extensions"))
		s2, _ := w.Dial("EDGE1", "")
		Expect(s2.Cmd("HELO client.fabrikam.test")).To(f.HaveReply(250), s2.Explain("250 to HELO"))
	})

	It("refuses MAIL before EHLO with 503 and keeps its state", f.Clause("SMTP-003"), func() {
		s, _ := w.Dial("EDGE1", "")
		Expect(s.Cmd("MAIL FROM:<bob@fabrikam.test>")).To(f.HaveReply(503), s.Explain("503 to MAIL before EHLO"))
		Expect(s.Cmd("EHLO client.fabrikam.test")).To(f.HaveReply(250), s.Explain("EHLO still works"))
		Expect(s.Cmd("MAIL FROM:<bob@fabrikam.test>")).To(f.HaveClass(2), s.Explain("MAIL accepted after EHLO"))
	})

	It("refuses RCPT without MAIL with 503", f.Clause("SMTP-004"), func() {
		s, _ := w.Dial("EDGE1", "")
		s.Cmd("EHLO client.fabrikam.test")
		Expect(s.Cmd("RCPT TO:<alice@contoso.test>")).To(f.HaveReply(503), s.Explain("503 to RCPT without MAIL"))
	})

	It("never answers 354 to DATA without an accepted recipient", f.Clause("SMTP-005"), func() {
		s, _ := w.Dial("EDGE1", "")
		s.Cmd("EHLO client.fabrikam.test")
		s.Cmd("MAIL FROM:<bob@fabrikam.test>")
		Expect(s.Cmd("RCPT TO:<bob@fabrikam.test>")).To(f.HaveClass(5), s.Explain("relay refused"))
		r := s.Cmd("DATA")
		Expect(r.Code).To(Or(Equal(503), Equal(554)), s.Explain("503 or 554 to DATA with no recipient, never 354"))
	})

	It("answers an unknown command with 500 and keeps the connection", f.Clause("SMTP-006"), func() {
		s, _ := w.Dial("EDGE1", "")
		s.Cmd("EHLO client.fabrikam.test")
		Expect(s.Cmd("FROBNICATE now")).To(f.HaveReply(500), s.Explain("500 to an unrecognised command"))
		Expect(s.Cmd("MAIL FROM:<bob@fabrikam.test>")).To(f.HaveClass(2), s.Explain("the next valid command succeeds"))
	})

	DescribeTable("refuses a malformed MAIL FROM with 501 and keeps its state", f.Clause("SMTP-007"),
		func(bad string) {
			s, _ := w.Dial("EDGE1", "")
			s.Cmd("EHLO client.fabrikam.test")
			Expect(s.Cmd("%s", bad)).To(f.HaveReply(501), s.Explain("501 to %q", bad))
			Expect(s.Cmd("MAIL FROM:<bob@fabrikam.test>")).To(f.HaveClass(2), s.Explain("a corrected MAIL succeeds"))
		},
		Entry("space after the colon", "MAIL FROM: <bob@fabrikam.test>"),
		Entry("no angle brackets", "MAIL FROM:bob@fabrikam.test"),
		Entry("unbalanced bracket", "MAIL FROM:<bob@fabrikam.test"),
	)

	It("aborts the transaction on RSET and on a new EHLO", f.Clause("SMTP-008"), func() {
		s, _ := w.Dial("EDGE1", "")
		s.Cmd("EHLO client.fabrikam.test")
		s.Cmd("MAIL FROM:<bob@fabrikam.test>")
		Expect(s.Cmd("RSET")).To(f.HaveReply(250), s.Explain("250 to RSET"))
		Expect(s.Cmd("RCPT TO:<alice@contoso.test>")).To(f.HaveReply(503), s.Explain("RCPT after RSET is out of sequence"))
		s.Cmd("MAIL FROM:<bob@fabrikam.test>")
		Expect(s.Cmd("EHLO client.fabrikam.test")).To(f.HaveReply(250), s.Explain("250 to a second EHLO mid-transaction"))
		Expect(s.Cmd("RCPT TO:<alice@contoso.test>")).To(f.HaveReply(503), s.Explain("RCPT after a new EHLO is out of sequence"))
	})

	It("answers NOOP with 250 in any state and QUIT with 221, then closes", f.Clause("SMTP-009"), func() {
		s, _ := w.Dial("EDGE1", "")
		Expect(s.Cmd("NOOP")).To(f.HaveReply(250), s.Explain("NOOP before EHLO"))
		s.Cmd("EHLO client.fabrikam.test")
		s.Cmd("MAIL FROM:<bob@fabrikam.test>")
		Expect(s.Cmd("NOOP")).To(f.HaveReply(250), s.Explain("NOOP inside a transaction"))
		Expect(s.Cmd("QUIT")).To(f.HaveReply(221), s.Explain("221 to QUIT"))
		Expect(s.Closed()).To(BeTrue(), s.Explain("the server closes after 221"))
	})

	It("uses three-digit codes whose enhanced code class matches", f.Clause("SMTP-010"), func() {
		s, greet := w.Dial("EDGE1", "")
		ehlo := s.Cmd("EHLO client.fabrikam.test")
		// The enhanced-code half of the clause applies only where the extension is
		// advertised; the three-digit half always does.
		enhanced := strings.Contains(strings.Join(ehlo.Lines, " "), "ENHANCEDSTATUSCODES")
		replies := []f.Reply{greet, ehlo}
		for _, c := range []string{"MAIL FROM:<bob@fabrikam.test>", "RCPT TO:<alice@contoso.test>", "RCPT TO:<nobody@contoso.test>",
			"RCPT TO:<bob@fabrikam.test>", "NOOP", "RSET", "FROBNICATE", "QUIT"} {
			r := s.Cmd("%s", c)
			replies = append(replies, r)
			if r.Code == 421 {
				// A server may end the session with 421 at any time (RFC 5321 §3.8, §4.2.5;
				// chasquid does after three refusals): what comes after gets no reply.
				break
			}
		}
		for i, r := range replies {
			Expect(r.Code).To(BeNumerically(">=", 200), s.Explain("a code from 200 to 599"))
			Expect(r.Code).To(BeNumerically("<", 600), s.Explain("a code from 200 to 599"))
			if i < 2 || !enhanced {
				continue // the greeting and EHLO reply carry no enhanced code
			}
			Expect(r.Enhanced).NotTo(BeEmpty(), s.Explain("an enhanced code in %q", r.String()))
			Expect(int(r.Enhanced[0]-'0')).To(Equal(r.Code/100), s.Explain("enhanced class = first digit in %q", r.String()))
		}
		if !enhanced {
			f.Info("ENHANCEDSTATUSCODES is not advertised, so only the three-digit codes were checked")
		}
	})

	DescribeTable("accepts postmaster for every served domain and bare Postmaster", f.Clause("SMTP-011"),
		func(rcpt string) {
			s, _ := w.Dial("EDGE1", "")
			s.Cmd("EHLO client.fabrikam.test")
			s.Cmd("MAIL FROM:<bob@fabrikam.test>")
			Expect(s.Cmd("RCPT TO:<%s>", rcpt)).To(f.HaveClass(2), s.Explain("RCPT TO:<%s> accepted", rcpt))
		},
		Entry("postmaster@domain", "postmaster@contoso.test"),
		Entry("upper case", "POSTMASTER@CONTOSO.TEST"),
		Entry("bare Postmaster", "Postmaster"),
		Entry("bare mixed case", "PoStMaStEr"),
	)
})
