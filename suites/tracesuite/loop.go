package tracesuite

import (
	"bytes"
	"fmt"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/mailflow/mailflow/reference/dsn"
	f "github.com/mailflow/mailflow/suites/framework"
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
		o.copy = withID(w.Mailbox("alice@contoso.test"), id)
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
})
