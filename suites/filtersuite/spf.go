package filtersuite

import (
	"fmt"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/mailflow/mailflow/profiles"
	f "github.com/mailflow/mailflow/suites/framework"
)

// startSPF starts edge-filter.yaml, whose Edge enforces SPF, on a target that can, and
// reports the spec N/A on one that cannot.
func startSPF() *f.World {
	GinkgoHelper()
	f.Require(profiles.FeatureSPF)
	return start()
}

// hasSPFResult says whether the header records SPF result res, as Received-SPF or
// Authentication-Results.
func hasSPFResult(header, res string) bool {
	for _, line := range strings.Split(strings.ToLower(header), "\r\n") {
		if strings.HasPrefix(line, "received-spf: "+res+" ") || strings.HasPrefix(line, "authentication-results:") && strings.Contains(line, "spf="+res) {
			return true
		}
	}
	return false
}

var _ = Describe("Sender authentication (SPF)", Label("filter"), func() {
	It("refuses a sender whose domain's SPF record does not list the client", f.Clause("FILTER-015"), func() {
		w := startSPF()
		s := from(w, w.ClientIn(listedNet), "Internet")
		r := s.Cmd("MAIL FROM:<bob@spf-fail.test>")
		if r.Code/100 == 2 {
			r = s.Cmd("RCPT TO:<alice@contoso.test>")
		}
		Expect(r).To(f.HaveClass(5), s.Explain("an SPF fail is refused where SPF is enforced"))
		Expect(r.Enhanced).To(BeElementOf("5.7.23", "5.7.1", ""), s.Explain("with 5.7.23 (RFC 7372) or 5.7.1 (Sender ID)"))
		Expect(txtQueried(w, "spf-fail.test.")).To(BeTrue(), s.Explain("a TXT query for spf-fail.test in the DNS log"))
	})

	DescribeTable("accepts pass, none and softfail and records the result", f.Clause("FILTER-015"),
		func(domain, result string) {
			w := startSPF()
			client := w.ClientIn(listedNet)
			if result == "pass" {
				Expect(w.DNS().Add(fmt.Sprintf(`%s. TXT "v=spf1 ip4:%s -all"`, domain, client))).To(Succeed())
			}
			s := from(w, client, "Internet")
			Expect(s.Cmd("MAIL FROM:<bob@%s>", domain)).To(f.HaveClass(2), s.Explain("SPF %s: the sender is accepted", result))
			Expect(s.Cmd("RCPT TO:<alice@contoso.test>")).To(f.HaveClass(2), s.Explain("and the recipient"))
			id, msg := message("SPF " + result)
			_, end := s.Data(msg)
			Expect(end).To(f.HaveClass(2), s.Explain("the message is accepted"))
			header := string(f.Header(delivered(w, s, "alice@contoso.test", id)))
			Expect(hasSPFResult(header, result)).To(BeTrue(), s.Explain("the delivered header records SPF %s (Received-SPF or Authentication-Results):\n%s", result, header))
		},
		Entry("pass", "spf-pass.test", "pass"),
		Entry("none", "fabrikam.test", "none"),
		Entry("softfail", "spf-soft.test", "softfail"),
	)

	It("never refuses permanently when the sender's DNS fails", f.Clause("FILTER-015"), func() {
		w := startSPF()
		s := from(w, w.ClientIn(listedNet), "Internet")
		r := s.Cmd("MAIL FROM:<bob@spf-broken.test>")
		Expect(r.Code/100).NotTo(Equal(5), s.Explain("no permanent refusal when the SPF lookup gets SERVFAIL"))
		if r.Code/100 != 2 {
			return // a 4yz is allowed
		}
		r = s.Cmd("RCPT TO:<alice@contoso.test>")
		Expect(r.Code/100).NotTo(Equal(5), s.Explain("nor at RCPT"))
		if r.Code/100 != 2 {
			return
		}
		id, msg := message("SPF temperror")
		_, end := s.Data(msg)
		Expect(end.Code/100).NotTo(Equal(5), s.Explain("nor at end of data"))
		if end.Code/100 == 2 {
			delivered(w, s, "alice@contoso.test", id)
		}
	})
})

// txtQueried says whether the DNS log holds a TXT query for name.
func txtQueried(w *f.World, name string) bool {
	for _, q := range w.DNS().Queries() {
		if q.Type == "TXT" && strings.EqualFold(q.Name, name) {
			return true
		}
	}
	return false
}
