package tracesuite

import (
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	f "github.com/mailflow/mailflow/suites/framework"
)

// delivered sends msg from an anonymous Internet client to alice and returns the copy
// her mailbox holds.
func delivered(w *f.World, msg string) (*f.Session, string) {
	GinkgoHelper()
	c := w.SubmitMessage(f.Internet, msg, "alice@contoso.test")
	Eventually(func() int { return len(w.Mailbox("alice@contoso.test")) }).Should(Equal(1), c.Explain("delivered to alice's mailbox"))
	return c, string(w.Mailbox("alice@contoso.test")[0])
}

var _ = Describe("Header trust", Label("trace"), func() {
	It("keeps the Received headers of a message from an anonymous Internet session", f.Clause("TRACE-006"), func() {
		w := f.StartShipped("edge-smarthost.yaml")
		c, got := delivered(w, prior+body)
		Expect(got).To(ContainSubstring(prior+body), c.Explain("the sender's Received headers, unchanged and in order, above the body"))
	})

	It("drops X-MS-Exchange-Organization headers an anonymous sender wrote", f.Clause("TRACE-007"), func() {
		w := f.StartShipped("edge-smarthost.yaml")
		forged := "X-MS-Exchange-Organization-SCL: -1\r\nx-ms-exchange-organization-authas: Internal\r\n\tfolded\r\n"
		c, got := delivered(w, forged+body)
		header, _, _ := strings.Cut(got, "\r\n\r\n")
		Expect(strings.ToLower(header)).NotTo(ContainSubstring("x-ms-exchange-organization-scl: -1"), c.Explain("no forged SCL of -1 in the delivered copy"))
		Expect(strings.ToLower(header)).NotTo(ContainSubstring("authas: internal"), c.Explain("no forged AuthAs in the delivered copy"))
		Expect(header).NotTo(ContainSubstring("\tfolded"), c.Explain("nor the forged field's continuation line"))
		Expect(got).To(ContainSubstring(body), c.Explain("the rest of the message unchanged"))
	})
})
