package routingsuite

import (
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/mailflow/mailflow/scenario"
	"github.com/mailflow/mailflow/scenarios"
	f "github.com/mailflow/mailflow/suites/framework"
	"github.com/mailflow/mailflow/trace"
)

// linkState is the detail of every LINKSTATE event, "SERVER: detail", in order.
func linkState(w *f.World) []string {
	var out []string
	for _, e := range trace.OfType(w.Trace().Events(), trace.LinkState, "") {
		out = append(out, e.Server+": "+e.Detail)
	}
	return out
}

// failWait bounds the wait for a bridgehead's first failed attempt on a server just
// taken down. A stopped server container's address does not refuse a connection, it
// stops answering, and a bridgehead whose peer was lately reachable then waits out its
// connect timeout (30 s) before the attempt fails; in-process the port refuses at once.
const failWait = 45 * time.Second

// londonHubs took the message from the Edge, which hands it to a Hub of its own
// routing group.
var londonHubs = []string{"HUB-LON1", "HUB-LON2"}

// The routing groups of scenarios/routing-groups.yaml: London (HUB-LON1, the master,
// bridgehead towards Madrid and Oslo; HUB-LON2, towards Paris), Paris, Berlin, Madrid
// and Oslo. London - Paris - Berlin costs 20, London - Madrid - Berlin 40.
var _ = Describe("Routing groups", Label("routing"), func() {
	It("delivers inside a routing group straight to the home server, from whichever of its Hubs took the message", f.Clause("ROUTE-018"), func() {
		w := f.StartShipped("routing-groups.yaml")
		s, id := send(w, "alice@contoso.test", "amy@contoso.test")
		delivered(w, s, "alice@contoso.test", 1)
		delivered(w, s, "amy@contoso.test", 1)
		for _, mbx := range []string{"MBX-LON1", "MBX-LON2"} {
			Eventually(func() []trace.Event { return trace.OfType(w.Trace().Events(), trace.Deliver, mbx) }).ShouldNot(BeEmpty(), s.Explain("%s stored its recipient's copy", mbx))
		}
		Eventually(func() []string { return sessions(w, id) }).Should(HaveLen(2), s.Explain("the Edge and one London Hub, nothing after"))
		got := sessions(w, id)
		Expect(londonHubs).To(ContainElement(got[1]), s.Explain("a London Hub took the message"))
		Eventually(func() string { return routeDetail(w, got[1], id) }).Should(ContainSubstring("local delivery"), s.Explain("ROUTE says the mailbox is in the Hub's own routing group"))
		Consistently(func() []string { return sessions(w, id) }, "200ms").Should(HaveLen(2), s.Explain("no other server saw a session"))
	})

	It("follows the least-cost path over routing group connectors, through their bridgeheads", f.Clause("ROUTE-019"), func() {
		w := f.StartShipped("routing-groups.yaml")
		s, id := send(w, "bob@contoso.test")
		delivered(w, s, "bob@contoso.test", 1)
		Eventually(func() []string { return sessions(w, id) }).Should(ContainElement("HUB-BER"), s.Explain("Berlin's Hub took the message"))
		got := sessions(w, id)
		Expect(len(got)).To(BeNumerically(">=", 4), s.Explain("sessions %v", got))
		Expect(got[len(got)-3:]).To(Equal([]string{"HUB-LON2", "HUB-PAR", "HUB-BER"}),
			s.Explain("out of London through HUB-LON2, RGC London-Paris's bridgehead; into Paris at HUB-PAR and Berlin at HUB-BER, the remote bridgeheads"))
		Expect(got).NotTo(ContainElement("HUB-MAD"), s.Explain("Madrid, on the dearer path, sees no session"))
		Expect(got).NotTo(ContainElement("HUB-OSL"), s.Explain("Oslo, off the path, sees no session"))
		Eventually(func() string { return routeDetail(w, "HUB-LON2", id) }).Should(ContainSubstring("london -(RGC London-Paris, 10)-> paris -(RGC Paris-Berlin, 10)-> berlin; cost 20"), s.Explain("ROUTE names the connectors and the cost"))
		Eventually(func() string { return routeDetail(w, "HUB-LON2", id) }).Should(ContainSubstring("over RGC London-Paris to its remote bridgeheads HUB-PAR"), s.Explain("the local bridgehead sends to the remote one"))

		s, id = send(w, "carol@contoso.test")
		delivered(w, s, "carol@contoso.test", 1)
		Eventually(func() []string { return sessions(w, id) }).Should(ContainElement("HUB-MAD"), s.Explain("Madrid's Hub took the message"))
		got = sessions(w, id)
		Expect(got[len(got)-2:]).To(Equal([]string{"HUB-LON1", "HUB-MAD"}), s.Explain("to Madrid through HUB-LON1, RGC London-Madrid's bridgehead"))
		Expect(got).NotTo(ContainElement("HUB-PAR"), s.Explain("Paris sees nothing of mail for Madrid"))
	})

	It("marks a connector down when its bridgeheads fail, tells every server, routes around it and uses it again once it is up", f.Clause("ROUTE-020"), func() {
		w := f.StartShipped("routing-groups.yaml")
		w.RequireLinkState()
		w.Down("HUB-PAR")
		s, id := send(w, "bob@contoso.test")
		Eventually(func() []string { return linkState(w) }).WithTimeout(failWait).Should(ContainElements(
			"HUB-LON2: RGC London-Paris down: every remote bridgehead (HUB-PAR) failed; reported to master HUB-LON1",
			"HUB-LON1: RGC London-Paris down v1 from HUB-LON2",
			"HUB-BER: RGC London-Paris down v1 from master HUB-LON1",
			"HUB-MAD: RGC London-Paris down v1 from master HUB-LON1",
			"HUB-OSL: RGC London-Paris down v1 from master HUB-LON1",
		), s.Explain("the bridgehead marks the connector down; the London master passes it to the other masters"))
		Expect(linkState(w)).NotTo(ContainElement(HavePrefix("HUB-PAR:")), s.Explain("Paris's Hub is down and hears nothing"))
		Eventually(func() int { return w.Queue("HUB-LON2") }).Should(Equal(1), s.Explain("the message waits at the bridgehead"))
		// Its retry is set once the attempt is over, a moment after the connector's state
		// went out: the clock is stepped past a retry that is set.
		Eventually(func() []trace.Event { return trace.OfType(w.Trace().Events(), trace.Defer, "HUB-LON2") }).ShouldNot(BeEmpty(), s.Explain("the attempt deferred"))

		// The queued message is routed afresh at its retry, around the connector.
		w.Advance(w.Timers("HUB-LON2").Retry)
		delivered(w, s, "bob@contoso.test", 1)
		Eventually(func() []string { return sessions(w, id) }).Should(ContainElement("HUB-MAD"), s.Explain("re-routed over Madrid"))
		Eventually(func() string { return routeDetail(w, "HUB-LON2", id) }).Should(ContainSubstring("london -(RGC London-Madrid, 10)-> madrid -(RGC Madrid-Berlin, 30)-> berlin; cost 40"),
			s.Explain("the queued message's new route"))
		Eventually(func() string { return routeDetail(w, "HUB-LON2", id) }).Should(ContainSubstring("RGC London-Paris down v1"), s.Explain("ROUTE quotes the link-state table"))

		// A new message takes Madrid from the start, even once Paris's Hub is back:
		// the connector is up again only after the minor-change delay.
		w.Up("HUB-PAR")
		s, id = send(w, "bob@contoso.test")
		delivered(w, s, "bob@contoso.test", 2)
		Eventually(func() []string { return sessions(w, id) }).Should(ContainElement("HUB-MAD"), s.Explain("a new message avoids the connector still marked down"))
		Expect(sessions(w, id)).NotTo(ContainElement("HUB-PAR"), s.Explain("not over the connector marked down"))

		w.Advance(scenario.MinorChangeDelay)
		Eventually(func() []string { return linkState(w) }).Should(ContainElements(
			"HUB-LON2: RGC London-Paris up: a remote bridgehead answered after the minor-change delay; reported to master HUB-LON1",
			"HUB-PAR: RGC London-Paris up v2 from master HUB-LON1",
			"HUB-MAD: RGC London-Paris up v2 from master HUB-LON1",
		), s.Explain("the connector is up again everywhere"))
		s, id = send(w, "bob@contoso.test")
		delivered(w, s, "bob@contoso.test", 3)
		Eventually(func() []string { return sessions(w, id) }).Should(ContainElement("HUB-BER"))
		got := sessions(w, id)
		Expect(got[len(got)-3:]).To(Equal([]string{"HUB-LON2", "HUB-PAR", "HUB-BER"}), s.Explain("the least-cost path again"))
	})

	It("marks a connector down when its link is cut though every server is up, and up again once the link is mended", f.Clause("ROUTE-020"), func() {
		w := f.StartShipped("routing-groups.yaml")
		w.RequireLinkState()
		w.LinkDown("RGC London-Paris")
		s, id := send(w, "bob@contoso.test")
		Eventually(func() []string { return linkState(w) }).WithTimeout(failWait).Should(ContainElements(
			"HUB-LON2: RGC London-Paris down: every remote bridgehead (HUB-PAR) failed; reported to master HUB-LON1",
			"HUB-PAR: RGC London-Paris down v1 from master HUB-LON1",
		), s.Explain("the bridgehead cannot reach Paris, which is up and hears the connector go down"))
		Eventually(func() []trace.Event { return trace.OfType(w.Trace().Events(), trace.Defer, "HUB-LON2") }).ShouldNot(BeEmpty(), s.Explain("the attempt deferred"))
		w.Advance(w.Timers("HUB-LON2").Retry)
		delivered(w, s, "bob@contoso.test", 1)
		Eventually(func() []string { return sessions(w, id) }).Should(ContainElement("HUB-MAD"), s.Explain("re-routed over Madrid"))
		Expect(sessions(w, id)).NotTo(ContainElement("HUB-PAR"), s.Explain("nothing crossed the cut link"))

		// Mended, the connector is tried again after the minor-change delay and used.
		w.LinkUp("RGC London-Paris")
		w.Advance(scenario.MinorChangeDelay)
		Eventually(func() []string { return linkState(w) }).Should(ContainElement(
			"HUB-LON2: RGC London-Paris up: a remote bridgehead answered after the minor-change delay; reported to master HUB-LON1"),
			s.Explain("the connector is up again"))
		s, id = send(w, "bob@contoso.test")
		delivered(w, s, "bob@contoso.test", 2)
		Eventually(func() []string { return sessions(w, id) }).Should(ContainElement("HUB-BER"))
		got := sessions(w, id)
		Expect(got[len(got)-3:]).To(Equal([]string{"HUB-LON2", "HUB-PAR", "HUB-BER"}), s.Explain("the least-cost path again"))
	})

	It("never marks down the only connector to a routing group: mail waits at the bridgehead", f.Clause("ROUTE-021"), func() {
		w := f.StartShipped("routing-groups.yaml")
		w.RequireLinkState()
		w.Down("HUB-OSL")
		s, id := send(w, "olga@contoso.test")
		Eventually(func() []string { return linkState(w) }).WithTimeout(failWait).Should(ContainElement(
			"HUB-LON1: RGC London-Oslo failed on every remote bridgehead (HUB-OSL); only path to routing group oslo: not marked down, mail waits and is retried"),
			s.Explain("the bridgehead keeps the connector up"))
		Eventually(func() int { return w.Queue("HUB-LON1") }).Should(Equal(1), s.Explain("the message waits at the bridgehead"))
		retry := w.Timers("HUB-LON1").Retry
		w.Advance(retry)
		Eventually(func() []trace.Event { return trace.OfType(w.Trace().Events(), trace.Defer, "HUB-LON1") }).Should(HaveLen(2), s.Explain("retried over the same connector"))
		Expect(linkState(w)).NotTo(ContainElement(ContainSubstring("RGC London-Oslo down")), s.Explain("never marked down"))
		Expect(w.Events(trace.DSN)).To(BeEmpty(), s.Explain("no NDR"))
		w.Up("HUB-OSL")
		w.Advance(retry)
		delivered(w, s, "olga@contoso.test", 1)
		Eventually(func() []string { return sessions(w, id) }).Should(ContainElements("HUB-LON1", "HUB-OSL"))
	})

	It("with state changes suppressed, never marks a connector down and keeps the least-cost path", f.Clause("ROUTE-021"), func() {
		b, err := scenarios.Read("routing-groups.yaml")
		Expect(err).NotTo(HaveOccurred())
		text := strings.Replace(string(b), "{name: HUB-LON2, role: hub}", "{name: HUB-LON2, role: hub, suppress_state_changes: true}", 1)
		Expect(text).NotTo(Equal(string(b)))
		w := f.Start("routing-groups-suppressed.yaml", text)
		w.RequireLinkState()
		w.Down("HUB-PAR")
		s, id := send(w, "bob@contoso.test")
		Eventually(func() []string { return linkState(w) }).WithTimeout(failWait).Should(ContainElement(
			"HUB-LON2: RGC London-Paris failed on every remote bridgehead (HUB-PAR); state changes suppressed: not marked down, mail waits and is retried"),
			s.Explain("SuppressStateChanges keeps the connector up"))
		retry := w.Timers("HUB-LON2").Retry
		w.Advance(retry)
		Eventually(func() []trace.Event { return trace.OfType(w.Trace().Events(), trace.Defer, "HUB-LON2") }).Should(HaveLen(2), s.Explain("retried over the same connector"))
		Expect(routeDetail(w, "HUB-LON2", id)).NotTo(ContainSubstring("london -(RGC London-Madrid"), s.Explain("never routed around it"))
		Expect(linkState(w)).NotTo(ContainElement(ContainSubstring("RGC London-Paris down")), s.Explain("never marked down"))
		w.Up("HUB-PAR")
		w.Advance(retry)
		delivered(w, s, "bob@contoso.test", 1)
		Eventually(func() []string { return sessions(w, id) }).Should(ContainElement("HUB-BER"))
		Expect(sessions(w, id)).NotTo(ContainElement("HUB-MAD"), s.Explain("delivered over the least-cost path, never Madrid"))
		Eventually(func() []string { return sessions(w, id) }).Should(ContainElement("HUB-PAR"))
	})
})

// scenarios/coexistence.yaml: the Exchange 2007 site hq (HUB-HQ) and the legacy
// routing groups rg-a (HUB-A) and rg-b (HUB-B, HUB-B2), joined by RGC A-B and by
// interop connectors between HUB-A or HUB-B and HUB-HQ.
var _ = Describe("Routing groups beside AD sites", Label("routing"), func() {
	It("crosses an interop connector between a legacy bridgehead and an Exchange 2007 Hub, and the 2007 Hub ignores link state", f.Clause("ROUTE-022"), func() {
		w := f.StartShipped("coexistence.yaml")
		// The outage half needs the legacy side's link state.
		w.RequireLinkState()
		s, id := send(w, "bob@contoso.test")
		delivered(w, s, "bob@contoso.test", 1)
		Eventually(func() []string { return sessions(w, id) }).Should(Equal([]string{"EDGE1", "HUB-HQ", "HUB-A", "HUB-B2"}),
			s.Explain("from the 2007 Hub over Interop HQ-A to the legacy bridgehead HUB-A, then RGC A-B"))
		Eventually(func() string { return routeDetail(w, "HUB-HQ", id) }).Should(ContainSubstring("hq -(Interop HQ-A, 5)-> rg-a -(RGC A-B, 10)-> rg-b; cost 15"), s.Explain("the 2007 Hub's least-cost path over the interop connector"))

		// RGC A-B's remote bridgehead goes down: the legacy side marks it down and routes
		// around it, back to hq; the 2007 Hub keeps its path through rg-a.
		w.Down("HUB-B2")
		s, id = send(w, "bob@contoso.test")
		Eventually(func() []string { return linkState(w) }).WithTimeout(failWait).Should(ContainElements(
			"HUB-A: RGC A-B down v1: every remote bridgehead (HUB-B2) failed (as master)",
			"HUB-B: RGC A-B down v1 from master HUB-A",
		), s.Explain("the legacy master marks the connector down and passes it to the other legacy master"))
		Eventually(func() []trace.Event { return trace.OfType(w.Trace().Events(), trace.Defer, "HUB-A") }).ShouldNot(BeEmpty(), s.Explain("the attempt deferred, its retry set"))
		w.Advance(w.Timers("HUB-A").Retry)
		Eventually(func() string { return routeDetail(w, "HUB-A", id) }).Should(ContainSubstring("rg-a -(Interop A-HQ, 5)-> hq -(Interop HQ-B, 50)-> rg-b"),
			s.Explain("HUB-A routes around the connector it holds down, back to the 2007 side"))
		Eventually(func() int { return strings.Count(routeDetail(w, "HUB-HQ", id), "\n") + 1 }).Should(BeNumerically(">=", 2),
			s.Explain("the message comes back to HUB-HQ"))
		for _, d := range strings.Split(routeDetail(w, "HUB-HQ", id), "\n") {
			Expect(d).To(ContainSubstring("hq -(Interop HQ-A, 5)-> rg-a -(RGC A-B, 10)-> rg-b"), s.Explain("the 2007 Hub keeps the path it had: it does not act on link state"))
			Expect(d).To(ContainSubstring("ignores link state"))
		}
		Expect(linkState(w)).NotTo(ContainElement(HavePrefix("HUB-HQ:")), s.Explain("no link state reaches or changes the 2007 Hub"))
		// The two sides disagree: the message goes back and forth until a Hub refuses it
		// as a loop, which the trace shows.
		Eventually(func() []string {
			var out []string
			for _, e := range w.Events(trace.Fail) {
				out = append(out, e.Reply)
			}
			return out
		}).Should(ContainElement(HavePrefix("554 5.4.6")), s.Explain("the loop ends at the hop limit"))
	})
})
