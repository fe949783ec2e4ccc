package framework

import (
	"context"
	"fmt"
	"time"

	"github.com/onsi/ginkgo/v2"
	"github.com/onsi/gomega"

	"github.com/mailflow/mailflow/scenario"
)

// The steps of a scenario's timeline, for specs: what `mailflow repro` does between
// messages, a spec does between its own sends. Each reports the spec N/A on a target
// that cannot take the step.

// Down takes a server of the organisation down (it stops answering; its spool stays),
// the timeline's down: step.
func (w *World) Down(name string) { ginkgo.GinkgoHelper(); w.StopServer(name) }

// Up brings a server Down took down back on its spool, the timeline's up: step.
func (w *World) Up(name string) {
	ginkgo.GinkgoHelper()
	w.RequireUp()
	st := w.Topology.(interface{ StartServer(string) error })
	gomega.Expect(st.StartServer(name)).To(gomega.Succeed(), "starting %s again", name)
}

// RequireUp reports the spec N/A at once on a target that cannot start a stopped
// server again, before it takes one down for nothing.
func (w *World) RequireUp() {
	ginkgo.GinkgoHelper()
	if _, ok := w.Topology.(interface{ StartServer(string) error }); !ok {
		ginkgo.Skip(fmt.Sprintf("N/A: target %s cannot start a stopped server again", targetName()))
	}
}

// Advance lets d pass on the world's clock, the timeline's advance: step. On the
// in-process target the fake clock stops at each timer due on the way and the servers
// act before the next (a queue retries at each of its own times), in milliseconds of
// real time; another target's stepped clock takes one step. A target on real time
// cannot be stepped: the spec is N/A there.
func (w *World) Advance(d time.Duration) {
	ginkgo.GinkgoHelper()
	w.RequireFakeClock()
	if e, ok := w.Topology.(interface {
		Elapse(context.Context, time.Duration) error
	}); ok {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		gomega.Expect(e.Elapse(ctx, d)).To(gomega.Succeed(), "letting %v pass", d)
		return
	}
	w.Clock().Advance(d)
}

// SetDNS sets and removes records of the fake DNS, the timeline's dns: step: set
// takes zone-file lines, remove "NAME" or "NAME TYPE".
func (w *World) SetDNS(set, remove []string) {
	ginkgo.GinkgoHelper()
	if d, ok := w.Topology.(interface {
		SetDNS(set, remove []string) error
	}); ok {
		gomega.Expect(d.SetDNS(set, remove)).To(gomega.Succeed(), "changing the fake DNS")
		return
	}
	for _, rr := range set {
		gomega.Expect(w.DNS().Add(rr)).To(gomega.Succeed(), "adding %q", rr)
	}
	for _, r := range remove {
		name, qtype, ok := scenario.RemoveTarget(r)
		gomega.Expect(ok).To(gomega.BeTrue(), "%q is not NAME or NAME TYPE", r)
		w.DNS().Remove(name, qtype)
	}
}

// SetHostBehaviour gives a fake Internet host a new behaviour as a scenario writes one
// ("defer", "{action: reject, code: 554}"), the timeline's host: step.
func (w *World) SetHostBehaviour(name, behaviour string) {
	ginkgo.GinkgoHelper()
	b, err := scenario.ParseBehaviour(behaviour)
	gomega.Expect(err).NotTo(gomega.HaveOccurred(), "behaviour %q", behaviour)
	w.MustHost(name).SetBehaviour(b)
}

// RequireLinkState reports the spec N/A on a target whose Hubs of routing groups do
// not pass link state to each other, as Exchange does over port 691: the reference
// does, in memory between the servers of one process and over the network between
// server containers; a third-party MTA has no link state.
func (w *World) RequireLinkState() {
	ginkgo.GinkgoHelper()
	if ls, ok := w.Topology.(interface{ SharesLinkState() bool }); !ok || !ls.SharesLinkState() {
		ginkgo.Skip(fmt.Sprintf("N/A: target %s passes no link state between the Hubs of routing groups", targetName()))
	}
}

// linkCutter is a topology that can cut the network path of a routing group
// connector while every server stays up.
type linkCutter interface {
	CutLink(connector string) error
	MendLink(connector string) error
}

// cutter is the topology as a linkCutter, or the spec reported N/A.
func (w *World) cutter() linkCutter {
	ginkgo.GinkgoHelper()
	lc, ok := w.Topology.(linkCutter)
	if !ok {
		ginkgo.Skip(fmt.Sprintf("N/A: target %s cannot cut a link between servers that stay up", targetName()))
	}
	return lc
}

// LinkDown cuts the path of a routing group connector, the timeline's link_down:
// step: its local bridgeheads cannot reach its remote ones, every server stays up. A
// target that cannot cut one reports the spec N/A.
func (w *World) LinkDown(connector string) {
	ginkgo.GinkgoHelper()
	gomega.Expect(w.cutter().CutLink(connector)).To(gomega.Succeed(), "cutting the link of %s", connector)
}

// LinkUp mends a path LinkDown cut, the timeline's link_up: step.
func (w *World) LinkUp(connector string) {
	ginkgo.GinkgoHelper()
	gomega.Expect(w.cutter().MendLink(connector)).To(gomega.Succeed(), "mending the link of %s", connector)
}
