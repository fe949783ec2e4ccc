package filtersuite

import (
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/mailflow/mailflow/fixtures/dnsfake"
	"github.com/mailflow/mailflow/profiles"
	"github.com/mailflow/mailflow/scenario"
	f "github.com/mailflow/mailflow/suites/framework"
	"github.com/mailflow/mailflow/trace"
)

var _ = Describe("Connection filtering", Label("filter"), func() {
	It("queries the DNSBL for the client's reversed address", f.Clause("FILTER-001"), func() {
		w := startDNSBL()
		client := w.ClientIn(listedNet)
		w.DNS().ResetQueries()
		s := from(w, client, "Internet")
		s.Cmd("MAIL FROM:<bob@fabrikam.test>")
		s.Cmd("RCPT TO:<alice@contoso.test>")
		name := reversed(client, zoneBL)
		Eventually(queried(w, name)).Should(BeTrue(), s.Explain("an A query for %s in the DNS log (client %s)", name, client))
	})

	It("refuses a listed client with 5yz 5.7.1", f.Clause("FILTER-002"), func() {
		w := startDNSBL()
		client := w.ClientIn(listedNet)
		list(w, zoneBL, client, "", "")
		s := from(w, client, "Internet")
		Expect(s.Cmd("MAIL FROM:<bob@fabrikam.test>")).To(f.HaveClass(2), s.Explain("MAIL accepted: the refusal waits for RCPT"))
		r := s.Cmd("RCPT TO:<alice@contoso.test>")
		Expect(r).To(f.HaveClass(5, "5.7.1"), s.Explain("a listed client is refused with 5yz 5.7.1"))
		if w.Traced() {
			Eventually(func() []trace.Event { return agentEvents(w, trace.Fail, agentConnFilter) }).Should(HaveLen(1), s.Explain("one FAIL event naming the %s", agentConnFilter))
		}
	})

	It("accepts a client the DNSBL does not list (NXDOMAIN)", f.Clause("FILTER-003"), func() {
		w := startDNSBL()
		client := w.ClientIn(listedNet)
		s := from(w, client, "Internet")
		Expect(s.Cmd("MAIL FROM:<bob@fabrikam.test>")).To(f.HaveClass(2), s.Explain("MAIL accepted"))
		Expect(s.Cmd("RCPT TO:<alice@contoso.test>")).To(f.HaveClass(2), s.Explain("NXDOMAIN from the DNSBL: not listed, the recipient is accepted"))
		id, msg := message("not listed")
		_, end := s.Data(msg)
		Expect(end).To(f.HaveClass(2), s.Explain("the message is accepted"))
		Expect(queried(w, reversed(client, zoneBL))()).To(BeTrue(), s.Explain("the DNSBL was asked (and answered NXDOMAIN)"))
		delivered(w, s, "alice@contoso.test", id)
	})

	It("gives the zone's TXT reason in the refusal", f.Clause("FILTER-004"), func() {
		w := startDNSBL()
		client := w.ClientIn(listedNet)
		reason := "mailflow-reason " + client.String() + " see http://bl.mailflow.test/"
		list(w, zoneBL, client, "", reason)
		s := from(w, client, "Internet")
		s.Cmd("MAIL FROM:<bob@fabrikam.test>")
		r := s.Cmd("RCPT TO:<alice@contoso.test>")
		Expect(r).To(f.HaveClass(5), s.Explain("a listed client is refused"))
		f.Should(containsText(r, reason), s, "the refusal %q does not give the zone's TXT reason %q", r, reason)
	})

	DescribeTable("acts only on the configured return codes", f.Clause("FILTER-005"),
		func(zone, code string, refused bool) {
			w := start()
			client := w.ClientIn(listedNet)
			list(w, zone, client, code, "")
			s := from(w, client, "Internet")
			s.Cmd("MAIL FROM:<bob@fabrikam.test>")
			r := s.Cmd("RCPT TO:<alice@contoso.test>")
			if refused {
				Expect(r).To(f.HaveClass(5, "5.7.1"), s.Explain("%s answering %s lists the client", zone, code))
			} else {
				Expect(r).To(f.HaveClass(2), s.Explain("%s answering %s does not list the client", zone, code))
			}
		},
		Entry("only 127.0.0.4 matches: 127.0.0.2 passes", zoneCodes, "127.0.0.2", false),
		Entry("only 127.0.0.4 matches: 127.0.0.4 refused", zoneCodes, "127.0.0.4", true),
		Entry("bitmask 127.0.0.4: 127.0.0.2 passes", zoneBits, "127.0.0.2", false),
		Entry("bitmask 127.0.0.4: 127.0.0.6 refused", zoneBits, "127.0.0.6", true),
	)

	Describe("defers the refusal to RCPT", func() {
		It("refuses a listed client's recipients but postmaster, which gets the message", f.Clause("FILTER-006"), func() {
			w := start()
			client := w.ClientIn(listedNet)
			list(w, zoneBL, client, "", "")
			s := from(w, client, "Internet")
			Expect(s.Cmd("MAIL FROM:<bob@fabrikam.test>")).To(f.HaveClass(2), s.Explain("MAIL accepted: nothing is refused before RCPT"))
			Expect(s.Cmd("RCPT TO:<alice@contoso.test>")).To(f.HaveReply(550, "5.7.1"), s.Explain("550 5.7.1 at RCPT"))
			Expect(s.Cmd("RCPT TO:<postmaster@contoso.test>")).To(f.HaveClass(2), s.Explain("postmaster, a bypassed recipient, still gets 250"))
			id, msg := message("to postmaster from a listed client")
			_, end := s.Data(msg)
			Expect(end).To(f.HaveClass(2), s.Explain("the message for postmaster is accepted"))
			delivered(w, s, "postmaster@contoso.test", id)
			notDelivered(w, s, "alice@contoso.test", id)
		})

		It("lets a client on the IP Allow list pass a block list provider", f.Clause("FILTER-006"), func() {
			w := start()
			client := w.ClientIn("127.93.0.0/16")
			list(w, zoneBL, client, "", "")
			s := from(w, client, "Internet")
			s.Cmd("MAIL FROM:<bob@fabrikam.test>")
			Expect(s.Cmd("RCPT TO:<alice@contoso.test>")).To(f.HaveClass(2), s.Explain("a client on the IP Allow list bypasses the providers"))
		})

		It("refuses a client on the IP Block list at RCPT, postmaster excepted", f.Clause("FILTER-006"), func() {
			w := start()
			s := from(w, w.ClientIn("127.94.0.0/16"), "Internet")
			Expect(s.Cmd("MAIL FROM:<bob@fabrikam.test>")).To(f.HaveClass(2), s.Explain("MAIL accepted"))
			Expect(s.Cmd("RCPT TO:<alice@contoso.test>")).To(f.HaveReply(550, "5.7.1"), s.Explain("550 5.7.1 at RCPT"))
			Expect(s.Cmd("RCPT TO:<postmaster@contoso.test>")).To(f.HaveClass(2), s.Explain("postmaster still gets 250"))
		})
	})

	Describe("exempts authenticated and internal sessions", func() {
		It("takes mail from a listed client that authenticated, blocked sender and all", f.Clause("FILTER-007"), func() {
			w := start()
			client := w.ClientIn(listedNet)
			list(w, zoneBL, client, "", "")
			anon := from(w, client, "Internet")
			anon.Cmd("MAIL FROM:<bob@fabrikam.test>")
			Expect(anon.Cmd("RCPT TO:<alice@contoso.test>")).To(f.HaveClass(5, "5.7.1"), anon.Explain("the client is listed: an anonymous session is refused"))

			s := from(w, client, "Clients")
			Expect(s.StartTLS(w.ClientTLS())).To(f.HaveReply(220), s.Explain("STARTTLS"))
			s.Cmd("EHLO mail.fabrikam.test")
			Expect(s.Cmd("AUTH PLAIN %s", f.PlainAuth("alice@contoso.test", "alice-secret"))).To(f.HaveReply(235), s.Explain("AUTH PLAIN succeeds"))
			Expect(s.Cmd("MAIL FROM:<spammer@fabrikam.test>")).To(f.HaveClass(2), s.Explain("the sender filter leaves an authenticated session alone"))
			Expect(s.Cmd("RCPT TO:<alice@contoso.test>")).To(f.HaveClass(2), s.Explain("the connection filter leaves an authenticated session alone"))
			id, msg := message("authenticated from a listed client")
			_, end := s.Data(msg)
			Expect(end).To(f.HaveClass(2), s.Explain("accepted"))
			delivered(w, s, "alice@contoso.test", id)
		})

		It("takes mail from an internal server on a listed address", f.Clause("FILTER-007"), func() {
			w := start()
			client := w.ClientIn("127.66.0.0/16")
			list(w, zoneBL, client, "", "")
			s := from(w, client, "Internal")
			Expect(s.Cmd("MAIL FROM:<spammer@fabrikam.test>")).To(f.HaveClass(2), s.Explain("an internal server meets no sender filter"))
			Expect(s.Cmd("RCPT TO:<alice@contoso.test>")).To(f.HaveClass(2), s.Explain("an internal server meets no connection filter"))
			id, msg := message("internal from a listed address")
			_, end := s.Data(msg)
			Expect(end).To(f.HaveClass(2), s.Explain("accepted"))
			delivered(w, s, "alice@contoso.test", id)
			if w.Traced() {
				Expect(trace.Filter(w.Trace().Events(), func(e trace.Event) bool { return e.Source == trace.SourceAgent })).
					To(BeEmpty(), s.Explain("no agent acted on the session"))
			}
		})
	})

	Describe("a DNSBL that fails", func() {
		failing := func(w *f.World, mode dnsfake.Mode) {
			client := w.ClientIn(listedNet)
			list(w, zoneBL, client, "", "")
			w.DNS().SetFailure(reversed(client, zoneBL), mode)
			s := from(w, client, "Internet")
			s.Cmd("MAIL FROM:<bob@fabrikam.test>")
			r := s.Cmd("RCPT TO:<alice@contoso.test>")
			Expect(r.Code/100).NotTo(Equal(5), s.Explain("no permanent refusal when the DNSBL answers %s", mode))
			if r.Code/100 != 2 {
				return // a 4yz is allowed: the client tries again later
			}
			id, msg := message("DNSBL " + mode.String())
			_, end := s.Data(msg)
			Expect(end.Code/100).NotTo(Equal(5), s.Explain("no permanent refusal at end of data"))
			if end.Code/100 == 2 {
				delivered(w, s, "alice@contoso.test", id)
			}
		}

		It("never refuses permanently on SERVFAIL", f.Clause("FILTER-008"), func() {
			failing(startDNSBL(), dnsfake.ModeServfail)
		})

		It("never refuses permanently on a timeout", f.Clause("FILTER-008"), func() {
			f.Require(profiles.FeatureDNSBL)
			// The Edge waits a short while for the provider, so the spec does too.
			w := startWith(func(edge *scenario.Server) {
				edge.Agents.ConnectionFilter.LookupTimeout = scenario.Duration(300 * time.Millisecond)
			})
			failing(w, dnsfake.ModeTimeout)
		})
	})
})

// containsText says whether the reply's text, any line of it, holds s.
func containsText(r f.Reply, s string) bool {
	return strings.Contains(strings.Join(r.Lines, "\n"), s)
}
