package filtersuite

import (
	"fmt"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/mailflow/mailflow/reference/dsn"
	"github.com/mailflow/mailflow/scenario"
	"github.com/mailflow/mailflow/scenarios"
	f "github.com/mailflow/mailflow/suites/framework"
	"github.com/mailflow/mailflow/trace"
)

const (
	agentEdgeRules = "Edge Rules Agent"
	agentHubRules  = "Transport Rule Agent"
)

func startRules() *f.World { return f.StartShipped("transport-rules.yaml") }

// ruled sends one message from sender to rcpts through an Edge's connector with
// subject and extra header fields, and returns the session, the end-of-data reply
// and the message's Message-ID.
func ruled(w *f.World, edge, connector, sender, subject, extra string, rcpts ...string) (*f.Session, f.Reply, string) {
	GinkgoHelper()
	addr, err := w.Endpoint(edge, connector)
	Expect(err).NotTo(HaveOccurred())
	s, greeting := f.DialFrom(w.ClientIn(listedNet), addr)
	Expect(greeting).To(f.HaveClass(2), s.Explain("a greeting"))
	Expect(s.Cmd("EHLO mail.fabrikam.test")).To(f.HaveClass(2), s.Explain("EHLO accepted"))
	Expect(s.Cmd("MAIL FROM:<%s>", sender)).To(f.HaveClass(2), s.Explain("MAIL accepted"))
	for _, r := range rcpts {
		Expect(s.Cmd("RCPT TO:<%s>", r)).To(f.HaveClass(2), s.Explain("RCPT %s accepted", r))
	}
	id := fmt.Sprintf("rules-%d-%d@fabrikam.test", GinkgoParallelProcess(), seq.Add(1))
	msg := fmt.Sprintf("From: %s\r\nTo: %s\r\nSubject: %s\r\nMessage-ID: <%s>\r\n%s\r\nA message for the rules.\r\n",
		sender, strings.Join(rcpts, ", "), subject, id, extra)
	_, end := s.Data(msg)
	return s, end, id
}

// ndrs are the failure notices in addr's mailbox about the message <id>, with each
// failed recipient's Status.
func ndrs(w *f.World, addr, id string) []string {
	var out []string
	for _, m := range w.Mailbox(addr) {
		p, err := dsn.Parse(m)
		if err != nil || !strings.Contains(string(m), id) {
			continue
		}
		for _, r := range p.Recipients {
			if strings.EqualFold(dsn.Field(r, "Action"), "failed") {
				out = append(out, dsn.Field(r, "Status"))
			}
		}
	}
	return out
}

// header is the delivered value of a field of the message <id> in addr's mailbox.
func deliveredField(w *f.World, s *f.Session, addr, id, field string) string {
	GinkgoHelper()
	for _, l := range strings.Split(string(f.Header(delivered(w, s, addr, id))), "\r\n") {
		if name, v, ok := strings.Cut(l, ":"); ok && strings.EqualFold(name, field) {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

var _ = Describe("Transport rules", Label("filter"), func() {
	Context("on a Hub, organisation-wide", func() {
		DescribeTable("reject with an NDR to the sender and nothing to the recipient", f.Clause("FILTER-011"),
			func(subject, status string) {
				w := startRules()
				s, end, id := ruled(w, "EDGE1", "Internet", "dave@contoso.test", subject, "", "alice@contoso.test")
				Expect(end).To(f.HaveClass(2), s.Explain("the Edge takes the message; the Hub's rule refuses it"))
				Eventually(func() []string { return ndrs(w, "dave@contoso.test", id) }).Should(Equal([]string{status}),
					s.Explain("the sender gets an NDR with Status %s", status))
				notDelivered(w, s, "alice@contoso.test", id)
				if w.Traced() {
					Eventually(func() []trace.Event { return agentEvents(w, trace.Fail, agentHubRules) }).Should(HaveLen(1), s.Explain("a FAIL event naming the %s", agentHubRules))
				}
			},
			Entry("5.7.1 by default", "org-reject", "5.7.1"),
			Entry("the rule's 5.7.901", "org-custom", "5.7.901"),
		)

		It("prepends to the subject", f.Clause("FILTER-011"), func() {
			w := startRules()
			s, end, id := ruled(w, "EDGE1", "Internet", "bob@fabrikam.test", "org-prepend news", "", "alice@contoso.test")
			Expect(end).To(f.HaveClass(2), s.Explain("accepted"))
			Expect(deliveredField(w, s, "alice@contoso.test", id, "Subject")).To(Equal("[External] org-prepend news"), s.Explain("the delivered Subject begins with the text"))
		})

		It("sets a header", f.Clause("FILTER-011"), func() {
			w := startRules()
			s, end, id := ruled(w, "EDGE1", "Internet", "bob@fabrikam.test", "plans", "X-Project: Apollo 11\r\n", "alice@contoso.test")
			Expect(end).To(f.HaveClass(2), s.Explain("accepted"))
			Expect(deliveredField(w, s, "alice@contoso.test", id, "X-Classification")).To(Equal("Confidential"), s.Explain("the header is there with the value"))
		})

		It("redirects: only the target receives the message, and nobody a notice", f.Clause("FILTER-011"), func() {
			w := startRules()
			s, end, id := ruled(w, "EDGE1", "Internet", "dave@contoso.test", "contract", "", "legal@contoso.test")
			Expect(end).To(f.HaveClass(2), s.Explain("accepted"))
			delivered(w, s, "carol@contoso.test", id)
			notDelivered(w, s, "legal@contoso.test", id)
			Expect(w.Mailbox("dave@contoso.test")).To(BeEmpty(), s.Explain("the sender is told nothing"))
		})

		It("blind-copies: the extra recipient gets a copy that the original's headers do not name", f.Clause("FILTER-011"), func() {
			w := startRules()
			s, end, id := ruled(w, "EDGE2", "Internet2", "ceo@fabrikam.test", "quarterly", "", "alice@contoso.test")
			Expect(end).To(f.HaveClass(2), s.Explain("accepted"))
			delivered(w, s, "audit@contoso.test", id)
			Expect(string(f.Header(delivered(w, s, "alice@contoso.test", id)))).NotTo(ContainSubstring("audit@contoso.test"),
				s.Explain("alice's copy names no audit@contoso.test"))
		})

		It("deletes: no delivery, no DSN, a DROP event", f.Clause("FILTER-011"), func() {
			w := startRules()
			s, end, id := ruled(w, "EDGE1", "Internet", "dave@contoso.test", "org-delete", "", "alice@contoso.test")
			Expect(end).To(f.HaveClass(2), s.Explain("accepted"))
			if w.Traced() {
				Eventually(func() []trace.Event { return agentEvents(w, trace.Drop, agentHubRules) }).Should(HaveLen(1), s.Explain("a DROP event naming the %s", agentHubRules))
			}
			notDelivered(w, s, "alice@contoso.test", id)
			Expect(w.Mailbox("dave@contoso.test")).To(BeEmpty(), s.Explain("no DSN to the sender"))
		})

		It("applies them once, however many Hubs the message crosses", f.Clause("FILTER-011"), func() {
			sc, err := scenarios.Load("three-sites-hub.yaml")
			Expect(err).NotTo(HaveOccurred())
			sc.Org.TransportRules = []scenario.TransportRule{{Name: "Tag everything", Then: scenario.RuleActions{PrependSubject: "[Org] "}}}
			w := f.StartScenario(sc)
			// bob's mailbox is in Berlin: EDGE1 -> HUB-LON -> HUB-PAR -> HUB-BER.
			s, end, id := ruled(w, "EDGE1", "Internet", "carol@fabrikam.test", "travels", "", "bob@contoso.test")
			Expect(end).To(f.HaveClass(2), s.Explain("accepted"))
			Expect(deliveredField(w, s, "bob@contoso.test", id, "Subject")).To(Equal("[Org] travels"), s.Explain("three Hubs, one prefix"))
		})

		It("applies rules in priority order, not list order", f.Clause("FILTER-012"), func() {
			w := startRules()
			s, end, id := ruled(w, "EDGE1", "Internet", "dave@contoso.test", "org-conflict", "", "alice@contoso.test")
			Expect(end).To(f.HaveClass(2), s.Explain("accepted"))
			// "Conflict, first" (priority 20, deletes) is listed after "Conflict, second"
			// (priority 21, rejects): the delete wins, so no NDR.
			if w.Traced() {
				Eventually(func() []trace.Event { return agentEvents(w, trace.Drop, agentHubRules) }).Should(
					ContainElement(HaveField("Detail", ContainSubstring(`"Conflict, first"`))), s.Explain("the priority-20 rule acted"))
			}
			notDelivered(w, s, "alice@contoso.test", id)
			Expect(ndrs(w, "dave@contoso.test", id)).To(BeEmpty(), s.Explain("the priority-21 reject never acted"))
		})
	})

	Context("on an Edge, locally", func() {
		It("refuses with the rule's code and text and ends the session", f.Clause("FILTER-012"), func() {
			w := startRules()
			s, end, id := ruled(w, "EDGE1", "Internet", "bob@fabrikam.test", "edge-reject", "", "alice@contoso.test")
			Expect(end).To(f.HaveReply(554, "5.7.950"), s.Explain("the rule's status"))
			Expect(end.String()).To(ContainSubstring("Refused by a rule of EDGE1"), s.Explain("and its text"))
			closed, _ := s.AwaitClose(5 * time.Second)
			Expect(closed).To(BeTrue(), s.Explain("the Edge ends the session"))
			notDelivered(w, s, "alice@contoso.test", id)
			if w.Traced() {
				Eventually(func() []trace.Event { return agentEvents(w, trace.Fail, agentEdgeRules) }).Should(HaveLen(1), s.Explain("a FAIL event naming the %s", agentEdgeRules))
			}
		})

		It("is local to its Edge: the same message through EDGE2 is delivered untouched", f.Clause("FILTER-012"), func() {
			w := startRules()
			s, end, id := ruled(w, "EDGE2", "Internet2", "bob@fabrikam.test", "edge-reject edge-tag", "", "alice@contoso.test")
			Expect(end).To(f.HaveClass(2), s.Explain("EDGE2 has no rule"))
			Expect(deliveredField(w, s, "alice@contoso.test", id, "Subject")).To(Equal("edge-reject edge-tag"), s.Explain("nothing of EDGE1's rules"))
		})

		It("changes the message at end-of-data", f.Clause("FILTER-012"), func() {
			w := startRules()
			s, end, id := ruled(w, "EDGE1", "Internet", "bob@fabrikam.test", "edge-tag", "", "alice@contoso.test")
			Expect(end).To(f.HaveClass(2), s.Explain("accepted"))
			Expect(deliveredField(w, s, "alice@contoso.test", id, "Subject")).To(Equal("[EDGE1] edge-tag"), s.Explain("EDGE1's rule tagged it"))
		})

		It("applies rules in priority order, not list order", f.Clause("FILTER-012"), func() {
			w := startRules()
			s, end, _ := ruled(w, "EDGE1", "Internet", "bob@fabrikam.test", "edge-both", "", "alice@contoso.test")
			Expect(end).To(f.HaveReply(554, "5.7.950"), s.Explain("the priority-0 reject acts before the priority-1 delete listed above it"))
		})
	})
})
