package smtpsuite

import (
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	f "github.com/mailflow/mailflow/suites/framework"
)

// plaintextAuth are the AUTH mechanisms that send the password in the clear.
func plaintextAuth(ehlo f.Reply) []string {
	mechs, _ := ehlo.Extension("AUTH")
	var out []string
	for _, m := range mechs {
		if strings.EqualFold(m, "PLAIN") || strings.EqualFold(m, "LOGIN") {
			out = append(out, m)
		}
	}
	return out
}

var _ = Describe("STARTTLS and AUTH", Label("smtp"), func() {
	It("lists STARTTLS, answers it with 220, then forgets the EHLO and lists it no more", f.Clause("SMTP-019"), func() {
		w := f.StartShipped("edge-tls.yaml")
		s, _ := w.GreetTLS("EDGE1", "Internet")
		Expect(s.StartTLS(w.ClientTLS())).To(f.HaveReply(220), s.Explain("220 to STARTTLS, then a TLS handshake"))
		if mail := s.Cmd("MAIL FROM:<bob@fabrikam.test>"); mail.Code/100 == 2 {
			// A server that wants no EHLO before MAIL at all (SMTP-003 judges that) can
			// only show what it forgot in the message: the EHLO name from before
			// STARTTLS must not be in its Received header.
			Expect(s.Cmd("RCPT TO:<alice@contoso.test>")).To(f.HaveClass(2), s.Explain("alice accepted"))
			_, end := s.Data(msg("forgotten@fabrikam.test", "body\r\n"))
			Expect(end).To(f.HaveClass(2), s.Explain("the message accepted"))
			got := delivered(w, s, "forgotten@fabrikam.test")
			Expect(string(f.Header(got))).NotTo(ContainSubstring("mail.fabrikam.test"), s.Explain("the EHLO name given before STARTTLS is forgotten, so no header names it:\n%s", f.Header(got)))
		} else {
			Expect(mail).To(f.HaveClass(5), s.Explain("MAIL refused inside TLS before a new EHLO: the EHLO before STARTTLS is forgotten"))
		}
		ehlo := s.Cmd("EHLO after.fabrikam.test")
		Expect(ehlo).To(f.HaveReply(250), s.Explain("250 to EHLO inside TLS"))
		Expect(ehlo.Advertises("STARTTLS")).To(BeFalse(), s.Explain("STARTTLS not advertised again"))
		Expect(s.Cmd("MAIL FROM:<bob@fabrikam.test>")).To(f.HaveClass(2), s.Explain("MAIL accepted after the new EHLO"))
	})

	It("answers STARTTLS with an argument with 501", f.Clause("SMTP-019"), func() {
		w := f.StartShipped("edge-tls.yaml")
		s, _ := w.GreetTLS("EDGE1", "Internet")
		Expect(s.Cmd("STARTTLS now")).To(f.HaveReply(501), s.Explain("501 to STARTTLS with an argument"))
	})

	It("takes mail for a local user in the clear on port 25 while it offers STARTTLS", f.Clause("SMTP-020"), func() {
		w := f.StartShipped("edge-tls.yaml")
		w.GreetTLS("EDGE1", "Internet")
		s := w.SendInternet("cleartext@fabrikam.test", "alice@contoso.test")
		delivered(w, s, "cleartext@fabrikam.test")
	})

	It("offers no PLAIN or LOGIN before STARTTLS", f.Clause("SMTP-021"), func() {
		w := f.StartShipped("edge-tls.yaml")
		for _, c := range []string{"Internet", "Clients"} {
			s, ehlo := w.GreetTLS("EDGE1", c)
			m := plaintextAuth(ehlo)
			f.Should(len(m) == 0, s, "the %s connector offers %v before STARTTLS", c, m)
		}
	})

	It("answers AUTH with wrong credentials with 535 5.7.8", f.Clause("SMTP-021"), func() {
		w := f.StartShipped("edge-tls.yaml")
		s, _ := w.GreetTLS("EDGE1", "Clients")
		Expect(s.StartTLS(w.ClientTLS())).To(f.HaveReply(220), s.Explain("STARTTLS"))
		if len(plaintextAuth(s.Cmd("EHLO mail.fabrikam.test"))) == 0 {
			Skip("N/A: the Clients connector offers no AUTH PLAIN inside TLS\n" + s.Transcript())
		}
		Expect(s.Cmd("AUTH PLAIN %s", f.PlainAuth("alice@contoso.test", "not-her-password"))).To(s.HaveReply(535, "5.7.8"), s.Explain("535 5.7.8 to a failed AUTH"))
	})

	It("refuses MAIL from an unauthenticated session on a connector that requires AUTH with 530 5.7.0", f.Clause("SMTP-021"), func() {
		w := f.StartShipped("edge-tls.yaml")
		s, _ := w.GreetTLS("EDGE1", "Clients")
		Expect(s.StartTLS(w.ClientTLS())).To(f.HaveReply(220), s.Explain("STARTTLS"))
		s.Cmd("EHLO mail.fabrikam.test")
		Expect(s.Cmd("MAIL FROM:<alice@contoso.test>")).To(s.HaveReply(530, "5.7.0"), s.Explain("530 5.7.0 to MAIL before AUTH on a submission connector for authenticated users only"))
	})
})
