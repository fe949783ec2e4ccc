// Package routingsuite holds the ROUTE-* and CAT-* clause specs: a Hub categorizes each
// recipient through the directory and routes it across sites along the least-cost
// path, relaying through the hub sites on it. Specs judge which Hubs saw an SMTP
// session (RECEIVE events), the ROUTE decision and where the message was stored (the
// recipient's mailbox, read from the store directly until IMAP arrives).
package routingsuite

import (
	"bytes"
	"context"
	"fmt"
	"net/mail"
	"strings"
	"sync/atomic"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/mailflow/mailflow/reference/dsn"
	f "github.com/mailflow/mailflow/suites/framework"
	"github.com/mailflow/mailflow/trace"
)

var seq atomic.Int64

// send submits one message from the Internet to the Edge for rcpts; it returns the
// session and the message's Message-ID (without <>).
func send(w *f.World, rcpts ...string) (*f.Session, string) {
	GinkgoHelper()
	id := fmt.Sprintf("route-%d@fabrikam.test", seq.Add(1))
	return w.SendInternet(id, rcpts...), id
}

// sessions are the servers that accepted the message (a RECEIVE event), in order.
func sessions(w *f.World, id string) []string {
	var out []string
	for _, e := range w.Trace().Events() {
		if e.Type == trace.Receive && e.HeaderID == id {
			out = append(out, e.Server)
		}
	}
	return out
}

// routeDetail is the ROUTE decision a server made for the message.
func routeDetail(w *f.World, server, id string) string {
	var out []string
	for _, e := range w.Trace().Events() {
		if e.Type == trace.Route && e.Server == server && e.HeaderID == id {
			out = append(out, e.Detail)
		}
	}
	return strings.Join(out, "\n")
}

// delivered waits until addr's mailbox holds n messages.
func delivered(w *f.World, s *f.Session, addr string, n int) {
	GinkgoHelper()
	Eventually(func() int { return len(w.Mailbox(addr)) }).Should(Equal(n), s.Explain("%d message(s) in %s's mailbox", n, addr))
}

var _ = Describe("Site routing", Label("routing"), func() {
	It("takes the least-cost path across sites", f.Clause("ROUTE-001"), func() {
		w := f.StartShipped("three-sites-hub.yaml")
		s, id := send(w, "bob@contoso.test")
		delivered(w, s, "bob@contoso.test", 1)
		// London-Paris-Berlin costs 20; London-Madrid-Berlin 40.
		Eventually(func() string { return routeDetail(w, "HUB-LON", id) }).Should(ContainSubstring("london -(10)-> paris -(10)-> berlin; cost 20"), s.Explain("ROUTE names the least-cost path"))
		Eventually(func() []string { return sessions(w, id) }).Should(ContainElement("HUB-BER"))
		Expect(sessions(w, id)).NotTo(ContainElement("HUB-MAD"), s.Explain("the dearer path through Madrid is not used"))
	})

	It("breaks a cost tie by the fewest hops", f.Clause("ROUTE-002"), func() {
		w := f.StartShipped("hops.yaml")
		s, id := send(w, "zoe@contoso.test")
		delivered(w, s, "zoe@contoso.test", 1)
		Eventually(func() string { return routeDetail(w, "HUB-LON", id) }).Should(ContainSubstring("london -(20)-> zurich; cost 20, 1 hop"), s.Explain("the one-hop path at equal cost"))
		Eventually(func() string { return routeDetail(w, "HUB-LON", id) }).Should(ContainSubstring("decided by fewest hops"), s.Explain("ROUTE names the deciding rule"))
	})

	It("breaks a remaining tie by the lowest site name nearest the destination", f.Clause("ROUTE-003"), func() {
		w := f.StartShipped("diamond.yaml")
		s, id := send(w, "zoe@contoso.test")
		delivered(w, s, "zoe@contoso.test", 1)
		Eventually(func() []string { return sessions(w, id) }).Should(ContainElement("HUB-AMS"), s.Explain("relayed through Amsterdam"))
		Expect(sessions(w, id)).NotTo(ContainElement("HUB-BRU"), s.Explain("Brussels sees nothing"))
		Eventually(func() string { return routeDetail(w, "HUB-LON", id) }).Should(ContainSubstring("decided by lowest site name nearest the destination"), s.Explain("ROUTE names the deciding rule"))
	})

	It("chooses the same single path every time", f.Clause("ROUTE-004"), func() {
		w := f.StartShipped("diamond.yaml")
		var paths []string
		for i := 0; i < 3; i++ {
			s, id := send(w, "zoe@contoso.test")
			delivered(w, s, "zoe@contoso.test", i+1)
			// The containers target reads HUB-LON's log as it comes: the decision may land
			// after the delivery that followed it.
			var detail string
			Eventually(func() string { detail = routeDetail(w, "HUB-LON", id); return detail }).ShouldNot(BeEmpty(), s.Explain("HUB-LON logs its routing decision"))
			paths = append(paths, detail)
			Expect(sessions(w, id)).NotTo(ContainElement("HUB-BRU"), s.Explain("only the one path is used"))
		}
		Expect(paths[1]).To(Equal(paths[0]))
		Expect(paths[2]).To(Equal(paths[0]))
	})

	It("relays directly to the destination site when no hub site is on the path", f.Clause("ROUTE-005"), func() {
		w := f.StartShipped("three-sites-hub.yaml")
		s, id := send(w, "carol@contoso.test")
		delivered(w, s, "carol@contoso.test", 1)
		Eventually(func() []string { return sessions(w, id) }).Should(Equal([]string{"EDGE1", "HUB-LON", "HUB-MAD"}), s.Explain("Edge, source Hub, destination Hub: nothing in between"))
	})

	It("relays through a hub site on the path", f.Clause("ROUTE-006"), func() {
		w := f.StartShipped("three-sites-hub.yaml")
		s, id := send(w, "bob@contoso.test")
		delivered(w, s, "bob@contoso.test", 1)
		Eventually(func() []string { return sessions(w, id) }).Should(Equal([]string{"EDGE1", "HUB-LON", "HUB-PAR", "HUB-BER"}), s.Explain("through the Paris hub site"))
		Eventually(func() string { return routeDetail(w, "HUB-LON", id) }).Should(ContainSubstring("relay via paris -> berlin"), s.Explain("ROUTE names the hub site"))
	})

	It("ignores a hub site that is not on the least-cost path", f.Clause("ROUTE-007"), func() {
		w := f.StartShipped("three-sites-hub.yaml")
		s, id := send(w, "carol@contoso.test")
		delivered(w, s, "carol@contoso.test", 1)
		Eventually(func() []string { return sessions(w, id) }).Should(ContainElement("HUB-MAD"))
		Expect(sessions(w, id)).NotTo(ContainElement("HUB-PAR"), s.Explain("the Paris hub site is off the path to Madrid"))
	})

	It("queues at the reachable site closest to the destination when its Hubs are down", f.Clause("ROUTE-008"), func() {
		w := f.StartShipped("backoff.yaml")
		w.StopServer("HUB-BER")
		s, id := send(w, "bob@contoso.test")
		Eventually(func() []string { return sessions(w, id) }).Should(ContainElement("HUB-MAD"), s.Explain("backed off to Madrid, the closest reachable site on the path"))
		Eventually(func() int { return w.Queue("HUB-MAD") }).Should(Equal(1), s.Explain("held in Madrid's queue"))
		Eventually(func() int { return w.Queue("HUB-LON") }).Should(BeZero(), s.Explain("not held at the source"))
		Expect(w.Events(trace.Fail)).To(BeEmpty(), s.Explain("not bounced while a site on the path is reachable"))
		Expect(w.Events(trace.DSN)).To(BeEmpty(), s.Explain("no NDR"))
	})

	It("keeps retrying from the backoff site while the destination's Hubs are down, and delivers once one is back", f.Clause("ROUTE-008"), func() {
		w := f.StartShipped("backoff.yaml")
		w.Down("HUB-BER")
		s, id := send(w, "bob@contoso.test")
		Eventually(func() int { return w.Queue("HUB-MAD") }).Should(Equal(1), s.Explain("held in Madrid, the closest reachable site on the path"))
		attempts := func() int {
			at := map[time.Time]bool{}
			for _, e := range trace.OfType(w.Trace().Events(), trace.Defer, "HUB-MAD") {
				at[e.Time] = true
			}
			return len(at)
		}
		Eventually(attempts).Should(Equal(1), s.Explain("Madrid's first attempt to reach Berlin fails"))
		// One retry interval at a time, so a clock that is stepped once (not timer by
		// timer) fires each retry too.
		retry := w.Timers("HUB-MAD").Retry
		for n := 2; n <= 4; n++ {
			w.Advance(retry)
			Eventually(attempts).Should(Equal(n), s.Explain("Madrid retries on its own timer while Berlin is down: attempt %d", n))
		}
		Expect(w.Queue("HUB-MAD")).To(Equal(1), s.Explain("still held in Madrid"))
		Expect(w.Events(trace.Fail)).To(BeEmpty(), s.Explain("not bounced while a site on the path is reachable"))
		Expect(w.Events(trace.DSN)).To(BeEmpty(), s.Explain("no NDR"))
		Expect(w.Mailbox("bob@contoso.test")).To(BeEmpty(), s.Explain("nothing can reach Berlin yet"))
		w.Up("HUB-BER")
		w.Advance(retry)
		delivered(w, s, "bob@contoso.test", 1)
		Eventually(func() []string { return sessions(w, id) }).Should(Equal([]string{"EDGE1", "HUB-LON", "HUB-MAD", "HUB-BER"}), s.Explain("from Madrid to Berlin once its Hub was back"))
	})

	It("refuses a message too large for a site link on the path with a 5.3.4 NDR", f.Clause("ROUTE-016"), func() {
		w := f.StartShipped("link-limit.yaml")
		s, _ := w.Dial("EDGE1", "Internet")
		s.Cmd("EHLO mail.fabrikam.test")
		s.Cmd("MAIL FROM:<bob@fabrikam.test>")
		Expect(s.Cmd("RCPT TO:<bob@contoso.test>")).To(f.HaveClass(2), s.Explain("recipient accepted"))
		_, end := s.Data("Subject: big\r\nMessage-ID: <big@fabrikam.test>\r\n\r\n" + strings.Repeat("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde\r\n", 100))
		Expect(end).To(f.HaveClass(2), s.Explain("accepted by the Edge"))
		Eventually(func() int { return len(w.Received("smarthost.isp.test")) }).Should(Equal(1), s.Explain("an NDR leaves for the sender"))
		p, err := dsn.Parse(w.Received("smarthost.isp.test")[0].Data)
		Expect(err).NotTo(HaveOccurred(), s.Explain("a multipart/report DSN"))
		Expect(dsn.Field(p.Recipients[0], "Status")).To(Equal("5.3.4"), s.Explain("Status: 5.3.4"))
		Expect(sessions(w, "big@fabrikam.test")).NotTo(ContainElement("HUB-BER"), s.Explain("nothing crossed the link"))
		Expect(w.Mailbox("bob@contoso.test")).To(BeEmpty())
	})

	Describe("fan-out", func() {
		receivesAt := func(w *f.World, server, id string) [][]string {
			var out [][]string
			for _, e := range w.Trace().Events() {
				if e.Type == trace.Receive && e.Server == server && e.HeaderID == id {
					out = append(out, e.Recipients)
				}
			}
			return out
		}

		It("sends one copy to a hub site shared by two destinations, which bifurcates it", f.Clause("ROUTE-009"), func() {
			w := f.StartShipped("fanout.yaml")
			s, id := send(w, "bob@contoso.test", "petra@contoso.test")
			delivered(w, s, "bob@contoso.test", 1)
			delivered(w, s, "petra@contoso.test", 1)
			Eventually(func() [][]string { return receivesAt(w, "HUB-PAR", id) }).Should(Equal([][]string{{"bob@contoso.test", "petra@contoso.test"}}),
				s.Explain("one transaction to Paris with both RCPTs"))
			Eventually(func() [][]string { return receivesAt(w, "HUB-BER", id) }).Should(HaveLen(1), s.Explain("Paris bifurcates: one copy on to Berlin"))
			Eventually(func() [][]string { return receivesAt(w, "HUB-PRG", id) }).Should(HaveLen(1), s.Explain("and one to Prague"))
		})

		It("bifurcates at the source when the paths share no hop", f.Clause("ROUTE-009"), func() {
			w := f.StartShipped("fanout.yaml")
			s, id := send(w, "bob@contoso.test", "carol@contoso.test")
			delivered(w, s, "bob@contoso.test", 1)
			delivered(w, s, "carol@contoso.test", 1)
			Eventually(func() [][]string { return receivesAt(w, "HUB-PAR", id) }).Should(Equal([][]string{{"bob@contoso.test"}}), s.Explain("Paris carries Berlin's copy only"))
			Eventually(func() [][]string { return receivesAt(w, "HUB-MAD", id) }).Should(Equal([][]string{{"carol@contoso.test"}}), s.Explain("Madrid gets its own copy from London"))
		})
	})

	It("hands inbound mail to a Hub in the Edge's site, failing over between its Hubs", f.Clause("ROUTE-015"), f.Long, func() {
		w := f.StartShipped("failover.yaml")
		s, id := send(w, "alice@contoso.test")
		delivered(w, s, "alice@contoso.test", 1)
		Eventually(func() []string { return sessions(w, id) }).Should(Equal([]string{"EDGE1", "HUB-LON1"}), s.Explain("a Hub of the subscribed site, never Paris"))
		w.StopServer("HUB-LON1")
		s, id = send(w, "alice@contoso.test")
		// A stopped container answers nothing: fail-over waits for the connect timeout
		// (30 s); a closed in-process listener refuses at once.
		Eventually(func() int { return len(w.Mailbox("alice@contoso.test")) }).WithTimeout(45*time.Second).
			Should(Equal(2), s.Explain("delivered through the other London Hub"))
		Eventually(func() []string { return sessions(w, id) }).Should(Equal([]string{"EDGE1", "HUB-LON2"}), s.Explain("the other London Hub takes over"))
	})

	It("delivers a mailbox in the Hub's own site locally", f.Clause("ROUTE-010"), func() {
		w := f.StartShipped("three-sites-hub.yaml")
		s, id := send(w, "alice@contoso.test")
		delivered(w, s, "alice@contoso.test", 1)
		Eventually(func() []string { return sessions(w, id) }).Should(Equal([]string{"EDGE1", "HUB-LON"}), s.Explain("no inter-site hop"))
		Eventually(func() string { return routeDetail(w, "HUB-LON", id) }).Should(ContainSubstring("local delivery"))
	})
})

var _ = Describe("Categorizer", Label("categorizer"), func() {
	It("delivers a secondary proxy address to the primary mailbox", f.Clause("CAT-001"), func() {
		w := f.StartShipped("three-sites-hub.yaml")
		s, _ := send(w, "A.Smith@contoso.test")
		delivered(w, s, "alice@contoso.test", 1)
		Expect(w.Mailbox("a.smith@contoso.test")).To(BeEmpty(), s.Explain("no mailbox under the secondary address"))
	})

	It("follows a mailbox move once the directory cache expires", f.Clause("CAT-002"), func() {
		w := f.StartShipped("three-sites-hub.yaml")
		w.RequireFakeClock()
		s, id := send(w, "bob@contoso.test")
		delivered(w, s, "bob@contoso.test", 1)
		Eventually(func() []string { return sessions(w, id) }).Should(ContainElement("HUB-BER"))
		w.Directory().SetHomeServer("bob@contoso.test", "MBX-MAD")
		w.Clock().Advance(6 * time.Minute)
		s, id = send(w, "bob@contoso.test")
		delivered(w, s, "bob@contoso.test", 2)
		Eventually(func() []string { return sessions(w, id) }).Should(ContainElement("HUB-MAD"), s.Explain("routed to the new server's site"))
		Expect(sessions(w, id)).NotTo(ContainElement("HUB-BER"), s.Explain("not to the old one"))
	})

	It("expands nested groups with one copy per member", f.Clause("CAT-003"), func() {
		w := f.StartShipped("three-sites-hub.yaml")
		// team holds alice, bob and leads; leads holds alice again and team (a loop).
		s, _ := send(w, "team@contoso.test")
		delivered(w, s, "alice@contoso.test", 1)
		delivered(w, s, "bob@contoso.test", 1)
		Consistently(func() int { return len(w.Mailbox("alice@contoso.test")) }).WithTimeout(500*time.Millisecond).Should(Equal(1), s.Explain("alice gets exactly one copy"))
		Eventually(func() []trace.Event { return w.Events(trace.Categorize) }).ShouldNot(BeEmpty(), s.Explain("a CATEGORIZE event"))
	})

	It("routes a mail contact to its external address, out through the Edge", f.Clause("CAT-004", "ROUTE-015"), func() {
		w := f.StartShipped("contact.yaml")
		s, id := send(w, "vendor@contoso.test")
		Eventually(func() []string {
			var to []string
			for _, m := range w.Received("smarthost.isp.test") {
				to = append(to, m.RcptTo...)
			}
			return to
		}).Should(Equal([]string{"sales@vendor.test"}), s.Explain("the contact's external address reaches the Internet"))
		Eventually(func() []string { return sessions(w, id) }).Should(Equal([]string{"EDGE1", "HUB-LON", "EDGE1"}), s.Explain("in through the Edge, categorized on the Hub, out through the Edge"))
		Eventually(func() string { return routeDetail(w, "HUB-LON", id) }).Should(ContainSubstring("sourced on EDGE1"), s.Explain("the Hub hands outbound mail to the connector's source, the Edge"))
	})

	Describe("TLS between the organisation's servers", func() {
		It("crosses every hop inside the organisation over STARTTLS", f.Clause("ROUTE-017"), func() {
			w := f.StartShipped("three-sites-hub.yaml")
			s, _ := send(w, "bob@contoso.test")
			delivered(w, s, "bob@contoso.test", 1)
			m, err := mail.ReadMessage(bytes.NewReader(w.Mailbox("bob@contoso.test")[0]))
			Expect(err).NotTo(HaveOccurred(), s.Explain("the stored message parses"))
			var internal []string
			for _, r := range m.Header["Received"] {
				if !strings.Contains(r, "mail.fabrikam.test") { // the Edge's header for the Internet hop
					internal = append(internal, r)
				}
			}
			Expect(internal).To(HaveLen(4), s.Explain("EDGE1 -> HUB-LON -> HUB-PAR -> HUB-BER -> MBX-BER: four hops inside the organisation"))
			for _, r := range internal {
				Expect(r).To(MatchRegexp(`\bwith ESMTPS`), s.Explain("each receiving server's Received header shows a TLS session"))
			}
		})

		It("keeps mail queued with a 4yz rather than send it to a peer without TLS", f.Clause("ROUTE-017"), func() {
			w := f.StartShipped("cleartext-peer.yaml")
			s, id := send(w, "bob@contoso.test")
			defers := func() []trace.Event {
				return trace.Filter(w.Events(trace.Defer), func(e trace.Event) bool { return e.Server == "HUB-LON" && e.HeaderID == id })
			}
			Eventually(defers).ShouldNot(BeEmpty(), s.Explain("HUB-LON defers the message"))
			Expect(defers()[0].Reply).To(MatchRegexp(`^4\d\d 4\.7\.\d+ .*STARTTLS`), s.Explain("a temporary failure naming STARTTLS"))
			Expect(w.Queue("HUB-LON")).To(Equal(1), s.Explain("still queued on HUB-LON"))
			Expect(sessions(w, id)).NotTo(ContainElement("HUB-BER"), s.Explain("nothing crossed to HUB-BER in the clear"))
			Expect(w.Mailbox("bob@contoso.test")).To(BeEmpty())
		})
	})

	Describe("send connectors", func() {
		// sendBody submits body from the Internet to rcpt and returns the session.
		sendBody := func(w *f.World, rcpt, body string) *f.Session {
			GinkgoHelper()
			s, _ := w.Dial("EDGE1", "Internet")
			s.Cmd("EHLO mail.fabrikam.test")
			Expect(s.Cmd("MAIL FROM:<bob@fabrikam.test>")).To(f.HaveClass(2), s.Explain("sender accepted"))
			Expect(s.Cmd("RCPT TO:<%s>", rcpt)).To(f.HaveClass(2), s.Explain("%s accepted", rcpt))
			_, end := s.Data(body)
			Expect(end).To(f.HaveClass(2), s.Explain("message accepted"))
			return s
		}
		message := func(id string, size int) string {
			b := "From: bob@fabrikam.test\r\nSubject: connectors\r\nMessage-ID: <" + id + ">\r\n\r\n"
			for len(b) < size {
				b += "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde\r\n"
			}
			return b
		}
		// arrives waits until the message reaches exactly one host, and returns it.
		arrives := func(w *f.World, s *f.Session, id string, hosts ...string) string {
			GinkgoHelper()
			at := func() []string {
				var out []string
				for _, h := range hosts {
					for _, m := range w.Received(h) {
						if strings.Contains(string(m.Data), "<"+id+">") {
							out = append(out, h)
						}
					}
				}
				return out
			}
			Eventually(at).Should(HaveLen(1), s.Explain("%s reaches one of %v", id, hosts))
			return at()[0]
		}
		fabrikam := []string{"disabled.isp.test", "scoped.isp.test", "small.isp.test", "berlin.isp.test", "smarthost.isp.test"}

		It("chooses only enabled, in-scope connectors whose size limit fits the message", f.Clause("ROUTE-011"), func() {
			w := f.StartShipped("connectors.yaml")
			s := sendBody(w, "fab@contoso.test", message("small-1@fabrikam.test", 500))
			Expect(arrives(w, s, "small-1@fabrikam.test", fabrikam...)).To(Equal("small.isp.test"),
				s.Explain("neither the disabled connector nor the one scoped to paris, though both cost less: the small message takes 'Fabrikam small'"))
			s = sendBody(w, "fab@contoso.test", message("large-1@fabrikam.test", 5000))
			Expect(arrives(w, s, "large-1@fabrikam.test", fabrikam...)).To(Equal("berlin.isp.test"),
				s.Explain("a 5000-byte message exceeds 'Fabrikam small' (3000 bytes): it takes 'Fabrikam Berlin'"))
			Eventually(func() []string { return sessions(w, "large-1@fabrikam.test") }).Should(Equal([]string{"EDGE1", "HUB-LON", "HUB-BER"}),
				s.Explain("through the connector's source server, HUB-BER"))
		})

		It("prefers the most specific address space", f.Clause("ROUTE-012"), func() {
			w := f.StartShipped("connectors.yaml")
			hosts := []string{"exact.isp.test", "wild.isp.test", "smarthost.isp.test"}
			for _, tc := range []struct{ rcpt, id, host, why string }{
				{"julia@contoso.test", "julia@fabrikam.test", "exact.isp.test", "marketing.tailspin.test beats the cheaper *.tailspin.test and *"},
				{"sam@contoso.test", "sam@fabrikam.test", "wild.isp.test", "*.tailspin.test beats *"},
				{"wood@contoso.test", "wood@fabrikam.test", "smarthost.isp.test", "only * matches woodgrove.test"},
			} {
				s := sendBody(w, tc.rcpt, message(tc.id, 300))
				Expect(arrives(w, s, tc.id, hosts...)).To(Equal(tc.host), s.Explain("%s", tc.why))
			}
			Eventually(func() string { return routeDetail(w, "HUB-LON", "julia@fabrikam.test") }).Should(ContainSubstring(`"marketing.tailspin.test" most specific`), "the ROUTE event names the deciding rule")
		})

		It("breaks ties by aggregate cost, then by connector name", f.Clause("ROUTE-013"), func() {
			w := f.StartShipped("connectors.yaml")
			s := sendBody(w, "lit@contoso.test", message("lit@fabrikam.test", 300))
			Expect(arrives(w, s, "lit@fabrikam.test", "local.isp.test", "paris.isp.test")).To(Equal("paris.isp.test"),
				s.Explain("'Litware Paris' costs 5 (link) + 1 = 6, less than the local connector's 7"))
			Eventually(func() string { return routeDetail(w, "HUB-LON", "lit@fabrikam.test") }).Should(ContainSubstring("lowest aggregate cost 6"), s.Explain("the ROUTE event names the aggregate cost"))
			s = sendBody(w, "ada@contoso.test", message("ada@fabrikam.test", 300))
			Expect(arrives(w, s, "ada@fabrikam.test", "adatum-a.isp.test", "adatum-b.isp.test")).To(Equal("adatum-a.isp.test"),
				s.Explain("equal in cost and distance: the alphanumerically lowest name, 'Adatum A'"))
			Eventually(func() string { return routeDetail(w, "HUB-LON", "ada@fabrikam.test") }).Should(ContainSubstring("lowest name"))
		})

		It("holds an unmatched recipient as unreachable and NDRs one too large for every connector with 5.3.4", f.Clause("ROUTE-014"), func() {
			w := f.StartShipped("unreachable.yaml")
			s := sendBody(w, "lost@contoso.test", message("lost@fabrikam.test", 300))
			defers := func() []trace.Event {
				return trace.Filter(w.Events(trace.Defer), func(e trace.Event) bool { return e.Server == "HUB-LON" && e.HeaderID == "lost@fabrikam.test" })
			}
			Eventually(defers).ShouldNot(BeEmpty(), s.Explain("deferred on the Hub"))
			Expect(defers()[0].Reply).To(MatchRegexp(`^4\d\d 4\.4\.0 Unreachable`), s.Explain("held as unreachable"))
			// Two more attempts, each deferred again: on a fake clock by stepping it past
			// the retry interval, on a real one by waiting for them.
			for n := 2; n <= 3; n++ {
				if w.Clock().IsFake() {
					w.Clock().Advance(15 * time.Minute)
				}
				Eventually(func() int { return len(defers()) }).WithTimeout(15*time.Second+3*w.RetryInterval()).Should(BeNumerically(">=", n), s.Explain("retried and held again"))
			}
			Consistently(func() int { return len(w.Received("smarthost.isp.test")) }).WithTimeout(300*time.Millisecond).Should(BeZero(), s.Explain("not bounced at once"))
			Expect(w.Queue("HUB-LON")).To(Equal(1), s.Explain("still queued on the Hub"))
			Expect(w.Queues("HUB-LON")).To(HaveKeyWithValue("Unreachable", 1), s.Explain("in the Hub's Unreachable queue (Get-Queue)"))
			Expect(w.Events(trace.Fail)).To(BeEmpty(), s.Explain("no FAIL event"))

			s = sendBody(w, "partner@contoso.test", message("big@fabrikam.test", 5000))
			Eventually(func() int { return len(w.Received("smarthost.isp.test")) }).Should(Equal(1), s.Explain("an NDR leaves for the sender at once"))
			p, err := dsn.Parse(w.Received("smarthost.isp.test")[0].Data)
			Expect(err).NotTo(HaveOccurred(), s.Explain("a multipart/report DSN"))
			Expect(dsn.Field(p.Recipients[0], "Status")).To(Equal("5.3.4"), s.Explain("Status: 5.3.4"))
			Expect(w.Received("partner.isp.test")).To(BeEmpty(), s.Explain("nothing went through the too-small connector"))
		})
	})

	It("NDRs an invalid directory object and a forwarding loop instead of looping", f.Clause("CAT-005"), func() {
		w := f.StartShipped("tracking.yaml")
		s, id := send(w, "broken@contoso.test", "loop-a@contoso.test")
		Eventually(func() int { return len(w.Received("smarthost.isp.test")) }).Should(BeNumerically(">=", 1), s.Explain("an NDR leaves for the sender"))
		status := map[string]string{}
		Eventually(func() map[string]string {
			for _, m := range w.Received("smarthost.isp.test") {
				Expect(m.MailFrom).To(BeEmpty(), s.Explain("NDRs have a null reverse-path"))
				p, err := dsn.Parse(m.Data)
				Expect(err).NotTo(HaveOccurred(), s.Explain("a multipart/report DSN"))
				for _, r := range p.Recipients {
					Expect(strings.ToLower(dsn.Field(r, "Action"))).To(Equal("failed"))
					status[strings.ToLower(dsn.Field(r, "Final-Recipient"))] = dsn.Field(r, "Status")
				}
			}
			return status
		}).Should(And(
			HaveKeyWithValue(ContainSubstring("broken@contoso.test"), HavePrefix("5.")),
			HaveKeyWithValue(ContainSubstring("loop-a@contoso.test"), Equal("5.4.6")),
		), s.Explain("each recipient failed permanently: the invalid object, and the loop with 5.4.6 (routing loop detected)"))
		Eventually(func() int { return w.Queue("HUB-LON") + w.Queue("EDGE1") }).Should(BeZero(), s.Explain("nothing left queued"))
		// A container's tracking events are read from its log and may trail the queues:
		// the hops are awaited before they are watched for one too many.
		Eventually(func() []string { return sessions(w, id) }).Should(Equal([]string{"EDGE1", "HUB-LON"}), s.Explain("the message reached HUB-LON"))
		Consistently(func() []string { return sessions(w, id) }).WithTimeout(500*time.Millisecond).Should(Equal([]string{"EDGE1", "HUB-LON"}),
			s.Explain("the message stopped at the categorizer: no hop beyond HUB-LON"))
		Expect(w.Mailbox("loop-a@contoso.test")).To(BeEmpty())
		Expect(w.Mailbox("loop-b@contoso.test")).To(BeEmpty())
	})

	It("sends an NDR with 5.1.1 for an unknown recipient accepted without filtering", f.Clause("ACCEPT-006"), func() {
		w := f.StartShipped("no-filtering.yaml")
		s, _ := send(w, "nobody@contoso.test")
		Eventually(func() int { return len(w.Received("smarthost.isp.test")) }).Should(Equal(1), s.Explain("an NDR leaves for the Internet sender"))
		m := w.Received("smarthost.isp.test")[0]
		Expect(m.MailFrom).To(BeEmpty(), s.Explain("the NDR has a null reverse-path"))
		Expect(m.RcptTo).To(Equal([]string{"bob@fabrikam.test"}), s.Explain("to the original sender"))
		p, err := dsn.Parse(m.Data)
		Expect(err).NotTo(HaveOccurred(), s.Explain("a multipart/report DSN"))
		Expect(p.Recipients).To(HaveLen(1))
		Expect(strings.ToLower(dsn.Field(p.Recipients[0], "Action"))).To(Equal("failed"), s.Explain("Action: failed"))
		Expect(dsn.Field(p.Recipients[0], "Status")).To(Equal("5.1.1"), s.Explain("Status: 5.1.1"))
	})

	It("treats a directory outage as a temporary failure", f.Clause("CAT-006"), func() {
		w := f.StartShipped("three-sites-hub.yaml")
		if w.Directory() == nil {
			Skip("N/A: the target has no directory the suite can take down")
		}
		Expect(w.Directory().Stop()).To(Succeed())
		s, _ := w.Dial("EDGE1", "Internet")
		s.Cmd("EHLO mail.fabrikam.test")
		s.Cmd("MAIL FROM:<bob@fabrikam.test>")
		Expect(s.Cmd("RCPT TO:<alice@contoso.test>")).To(f.HaveClass(4), s.Explain("4yz while the directory is down, never 5.1.1"))
		Expect(w.Directory().Restart(context.Background())).To(Succeed())
		Eventually(func() int { return s.Cmd("RCPT TO:<alice@contoso.test>").Code }).Should(Equal(250), s.Explain("accepted once the directory is back"))
	})
})
