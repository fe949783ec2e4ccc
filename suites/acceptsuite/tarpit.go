package acceptsuite

import (
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/mailflow/mailflow/scenario"
	"github.com/mailflow/mailflow/scenarios"
	f "github.com/mailflow/mailflow/suites/framework"
)

// tarpit is the interval the spec configures: Exchange's default TarpitInterval.
const tarpit = 5 * time.Second

var _ = Describe("Tarpitting", Label("accept"), func() {
	It("holds the refusal of an unknown recipient for the tarpit interval", f.Clause("ACCEPT-004"), func() {
		sc, err := scenarios.Load("edge-relay.yaml")
		Expect(err).NotTo(HaveOccurred())
		for i, rc := range sc.Org.ReceiveConnectors {
			if rc.Name == "Internet" {
				sc.Org.ReceiveConnectors[i].TarpitInterval = scenario.Duration(tarpit)
			}
		}
		w := f.StartScenario(sc)
		s, _ := w.Dial("EDGE1", "Internet")
		s.Cmd("EHLO mail.fabrikam.test")
		s.Cmd("MAIL FROM:<bob@fabrikam.test>")
		Expect(s.Cmd("RCPT TO:<alice@contoso.test>")).To(f.HaveReply(250, "2.1.5"), s.Explain("a known recipient answered at once"))
		Expect(s.Raw("RCPT TO:<nobody@contoso.test>\r\n")).To(Succeed())
		sent := time.Now()
		reply := make(chan f.Reply, 1)
		go func() { reply <- s.Read() }()
		if !w.Clock().IsFake() {
			r := <-reply
			Expect(r).To(f.HaveReply(550, "5.1.1"), s.Explain("550 5.1.1 for the unknown recipient"))
			f.Should(time.Since(sent) >= tarpit, s, "the refusal came %v after the RCPT, before the %v tarpit", time.Since(sent), tarpit)
			return
		}
		Consistently(reply).WithTimeout(w.Quiet(time.Second)).ShouldNot(Receive(), s.Explain("no reply before the clock reaches the tarpit interval"))
		// Stepped until the server, which may not yet be waiting, sees the interval pass.
		var r f.Reply
		Eventually(func() bool {
			w.Clock().Advance(tarpit)
			select {
			case r = <-reply:
				return true
			default:
				return false
			}
		}).Should(BeTrue(), s.Explain("a reply once %v have passed", tarpit))
		Expect(r).To(f.HaveReply(550, "5.1.1"), s.Explain("550 5.1.1 for the unknown recipient"))
	})
})
