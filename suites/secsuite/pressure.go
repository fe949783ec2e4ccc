package secsuite

import (
	"fmt"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/mailflow/mailflow/scenario"
	"github.com/mailflow/mailflow/scenarios"
	f "github.com/mailflow/mailflow/suites/framework"
	"github.com/mailflow/mailflow/trace"
)

// spoolLimit is EDGE1's back-pressure limit in the spec: room for a few of its 1 kB
// messages.
const spoolLimit = 4000

var _ = Describe("Back pressure", Label("security"), func() {
	It("answers 452 4.3.1 when the spool is full, keeps nothing half-stored, and takes mail again once there is room", f.Clause("SEC-010"), func() {
		sc, err := scenarios.Load("edge-smarthost.yaml")
		Expect(err).NotTo(HaveOccurred())
		for i := range sc.Org.Servers {
			if strings.EqualFold(sc.Org.Servers[i].Name, "EDGE1") {
				sc.Org.Servers[i].SpoolLimit = spoolLimit
			}
		}
		w := f.StartScenario(sc)
		sink := w.MustHost("smarthost.isp.test")
		sink.SetBehaviour(scenario.Behaviour{Action: "defer", Stage: "rcpt", Code: 451, Enhanced: "4.3.0"})
		filler := strings.Repeat(strings.Repeat("x", 78)+"\r\n", 12)
		var accepted []string
		var s *f.Session
		full := false
		for i := 0; i < 10 && !full; i++ {
			id := fmt.Sprintf("pressure-%d@contoso.test", i)
			s = openData(w, f.FromOrg, "bob@fabrikam.test")
			Expect(s.Raw(message(id, filler) + ".\r\n")).To(Succeed())
			switch end := endOfData(s); {
			case end.Code/100 == 2:
				accepted = append(accepted, id)
			default:
				Expect(end).To(Or(f.HaveReply(452, "4.3.1"), f.HaveReply(451, "4.3.0")), s.Explain("452 4.3.1 (or 451 4.3.0) once the spool is full"))
				full = true
			}
		}
		Expect(full).To(BeTrue(), s.Explain("the spool limit of %d octets refuses a message within ten", spoolLimit))
		Expect(accepted).NotTo(BeEmpty(), s.Explain("messages were taken before the spool filled"))
		Expect(w.Queue("EDGE1")).To(Equal(len(accepted)), s.Explain("the queue holds exactly the messages answered 250, nothing of the refused one"))

		// Each message was tried and deferred before the clock moves on to the retry, so
		// no retry is scheduled past a step already taken.
		if w.Traced() {
			Eventually(func() int { return len(trace.OfType(w.Trace().Events(), trace.Defer, "EDGE1")) }).
				Should(BeNumerically(">=", len(accepted)), s.Explain("EDGE1 deferred each message once"))
		}
		sink.SetBehaviour(scenario.Behaviour{Action: "accept"})
		delivered := func() []string {
			var ids []string
			for _, m := range sink.Messages() {
				for _, id := range accepted {
					if strings.Contains(string(m.Data), "<"+id+">") {
						ids = append(ids, id)
					}
				}
			}
			return ids
		}
		// On a steppable clock each poll steps it by another retry interval, so a retry
		// scheduled just after the first step is reached too (thirty steps stay far
		// below the expiry).
		retry := w.Timers("EDGE1").Retry
		Eventually(func() []string {
			w.Clock().Advance(retry)
			return delivered()
		}).WithTimeout(w.After(retry)).WithPolling(500*time.Millisecond).Should(ConsistOf(accepted), s.Explain("every message taken before the spool filled is delivered"))
		Expect(len(sink.Messages())).To(Equal(len(accepted)), s.Explain("the refused message is not delivered"))

		// Room again, and no restart: the next message is taken and delivered.
		s = openData(w, f.FromOrg, "bob@fabrikam.test")
		Expect(s.Raw(message("pressure-after@contoso.test", filler) + ".\r\n")).To(Succeed())
		Expect(endOfData(s)).To(f.HaveClass(2), s.Explain("a message is taken once deliveries made room"))
		Eventually(func() int { return len(sink.Messages()) }).Should(Equal(len(accepted)+1), s.Explain("and delivered"))
	})
})
