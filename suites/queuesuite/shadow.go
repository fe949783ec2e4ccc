package queuesuite

import (
	"fmt"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	f "github.com/mailflow/mailflow/suites/framework"
	"github.com/mailflow/mailflow/trace"
)

// viaHub is alice submitting at HUB1 of scenarios/shadow.yaml, which relays mail for
// the Internet to EDGE1.
var viaHub = f.Via{Server: "HUB1", Connector: "From Org", ClientIn: "127.66.0.0/16", Helo: "client.contoso.test", From: "alice@contoso.test"}

// shadowWorld is scenarios/shadow.yaml with the MX deferring, so a relayed message
// waits on EDGE1.
func shadowWorld() *f.World {
	GinkgoHelper()
	w := f.StartShipped("shadow.yaml")
	w.MustHost("mx1.fabrikam.test").SetBehaviour(behaviourOf(`{action: defer, stage: rcpt, code: 451, enhanced: 4.3.0}`))
	return w
}

// shadows is how many messages wait in a server's shadow queues, as Get-Queue shows
// them ("Shadow Redundancy (NEXT HOP)").
func shadows(w *f.World, server string) int {
	n := 0
	for name, c := range w.Queues(server) {
		if strings.HasPrefix(name, "Shadow Redundancy") {
			n += c
		}
	}
	return n
}

// relayedAndHeld submits one message at HUB1 and waits until EDGE1 holds it, deferred
// by the MX, and HUB1 holds its shadow copy.
func relayedAndHeld(w *f.World) *f.Session {
	GinkgoHelper()
	s := w.Submit(viaHub, fmt.Sprintf("shadow-%d@contoso.test", seq.Add(1)), "bob@fabrikam.test")
	deferred(w, s, 1)
	Eventually(func() int { return w.Queue("EDGE1") }).Should(Equal(1), s.Explain("EDGE1 holds the relayed message"))
	Eventually(func() int { return shadows(w, "HUB1") }).Should(Equal(1), s.Explain("HUB1 keeps a shadow copy of what it relayed to EDGE1"))
	return s
}

// settle is how long to watch for something that must not happen after a heartbeat:
// a moment on a fake clock (the heartbeat ran when it was stepped), a heartbeat and
// then some on a real one.
func settle(w *f.World, heartbeat time.Duration) time.Duration {
	if w.Clock().IsFake() {
		return 500 * time.Millisecond
	}
	return heartbeat + 2*time.Second
}

var _ = Describe("Shadow redundancy", Label("queue"), func() {
	It("resubmits a relayed message when the next hop comes back with an empty queue", f.Clause("QUEUE-012"), func() {
		w := shadowWorld()
		s := relayedAndHeld(w)
		hb := w.ShadowHeartbeat("HUB1")
		w.After(hb)
		Consistently(func() int { return shadows(w, "HUB1") }).WithTimeout(settle(w, hb)).Should(Equal(1),
			s.Explain("the shadow copy is kept while EDGE1 has not delivered the message"))

		w.Wipe("EDGE1") // the message is lost with EDGE1's spool
		w.MustHost("mx1.fabrikam.test").SetBehaviour(accept())
		wait := w.After(hb)
		Eventually(func() int { return len(w.Received("mx1.fabrikam.test")) }).WithTimeout(wait).Should(BeNumerically(">=", 1),
			s.Explain("HUB1 resubmits its shadow copy and the message is delivered"))
		if w.Traced() {
			// In containers the events come from the servers' logs as they are read.
			Eventually(func() []trace.Event { return trace.OfType(w.Trace().Events(), trace.Resubmit, "HUB1") }).
				ShouldNot(BeEmpty(), s.Explain("HUB1 tracks the resubmission"))
		}
		Eventually(func() int { return w.Queue("EDGE1") }).WithTimeout(wait).Should(BeZero(), s.Explain("EDGE1's queue lets the delivered message go"))
		wait = w.After(hb)
		Eventually(func() int { return shadows(w, "HUB1") }).WithTimeout(wait).Should(BeZero(),
			s.Explain("the resubmitted copy's own shadow is discarded once EDGE1 has delivered it"))
		Consistently(func() int { return len(w.Received("mx1.fabrikam.test")) }).WithTimeout(settle(w, hb)).Should(BeNumerically("<=", 2),
			s.Explain("at most a duplicate"))
	})

	It("discards the shadow copy once the next hop has delivered, and sends nothing twice", f.Clause("QUEUE-012"), func() {
		w := shadowWorld()
		s := relayedAndHeld(w)
		w.MustHost("mx1.fabrikam.test").SetBehaviour(accept())
		wait := retry(w)
		Eventually(func() int { return len(w.Received("mx1.fabrikam.test")) }).WithTimeout(wait).Should(Equal(1), s.Explain("EDGE1 delivers on its retry"))
		// The sink has the message a moment before EDGE1's queue lets it go; a heartbeat
		// in between would rightly hear "still held" and keep the shadow a beat longer.
		Eventually(func() int { return w.Queue("EDGE1") }).WithTimeout(wait).Should(BeZero(), s.Explain("EDGE1's queue lets the delivered message go"))
		hb := w.ShadowHeartbeat("HUB1")
		wait = w.After(hb)
		Eventually(func() int { return shadows(w, "HUB1") }).WithTimeout(wait).Should(BeZero(),
			s.Explain("HUB1 discards its shadow copy once EDGE1 says it no longer holds the message"))
		w.After(hb)
		Consistently(func() int { return len(w.Received("mx1.fabrikam.test")) }).WithTimeout(settle(w, hb)).Should(Equal(1),
			s.Explain("no duplicate without a failure"))
		if w.Traced() {
			Expect(trace.OfType(w.Trace().Events(), trace.Resubmit, "")).To(BeEmpty(), s.Explain("nothing resubmitted"))
		}
	})
})
