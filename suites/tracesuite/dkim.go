package tracesuite

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-msgauth/dkim"
	"github.com/miekg/dns"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	f "github.com/mailflow/mailflow/suites/framework"
)

const dkimSelector = "mf2026"

// dkimKey is the test zones' signing key: one per test process, as RSA key generation
// is the slow part and nothing depends on the key being fresh.
var dkimKey = sync.OnceValue(func() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return k
})

// publishDKIM puts the key record for domain in the world's DNS, split into strings
// of at most 255 octets as a zone file must (RFC 6376 §3.6.2.2).
func publishDKIM(w *f.World, domain string) {
	GinkgoHelper()
	der, err := x509.MarshalPKIXPublicKey(&dkimKey().PublicKey)
	Expect(err).NotTo(HaveOccurred())
	rec := "v=DKIM1; k=rsa; p=" + base64.StdEncoding.EncodeToString(der)
	var parts []string
	for len(rec) > 0 {
		n := min(len(rec), 255)
		parts = append(parts, `"`+rec[:n]+`"`)
		rec = rec[n:]
	}
	Expect(w.DNS().Add(fmt.Sprintf("%s._domainkey.%s. 300 IN TXT %s", dkimSelector, domain, strings.Join(parts, " ")))).To(Succeed())
}

// signDKIM signs msg for domain, relaxed/relaxed, over the fields RFC 6376 §5.4.1
// recommends that the message has.
func signDKIM(domain, msg string) string {
	GinkgoHelper()
	var out bytes.Buffer
	err := dkim.Sign(&out, strings.NewReader(msg), &dkim.SignOptions{
		Domain: domain, Selector: dkimSelector, Signer: dkimKey(),
		HeaderCanonicalization: dkim.CanonicalizationRelaxed,
		BodyCanonicalization:   dkim.CanonicalizationRelaxed,
		HeaderKeys:             []string{"From", "To", "Subject", "Date", "Message-ID", "MIME-Version", "Content-Type"},
	})
	Expect(err).NotTo(HaveOccurred(), "signing the test message")
	return out.String()
}

// verifyDKIM checks got's signatures with the key the world's DNS publishes, as a
// receiving verifier would, and says what each came to.
func verifyDKIM(w *f.World, got []byte) []string {
	GinkgoHelper()
	lookup := func(name string) ([]string, error) {
		q := new(dns.Msg)
		q.SetQuestion(dns.Fqdn(name), dns.TypeTXT)
		c := &dns.Client{Net: "tcp", Timeout: 5 * time.Second}
		r, _, err := c.Exchange(q, w.DNS().Addr())
		if err != nil {
			return nil, err
		}
		var txt []string
		for _, rr := range r.Answer {
			if t, ok := rr.(*dns.TXT); ok {
				txt = append(txt, strings.Join(t.Txt, ""))
			}
		}
		return txt, nil
	}
	vs, err := dkim.VerifyWithOptions(bytes.NewReader(got), &dkim.VerifyOptions{LookupTXT: lookup})
	Expect(err).NotTo(HaveOccurred(), "reading the delivered message's header")
	var out []string
	for _, v := range vs {
		if v.Err != nil {
			out = append(out, fmt.Sprintf("d=%s: %v", v.Domain, v.Err))
		} else {
			out = append(out, "d="+v.Domain+": pass")
		}
	}
	return out
}

// dkimMessage is a message whose body a careless relay could change: a line that
// starts with a dot (stuffed on the wire, RFC 5321 §4.5.2), trailing white space and
// an empty line before the end (both of which relaxed body canonicalization absorbs,
// and nothing else).
func dkimMessage(from, to, id string) string {
	return "From: " + from + "\r\nTo: " + to + "\r\nSubject: signed " + id + "\r\nDate: Mon, 07 Dec 2026 09:00:00 +0000\r\n" +
		"Message-ID: <" + id + ">\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n" +
		"A signed message.\r\n.a line that starts with a dot\r\n..and one with two\r\ntrailing white space   \r\n\r\n"
}

var _ = Describe("DKIM", Label("trace"), func() {
	It("keeps a relaxed/relaxed signature valid at the mailbox and at the Internet sink", f.Clause("TRACE-009"), func() {
		w := f.StartShipped("edge-smarthost.yaml")
		publishDKIM(w, "fabrikam.test")
		publishDKIM(w, "contoso.test")

		c, got := delivered(w, signDKIM("fabrikam.test", dkimMessage("bob@fabrikam.test", "alice@contoso.test", "in@fabrikam.test")))
		Expect(verifyDKIM(w, []byte(got))).To(Equal([]string{"d=fabrikam.test: pass"}), c.Explain("the Internet sender's signature verifies in alice's mailbox"))

		s := w.SubmitMessage(f.FromOrg, signDKIM("contoso.test", dkimMessage("alice@contoso.test", "carol@fabrikam.test", "out@contoso.test")), "carol@fabrikam.test")
		Eventually(func() int { return len(w.Received("smarthost.isp.test")) }).Should(Equal(1), s.Explain("relayed to the smart host"))
		Expect(verifyDKIM(w, w.Received("smarthost.isp.test")[0].Data)).To(Equal([]string{"d=contoso.test: pass"}), s.Explain("the organisation's signature verifies at the Internet sink"))
	})
})
