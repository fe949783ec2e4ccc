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
		s := w.DialVia(f.FromOrg)
		Expect(s.Cmd("MAIL FROM:<@relay.contoso.test:alice@contoso.test>")).To(f.HaveClass(2), s.Explain("a source route in the reverse-path is accepted (RFC 5321 §4.1.1.2)"))
		Expect(s.Cmd("RCPT TO:<nobody@fabrikam.test>")).To(f.HaveClass(2))
		_, end := s.Data("Subject: source route\r\nMessage-ID: <route@contoso.test>\r\n\r\nHi.\r\n")
		Expect(end).To(f.HaveClass(2))
		raw, _ := awaitDSNs(w, s, 1, 15*time.Second)
		Expect(string(raw[0])).To(HavePrefix("Return-Path: <>"), s.Explain("the DSN came from the null reverse-path"))
	})

	It("sends no DSN about a message from the null reverse-path", f.Clause("DSN-002"), func() {
		w := world()
		s := w.DialVia(f.FromOrg)
		Expect(s.Cmd("MAIL FROM:<>")).To(f.HaveClass(2))
		Expect(s.Cmd("RCPT TO:<nobody@fabrikam.test>")).To(f.HaveClass(2))
		_, end := s.Data("Subject: a bounce\r\nMessage-ID: <null@contoso.test>\r\n\r\nHi.\r\n")
		Expect(end).To(f.HaveClass(2))
		Eventually(func() int { return w.MustHost("mx1.fabrikam.test").Connections() }).Should(BeNumerically(">=", 1), s.Explain("delivery was tried and refused"))
		// A server may keep the undeliverable bounce for its postmaster; it must send
		// nothing about it.
		Consistently(func() int { return len(w.Mailbox("alice@contoso.test")) + len(w.Received("mx1.fabrikam.test")) }).WithTimeout(5*time.Second).
			Should(BeZero(), s.Explain("no DSN went anywhere"))
	})

	It("is a multipart/report with a human part, a delivery-status part and the original", f.Clause("DSN-003"), func() {
		w := world()
		s, _ := submit(w, "nobody@fabrikam.test")
		_, p := awaitDSNs(w, s, 1, 15*time.Second)
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
		_, p := awaitDSNs(w, s, 1, 15*time.Second)
		rm := f.Typed(field(p[0].PerMessage, "Reporting-MTA"))
		Expect(rm).To(MatchRegexp(`^dns;[a-z0-9.-]+\.[a-z]+$`), s.Explain("Reporting-MTA: dns; <fqdn>"))
		f.Should(field(p[0].PerMessage, "Arrival-Date") != "", s, "Arrival-Date is present")
		// No ENVID was given, so no Original-Envelope-Id may appear.
		Expect(field(p[0].PerMessage, "Original-Envelope-Id")).To(BeEmpty(), s.Explain("no Original-Envelope-Id without ENVID"))
	})

	It("names each failed recipient as accepted, with Action and Status", f.Clause("DSN-005"), func() {
		w := world()
		s, _ := submit(w, "NoBody@fabrikam.test")
		_, p := awaitDSNs(w, s, 1, 15*time.Second)
		r := p[0].Recipients[0]
		Expect(f.Typed(field(r, "Final-Recipient"))).To(Equal("rfc822;NoBody@fabrikam.test"), s.Explain("Final-Recipient as accepted, letter case kept"))
		Expect(field(r, "Action")).NotTo(BeEmpty())
		Expect(field(r, "Status")).To(MatchRegexp(`^\d\.\d{1,3}\.\d{1,3}$`), s.Explain("Status: d.d.d"))
		Expect(field(r, "Original-Recipient")).To(BeEmpty(), s.Explain("no Original-Recipient without ORCPT"))
	})

	It("says failed for an abandoned recipient and delayed for a delay notice", f.Clause("DSN-006", "DSN-007", "DSN-009"), func() {
		w := world()
		s, _ := submit(w, "nobody@fabrikam.test", "later@fabrikam.test")
		_, p := awaitDSNs(w, s, 1, 15*time.Second)
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
		_, p := awaitDSNs(w, s, 1, 15*time.Second)
		r := p[0].Recipients[0]
		Expect(f.Typed(field(r, "Remote-MTA"))).To(HavePrefix("dns;"), s.Explain("Remote-MTA: dns; <host>"))
		diag := f.Typed(field(r, "Diagnostic-Code"))
		f.Should(strings.HasPrefix(diag, "smtp;") && strings.Contains(diag, "No such user here"), s, "Diagnostic-Code carries the remote reply verbatim, got %q", diag)

		s, _ = submit(w, "bob@nonexistent.test")
		_, p = awaitDSNs(w, s, 2, 15*time.Second)
		Expect(field(p[1].Recipients[0], "Remote-MTA")).To(BeEmpty(), s.Explain("no Remote-MTA when no remote MTA was involved (a nonexistent domain)"))
	})

	It("reports each failed recipient in exactly one DSN, those failing together in one", f.Clause("DSN-011"), func() {
		w := world()
		bh, err := scenario.ParseBehaviour(`{action: reject, stage: rcpt, code: 550, enhanced: 5.1.1}`)
		Expect(err).NotTo(HaveOccurred())
		w.MustHost("mx1.fabrikam.test").SetRecipientBehaviour("nobody2@fabrikam.test", bh)
		s, _ := submit(w, "nobody@fabrikam.test", "nobody2@fabrikam.test", "bob@fabrikam.test")
		_, p := awaitDSNs(w, s, 1, 15*time.Second)
		Consistently(func() int { _, p := dsns(w); return len(p) }).WithTimeout(time.Second).Should(Equal(1), s.Explain("one DSN"))
		var failed []string
		for _, r := range p[0].Recipients {
			failed = append(failed, strings.ToLower(f.Typed(field(r, "Final-Recipient"))))
		}
		Expect(failed).To(ConsistOf("rfc822;nobody@fabrikam.test", "rfc822;nobody2@fabrikam.test"), s.Explain("both failed recipients, once each, in one DSN"))
	})

	It("comes from the postmaster of the default accepted domain", f.Clause("DSN-012"), func() {
		w := world()
		s, _ := submit(w, "nobody@fabrikam.test")
		raw, _ := awaitDSNs(w, s, 1, 15*time.Second)
		Expect(regexp.MustCompile(`(?mi)^From:.*postmaster@contoso\.test`).Match(raw[0])).To(BeTrue(), s.Explain("From: postmaster@contoso.test"))
	})
})
