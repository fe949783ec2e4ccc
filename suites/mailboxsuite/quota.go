package mailboxsuite

import (
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/mailflow/mailflow/profiles"
	"github.com/mailflow/mailflow/scenarios"
	f "github.com/mailflow/mailflow/suites/framework"
	"github.com/mailflow/mailflow/trace"
)

// quota is alice's mailbox size limit in the quota specs: room for a short message,
// none for a long one.
const quota = 4000

// startQuota is submission.yaml with alice's mailbox limited to quota bytes.
func startQuota() *f.World {
	GinkgoHelper()
	// The sender's NDR is read at the ISP's smart host.
	f.Require(profiles.FeatureSmartHost)
	s, err := scenarios.Load("submission.yaml")
	Expect(err).NotTo(HaveOccurred())
	for i := range s.Org.Recipients {
		if s.Org.Recipients[i].Mail == alice {
			s.Org.Recipients[i].Quota = quota
		}
	}
	return f.StartScenario(s)
}

// toAlice is a message from bob with Message-ID <id> and a body of about size bytes.
func toAlice(id string, size int) string {
	line := strings.Repeat("x", 76) + "\r\n"
	return "From: bob@fabrikam.test\r\nTo: alice@contoso.test\r\nSubject: " + id + "\r\nMessage-ID: <" + id + ">\r\n\r\n" +
		strings.Repeat(line, size/len(line)+1)
}

// ndrs are the delivery status notifications that reached the Internet for bob.
func ndrs(w *f.World) []string {
	var out []string
	for _, m := range w.Received("smarthost.isp.test") {
		if strings.Contains(string(m.Data), "multipart/report") && len(m.RcptTo) == 1 && m.RcptTo[0] == bob {
			out = append(out, string(m.Data))
		}
	}
	return out
}

var _ = Describe("Mailbox quota", Label("mailbox", "quota"), func() {
	It("refuses a message that would take the mailbox over its quota, with a 5.2.2 NDR to the sender", f.Clause("MBX-009"), func() {
		w := startQuota()
		w.IMAPEndpoint(alice)
		s := w.SubmitMessage(f.Internet, toAlice("fits@fabrikam.test", 1000), alice)
		c := w.IMAP(alice, nil)
		inbox(c, 1, s.Explain("a message that fits is delivered"))

		s = w.SubmitMessage(f.Internet, toAlice("too-big@fabrikam.test", 2*quota), alice)
		Eventually(func() []string { return ndrs(w) }).Should(HaveLen(1), s.Explain("bob gets an NDR"))
		ndr := ndrs(w)[0]
		Expect(ndr).To(MatchRegexp(`(?mi)^Status: 5\.2\.2\r?$`), s.Explain("the NDR says Status: 5.2.2, mailbox full"))
		Expect(ndr).To(MatchRegexp(`(?mi)^Final-Recipient: rfc822;\s*alice@contoso\.test\r?$`), s.Explain("for alice"))
		Expect(messageIDs(c, "INBOX")).To(Equal([]string{"<fits@fabrikam.test>"}), s.Explain("alice's INBOX holds only the message that fit"))
		if w.Traced() {
			Eventually(func() []trace.Event { return trace.OfType(w.Trace().Events(), trace.Fail, "") }).Should(ContainElement(HaveField("Reply", ContainSubstring("5.2.2"))), s.Explain("the FAIL event has the store's 5.2.2"))
		}
	})

	It("keeps retrying from the Hub while the store is down, with no NDR, and delivers once it is back", f.Clause("MBX-009"), func() {
		w := startQuota()
		w.RequireFakeClock()
		w.RequireUp()
		w.IMAPEndpoint(alice)
		w.Down("MBX-LON")
		s := w.SubmitMessage(f.Internet, toAlice("while-down@fabrikam.test", 100), alice)
		retry := w.Timers("HUB-LON").Retry
		Eventually(func() []trace.Event { return trace.OfType(w.Trace().Events(), trace.Defer, "HUB-LON") }).ShouldNot(BeEmpty(), s.Explain("HUB-LON defers while the store is down"))
		for range 3 {
			w.Advance(retry)
		}
		Expect(w.Queue("HUB-LON")).To(Equal(1), s.Explain("still queued on HUB-LON"))
		Expect(w.Events(trace.DSN)).To(BeEmpty(), s.Explain("no NDR while the store is down"))
		Expect(ndrs(w)).To(BeEmpty(), s.Explain("nothing came back to bob"))
		w.Up("MBX-LON")
		w.Advance(retry)
		c := w.IMAP(alice, nil)
		inbox(c, 1, s.Explain("delivered at the Hub's next retry once the store is back"))
	})
})
