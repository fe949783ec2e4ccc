package filtersuite

import (
	"encoding/base64"
	"fmt"
	"slices"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/mailflow/mailflow/fixtures/clamdaemon"
	"github.com/mailflow/mailflow/profiles"
	"github.com/mailflow/mailflow/scenario"
	"github.com/mailflow/mailflow/scenarios"
	f "github.com/mailflow/mailflow/suites/framework"
	"github.com/mailflow/mailflow/trace"
)

const agentMalware = "Malware Agent"

// eicar64 is the EICAR test file as a base64 body, in lines of 76 as a client writes
// it.
var eicar64 = func() string {
	s := base64.StdEncoding.EncodeToString([]byte(clamdaemon.EICAR))
	var b strings.Builder
	for len(s) > 76 {
		b.WriteString(s[:76] + "\r\n")
		s = s[76:]
	}
	return b.String() + s
}()

// startAV starts edge-filter.yaml with EDGE1 scanning every message with clamd and
// giving an infected one action ("" for the default), on a target that can; it
// reports the spec N/A on one that cannot (no clamd installed in-process, an MTA's
// image with no scanner, an MTA that can refuse or delete a message but not replace
// its attachment).
func startAV(action string) *f.World {
	GinkgoHelper()
	f.Require(profiles.FeatureAntivirus)
	if action == scenario.AntivirusStrip {
		f.Require(profiles.FeatureAntivirusStrip)
	}
	return startWith(func(edge *scenario.Server) {
		edge.Agents.Antivirus = scenario.Antivirus{Enabled: true, Action: action}
		if action == "" {
			edge.Agents.Antivirus.Action = scenario.DefaultAntivirusAction
		}
	})
}

// intact says whether msg still carries the EICAR file, as sent or as its base64.
func intact(msg []byte) bool {
	flat := strings.NewReplacer("\r", "", "\n", "").Replace(string(msg))
	return strings.Contains(flat, clamdaemon.EICAR) ||
		strings.Contains(flat, base64.StdEncoding.EncodeToString([]byte(clamdaemon.EICAR)))
}

// noBounce checks that nobody was sent a DSN, the forged sender least of all.
func noBounce(w *f.World, s *f.Session) {
	GinkgoHelper()
	if !w.Traced() {
		return
	}
	Consistently(func() []trace.Event { return w.Events(trace.DSN) }).
		WithTimeout(w.Quiet(time.Second)).WithPolling(50*time.Millisecond).
		Should(BeEmpty(), s.Explain("no DSN, to the envelope sender or anyone"))
}

var _ = Describe("Antivirus", Label("filter"), func() {
	eicarFile := filePart("eicar.com", "application/octet-stream", "base64", eicar64)

	DescribeTable("EICAR never reaches the mailbox intact, whatever the action", f.Clause("FILTER-009"),
		func(action string, part string) {
			w := startAV(action)
			id, msg := mimeMessage("outer-boundary", part)
			s, end := sendFile(w, msg)
			switch action {
			case scenario.AntivirusReject:
				Expect(end).To(f.HaveClass(5), s.Explain("the message is refused at end-of-data with 5yz"))
				if f.OnReference() {
					// FILTER-009 takes any 5yz; 554 5.7.1 is the reference's, as milters
					// typically refuse.
					Expect(end).To(f.HaveReply(554, "5.7.1"), s.Explain("554 5.7.1, as a milter refuses"))
				}
				notDelivered(w, s, "alice@contoso.test", id)
				if w.Traced() {
					Eventually(func() []trace.Event { return agentEvents(w, trace.Fail, agentMalware) }).Should(ConsistOf(HaveField("Detail", ContainSubstring("eicar.com"))),
						s.Explain("one FAIL event naming the %s and the signature", agentMalware))
				}
			case scenario.AntivirusStrip:
				Expect(end).To(f.HaveClass(2), s.Explain("the message is taken, to be delivered without the file"))
				got := delivered(w, s, "alice@contoso.test", id)
				Expect(intact(got)).To(BeFalse(), s.Explain("the delivered copy does not carry EICAR, as sent or in base64"))
				Expect(string(got)).To(ContainSubstring("--outer-boundary\r\n"+textPart+"\r\n"), s.Explain("the text part is intact"))
				Expect(string(got)).To(MatchRegexp(`--outer-boundary\r\nContent-Type: text/plain[^\r]*\r\n(?:[^\r]*\r\n)*\r\n[^\r]*Malware[^\r]*eicar\.com`),
					s.Explain("a notice part says malware was removed and names the file"))
				if w.Traced() {
					Eventually(func() []trace.Event { return agentEvents(w, trace.AgentInfo, agentMalware) }).Should(ContainElement(HaveField("Detail", ContainSubstring("eicar.com"))),
						s.Explain("an AGENTINFO event names the %s and the file", agentMalware))
				}
			default: // delete, Exchange's default
				Expect(end).To(f.HaveClass(2), s.Explain("the client is told the message was taken"))
				notDelivered(w, s, "alice@contoso.test", id)
				if w.Traced() {
					Eventually(func() []trace.Event { return agentEvents(w, trace.Drop, agentMalware) }).Should(HaveLen(1), s.Explain("one DROP event naming the %s", agentMalware))
				}
			}
		},
		Entry("rejected: EICAR in a base64 attachment", scenario.AntivirusReject, eicarFile),
		Entry("rejected: EICAR in a base64 attachment of a base64 attached message", scenario.AntivirusReject, attachedMessage("base64", eicarFile)),
		Entry("deleted (the default): EICAR in a base64 attachment", "", eicarFile),
		Entry("deleted: EICAR in an attached message", scenario.AntivirusDelete, attachedMessage("7bit", eicarFile)),
		Entry("stripped: EICAR in a base64 attachment", scenario.AntivirusStrip, eicarFile),
	)

	It("delivers a clean message with its attachment as sent", f.Clause("FILTER-009"), func() {
		w := startAV(scenario.AntivirusReject)
		file := filePart("report.txt", "application/octet-stream", "base64", base64.StdEncoding.EncodeToString([]byte("EICAR is a test file; this is not it")))
		id, msg := mimeMessage("outer-boundary", file)
		s, end := sendFile(w, msg)
		Expect(end).To(f.HaveClass(2), s.Explain("a clean message is taken"))
		Expect(string(delivered(w, s, "alice@contoso.test", id))).To(ContainSubstring(file), s.Explain("delivered with its attachment"))
	})

	It("defers with 4yz naming clamd when the scanner is down, and never takes the message unscanned", f.Clause("FILTER-009"), func() {
		w := startAV(scenario.AntivirusDelete)
		c, ok := w.Topology.(interface{ StopClamd() error })
		if !ok {
			Skip(fmt.Sprintf("N/A: target %T cannot stop its clamd", w.Topology))
		}
		Expect(c.StopClamd()).To(Succeed())
		for _, part := range []string{eicarFile, filePart("report.txt", "text/plain", "7bit", "a clean file")} {
			id, msg := mimeMessage("outer-boundary", part)
			s, end := sendFile(w, msg)
			Expect(end).To(f.HaveClass(4), s.Explain("4yz: the client keeps the message and tries again later"))
			if f.OnReference() {
				// What the clause asks is that nothing is taken unscanned; the reference
				// also says which scanner failed.
				Expect(end).To(f.HaveReply(451, "4.3.0"), s.Explain("451 4.3.0: the client keeps the message and tries again later"))
				Expect(end.Text).To(ContainSubstring("clamd"), s.Explain("the reply names the scanner that failed"))
			}
			notDelivered(w, s, "alice@contoso.test", id)
			if w.Traced() {
				Eventually(func() []trace.Event { return agentEvents(w, trace.Fail, agentMalware) }).Should(ContainElement(HaveField("Detail", ContainSubstring("could not scan the message: clamd at"))),
					s.Explain("the trace says why, naming clamd and its address"))
			}
		}
	})

	DescribeTable("sends no bounce to the envelope sender for malware found after acceptance", f.Clause("FILTER-010"),
		func(action string) {
			w := startAV(action)
			id, msg := mimeMessage("outer-boundary", eicarFile)
			s, end := sendFile(w, msg)
			Expect(end).To(f.HaveClass(2), s.Explain("the message is accepted before the malware is acted on"))
			if action == scenario.AntivirusStrip {
				Expect(intact(delivered(w, s, "alice@contoso.test", id))).To(BeFalse(), s.Explain("delivered without EICAR"))
			} else {
				notDelivered(w, s, "alice@contoso.test", id)
			}
			noBounce(w, s)
		},
		Entry("deleted", scenario.AntivirusDelete),
		Entry("attachment replaced", scenario.AntivirusStrip),
	)

	It("notifies the envelope sender when configured to, from the null sender", f.Clause("FILTER-010"), func() {
		f.Require(profiles.FeatureAntivirus)
		f.Require(profiles.FeatureAntivirusNotify)
		s, err := scenarios.Load("edge-filter.yaml")
		Expect(err).NotTo(HaveOccurred())
		edge, ok := s.Server("EDGE1")
		Expect(ok).To(BeTrue())
		edge.Agents.Antivirus = scenario.Antivirus{Enabled: true, Action: scenario.AntivirusDelete, NotifySender: true}
		// The sender's domain, reachable through an Internet send connector.
		s.Org.SendConnectors = append(s.Org.SendConnectors, scenario.SendConnector{Name: "Internet", AddressSpaces: []string{"*"}, Source: []string{"EDGE1"}})
		s.Internet.DNS = append(s.Internet.DNS, "fabrikam.test. MX 10 mx1.fabrikam.test.", "mx1.fabrikam.test. A 127.1.0.10")
		s.Internet.Hosts = append(s.Internet.Hosts, scenario.Host{Name: "mx1.fabrikam.test", Behaviour: scenario.Behaviour{Action: scenario.DefaultAction, Stage: scenario.DefaultStage}})
		w := f.StartScenario(s)
		id, msg := mimeMessage("outer-boundary", eicarFile)
		sess, end := sendFile(w, msg)
		Expect(end).To(f.HaveClass(2), sess.Explain("the message is accepted, then deleted"))
		notDelivered(w, sess, "alice@contoso.test", id)
		var notice []byte
		Eventually(func() []byte {
			for _, m := range w.Received("mx1.fabrikam.test") {
				if slices.Contains(m.RcptTo, "bob@fabrikam.test") {
					Expect(m.MailFrom).To(BeEmpty(), sess.Explain("the notice comes from the null sender"))
					notice = m.Data
				}
			}
			return notice
		}).ShouldNot(BeNil(), sess.Explain("the configured notice reaches the sender's domain"))
		Expect(string(notice)).To(ContainSubstring("malware"), sess.Explain("it says malware was found"))
		Expect(string(notice)).To(ContainSubstring("eicar.com.UNOFFICIAL"), sess.Explain("and names the signature"))
		Expect(intact(notice)).To(BeFalse(), sess.Explain("it does not carry the malware back"))
	})
})
