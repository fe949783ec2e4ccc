// Package dsnsuite holds the DSN-* clause specs: the delivery status notifications a
// server sends its senders, read as a user's mail client would read them (the
// multipart/report structure, the per-message and per-recipient fields), on
// scenarios/edge-mx.yaml: alice@contoso.test relays through the Edge, and her DSNs
// arrive in her mailbox.
package dsnsuite

import (
	"fmt"
	"regexp"
	"strings"
	"sync/atomic"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/mailflow/mailflow/reference/dsn"
	"github.com/mailflow/mailflow/scenario"
	f "github.com/mailflow/mailflow/suites/framework"
)

var seq atomic.Int64

// world is edge-mx.yaml with fabrikam.test's MX refusing nobody@ (550 5.1.1) and
// deferring later@.
func world() *f.World {
	GinkgoHelper()
	w := f.StartShipped("edge-mx.yaml")
	mx := w.MustHost("mx1.fabrikam.test")
	for rcpt, b := range map[string]string{
		"nobody@fabrikam.test": `{action: reject, stage: rcpt, code: 550, enhanced: 5.1.1, text: "No such user here"}`,
		"later@fabrikam.test":  `{action: defer, stage: rcpt, code: 451, enhanced: 4.2.1, text: "Mailbox busy"}`,
	} {
		bh, err := scenario.ParseBehaviour(b)
		Expect(err).NotTo(HaveOccurred())
		mx.SetRecipientBehaviour(rcpt, bh)
	}
	return w
}

func submit(w *f.World, rcpts ...string) (*f.Session, string) {
	GinkgoHelper()
	id := fmt.Sprintf("dsn-%d@contoso.test", seq.Add(1))
	return w.Submit(f.FromOrg, id, rcpts...), id
}

// dsns are the DSNs in alice's mailbox, raw and parsed, in arrival order.
func dsns(w *f.World) (raw [][]byte, parsed []*dsn.Parsed) {
	for _, m := range w.Mailbox("alice@contoso.test") {
		if p, err := dsn.Parse(m); err == nil && len(p.Recipients) > 0 {
			raw, parsed = append(raw, m), append(parsed, p)
		}
	}
	return raw, parsed
}

// awaitDSNs waits until alice holds n DSNs and returns them.
func awaitDSNs(w *f.World, s *f.Session, n int, wait time.Duration) ([][]byte, []*dsn.Parsed) {
	GinkgoHelper()
	Eventually(func() int { _, p := dsns(w); return len(p) }).WithTimeout(wait).Should(Equal(n), s.Explain("%d DSN(s) in the sender's mailbox", n))
	return dsns(w)
}

func field(fields map[string]string, name string) string { return dsn.Field(fields, name) }

var _ = Describe("DSNs", Label("dsn"), func() {
	It("sends a DSN from the null reverse-path to the original sender, source route reduced", f.Clause("DSN-001"), func() {
		w := world()
		w.RequireRelay(f.FromOrg, "nobody@fabrikam.test")
		s := w.DialVia(f.FromOrg)
		Expect(s.Cmd("MAIL FROM:<@relay.contoso.test:alice@contoso.test>")).To(f.HaveClass(2), s.Explain("a source route in the reverse-path is accepted (RFC 5321 §4.1.1.2)"))
		Expect(s.Cmd("RCPT TO:<nobody@fabrikam.test>")).To(f.HaveClass(2))
		_, end := s.Data("Subject: source route\r\nMessage-ID: <route@contoso.test>\r\n\r\nHi.\r\n")
		Expect(end).To(f.HaveClass(2))
		raw, _ := awaitDSNs(w, s, 1, w.After(0))
		Expect(string(raw[0])).To(HavePrefix("Return-Path: <>"), s.Explain("the DSN came from the null reverse-path"))
	})

	It("sends no DSN about a message from the null reverse-path", f.Clause("DSN-002"), func() {
		w := world()
		w.RequireRelay(f.FromOrg, "nobody@fabrikam.test")
		s := w.DialVia(f.FromOrg)
		Expect(s.Cmd("MAIL FROM:<>")).To(f.HaveClass(2))
		Expect(s.Cmd("RCPT TO:<nobody@fabrikam.test>")).To(f.HaveClass(2))
		_, end := s.Data("Subject: a bounce\r\nMessage-ID: <null@contoso.test>\r\n\r\nHi.\r\n")
		Expect(end).To(f.HaveClass(2))
		Eventually(func() int { return w.MustHost("mx1.fabrikam.test").Connections() }).Should(BeNumerically(">=", 1), s.Explain("delivery was tried and refused"))
		// A server may keep the undeliverable bounce for its postmaster; it must send
		// nothing about it.
		Consistently(func() int { return len(w.Mailbox("alice@contoso.test")) + len(w.Received("mx1.fabrikam.test")) }).WithTimeout(w.Quiet(5*time.Second)).
			Should(BeZero(), s.Explain("no DSN went anywhere"))
	})

	It("is a multipart/report with a human part, a delivery-status part and the original", f.Clause("DSN-003"), func() {
		w := world()
		s, _ := submit(w, "nobody@fabrikam.test")
		_, p := awaitDSNs(w, s, 1, w.After(0))
		Expect(p[0].ContentType).To(Equal("multipart/report"), s.Explain("Content-Type multipart/report"))
		Expect(p[0].ReportType).To(Equal("delivery-status"), s.Explain("report-type=delivery-status"))
		Expect(len(p[0].PartTypes)).To(BeNumerically(">=", 2))
		Expect(p[0].PartTypes[0]).To(HavePrefix("text/"), s.Explain("the first part is for people"))
		Expect(p[0].PartTypes[1]).To(Equal("message/delivery-status"), s.Explain("the second part is message/delivery-status"))
		if len(p[0].PartTypes) > 2 {
			Expect(p[0].PartTypes[2]).To(BeElementOf("message/rfc822", "text/rfc822-headers"), s.Explain("the third part returns the message or its header"))
		}
	})

	It("names the reporting MTA, and the arrival date", f.Clause("DSN-004"), func() {
		w := world()
		s, _ := submit(w, "nobody@fabrikam.test")
		_, p := awaitDSNs(w, s, 1, w.After(0))
		rm := f.Typed(field(p[0].PerMessage, "Reporting-MTA"))
		Expect(rm).To(MatchRegexp(`^dns;[a-z0-9.-]+\.[a-z]+$`), s.Explain("Reporting-MTA: dns; <fqdn>"))
		f.Should(field(p[0].PerMessage, "Arrival-Date") != "", s, "Arrival-Date is present")
		// No ENVID was given, so no Original-Envelope-Id may appear.
		Expect(field(p[0].PerMessage, "Original-Envelope-Id")).To(BeEmpty(), s.Explain("no Original-Envelope-Id without ENVID"))
	})

	It("names each failed recipient as accepted, with Action and Status", f.Clause("DSN-005"), func() {
		w := world()
		s, _ := submit(w, "NoBody@fabrikam.test")
		_, p := awaitDSNs(w, s, 1, w.After(0))
		r := p[0].Recipients[0]
		Expect(f.Typed(field(r, "Final-Recipient"))).To(Equal("rfc822;NoBody@fabrikam.test"), s.Explain("Final-Recipient as accepted, letter case kept"))
		Expect(field(r, "Action")).NotTo(BeEmpty())
		Expect(field(r, "Status")).To(MatchRegexp(`^\d\.\d{1,3}\.\d{1,3}$`), s.Explain("Status: d.d.d"))
		Expect(field(r, "Original-Recipient")).To(BeEmpty(), s.Explain("no Original-Recipient without ORCPT"))
	})

	It("says failed for an abandoned recipient and delayed for a delay notice", f.Clause("DSN-006", "DSN-007", "DSN-009"), f.Long, func() {
		w := world()
		s, _ := submit(w, "nobody@fabrikam.test", "later@fabrikam.test")
		_, p := awaitDSNs(w, s, 1, w.After(0))
		failed := p[0].Recipients[0]
		Expect(strings.ToLower(field(failed, "Action"))).To(Equal("failed"))
		Expect(field(failed, "Status")).To(HavePrefix("5."), s.Explain("a permanent failure has a 5.x.x status"))
		Expect(field(failed, "Will-Retry-Until")).To(BeEmpty(), s.Explain("no Will-Retry-Until in a failed DSN"))

		t := w.Timers("EDGE1")
		_, p = awaitDSNs(w, s, 2, w.After(t.DelayNotification+time.Minute))
		delayed := p[1].Recipients[0]
		Expect(strings.ToLower(field(delayed, "Action"))).To(Equal("delayed"), s.Explain("the delay notice says delayed"))
		Expect(f.Typed(field(delayed, "Final-Recipient"))).To(Equal("rfc822;later@fabrikam.test"))
		Expect(field(delayed, "Status")).To(HavePrefix("4."), s.Explain("a delay has a 4.x.x status"))
	})

	It("names the remote MTA and its reply when a remote server refused, and no remote MTA otherwise", f.Clause("DSN-008"), func() {
		w := world()
		s, _ := submit(w, "nobody@fabrikam.test")
		_, p := awaitDSNs(w, s, 1, w.After(0))
		r := p[0].Recipients[0]
		Expect(f.Typed(field(r, "Remote-MTA"))).To(HavePrefix("dns;"), s.Explain("Remote-MTA: dns; <host>"))
		diag := f.Typed(field(r, "Diagnostic-Code"))
		f.Should(strings.HasPrefix(diag, "smtp;") && strings.Contains(diag, "No such user here"), s, "Diagnostic-Code carries the remote reply verbatim, got %q", diag)

		s, _ = submit(w, "bob@nonexistent.test")
		_, p = awaitDSNs(w, s, 2, w.After(0))
		Expect(field(p[1].Recipients[0], "Remote-MTA")).To(BeEmpty(), s.Explain("no Remote-MTA when no remote MTA was involved (a nonexistent domain)"))
	})

	It("reports each failed recipient in exactly one DSN, those failing together in one", f.Clause("DSN-011"), func() {
		w := world()
		bh, err := scenario.ParseBehaviour(`{action: reject, stage: rcpt, code: 550, enhanced: 5.1.1}`)
		Expect(err).NotTo(HaveOccurred())
		w.MustHost("mx1.fabrikam.test").SetRecipientBehaviour("nobody2@fabrikam.test", bh)
		s, _ := submit(w, "nobody@fabrikam.test", "nobody2@fabrikam.test", "bob@fabrikam.test")
		_, p := awaitDSNs(w, s, 1, w.After(0))
		Consistently(func() int { _, p := dsns(w); return len(p) }).WithTimeout(w.Quiet(time.Second)).Should(Equal(1), s.Explain("one DSN"))
		var failed []string
		for _, r := range p[0].Recipients {
			failed = append(failed, strings.ToLower(f.Typed(field(r, "Final-Recipient"))))
		}
		Expect(failed).To(ConsistOf("rfc822;nobody@fabrikam.test", "rfc822;nobody2@fabrikam.test"), s.Explain("both failed recipients, once each, in one DSN"))
	})

	It("comes from the postmaster of the default accepted domain", f.Clause("DSN-012"), func() {
		w := world()
		s, _ := submit(w, "nobody@fabrikam.test")
		raw, _ := awaitDSNs(w, s, 1, w.After(0))
		Expect(regexp.MustCompile(`(?mi)^From:.*postmaster@contoso\.test`).Match(raw[0])).To(BeTrue(), s.Explain("From: postmaster@contoso.test"))
	})
})

// dsnSession opens a session as alice and, since RFC 3461 binds only a server that
// offers DSN, makes the spec N/A when EDGE1's EHLO does not.
func dsnSession(w *f.World) *f.Session {
	GinkgoHelper()
	addr, err := w.Endpoint(f.FromOrg.Server, f.FromOrg.Connector)
	Expect(err).NotTo(HaveOccurred())
	s, _ := f.DialFrom(w.ClientIn(f.FromOrg.ClientIn), addr)
	ehlo := s.Cmd("EHLO %s", f.FromOrg.Helo)
	Expect(ehlo).To(f.HaveClass(2), s.Explain("EHLO accepted"))
	for _, l := range ehlo.Lines {
		if k, _, _ := strings.Cut(strings.TrimSpace(l), " "); strings.EqualFold(k, "DSN") {
			return s
		}
	}
	Skip("N/A: EDGE1 does not advertise DSN; RFC 3461's parameters bind only a server that does\n" + s.Transcript())
	return nil
}

// send runs one transaction with DSN parameters: mail is what follows MAIL FROM:<alice>
// ("RET=HDRS ENVID=x"), rcpts maps each recipient to what follows its RCPT TO. The
// body carries a line naming id, to tell a returned body from a returned header.
func send(s *f.Session, id, mail string, rcpts map[string]string) {
	GinkgoHelper()
	Expect(s.Cmd("MAIL FROM:<alice@contoso.test> %s", mail)).To(f.HaveClass(2), s.Explain("MAIL with %q accepted", mail))
	for r, params := range rcpts {
		Expect(s.Cmd("RCPT TO:<%s> %s", r, params)).To(f.HaveClass(2), s.Explain("RCPT %s with %q accepted", r, params))
	}
	_, end := s.Data("From: alice@contoso.test\r\nSubject: " + id + "\r\nMessage-ID: <" + id + ">\r\n\r\nbody-of-" + id + "\r\n")
	Expect(end).To(f.HaveClass(2), s.Explain("message accepted"))
}

// about finds the DSN whose returned content names message id.
func about(parsed []*dsn.Parsed, id string) *dsn.Parsed {
	for _, p := range parsed {
		if strings.Contains(string(p.Original), "<"+id+">") {
			return p
		}
	}
	return nil
}

// successNotice sends rcpt a message with NOTIFY=SUCCESS and expects one success DSN
// about it, which should say action, for the reason why.
func successNotice(w *f.World, rcpt, action, why string) *f.Session {
	GinkgoHelper()
	s := dsnSession(w)
	send(s, fmt.Sprintf("success-%d@contoso.test", seq.Add(1)), "", map[string]string{rcpt: "NOTIFY=SUCCESS"})
	_, p := awaitDSNs(w, s, 1, w.After(0))
	r := p[0].Recipients[0]
	Expect(f.Typed(field(r, "Final-Recipient"))).To(Equal("rfc822;"+rcpt), s.Explain("the DSN names %s", rcpt))
	got := strings.ToLower(field(r, "Action"))
	Expect(got).To(BeElementOf("delivered", "relayed"), s.Explain("a success notice: Action delivered or relayed"))
	// The clause asks for a success notice; which of the two it says is RFC 3461's
	// finer point (§5.2.2, §5.2.3).
	f.Should(got == action, s, "Action: %s (%s), got %s", action, why, got)
	Expect(field(r, "Status")).To(HavePrefix("2."), s.Explain("a success has a 2.x.x status"))
	return s
}

var _ = Describe("DSN parameters", Label("dsn"), func() {
	It("sends no DSN for NOTIFY=NEVER, and a failed one for NOTIFY=FAILURE", f.Clause("DSN-010"), func() {
		w := world()
		s := dsnSession(w)
		never, failure := fmt.Sprintf("never-%d@contoso.test", seq.Add(1)), fmt.Sprintf("failure-%d@contoso.test", seq.Add(1))
		send(s, never, "", map[string]string{"nobody@fabrikam.test": "NOTIFY=NEVER"})
		send(s, failure, "", map[string]string{"nobody@fabrikam.test": "NOTIFY=FAILURE"})
		_, p := awaitDSNs(w, s, 1, w.After(0))
		Expect(about(p, failure)).NotTo(BeNil(), s.Explain("the DSN is about the NOTIFY=FAILURE message"))
		// Both failed on their first attempt: a DSN about the first would be here by now.
		Consistently(func() int { _, p := dsns(w); return len(p) }).WithTimeout(w.Quiet(3*time.Second)).Should(Equal(1), s.Explain("no DSN about the NOTIFY=NEVER message"))
	})

	It("returns the header only with RET=HDRS, the whole message with RET=FULL, and the ENVID", f.Clause("DSN-010"), func() {
		w := world()
		s := dsnSession(w)
		hdrs, full := fmt.Sprintf("hdrs-%d@contoso.test", seq.Add(1)), fmt.Sprintf("full-%d@contoso.test", seq.Add(1))
		send(s, hdrs, "RET=HDRS ENVID=env-"+strings.Split(hdrs, "@")[0], map[string]string{"nobody@fabrikam.test": ""})
		send(s, full, "RET=FULL", map[string]string{"nobody@fabrikam.test": ""})
		_, p := awaitDSNs(w, s, 2, w.After(0))
		h, fl := about(p, hdrs), about(p, full)
		Expect(h).NotTo(BeNil(), s.Explain("a DSN returns the RET=HDRS message's header"))
		Expect(fl).NotTo(BeNil(), s.Explain("a DSN returns the RET=FULL message"))
		Expect(string(h.Original)).NotTo(ContainSubstring("body-of-"+hdrs), s.Explain("RET=HDRS: no body returned"))
		Expect(h.PartTypes).NotTo(ContainElement("message/rfc822"), s.Explain("RET=HDRS: no message/rfc822 part"))
		Expect(string(fl.Original)).To(ContainSubstring("body-of-"+full), s.Explain("RET=FULL: the body returned"))
		Expect(fl.PartTypes).To(ContainElement("message/rfc822"), s.Explain("RET=FULL: the message as message/rfc822"))
		Expect(field(h.PerMessage, "Original-Envelope-Id")).To(Equal("env-"+strings.Split(hdrs, "@")[0]), s.Explain("Original-Envelope-Id is the ENVID (RFC 3464 §2.2.1)"))
	})

	It("reports NOTIFY=SUCCESS as relayed when the next hop does not offer DSN", f.Clause("DSN-010"), func() {
		w := world()
		s := successNotice(w, "bob@fabrikam.test", "relayed", "mx1.fabrikam.test takes no DSN (RFC 3461 §5.2.2)")
		Expect(w.Received("mx1.fabrikam.test")).To(HaveLen(1), s.Explain("the message was delivered"))
	})

	It("reports NOTIFY=SUCCESS for a recipient of the organisation", f.Clause("DSN-010"), func() {
		w := world()
		// The reference delivers into its mailbox store (RFC 3461 §5.2.3); an MTA hands
		// the message to a stand-in Hub without DSN, which is relaying.
		if w.HasStore() {
			successNotice(w, "alice@contoso.test", "delivered", "final delivery into the mailbox")
		} else {
			successNotice(w, "alice@contoso.test", "relayed", "the stand-in Hub takes no DSN")
		}
	})

	It("passes NOTIFY, ORCPT, RET and ENVID on to a next hop that offers DSN", f.Clause("DSN-010"), func() {
		w := world()
		s := dsnSession(w)
		id := fmt.Sprintf("pass-%d@contoso.test", seq.Add(1))
		envid := "env-" + strings.Split(id, "@")[0]
		send(s, id, "RET=HDRS ENVID="+envid, map[string]string{"bob@dsn.test": "NOTIFY=SUCCESS,DELAY ORCPT=rfc822;Bob.Original@dsn.test"})
		Eventually(func() int { return len(w.Received("mx1.dsn.test")) }).WithTimeout(15*time.Second).Should(Equal(1), s.Explain("delivered to mx1.dsn.test"))
		var mail, rcpt string
		for _, ss := range w.MustHost("mx1.dsn.test").Sessions() {
			for _, l := range strings.Split(ss.Transcript, "\r\n") {
				switch u := strings.ToUpper(l); {
				case strings.HasPrefix(u, "C: MAIL FROM:"):
					mail = u
				case strings.HasPrefix(u, "C: RCPT TO:"):
					rcpt = u
				}
			}
		}
		Expect(mail).To(ContainSubstring("RET=HDRS"), "RET passed on: %s", mail)
		Expect(mail).To(ContainSubstring("ENVID="+strings.ToUpper(envid)), "ENVID passed on: %s", mail)
		Expect(rcpt).To(MatchRegexp(`NOTIFY=(SUCCESS,DELAY|DELAY,SUCCESS)(\s|$)`), "NOTIFY passed on: %s", rcpt)
		Expect(rcpt).To(ContainSubstring("ORCPT=RFC822;BOB.ORIGINAL@DSN.TEST"), "ORCPT passed on: %s", rcpt)
	})
})
