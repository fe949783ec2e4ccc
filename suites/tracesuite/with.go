package tracesuite

import (
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	f "github.com/mailflow/mailflow/suites/framework"
)

// session is how a client talks to the server, which the with keyword names
// (RFC 3848).
type session struct {
	helo, tls, auth bool
}

var _ = Describe("The with keyword", Label("trace"), func() {
	DescribeTable("names the protocol the session used", f.Clause("TRACE-003"),
		func(keyword string, how session) {
			w := f.StartShipped("edge-tls.yaml")
			connector, from := "Internet", "bob@fabrikam.test"
			if how.auth {
				connector, from = "Clients", "alice@contoso.test"
			}
			c, _ := w.Dial("EDGE1", connector)
			hello := func() f.Reply {
				if how.helo {
					return c.Cmd("HELO %s", clientName)
				}
				return c.Cmd("EHLO %s", clientName)
			}
			ehlo := hello()
			Expect(ehlo).To(f.HaveReply(250), c.Explain("greeted"))
			if how.tls {
				if !ehlo.Advertises("STARTTLS") {
					Skip("N/A: EDGE1's " + connector + " connector offers no STARTTLS\n" + c.Transcript())
				}
				Expect(c.StartTLS(w.ClientTLS())).To(f.HaveReply(220), c.Explain("STARTTLS"))
				ehlo = hello()
			}
			if how.auth {
				if !ehlo.Advertises("AUTH") {
					Skip("N/A: EDGE1's " + connector + " connector offers no AUTH here\n" + c.Transcript())
				}
				Expect(c.Cmd("AUTH PLAIN %s", f.PlainAuth("alice@contoso.test", "alice-secret"))).To(f.HaveReply(235), c.Explain("AUTH PLAIN succeeds"))
			}
			Expect(c.Cmd("MAIL FROM:<%s>", from)).To(f.HaveClass(2), c.Explain("sender accepted"))
			Expect(c.Cmd("RCPT TO:<alice@contoso.test>")).To(f.HaveClass(2), c.Explain("alice accepted"))
			id := "with-" + strings.ToLower(keyword) + "@fabrikam.test"
			r, own := targetReceived(w, c, id, "with")
			with, ok := r.Clause("with")
			Expect(ok && len(with.Items) > 0).To(BeTrue(), c.Explain("a with clause in\n%s", own))
			Expect(strings.ToUpper(with.Items[0])).To(Equal(keyword), c.Explain("with %s for this session in\n%s", keyword, own))
		},
		Entry("HELO", "SMTP", session{helo: true}),
		Entry("EHLO", "ESMTP", session{}),
		Entry("EHLO and STARTTLS", "ESMTPS", session{tls: true}),
		Entry("EHLO and AUTH", "ESMTPA", session{auth: true}),
		Entry("EHLO, STARTTLS and AUTH", "ESMTPSA", session{tls: true, auth: true}),
	)
})
