package filtersuite

import (
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/mailflow/mailflow/scenario"
	f "github.com/mailflow/mailflow/suites/framework"
	"github.com/mailflow/mailflow/trace"
)

// withEdgeRule gives EDGE1 of edge-filter.yaml a rule that refuses any message
// whose subject says "ruled" with 554 5.7.950: an end-of-data agent after the
// attachment filter.
func withEdgeRule(edge *scenario.Server) {
	edge.Agents.TransportRules = []scenario.TransportRule{{
		Name: "Ruled", When: scenario.RuleConditions{SubjectOrBodyContains: []string{"ruled"}},
		Then: scenario.RuleActions{Reject: &scenario.RuleReject{Status: "554 5.7.950", Text: "Refused by a rule"}},
	}}
}

// refusedBy are the agents named by the trace's refusals (FAIL events of Source
// AGENT).
func refusedBy(w *f.World) []string {
	var out []string
	for _, e := range w.Events(trace.Fail) {
		if e.Source == trace.SourceAgent {
			out = append(out, e.Agent)
		}
	}
	return out
}

// acted says whether any trace event names agent.
func acted(w *f.World, agent string) bool {
	for _, e := range w.Trace().Events() {
		if e.Source == trace.SourceAgent && e.Agent == agent {
			return true
		}
	}
	return false
}

var _ = Describe("Agent order", Label("filter"), func() {
	It("gives a message the attachment filter and an Edge rule would refuse the attachment filter's outcome", f.Clause("FILTER-018"), func() {
		w := startWith(withEdgeRule)
		_, msg := mimeMessage("outer-boundary", filePart("invoice.exe", "application/octet-stream", "base64", program))
		s, end := sendFile(w, "Subject: ruled\r\n"+msg)
		Expect(end).To(f.HaveReply(550, "5.7.1"), s.Explain("the attachment filter, first at end-of-data, refuses with its 550 5.7.1, not the rule's 554 5.7.950"))
		if w.Traced() {
			Eventually(func() []string { return refusedBy(w) }).Should(Equal([]string{agentAttachment}), s.Explain("the trace names the attachment filter as the agent that refused"))
			Expect(acted(w, agentEdgeRules)).To(BeFalse(), s.Explain("and nothing of the Edge Rules agent, which never ran"))
		}
	})

	It("lets the Edge rule act on the same message without the attachment", f.Clause("FILTER-018"), func() {
		w := startWith(withEdgeRule)
		_, msg := mimeMessage("outer-boundary", filePart("invoice.pdf", "application/pdf", "base64", program))
		s, end := sendFile(w, "Subject: ruled\r\n"+msg)
		Expect(end).To(f.HaveReply(554, "5.7.950"), s.Explain("the rule refuses what the attachment filter lets through"))
		if w.Traced() {
			Eventually(func() []string { return refusedBy(w) }).Should(Equal([]string{agentEdgeRules}), s.Explain("the trace names the Edge Rules agent as the agent that refused"))
		}
	})

	It("refuses a blocked sender at MAIL, before any end-of-data agent sees the message", f.Clause("FILTER-018"), func() {
		w := start()
		s := from(w, w.ClientIn(listedNet), "Internet")
		Expect(s.Cmd("MAIL FROM:<spammer@fabrikam.test>")).To(f.HaveReply(554, "5.1.0"), s.Explain("the sender filter acts at MAIL, before any end-of-data agent could"))
		if w.Traced() {
			Eventually(func() []string { return refusedBy(w) }).Should(Equal([]string{agentSender}), s.Explain("the trace names the sender filter as the agent that refused"))
		}
	})
})
