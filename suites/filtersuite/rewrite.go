package filtersuite

import (
	"fmt"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/mailflow/mailflow/fixtures/internet"
	"github.com/mailflow/mailflow/scenarios"
	f "github.com/mailflow/mailflow/suites/framework"
)

// fromOrg is a server of the organisation relaying through EDGE1 in
// address-rewriting.yaml, as bob@sales.contoso.test.
var fromOrg = f.Via{Server: "EDGE1", Connector: "From Org", ClientIn: "127.66.0.0/16", Helo: "hub1.contoso.test", From: "bob@sales.contoso.test"}

// startRewriting starts address-rewriting.yaml, its entry bidirectional or not.
func startRewriting(bidirectional bool) *f.World {
	GinkgoHelper()
	s, err := scenarios.Load("address-rewriting.yaml")
	Expect(err).NotTo(HaveOccurred())
	sv, ok := s.Server("EDGE1")
	Expect(ok).To(BeTrue())
	sv.Agents.AddressRewriting[0].Bidirectional = bidirectional
	return f.StartScenario(s)
}

// atSink waits for the message <id> at mx1.fabrikam.test.
func atSink(w *f.World, s *f.Session, id string) internet.Message {
	GinkgoHelper()
	var got internet.Message
	Eventually(func() bool {
		for _, m := range w.Received("mx1.fabrikam.test") {
			if f.WithMessageID([][]byte{m.Data}, id) != nil {
				got = m
				return true
			}
		}
		return false
	}).Should(BeTrue(), s.Explain("mx1.fabrikam.test receives the message"))
	return got
}

// field is the unfolded value of the first field name of a message's header.
func field(m []byte, name string) string {
	var cur []string
	for _, l := range strings.Split(string(f.Header(m)), "\r\n") {
		switch {
		case len(cur) > 0 && (strings.HasPrefix(l, " ") || strings.HasPrefix(l, "\t")):
			cur = append(cur, strings.TrimSpace(l))
		case len(cur) > 0:
			return strings.Join(cur, " ")
		default:
			if n, v, ok := strings.Cut(l, ":"); ok && strings.EqualFold(n, name) {
				cur = []string{strings.TrimSpace(v)}
			}
		}
	}
	return strings.Join(cur, " ")
}

func outboundMessage(contentType string) (id, msg string) {
	id = fmt.Sprintf("rewrite-%d-%d@sales.contoso.test", GinkgoParallelProcess(), seq.Add(1))
	msg = "From: \"Bob Sales\" <bob@sales.contoso.test>\r\nReply-To: bob@sales.contoso.test\r\n" +
		"To: dan@fabrikam.test,\r\n carol@sales.contoso.test\r\nCc: <carol@sales.contoso.test>\r\n" +
		"Sender: bob@sales.contoso.test\r\nX-Origin: bob@sales.contoso.test\r\nSubject: offer\r\nMessage-ID: <" + id + ">\r\n"
	if contentType == "" {
		return id, msg + "\r\nWrite to bob@sales.contoso.test.\r\n"
	}
	return id, msg + "MIME-Version: 1.0\r\nContent-Type: " + contentType + "\r\n\r\n--s\r\nContent-Type: text/plain\r\n\r\nWrite to bob@sales.contoso.test.\r\n" +
		"--s\r\nContent-Type: application/pkcs7-signature; name=smime.p7s\r\nContent-Transfer-Encoding: base64\r\n\r\nMIAGCSqGSIb3DQEHAqCAMIACAQExDzANBglghkgBZQMEAgEFADCABgkqhkiG9w0BBwEAAKCAMII=\r\n--s--\r\n"
}

var _ = Describe("Address rewriting", Label("filter"), func() {
	It("rewrites MAIL FROM and From:, Reply-To:, To: and Cc: on outbound mail, and no other field", f.Clause("FILTER-017"), func() {
		w := startRewriting(false)
		id, msg := outboundMessage("")
		s := w.SubmitMessage(fromOrg, msg, "dan@fabrikam.test")
		m := atSink(w, s, id)
		Expect(m.MailFrom).To(Equal("bob@contoso.test"), s.Explain("MAIL FROM in the external form"))
		Expect(field(m.Data, "From")).To(Equal(`"Bob Sales" <bob@contoso.test>`), s.Explain("From: rewritten, its display name kept"))
		Expect(field(m.Data, "Reply-To")).To(Equal("bob@contoso.test"), s.Explain("Reply-To: rewritten"))
		Expect(field(m.Data, "To")).To(Equal("dan@fabrikam.test, carol@contoso.test"), s.Explain("To: rewritten, folded line included"))
		Expect(field(m.Data, "Cc")).To(Equal("<carol@contoso.test>"), s.Explain("Cc: rewritten"))
		Expect(field(m.Data, "Sender")).To(Equal("bob@sales.contoso.test"), s.Explain("Sender: is not one of the rewritten fields"))
		Expect(field(m.Data, "X-Origin")).To(Equal("bob@sales.contoso.test"), s.Explain("nor any other field"))
		Expect(string(m.Data)).To(HaveSuffix("\r\n\r\nWrite to bob@sales.contoso.test.\r\n"), s.Explain("nor the body"))
	})

	It("leaves a signed (multipart/signed) message unchanged", f.Clause("FILTER-017"), func() {
		w := startRewriting(false)
		id, msg := outboundMessage(`multipart/signed; protocol="application/pkcs7-signature"; micalg=sha-256; boundary="s"`)
		s := w.SubmitMessage(fromOrg, msg, "dan@fabrikam.test")
		m := atSink(w, s, id)
		for _, name := range []string{"From", "Reply-To", "To", "Cc"} {
			Expect(field(m.Data, name)).To(Equal(field([]byte(msg), name)), s.Explain("%s: as sent", name))
		}
		Expect(string(m.Data)).To(HaveSuffix(msg[strings.Index(msg, "\r\n\r\n"):]), s.Explain("the signed body as sent"))
	})

	It("with the entry bidirectional, delivers inbound mail for the external form to the internal recipient", f.Clause("FILTER-017"), func() {
		w := startRewriting(true)
		s := from(w, w.ClientIn(listedNet), "Internet")
		Expect(s.Cmd("MAIL FROM:<dan@fabrikam.test>")).To(f.HaveClass(2), s.Explain("MAIL accepted"))
		Expect(s.Cmd("RCPT TO:<bob@contoso.test>")).To(f.HaveClass(2), s.Explain("the external form is taken"))
		id, msg := message("inbound")
		_, end := s.Data(msg)
		Expect(end).To(f.HaveClass(2), s.Explain("accepted"))
		delivered(w, s, "bob@sales.contoso.test", id)
	})

	It("outbound only, leaves inbound mail for the external form alone", f.Clause("FILTER-017"), func() {
		w := startRewriting(false)
		s := from(w, w.ClientIn(listedNet), "Internet")
		Expect(s.Cmd("MAIL FROM:<dan@fabrikam.test>")).To(f.HaveClass(2), s.Explain("MAIL accepted"))
		Expect(s.Cmd("RCPT TO:<bob@contoso.test>")).To(f.HaveReply(550, "5.1.1"), s.Explain("bob@contoso.test is nobody: the entry does not rewrite inbound"))
	})
})
