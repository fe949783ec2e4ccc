// Package smarthostsuite holds the SMART-* clause specs: mail for a send connector's
// address space goes to its smart hosts, with STARTTLS and AUTH when configured, and
// stays queued rather than going anywhere else when they refuse.
package smarthostsuite

import (
	"fmt"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/mailflow/mailflow/fixtures/internet"
	"github.com/mailflow/mailflow/profiles"
	"github.com/mailflow/mailflow/reference/dsn"
	"github.com/mailflow/mailflow/scenario"
	f "github.com/mailflow/mailflow/suites/framework"
	"github.com/mailflow/mailflow/trace"
)

// world is an Edge whose "From Org" connector (127.66.0.0/16) may relay, with the send
// connector and Internet hosts given.
func world(connector, hosts string) *f.World {
	GinkgoHelper()
	// Every spec here relays out through From Org, by the client's address, and
	// judges the smart hosts: N/A, before any MTA starts, where either is missing.
	f.Require(profiles.FeatureRelayByAddress)
	f.Require(profiles.FeatureSmartHost)
	return f.Start("smarthost.yaml", fmt.Sprintf(`
org:
  accepted_domains:
    - {domain: contoso.test, type: authoritative, default: true}
  sites:
    - {name: london}
  servers:
    - {name: EDGE1, role: edge, retry_interval: 10m}
    - {name: HUB1, role: hub, site: london}
    - {name: MBX1, role: mailbox, site: london}
  receive_connectors:
    - {name: From Org, server: EDGE1, bind: ":25", permissions: [anonymous], accept_any_recipient: true, remote_ip_ranges: [127.66.0.0/16]}
  send_connectors:
    - %s
  recipients:
    - {mail: alice@contoso.test, mailbox: MBX1}
internet:
  dns:
    - "smarthost.isp.test. A 127.1.0.25"
    - "smarthost2.isp.test. A 127.1.0.26"
    - "dead.isp.test. A 127.1.0.27"
    - "fabrikam.test. MX 10 mx1.fabrikam.test."
    - "mx1.fabrikam.test. A 127.1.0.10"
  hosts:
    - {name: mx1.fabrikam.test, behaviour: accept}
%s`, connector, hosts))
}

const accepting = `    - {name: smarthost.isp.test, behaviour: accept}
`

// submit sends one message from the organisation side of the Edge.
func submit(w *f.World, rcpts ...string) *f.Session {
	GinkgoHelper()
	return w.Submit(f.FromOrg, "out@contoso.test", rcpts...)
}

func queued(w *f.World) int {
	return w.Queue("EDGE1")
}

var _ = Describe("Smart-host forwarding", Label("smarthost"), func() {
	It("sends the address space's mail to the smart host and never to the MX", f.Clause("SMART-001"), func() {
		w := world(`{name: Out, address_spaces: ["*"], source: [EDGE1], smart_hosts: [smarthost.isp.test]}`, accepting)
		s := submit(w, "bob@fabrikam.test")
		Eventually(func() int { return len(w.Received("smarthost.isp.test")) }).Should(Equal(1), s.Explain("the smart host receives the message"))
		Expect(w.MustHost("mx1.fabrikam.test").Connections()).To(BeZero(), s.Explain("the recipient domain's MX sees no connection"))
		if w.Traced() {
			// A server's events can reach the suite after the bytes reached the host.
			Eventually(func() []trace.Event { return w.Events(trace.Send) }).Should(HaveLen(1), s.Explain("one SEND event"))
			routes := w.Events(trace.Route)
			Expect(routes).To(HaveLen(1), s.Explain("one ROUTE event"))
			Expect(routes[0].Connector).To(Equal("Out"), s.Explain("ROUTE names the send connector"))
			Expect(routes[0].Detail).To(ContainSubstring(`address space "*"`), s.Explain("ROUTE says why the connector was chosen"))
		}
	})

	It("connects to an IP-literal smart host without looking up MX", f.Clause("SMART-002"), func() {
		w := world(`{name: Out, address_spaces: ["*"], source: [EDGE1], smart_hosts: ["[127.1.0.25]"]}`, accepting)
		s := submit(w, "bob@fabrikam.test")
		Eventually(func() int { return len(w.Received("smarthost.isp.test")) }).Should(Equal(1), s.Explain("the literal's host receives the message"))
		for _, q := range w.DNS().Queries() {
			Expect(q.Type).NotTo(Equal("MX"), s.Explain("no MX query at all, got one for %s", q.Name))
		}
	})

	It("resolves an FQDN smart host as an MX or A record", f.Clause("SMART-002"), func() {
		w := world(`{name: Out, address_spaces: ["*"], source: [EDGE1], smart_hosts: [smarthost.isp.test]}`, accepting)
		s := submit(w, "bob@fabrikam.test")
		Eventually(func() int { return len(w.Received("smarthost.isp.test")) }).Should(Equal(1), s.Explain("delivered"))
		var names []string
		for _, q := range w.DNS().Queries() {
			names = append(names, q.Type+" "+q.Name)
		}
		Expect(names).To(ContainElement("A smarthost.isp.test."), s.Explain("the smart host's name was resolved"))
		Expect(names).NotTo(ContainElement("MX fabrikam.test."), s.Explain("the recipient domain was not resolved"))
	})

	It("keeps the message queued for the smart host while it defers", f.Clause("SMART-003"), func() {
		w := world(`{name: Out, address_spaces: ["*"], source: [EDGE1], smart_hosts: [smarthost.isp.test]}`,
			`    - {name: smarthost.isp.test, behaviour: {action: defer, stage: rcpt, code: 451, enhanced: 4.3.2, text: "try later"}}
`)
		s := submit(w, "bob@fabrikam.test")
		smarthost := w.MustHost("smarthost.isp.test")
		Eventually(func() bool { return sawRcpt(smarthost) }).Should(BeTrue(), s.Explain("the smart host was tried (and deferred at RCPT)"))
		if w.Traced() {
			Eventually(func() []trace.Event { return w.Events(trace.Defer) }).ShouldNot(BeEmpty(), s.Explain("a DEFER event"))
			Expect(w.Events(trace.Fail)).To(BeEmpty(), s.Explain("no failure before expiry"))
		}
		Eventually(func() int { return queued(w) }).Should(Equal(1), s.Explain("the message stays queued"))
		Expect(w.MustHost("mx1.fabrikam.test").Connections()).To(BeZero(), s.Explain("no fallback to the MX"))
		// A delay notice is allowed (DSN-006); a failure report before expiry is not.
		Expect(failedDSNs(w.Mailbox("alice@contoso.test"))).To(BeEmpty(), s.Explain("no failed DSN to the sender"))

		smarthost.SetBehaviour(scenario.Behaviour{Action: "accept"})
		if w.Clock().IsFake() {
			w.Clock().Advance(9 * time.Minute)
			Consistently(func() int { return len(w.Received("smarthost.isp.test")) }).WithTimeout(200*time.Millisecond).Should(BeZero(), s.Explain("no retry before the interval"))
			w.Clock().Advance(time.Minute)
			Eventually(func() int { return len(w.Received("smarthost.isp.test")) }).Should(Equal(1), s.Explain("delivered on retry after the interval"))
		} else {
			// Real time: the target's short retry interval, a few times over for an
			// MTA's queue manager to get round to it.
			Eventually(func() int { return len(w.Received("smarthost.isp.test")) }).WithTimeout(4*w.RetryInterval()+30*time.Second).
				Should(Equal(1), s.Explain("delivered on a retry (retry interval %v on this target)", w.RetryInterval()))
		}
		Expect(w.MustHost("mx1.fabrikam.test").Connections()).To(BeZero(), s.Explain("still no fallback to the MX"))
		Expect(failedDSNs(w.Mailbox("alice@contoso.test"))).To(BeEmpty(), s.Explain("still no failed DSN to the sender"))
		Eventually(func() int { return queued(w) }).Should(BeZero())
	})

	It("fails a recipient the smart host rejects, with Remote-MTA and Diagnostic-Code in the DSN", f.Clause("SMART-004"), func() {
		w := world(`{name: Out, address_spaces: ["*"], source: [EDGE1], smart_hosts: [smarthost.isp.test]}`,
			`    - name: smarthost.isp.test
      behaviour: accept
      recipients:
        bob@fabrikam.test: {action: reject, code: 550, enhanced: 5.1.1, text: "no such user here"}
`)
		s := submit(w, "bob@fabrikam.test", "carol@fabrikam.test")
		Eventually(func() int { return len(w.Received("smarthost.isp.test")) }).Should(Equal(1), s.Explain("the accepted recipient is delivered"))
		Expect(w.Received("smarthost.isp.test")[0].RcptTo).To(Equal([]string{"carol@fabrikam.test"}))
		Eventually(func() int { return len(w.Mailbox("alice@contoso.test")) }).Should(Equal(1), s.Explain("a DSN reaches the sender's mailbox"))
		d := w.Mailbox("alice@contoso.test")[0]
		Expect(string(d)).To(HavePrefix("Return-Path: <>"), s.Explain("the DSN has a null reverse-path"))
		p, err := dsn.Parse(d)
		Expect(err).NotTo(HaveOccurred())
		Expect(p.Recipients).To(HaveLen(1), s.Explain("one failed recipient block"))
		blk := p.Recipients[0]
		// RFC 3464 fields are "type; value" with optional white space around the ";".
		Expect(f.Typed(dsn.Field(blk, "Final-Recipient"))).To(Equal("rfc822;bob@fabrikam.test"), s.Explain("Final-Recipient is the failed recipient"))
		Expect(strings.ToLower(dsn.Field(blk, "Action"))).To(Equal("failed"), s.Explain("Action: failed"))
		Expect(dsn.Field(blk, "Status")).To(HavePrefix("5."), s.Explain("a permanent Status"))
		Expect(f.Typed(dsn.Field(blk, "Remote-MTA"))).To(Equal("dns;smarthost.isp.test"), s.Explain("Remote-MTA names the smart host"))
		Expect(f.Typed(dsn.Field(blk, "Diagnostic-Code"))).To(Equal("smtp;550 5.1.1 no such user here"), s.Explain("Diagnostic-Code is the smart host's reply"))
		if st := dsn.Field(blk, "Status"); st != "5.1.1" {
			f.Info("Status %s where the smart host answered 5.1.1", st)
		}
	})

	It("uses another listed smart host when the first cannot be reached", f.Clause("SMART-005"), func() {
		w := world(`{name: Out, address_spaces: ["*"], source: [EDGE1], smart_hosts: [dead.isp.test, smarthost2.isp.test]}`,
			`    - {name: smarthost2.isp.test, behaviour: accept}
`)
		s := submit(w, "bob@fabrikam.test")
		Eventually(func() int { return len(w.Received("smarthost2.isp.test")) }).Should(Equal(1), s.Explain("the second smart host receives it in the same attempt"))
		Expect(w.Events(trace.Defer)).To(BeEmpty(), s.Explain("no retry was needed"))
	})

	It("does EHLO, STARTTLS and AUTH before MAIL when basic auth is configured", f.Clause("SMART-006"), func() {
		w := world(`{name: Out, address_spaces: ["*"], source: [EDGE1], smart_hosts: [smarthost.isp.test], tls: true, auth: {username: edge1, password: s3cret}}`,
			`    - {name: smarthost.isp.test, behaviour: accept, tls: true, auth: {username: edge1, password: s3cret}}
`)
		s := submit(w, "bob@fabrikam.test")
		Eventually(func() int { return len(w.Received("smarthost.isp.test")) }).Should(Equal(1), s.Explain("delivered to the smart host"))
		m := w.Received("smarthost.isp.test")[0]
		Expect(m.TLS).To(BeTrue(), s.Explain("the smart host saw TLS"))
		Expect(m.AuthUser).To(Equal("edge1"), s.Explain("the smart host saw an authenticated submission"))
		sess := w.MustHost("smarthost.isp.test").Sessions()
		Expect(sess).NotTo(BeEmpty())
		tr := sess[len(sess)-1].Transcript
		Expect(strings.Index(tr, "STARTTLS")).To(BeNumerically(">", strings.Index(tr, "EHLO")), s.Explain("EHLO before STARTTLS:\n%s", tr))
	})
})

// sawRcpt says whether a host has seen a RCPT command (whatever it answered).
func sawRcpt(h *internet.Host) bool {
	for _, ss := range h.Sessions() {
		if strings.Contains(strings.ToUpper(ss.Transcript), "RCPT TO") {
			return true
		}
	}
	return false
}

// failedDSNs are the messages among ms that report a failure: a multipart/report with a
// recipient whose Action is failed, or a notice that is not a report and does not say
// it is about a delay (an MTA's plain-text bounce).
func failedDSNs(ms [][]byte) []string {
	var out []string
	for _, m := range ms {
		p, err := dsn.Parse(m)
		if err != nil || len(p.Recipients) == 0 {
			subj := ""
			if p != nil {
				subj = p.Header["Subject"]
			}
			if !strings.Contains(strings.ToLower(subj+string(m)), "delay") {
				out = append(out, fmt.Sprintf("%.200s", m))
			}
			continue
		}
		for _, r := range p.Recipients {
			if strings.EqualFold(dsn.Field(r, "Action"), "failed") {
				out = append(out, fmt.Sprintf("failed DSN for %s: %s", dsn.Field(r, "Final-Recipient"), dsn.Field(r, "Status")))
			}
		}
	}
	return out
}
