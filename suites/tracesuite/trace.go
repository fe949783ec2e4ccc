// Package tracesuite holds the TRACE-* clause specs: Received headers and message
// tracking.
package tracesuite

import (
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	f "github.com/mailflow/mailflow/suites/framework"
)

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
		Eventually(func() int { return len(w.Received("HUB1")) }).Should(Equal(1), c.Explain("delivered to HUB1"))
		got := string(w.Received("HUB1")[0].Data)
		Expect(got).To(HavePrefix("Received: "), c.Explain("a new Received header at the top"))
		top, _, _ := strings.Cut(got, "\r\nReceived: from a.example.test")
		Expect(top).To(ContainSubstring("mail.fabrikam.test"), c.Explain("the new Received header names the client's HELO"))
		first := strings.Index(got, "\r\nReceived: ") + 2
		Expect(got[first:]).To(HavePrefix(prior+body), c.Explain("the original Received lines unchanged, in order, right after the new one"))
		Expect(strings.Count(got, "Received: ")).To(Equal(3), c.Explain("exactly one Received added"))
	})
})
