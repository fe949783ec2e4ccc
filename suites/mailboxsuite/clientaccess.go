package mailboxsuite

import (
	"bufio"
	"errors"
	"net"
	"strings"
	"sync/atomic"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-sasl"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	f "github.com/mailflow/mailflow/suites/framework"
	"github.com/mailflow/mailflow/trace"
)

// folderNames are the folders LIST shows.
func folderNames(c *imapclient.Client) []string {
	GinkgoHelper()
	list, err := c.List("", "*", nil).Collect()
	Expect(err).NotTo(HaveOccurred(), `LIST "" "*"`)
	var out []string
	for _, l := range list {
		out = append(out, l.Mailbox)
	}
	return out
}

// proxied are the Mailbox servers a Client Access server's logins reached.
func proxied(w *f.World, cas string) []string {
	var out []string
	for _, e := range trace.OfType(w.Trace().Events(), trace.Proxy, cas) {
		out = append(out, e.NextHop)
	}
	return out
}

// authFailed says whether err is a NO [AUTHENTICATIONFAILED].
func authFailed(err error) bool {
	var ie *imap.Error
	return errors.As(err, &ie) && ie.Type == imap.StatusResponseTypeNo && ie.Code == imap.ResponseCodeAuthenticationFailed
}

var _ = Describe("Client Access", Label("mailbox", "client-access"), func() {
	It("takes an IMAP login at any Client Access server to the user's own mailbox, in whichever site", f.Clause("MBX-011"), func() {
		f.RequireMailboxServer()
		w := f.StartShipped("client-access.yaml")
		casLon, casPar := w.ClientAccessEndpoint("CAS-LON"), w.ClientAccessEndpoint("CAS-PAR")
		s := w.SubmitMessage(f.Internet, "From: bob@fabrikam.test\r\nTo: pierre@contoso.test\r\nSubject: cas\r\nMessage-ID: <cas-1@fabrikam.test>\r\n\r\nFor Paris.\r\n", pierre)
		direct := w.IMAP(pierre, nil)
		inbox(direct, 1, s.Explain("pierre's INBOX on MBX-PAR holds the message"))
		want := folderNames(direct)

		// pierre, whose mailbox is in Paris, through London's Client Access: LOGIN after STARTTLS.
		viaLon := w.DialIMAP(casLon, nil)
		Expect(viaLon.Login(pierre, "pierre-secret").Wait()).To(Succeed(), "LOGIN as pierre at CAS-LON")
		inbox(viaLon, 1, s.Explain("SELECT INBOX through CAS-LON shows pierre's message"))
		Expect(messageIDs(viaLon, "INBOX")).To(Equal([]string{"<cas-1@fabrikam.test>"}), "the same message as on MBX-PAR")
		Expect(folderNames(viaLon)).To(Equal(want), "the same folders as on MBX-PAR")

		// alice, whose mailbox is in London, through Paris's: AUTHENTICATE PLAIN over TLS.
		viaPar := w.DialIMAP(casPar, nil)
		Expect(viaPar.Authenticate(sasl.NewPlainClient("", alice, "alice-secret"))).To(Succeed(), "AUTHENTICATE PLAIN as alice at CAS-PAR")
		sel, err := viaPar.Select("INBOX", nil).Wait()
		Expect(err).NotTo(HaveOccurred(), "SELECT INBOX through CAS-PAR")
		Expect(sel.NumMessages).To(BeZero(), "alice's own INBOX, empty, not pierre's")
		appendTo(viaPar, "Drafts", "Subject: draft\r\n\r\nkept\r\n")
		Expect(count(w.IMAP(alice, nil), "Drafts")()).To(Equal(uint32(1)), "what alice does through CAS-PAR is in her mailbox on MBX-LON")

		if w.Traced() {
			Eventually(func() []string { return proxied(w, "CAS-LON") }).Should(Equal([]string{"MBX-PAR"}), "CAS-LON's trace names MBX-PAR, the server reached")
			Eventually(func() []string { return proxied(w, "CAS-PAR") }).Should(Equal([]string{"MBX-LON"}), "CAS-PAR's trace names MBX-LON")
		}
	})

	It("passes IDLE through, so a client idling at a Client Access server hears EXISTS for new mail", f.Clause("MBX-011", "MBX-012"), func() {
		f.RequireMailboxServer()
		w := f.StartShipped("client-access.yaml")
		var exists atomic.Uint32
		c := w.DialIMAP(w.ClientAccessEndpoint("CAS-LON"), &imapclient.UnilateralDataHandler{Mailbox: func(d *imapclient.UnilateralDataMailbox) {
			if d.NumMessages != nil {
				exists.Store(*d.NumMessages)
			}
		}})
		Expect(c.Login(pierre, "pierre-secret").Wait()).To(Succeed(), "LOGIN as pierre at CAS-LON")
		sel, err := c.Select("INBOX", nil).Wait()
		Expect(err).NotTo(HaveOccurred(), "SELECT INBOX through CAS-LON")
		Expect(sel.NumMessages).To(BeZero(), "INBOX empty before the delivery")
		idle, err := c.Idle()
		Expect(err).NotTo(HaveOccurred(), "IDLE through CAS-LON")
		s := w.SubmitMessage(f.Internet, "From: bob@fabrikam.test\r\nTo: pierre@contoso.test\r\nSubject: idle\r\n\r\nNew.\r\n", pierre)
		Eventually(exists.Load).Should(Equal(uint32(1)), s.Explain("* 1 EXISTS through CAS-LON while in IDLE, before DONE"))
		Expect(idle.Close()).To(Succeed(), "DONE")
		Expect(idle.Wait()).To(Succeed(), "IDLE ends with OK")
	})

	It("refuses wrong credentials with NO [AUTHENTICATIONFAILED] and any login in the clear", f.Clause("MBX-011"), func() {
		f.RequireMailboxServer()
		w := f.StartShipped("client-access.yaml")
		ep := w.ClientAccessEndpoint("CAS-LON")
		c := w.DialIMAP(ep, nil)
		err := c.Login(pierre, "not-his-password").Wait()
		Expect(authFailed(err)).To(BeTrue(), "NO [AUTHENTICATIONFAILED] to a wrong password, got %v", err)
		err = c.Authenticate(sasl.NewPlainClient("", "nobody@contoso.test", "x"))
		Expect(authFailed(err)).To(BeTrue(), "NO [AUTHENTICATIONFAILED] to an unknown user, got %v", err)
		Expect(c.Login(pierre, "pierre-secret").Wait()).To(Succeed(), "the right password after failures")

		// In the clear: raw bytes, as a client that ignores LOGINDISABLED would send them.
		conn, err := net.DialTimeout("tcp", ep, 10*time.Second)
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(conn.Close)
		_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
		r := bufio.NewReader(conn)
		greeting, err := r.ReadString('\n')
		Expect(err).NotTo(HaveOccurred())
		Expect(greeting).To(ContainSubstring("LOGINDISABLED"), "no login offered in the clear")
		_, err = conn.Write([]byte("a LOGIN pierre@contoso.test pierre-secret\r\n"))
		Expect(err).NotTo(HaveOccurred())
		reply, err := r.ReadString('\n')
		Expect(err).NotTo(HaveOccurred())
		Expect(strings.TrimSpace(reply)).To(HavePrefix("a NO [PRIVACYREQUIRED]"), "LOGIN in the clear refused")
		if w.Traced() {
			Eventually(func() []string { return proxied(w, "CAS-LON") }).Should(HaveLen(1), "one login proxied, the right one")
		}
	})
})
