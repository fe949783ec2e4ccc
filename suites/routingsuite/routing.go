// Package routingsuite holds the ROUTE-* and CAT-* clause specs: a Hub categorizes each
// recipient through the directory and routes it across sites along the least-cost
// path, relaying through the hub sites on it. Specs judge which Hubs saw an SMTP
// session (RECEIVE events), the ROUTE decision and where the message was stored (the
// recipient's mailbox, read from the store directly until IMAP arrives).
package routingsuite

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	f "github.com/mailflow/mailflow/suites/framework"
	"github.com/mailflow/mailflow/trace"
)

var seq atomic.Int64

// send submits one message from the Internet to the Edge for rcpts; it returns the
// session and the message's Message-ID (without <>).
func send(w *f.World, rcpts ...string) (*f.Session, string) {
	GinkgoHelper()
	id := fmt.Sprintf("route-%d@fabrikam.test", seq.Add(1))
	s, _ := w.Dial("EDGE1", "Internet")
	s.Cmd("EHLO mail.fabrikam.test")
	Expect(s.Cmd("MAIL FROM:<bob@fabrikam.test>")).To(f.HaveClass(2), s.Explain("sender accepted"))
	for _, r := range rcpts {
		Expect(s.Cmd("RCPT TO:<%s>", r)).To(f.HaveClass(2), s.Explain("%s accepted", r))
	}
	_, end := s.Data("From: bob@fabrikam.test\r\nSubject: routing\r\nMessage-ID: <" + id + ">\r\n\r\nHello.\r\n")
	Expect(end).To(f.HaveClass(2), s.Explain("message accepted"))
	return s, id
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
		w := f.Start("hops.yaml", `
org:
  accepted_domains:
    - {domain: contoso.test, type: authoritative, default: true}
  sites: [{name: london}, {name: amsterdam}, {name: zurich}]
  site_links:
    - {sites: [london, zurich], cost: 20}
    - {sites: [london, amsterdam], cost: 10}
    - {sites: [amsterdam, zurich], cost: 10}
  servers:
    - {name: EDGE1, role: edge, site: london}
    - {name: HUB-LON, role: hub, site: london}
    - {name: HUB-AMS, role: hub, site: amsterdam}
    - {name: HUB-ZRH, role: hub, site: zurich}
    - {name: MBX-ZRH, role: mailbox, site: zurich}
  receive_connectors:
    - {name: Internet, server: EDGE1, bind: ":25", permissions: [anonymous]}
  recipients:
    - {mail: zoe@contoso.test, mailbox: MBX-ZRH}
`)
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
			paths = append(paths, routeDetail(w, "HUB-LON", id))
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
		w := f.Start("backoff.yaml", `
org:
  accepted_domains:
    - {domain: contoso.test, type: authoritative, default: true}
  sites: [{name: london}, {name: madrid}, {name: berlin}]
  site_links:
    - {sites: [london, madrid], cost: 10}
    - {sites: [madrid, berlin], cost: 10}
  servers:
    - {name: EDGE1, role: edge, site: london}
    - {name: HUB-LON, role: hub, site: london}
    - {name: HUB-MAD, role: hub, site: madrid}
    - {name: HUB-BER, role: hub, site: berlin}
    - {name: MBX-BER, role: mailbox, site: berlin}
  receive_connectors:
    - {name: Internet, server: EDGE1, bind: ":25", permissions: [anonymous]}
  recipients:
    - {mail: bob@contoso.test, mailbox: MBX-BER}
`)
		w.StopServer("HUB-BER")
		s, id := send(w, "bob@contoso.test")
		Eventually(func() []string { return sessions(w, id) }).Should(ContainElement("HUB-MAD"), s.Explain("backed off to Madrid, the closest reachable site on the path"))
		Eventually(func() int { return w.Queue("HUB-MAD") }).Should(Equal(1), s.Explain("held in Madrid's queue"))
		Eventually(func() int { return w.Queue("HUB-LON") }).Should(BeZero(), s.Explain("not held at the source"))
		Expect(w.Events(trace.Fail)).To(BeEmpty(), s.Explain("not bounced while a site on the path is reachable"))
		Expect(w.Events(trace.DSN)).To(BeEmpty(), s.Explain("no NDR"))
	})

	Describe("fan-out", func() {
		// Paris is a hub site in front of Berlin and Prague; Madrid hangs off London.
		const fanout = `
org:
  accepted_domains:
    - {domain: contoso.test, type: authoritative, default: true}
  sites: [{name: london}, {name: paris, hub: true}, {name: berlin}, {name: prague}, {name: madrid}]
  site_links:
    - {sites: [london, paris], cost: 10}
    - {sites: [paris, berlin], cost: 10}
    - {sites: [paris, prague], cost: 10}
    - {sites: [london, madrid], cost: 10}
  servers:
    - {name: EDGE1, role: edge, site: london}
    - {name: HUB-LON, role: hub, site: london}
    - {name: HUB-PAR, role: hub, site: paris}
    - {name: HUB-BER, role: hub, site: berlin}
    - {name: HUB-PRG, role: hub, site: prague}
    - {name: HUB-MAD, role: hub, site: madrid}
    - {name: MBX-BER, role: mailbox, site: berlin}
    - {name: MBX-PRG, role: mailbox, site: prague}
    - {name: MBX-MAD, role: mailbox, site: madrid}
  receive_connectors:
    - {name: Internet, server: EDGE1, bind: ":25", permissions: [anonymous]}
  recipients:
    - {mail: bob@contoso.test, mailbox: MBX-BER}
    - {mail: petra@contoso.test, mailbox: MBX-PRG}
    - {mail: carol@contoso.test, mailbox: MBX-MAD}
`
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
			w := f.Start("fanout.yaml", fanout)
			s, id := send(w, "bob@contoso.test", "petra@contoso.test")
			delivered(w, s, "bob@contoso.test", 1)
			delivered(w, s, "petra@contoso.test", 1)
			Eventually(func() [][]string { return receivesAt(w, "HUB-PAR", id) }).Should(Equal([][]string{{"bob@contoso.test", "petra@contoso.test"}}),
				s.Explain("one transaction to Paris with both RCPTs"))
			Eventually(func() [][]string { return receivesAt(w, "HUB-BER", id) }).Should(HaveLen(1), s.Explain("Paris bifurcates: one copy on to Berlin"))
			Eventually(func() [][]string { return receivesAt(w, "HUB-PRG", id) }).Should(HaveLen(1), s.Explain("and one to Prague"))
		})

		It("bifurcates at the source when the paths share no hop", f.Clause("ROUTE-009"), func() {
			w := f.Start("fanout.yaml", fanout)
			s, id := send(w, "bob@contoso.test", "carol@contoso.test")
			delivered(w, s, "bob@contoso.test", 1)
			delivered(w, s, "carol@contoso.test", 1)
			Eventually(func() [][]string { return receivesAt(w, "HUB-PAR", id) }).Should(Equal([][]string{{"bob@contoso.test"}}), s.Explain("Paris carries Berlin's copy only"))
			Eventually(func() [][]string { return receivesAt(w, "HUB-MAD", id) }).Should(Equal([][]string{{"carol@contoso.test"}}), s.Explain("Madrid gets its own copy from London"))
		})
	})

	It("hands inbound mail to a Hub in the Edge's site, failing over between its Hubs", f.Clause("ROUTE-015"), func() {
		w := f.Start("failover.yaml", `
org:
  accepted_domains:
    - {domain: contoso.test, type: authoritative, default: true}
  sites: [{name: london}, {name: paris}]
  site_links:
    - {sites: [london, paris], cost: 10}
  servers:
    - {name: EDGE1, role: edge, site: london}
    - {name: HUB-LON1, role: hub, site: london}
    - {name: HUB-LON2, role: hub, site: london}
    - {name: HUB-PAR, role: hub, site: paris}
    - {name: MBX-LON, role: mailbox, site: london}
  receive_connectors:
    - {name: Internet, server: EDGE1, bind: ":25", permissions: [anonymous]}
  recipients:
    - {mail: alice@contoso.test, mailbox: MBX-LON}
`)
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
		Expect(w.Events(trace.Categorize)).NotTo(BeEmpty(), s.Explain("a CATEGORIZE event"))
	})

	It("routes a mail contact to its external address, out through the Edge", f.Clause("CAT-004", "ROUTE-015"), func() {
		w := f.Start("contact.yaml", `
org:
  accepted_domains:
    - {domain: contoso.test, type: authoritative, default: true}
  sites: [{name: london}]
  servers:
    - {name: EDGE1, role: edge, site: london}
    - {name: HUB-LON, role: hub, site: london}
    - {name: MBX-LON, role: mailbox, site: london}
  receive_connectors:
    - {name: Internet, server: EDGE1, bind: ":25", permissions: [anonymous]}
  send_connectors:
    - {name: To Internet, address_spaces: ["*"], source: [EDGE1], cost: 1, smart_hosts: [smarthost.isp.test]}
  recipients:
    - {mail: alice@contoso.test, mailbox: MBX-LON}
    - {mail: vendor@contoso.test, type: contact, external: sales@vendor.test}
internet:
  dns:
    - "smarthost.isp.test. A 127.1.0.25"
  hosts:
    - {name: smarthost.isp.test, behaviour: accept}
`)
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
