// Package tracesuite holds the TRACE-* clause specs: Received headers and message
// tracking.
package tracesuite

import (
	"regexp"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	f "github.com/mailflow/mailflow/suites/framework"
	"github.com/mailflow/mailflow/trace"
)

// receivedRe finds Received fields at the start of a header line.
var receivedRe = regexp.MustCompile(`(?m)^Received: `)

const prior = "Received: from a.example.test (a.example.test [192.0.2.1])\r\n\tby b.example.test with ESMTP id 1; Mon, 2 Nov 2026 10:00:00 +0000\r\n" +
	"Received: from c.example.test by a.example.test with SMTP id 2; Mon, 2 Nov 2026 09:59:00 +0000\r\n"

const body = "From: bob@fabrikam.test\r\nTo: alice@contoso.test\r\nSubject: trace\r\nMessage-ID: <trace@fabrikam.test>\r\n\r\nbody\r\n"

var _ = Describe("Trace headers", Label("trace"), func() {
	It("prepends exactly one Received header and keeps the existing ones in order", f.Clause("TRACE-001"), func() {
		w := f.StartShipped("edge-smarthost.yaml")
		c, _ := w.Dial("EDGE1", "Internet")
		c.Cmd("EHLO mail.fabrikam.test")
		c.Cmd("MAIL FROM:<bob@fabrikam.test>")
		c.Cmd("RCPT TO:<alice@contoso.test>")
		_, end := c.Data(prior + body)
		Expect(end).To(f.HaveClass(2), c.Explain("accepted"))
		Eventually(func() int { return len(w.Mailbox("alice@contoso.test")) }).Should(Equal(1), c.Explain("delivered to alice's mailbox"))
		got := string(w.Mailbox("alice@contoso.test")[0])
		// The store puts Return-Path on top; below it is what the servers passed on.
		if strings.HasPrefix(got, "Return-Path: ") {
			got = got[strings.Index(got, "\r\n")+2:]
		}
		Expect(got).To(HavePrefix("Received: "), c.Explain("new Received headers at the top"))
		i := strings.Index(got, prior)
		Expect(i).To(BeNumerically(">", 0), c.Explain("the original Received lines are kept"))
		Expect(got[i:]).To(HavePrefix(prior+body), c.Explain("the original Received lines unchanged, in order, right after the new ones"))
		added := got[:i]
		Expect(added).To(ContainSubstring("mail.fabrikam.test"), c.Explain("the first server's Received header names the client's HELO"))
		// One per server that accepted the message: the Edge, and on the reference the
		// Hub and the Mailbox server too, as message tracking shows.
		servers := func() int {
			if !w.Traced() {
				return 1 // the MTA
			}
			seen := map[string]bool{}
			for _, e := range w.Trace().Events() {
				if (e.Type == trace.Receive || e.Type == trace.Deliver) && e.HeaderID == "trace@fabrikam.test" {
					seen[e.Server] = true
				}
			}
			return len(seen)
		}
		// Tracking events may trail the stored copy (a container's log is read
		// asynchronously); the count must settle on the number of headers added.
		headers := len(receivedRe.FindAllStringIndex(added, -1))
		Eventually(servers).Should(Equal(headers), c.Explain("exactly one Received added by each server that accepted the message (%d headers)", headers))
	})
})
