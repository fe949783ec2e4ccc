package mailboxsuite

import (
	"regexp"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/mailflow/mailflow/profiles"
	f "github.com/mailflow/mailflow/suites/framework"
	"github.com/mailflow/mailflow/trace"
)

const (
	bob    = "bob@fabrikam.test"
	pierre = "pierre@contoso.test"
)

// startSubmission brings up two sites, each with its Hub and a Mailbox server, alice's
// in London and pierre's in Paris, both with passwords; the Edge is London's.
func startSubmission() *f.World {
	GinkgoHelper()
	return f.StartShipped("submission.yaml")
}

// bare is a message a client submits without Date: or Message-ID:.
const bare = "From: pierre@contoso.test\r\nTo: bob@fabrikam.test, alice@contoso.test\r\nSubject: submitted\r\n\r\nSent from a mail client.\r\n"

// submitted is the message among ms whose Subject is subject.
func submitted(ms [][]byte, subject string) []byte {
	for _, m := range ms {
		if regexp.MustCompile(`(?mi)^Subject: ` + regexp.QuoteMeta(subject) + `\r?$`).Match(f.Header(m)) {
			return m
		}
	}
	return nil
}

var _ = Describe("Client submission on port 587", Label("mailbox", "submission"), func() {
	It("refuses MAIL before AUTH with 530 5.7.0, and AUTH in the clear with 538 5.7.11", f.Clause("MBX-004"), func() {
		w := startSubmission()
		s, ehlo := w.DialSubmission(alice)
		Expect(ehlo).To(f.HaveReply(250), s.Explain("EHLO"))
		Expect(ehlo.Advertises("STARTTLS")).To(BeTrue(), s.Explain("STARTTLS offered on the submission port"))
		Expect(ehlo.Advertises("AUTH")).To(BeFalse(), s.Explain("no AUTH mechanism offered before STARTTLS"))
		Expect(s.Cmd("AUTH PLAIN %s", f.PlainAuth(alice, "alice-secret"))).To(s.HaveReply(538, "5.7.11"), s.Explain("538 5.7.11 to AUTH PLAIN in the clear (RFC 4954 §4)"))
		Expect(s.Cmd("MAIL FROM:<%s>", alice)).To(s.HaveReply(530, "5.7.0"), s.Explain("530 5.7.0 to MAIL in the clear"))
		Expect(s.StartTLS(w.ClientTLS())).To(f.HaveReply(220), s.Explain("STARTTLS"))
		mechs, _ := s.Cmd("EHLO client.contoso.test").Extension("AUTH")
		Expect(mechs).To(ContainElement("PLAIN"), s.Explain("AUTH PLAIN offered inside TLS"))
		Expect(s.Cmd("MAIL FROM:<%s>", alice)).To(s.HaveReply(530, "5.7.0"), s.Explain("530 5.7.0 to MAIL before AUTH"))
		Expect(s.Cmd("AUTH PLAIN %s", f.PlainAuth(alice, "not-her-password"))).To(s.HaveReply(535, "5.7.8"), s.Explain("535 5.7.8 to a wrong password"))
		Expect(s.Cmd("MAIL FROM:<%s>", alice)).To(s.HaveReply(530, "5.7.0"), s.Explain("530 5.7.0 to MAIL after a failed AUTH"))
	})

	It("delivers an authenticated submission with Date: and Message-ID: added", f.Clause("MBX-004"), func() {
		// bob's copy is read at the ISP's smart host.
		f.Require(profiles.FeatureSmartHost)
		w := startSubmission()
		w.IMAPEndpoint(alice)
		s := w.SubmitAs(pierre)
		Expect(s.Cmd("MAIL FROM:<%s>", pierre)).To(f.HaveClass(2), s.Explain("MAIL as himself after AUTH"))
		Expect(s.Cmd("RCPT TO:<%s>", bob)).To(f.HaveClass(2), s.Explain("an Internet recipient"))
		Expect(s.Cmd("RCPT TO:<%s>", alice)).To(f.HaveClass(2), s.Explain("a recipient of the organisation"))
		_, end := s.Data(bare)
		Expect(end).To(f.HaveClass(2), s.Explain("the submission accepted"))

		// On the Internet, through the organisation's Hub and Edge.
		var out []byte
		Eventually(func() []byte {
			var ms [][]byte
			for _, m := range w.Received("smarthost.isp.test") {
				ms = append(ms, m.Data)
			}
			out = submitted(ms, "submitted")
			return out
		}).ShouldNot(BeNil(), s.Explain("bob's copy reaches the smart host"))
		hdr := string(f.Header(out))
		Expect(hdr).To(MatchRegexp(`(?mi)^Date: `), s.Explain("Date: added to bob's copy"))
		Expect(hdr).To(MatchRegexp(`(?mi)^Message-ID: <[^>]+@[^>]+>`), s.Explain("Message-ID: added to bob's copy"))
		Expect(string(out)).To(HaveSuffix("\r\n\r\nSent from a mail client.\r\n"), s.Explain("the body unchanged"))

		// In alice's INBOX, read over IMAP.
		c := w.IMAP(alice, nil)
		inbox(c, 1, s.Explain("alice's copy in her INBOX"))
		got := fetchBody(c)
		Expect(got).To(MatchRegexp(`(?mi)^Date: `), s.Explain("Date: in alice's copy"))
		Expect(got).To(MatchRegexp(`(?mi)^Message-ID: <[^>]+@[^>]+>`), s.Explain("Message-ID: in alice's copy"))
		if w.Traced() {
			Eventually(func() []trace.Event { return trace.OfType(w.Trace().Events(), trace.Receive, "MBX-PAR") }).
				ShouldNot(BeEmpty(), s.Explain("MBX-PAR traces the submission it received"))
			Eventually(func() []string {
				var hops []string
				for _, e := range trace.OfType(w.Trace().Events(), trace.Send, "MBX-PAR") {
					hops = append(hops, e.NextHop)
				}
				return hops
			}).Should(Equal([]string{"HUB-PAR"}), s.Explain("MBX-PAR handed the submission to HUB-PAR, the Hub of its own site"))
		}
	})
})

var _ = Describe("Submitting as someone else", Label("mailbox", "submission"), func() {
	It("refuses an envelope sender that is not the user's with 5.7.1, and takes her proxy address", f.Clause("MBX-005"), func() {
		w := startSubmission()
		s := w.SubmitAs(alice)
		Expect(s.Cmd("MAIL FROM:<ceo@contoso.test>")).To(s.HaveReply(550, "5.7.1"), s.Explain("550 5.7.1 to MAIL as an address that is not alice's"))
		Expect(s.Cmd("MAIL FROM:<%s>", bob)).To(s.HaveReply(550, "5.7.1"), s.Explain("550 5.7.1 to MAIL as an outside address"))
		Expect(s.Cmd("MAIL FROM:<a.smith@contoso.test>")).To(f.HaveClass(2), s.Explain("MAIL as alice's proxy address, one she may send as"))
		Expect(s.Cmd("RSET")).To(f.HaveClass(2))
	})

	It("refuses a From: that is not the user's at end-of-data with 5.7.1, and delivers nothing", f.Clause("MBX-005"), func() {
		w := startSubmission()
		s := w.SubmitAs(alice)
		Expect(s.Cmd("MAIL FROM:<%s>", alice)).To(f.HaveClass(2), s.Explain("MAIL as herself"))
		Expect(s.Cmd("RCPT TO:<%s>", bob)).To(f.HaveClass(2))
		forged := strings.Replace(bare, "From: alice@contoso.test", "From: The CEO <ceo@contoso.test>", 1)
		_, end := s.Data(forged)
		Expect(end).To(s.HaveReply(550, "5.7.1"), s.Explain("550 5.7.1 to a From: alice may not send as"))
		Expect(end.Text).To(ContainSubstring("Client does not have permissions to send as this sender"), s.Explain("Exchange 2010's text"))
		// Refused before the hand-off: nothing left the Mailbox server.
		if w.Traced() {
			Expect(trace.OfType(w.Trace().Events(), trace.Send, "MBX-LON")).To(BeEmpty(), s.Explain("MBX-LON handed nothing to a Hub"))
		}
		Expect(w.Received("smarthost.isp.test")).To(BeEmpty(), s.Explain("nothing reached the Internet"))
	})
})
