package tracesuite

import (
	"bytes"
	"fmt"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/mailflow/mailflow/reference/dsn"
	f "github.com/mailflow/mailflow/suites/framework"
	"github.com/mailflow/mailflow/trace"
)

// outcome is what became of one message the spec sent: refused in the session,
// delivered, or accepted and then failed with a DSN to the sender.
type outcome struct {
	s        *f.Session
	enhanced bool     // ENHANCEDSTATUSCODES was advertised
	refusal  f.Reply  // the non-2xx reply that ended the transaction, if any
	copy     []byte   // the delivered copy
	dsn      []byte   // the DSN that came back for it
	status   []string // the Status of each failed recipient in that DSN
}

func (o outcome) stopped() bool { return o.refusal.Code/100 == 5 || len(o.status) > 0 }

func (o outcome) String() string {
	switch {
	case o.refusal.Code != 0:
		return "refused: " + o.refusal.String()
	case o.dsn != nil:
		return fmt.Sprintf("accepted, then failed by a DSN with Status %s", strings.Join(o.status, ", "))
	case o.copy != nil:
		return "delivered"
	}
	return "accepted, neither delivered nor failed yet"
}

// sendWithHops sends bob@fabrikam.test's message to alice through EDGE1 with hops
// Received headers already in it, and waits until it is refused, delivered, or failed
// by a DSN that reaches fabrikam.test's MX.
func sendWithHops(w *f.World, hops int) outcome {
	GinkgoHelper()
	id := fmt.Sprintf("hops-%d@fabrikam.test", hops)
	var b strings.Builder
	for i := hops; i > 0; i-- {
		fmt.Fprintf(&b, "Received: from hop%d.example.test ([192.0.2.%d])\r\n\tby hop%d.example.test with ESMTP id h%d; Mon, 2 Nov 2026 10:00:00 +0000\r\n", i-1, i%250+1, i, i)
	}
	c, _ := w.Dial("EDGE1", "Internet")
	o := outcome{s: c}
	ehlo := c.Cmd("EHLO %s", clientName)
	o.enhanced = strings.Contains(strings.Join(ehlo.Lines, " "), "ENHANCEDSTATUSCODES")
	Expect(c.Cmd("MAIL FROM:<bob@fabrikam.test>")).To(f.HaveClass(2), c.Explain("sender accepted"))
	Expect(c.Cmd("RCPT TO:<alice@contoso.test>")).To(f.HaveClass(2), c.Explain("recipient accepted"))
	data, end := c.Data(b.String() + message(id, fmt.Sprintf("%d hops", hops)))
	switch {
	case data.Code != 354:
		o.refusal = data
	case end.Code/100 != 2:
		o.refusal = end
	}
	if o.refusal.Code != 0 {
		Expect(o.refusal.Code/100).To(Equal(5), c.Explain("a message with %d Received headers is taken or refused for good, not deferred", hops))
		return o
	}
	Eventually(func() bool {
		o.copy = f.WithMessageID(w.Mailbox("alice@contoso.test"), id)
		o.dsn = about(dsnsTo(w, "mx1.fabrikam.test", "bob@fabrikam.test"), id)
		return o.copy != nil || o.dsn != nil
	}).Should(BeTrue(), c.Explain("the message with %d Received headers is delivered to alice or failed with a DSN to bob", hops))
	if o.dsn != nil {
		p, err := dsn.Parse(o.dsn)
		Expect(err).NotTo(HaveOccurred(), c.Explain("the DSN is an RFC 3464 report:\n%s", o.dsn))
		for _, r := range p.Recipients {
			if strings.EqualFold(dsn.Field(r, "Action"), "failed") {
				o.status = append(o.status, dsn.Field(r, "Status"))
			}
		}
		Expect(o.status).NotTo(BeEmpty(), c.Explain("the DSN fails the recipient:\n%s", o.dsn))
	}
	return o
}

// about is the notice among ms that returns the message with Message-ID id (in its
// returned message or header), or nil.
func about(ms [][]byte, id string) []byte {
	for _, m := range ms {
		if bytes.Contains(m, []byte("<"+id+">")) {
			return m
		}
	}
	return nil
}

// dataAt is every message a fake host took, as it took it.
func dataAt(w *f.World, host string) [][]byte {
	var out [][]byte
	for _, m := range w.Received(host) {
		out = append(out, m.Data)
	}
	return out
}

// dsnsTo are the messages with a null reverse-path a fake host took for rcpt.
func dsnsTo(w *f.World, host, rcpt string) [][]byte {
	var out [][]byte
	for _, m := range w.Received(host) {
		for _, r := range m.RcptTo {
			if m.MailFrom == "" && strings.EqualFold(r, rcpt) {
				out = append(out, m.Data)
				break
			}
		}
	}
	return out
}

var _ = Describe("Loop detection", Label("trace"), func() {
	It("stops a message with more Received headers than the configured hop limit with 5.4.6", f.Clause("TRACE-004"), func() {
		w := f.StartShipped("hop-limit.yaml")
		limit := w.HopLimit("EDGE1")

		over := sendWithHops(w, limit+1)
		c := over.s
		Expect(over.copy).To(BeNil(), c.Explain("a message with %d Received headers (limit %d) is not delivered", limit+1, limit))
		Expect(over.stopped()).To(BeTrue(), c.Explain("a message with %d Received headers (limit %d) is refused or failed; it was %s", limit+1, limit, over))
		if over.refusal.Code != 0 {
			if over.enhanced {
				Expect(over.refusal.Enhanced).To(Equal("5.4.6"), c.Explain("refused with 5.4.6 (routing loop detected, RFC 3463)"))
			} else {
				f.Info("refused with %s; ENHANCEDSTATUSCODES is not advertised, so only the 5yz was judged", over.refusal)
			}
		} else {
			Expect(over.status).To(ConsistOf("5.4.6"), c.Explain("the DSN fails the recipient with Status 5.4.6 (routing loop detected):\n%s", over.dsn))
		}

		// The other side of the limit: a message within it goes through. Counting the
		// target's own Received header, or stopping at the limit rather than above it,
		// each moves the boundary one header down: recorded (INFO). Lower still, the limit
		// in force is not the configured one.
		var stopped []string
		for n := limit; ; n-- {
			o := sendWithHops(w, n)
			if o.copy != nil {
				if len(stopped) > 0 {
					f.Info("stopped within the limit of %d Received headers (%s); delivered with %d: the target stops %d header(s) earlier than the clause counts (its own Received header counted, or stopping at the limit)",
						limit, strings.Join(stopped, "; "), n, limit-n)
				}
				return
			}
			stopped = append(stopped, fmt.Sprintf("%d headers: %s", n, o))
			Expect(n).To(BeNumerically(">", limit-2), o.s.Explain("a message with %d Received headers (limit %d) is delivered; stopped: %s", n, limit, strings.Join(stopped, "; ")))
		}
	})

	It("fails a recipient whose MX is the target itself instead of relaying to itself", f.Clause("TRACE-005"), func() {
		w := f.StartShipped("mx-loop.yaml")
		limit := w.HopLimit("EDGE1")
		const id = "mx-loop@contoso.test"
		c, enhanced := submit(w)
		rcpt := c.Cmd("RCPT TO:<someone@loop.test>")
		refusal := rcpt
		if rcpt.Code/100 == 2 {
			_, end := c.Data(messageFrom("alice@contoso.test", "someone@loop.test", id, "mx loop"))
			refusal = end
		}
		if refusal.Code/100 != 2 {
			// Refused in the session: the recipient failed without a single trip.
			Expect(refusal).To(f.HaveClass(5), c.Explain("refused for good, not deferred"))
			if !enhanced {
				f.Info("refused with %s; ENHANCEDSTATUSCODES is not advertised, so only the 5yz was judged", refusal)
			} else if !loopStatus(refusal.Enhanced) {
				f.Info("refused with %s: a permanent failure, but not with a loop status (5.4.6, or Exchange's 5.3.5)", refusal)
			}
			Expect(w.Received("mx1.backup.test")).To(BeEmpty(), c.Explain("nothing reaches any other host"))
			return
		}

		// Accepted: the failure comes back to alice as a DSN.
		var notice []byte
		Eventually(func() []byte { notice = about(w.Mailbox("alice@contoso.test"), id); return notice }).WithTimeout(loopPatience).
			ShouldNot(BeNil(), c.Explain("the recipient fails and a DSN reaches the sender, alice"))
		p, err := dsn.Parse(notice)
		Expect(err).NotTo(HaveOccurred(), c.Explain("the notice is an RFC 3464 DSN:\n%s", notice))
		var status string
		for _, r := range p.Recipients {
			if strings.HasSuffix(strings.ToLower(dsn.Field(r, "Final-Recipient")), "someone@loop.test") && strings.EqualFold(dsn.Field(r, "Action"), "failed") {
				status = dsn.Field(r, "Status")
			}
		}
		Expect(status).To(HavePrefix("5."), c.Explain("the DSN fails someone@loop.test permanently:\n%s", notice))
		if !loopStatus(status) {
			f.Info("failed with Status %s: a permanent failure, but not with a loop status (5.4.6, or Exchange's 5.3.5)", status)
		}

		// Not round and round: the queue empties, and the message went through the
		// target a bounded number of times (its Received headers, its RECEIVE events).
		Eventually(func() int { return w.Queue("EDGE1") }).WithTimeout(loopPatience).Should(BeZero(), c.Explain("nothing stays queued at EDGE1"))
		Expect(about(dataAt(w, "mx1.backup.test"), id)).To(BeNil(), c.Explain("no copy reaches any other host"))
		trips := -1
		if p.Original != nil {
			trips = len(receivedFields(p.Original))
			Expect(trips).To(BeNumerically("<=", limit+1), c.Explain("the returned message went through the target at most the hop limit (%d) of times:\n%s", limit, p.Original))
		}
		if w.Traced() {
			var received int
			Eventually(func() int {
				received = 0
				for _, e := range w.Events(trace.Receive) {
					if e.HeaderID == id && e.Server == "EDGE1" {
						received++
					}
				}
				return received
			}).Should(BeNumerically(">=", 1))
			Expect(received).To(BeNumerically("<=", limit+1), c.Explain("EDGE1 received the message at most the hop limit (%d) of times", limit))
			trips = received
		}
		switch {
		case trips < 0:
			f.Info("the DSN returns no message, so the trips through the target were not counted")
		case trips > 1:
			f.Info("the message went through the target %d times before it failed (stopped by the hop limit, not by finding itself among the MXs as RFC 5321 §5.1 says)", trips)
		}
	})

	It("sends to a more preferred MX when the target is only a backup MX", f.Clause("TRACE-005"), func() {
		w := f.StartShipped("mx-loop.yaml")
		const id = "mx-backup@contoso.test"
		c, _ := submit(w)
		Expect(c.Cmd("RCPT TO:<someone@backup.test>")).To(f.HaveClass(2), c.Explain("relay granted to the application servers"))
		_, end := c.Data(messageFrom("alice@contoso.test", "someone@backup.test", id, "backup mx"))
		Expect(end).To(f.HaveClass(2), c.Explain("accepted"))
		Eventually(func() []byte { return about(dataAt(w, "mx1.backup.test"), id) }).
			ShouldNot(BeNil(), c.Explain("mx1.backup.test, preferred to EDGE1, receives the message"))
		Expect(about(w.Mailbox("alice@contoso.test"), id)).To(BeNil(), c.Explain("no failure notice for a domain the target is only a backup MX of"))
	})
})

// loopPatience is how long a spec waits for a looping message to settle: a target that
// goes round until its hop limit makes that many trips in real time.
const loopPatience = 3 * time.Minute

// loopStatus says whether an enhanced status names a mail loop: 5.4.6 routing loop
// detected, or 5.3.5 system incorrectly configured (Exchange's loop back to itself).
func loopStatus(s string) bool { return s == "5.4.6" || s == "5.3.5" }

// submit opens a session from the application servers' range, which may relay, as
// alice; it says whether ENHANCEDSTATUSCODES was advertised.
func submit(w *f.World) (*f.Session, bool) {
	GinkgoHelper()
	w.RequireRelay(f.Via{Server: "EDGE1", Connector: "AppRelay"}, "someone@loop.test")
	addr, err := w.Endpoint("EDGE1", "AppRelay")
	Expect(err).NotTo(HaveOccurred())
	c, _ := f.DialFrom(w.ClientIn("127.77.0.0/16"), addr)
	ehlo := c.Cmd("EHLO app1.contoso.test")
	Expect(c.Cmd("MAIL FROM:<alice@contoso.test>")).To(f.HaveClass(2), c.Explain("sender accepted"))
	return c, strings.Contains(strings.Join(ehlo.Lines, " "), "ENHANCEDSTATUSCODES")
}
