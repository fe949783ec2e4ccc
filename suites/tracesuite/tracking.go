package tracesuite

import (
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	f "github.com/mailflow/mailflow/suites/framework"
	"github.com/mailflow/mailflow/trace"
)

// lifecycle is what tracking says happened to the message with Message-ID id: each
// event as "SERVER TYPE", and the events themselves.
func lifecycle(w *f.World, id string) ([]string, []trace.Event) {
	var names []string
	var evs []trace.Event
	for _, e := range w.Trace().Events() {
		if e.HeaderID == id {
			names = append(names, e.Server+" "+string(e.Type))
			evs = append(evs, e)
		}
	}
	return names, evs
}

var _ = Describe("Message tracking", Label("trace"), func() {
	It("records each hop's lifecycle under one message-id", f.Clause("TRACE-008"), func() {
		w := f.StartShipped("tracking.yaml")
		if !w.Traced() {
			Skip("N/A: the target keeps no message-tracking log")
		}
		const id = "lifecycle@fabrikam.test"
		s := w.SendInternet(id, "a.smith@contoso.test", "team@contoso.test", "fwd@contoso.test", "broken@contoso.test")
		want := []string{
			"EDGE1 RECEIVE", "EDGE1 SEND", // in from the Internet, on to the Hub
			"HUB-LON RECEIVE", "HUB-LON CATEGORIZE", "HUB-LON TRANSFER", // categorized into a forked message
			"HUB-LON EXPAND", "HUB-LON RESOLVE", "HUB-LON REDIRECT", // team, a.smith -> alice, fwd -> carol
			"HUB-LON FAIL", "HUB-LON DSN", // broken, an invalid object
			"HUB-LON SEND", "HUB-PAR RECEIVE", "HUB-PAR SEND", // bob, across to paris
			"MBX-LON DELIVER", "MBX-PAR DELIVER", // alice and carol in london, bob in paris
		}
		Eventually(func() []string { n, _ := lifecycle(w, id); return n }).Should(ContainElements(want), s.Explain("every step of the lifecycle is tracked under Message-ID <%s>", id))
		_, evs := lifecycle(w, id)
		by := map[trace.Type][]trace.Event{}
		for _, e := range evs {
			by[e.Type] = append(by[e.Type], e)
		}
		Expect(by[trace.Receive][0].Source).To(Equal("SMTP"), s.Explain("RECEIVE names its source, SMTP"))
		Expect(by[trace.Deliver]).To(HaveEach(HaveField("Source", "STOREDRIVER")), s.Explain("DELIVER comes from the store driver"))
		Expect(by[trace.Expand]).To(ContainElement(HaveField("Detail", ContainSubstring("team@contoso.test"))), s.Explain("EXPAND names the group"))
		Expect(by[trace.Resolve]).To(ContainElement(HaveField("Recipients", ConsistOf("alice@contoso.test"))), s.Explain("RESOLVE rewrote a.smith to alice"))
		Expect(by[trace.Redirect]).To(ContainElement(HaveField("Recipients", ConsistOf("carol@contoso.test"))), s.Explain("REDIRECT sent fwd's mail to carol"))
		Expect(by[trace.Fail]).To(ContainElement(HaveField("Recipients", ContainElement("broken@contoso.test"))), s.Explain("FAIL names the invalid object"))
		var delivered []string
		for _, e := range by[trace.Deliver] {
			delivered = append(delivered, e.Recipients...)
		}
		Expect(delivered).To(ConsistOf("alice@contoso.test", "bob@contoso.test", "carol@contoso.test"), s.Explain("one DELIVER per mailbox"))
	})

	It("records a DEFER for each delay", f.Clause("TRACE-008"), func() {
		w := f.StartShipped("tracking.yaml")
		if !w.Traced() {
			Skip("N/A: the target keeps no message-tracking log")
		}
		w.StopServer("MBX-PAR")
		const id = "delayed@fabrikam.test"
		s := w.SendInternet(id, "bob@contoso.test")
		Eventually(func() []string { n, _ := lifecycle(w, id); return n }).Should(ContainElement("HUB-PAR DEFER"), s.Explain("the Hub in paris defers while MBX-PAR is down"))
		_, evs := lifecycle(w, id)
		for _, e := range evs {
			if e.Type == trace.Defer {
				Expect(e.Reply).To(MatchRegexp(`^4`), s.Explain("DEFER carries the temporary failure"))
			}
		}
	})
})
