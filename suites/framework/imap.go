package framework

import (
	"errors"
	"fmt"
	"time"

	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/onsi/ginkgo/v2"
	"github.com/onsi/gomega"

	"github.com/mailflow/mailflow/fixtures/testca"
)

// imapTopology is a topology whose Mailbox servers speak IMAP.
type imapTopology interface {
	IMAPEndpoint(addr string) (string, error)
}

// IMAPEndpoint is where a client reaches the IMAP service of the server holding addr's
// mailbox. A target without one (a third-party MTA in a scenario with no mailbox
// logins) reports the spec N/A.
func (w *World) IMAPEndpoint(addr string) string {
	ginkgo.GinkgoHelper()
	t, ok := w.Topology.(imapTopology)
	if !ok {
		ginkgo.Skip(fmt.Sprintf("N/A: target %s has no IMAP mailbox server (it relays to the organisation's internal host and keeps no mailbox)", targetName()))
	}
	ep, err := t.IMAPEndpoint(addr)
	skipIfNotApplicable(err)
	gomega.Expect(err).NotTo(gomega.HaveOccurred(), "IMAP endpoint of %s", addr)
	return ep
}

// notApplicable is an error a topology gives for a service it does not have in this
// world (a third-party MTA with no mailbox server behind it for this scenario): the
// spec is N/A, not failed.
type notApplicable interface {
	error
	NotApplicable() bool
}

// skipIfNotApplicable reports the spec N/A when err says the target does not have
// what it asked for.
func skipIfNotApplicable(err error) {
	ginkgo.GinkgoHelper()
	var na notApplicable
	if errors.As(err, &na) && na.NotApplicable() {
		ginkgo.Skip(fmt.Sprintf("N/A: target %s: %v", targetName(), err))
	}
}

// IMAP logs in to addr's mailbox as addr, with the scenario's password, over STARTTLS,
// and closes the connection when the spec ends. on receives what the server sends
// unasked (EXISTS, EXPUNGE, FETCH FLAGS); it may be nil.
func (w *World) IMAP(addr string, on *imapclient.UnilateralDataHandler) *imapclient.Client {
	ginkgo.GinkgoHelper()
	ep := w.IMAPEndpoint(addr)
	r, ok := w.Scenario.Recipient(addr)
	gomega.Expect(ok && r.Password != "").To(gomega.BeTrue(), "%s has no password in %s", addr, w.Scenario.File)
	c := w.DialIMAP(ep, on)
	gomega.Expect(c.Login(r.Mail, r.Password).Wait()).To(gomega.Succeed(), "IMAP LOGIN as %s at %s", r.Mail, ep)
	return c
}

// DialIMAP connects to an IMAP endpoint and upgrades with STARTTLS, trusting the test
// CA, without logging in; the connection is closed when the spec ends.
func (w *World) DialIMAP(ep string, on *imapclient.UnilateralDataHandler) *imapclient.Client {
	ginkgo.GinkgoHelper()
	// The server's certificate names its address, which DialStartTLS checks.
	c, err := imapclient.DialStartTLS(ep, &imapclient.Options{
		TLSConfig:             testca.Shared().ClientConfig(""),
		UnilateralDataHandler: on,
	})
	gomega.Expect(err).NotTo(gomega.HaveOccurred(), "IMAP STARTTLS to %s", ep)
	ginkgo.DeferCleanup(func() {
		done := make(chan struct{})
		go func() { _ = c.Logout().Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
		}
		_ = c.Close()
	})
	return c
}

// clientAccessTopology is a topology with Client Access servers.
type clientAccessTopology interface {
	ClientAccessEndpoint(server string) (string, error)
}

// ClientAccessEndpoint is the IMAP address of a Client Access server (MBX-011). A
// target without one reports the spec N/A.
func (w *World) ClientAccessEndpoint(server string) string {
	ginkgo.GinkgoHelper()
	t, ok := w.Topology.(clientAccessTopology)
	if !ok {
		ginkgo.Skip(fmt.Sprintf("N/A: target %s has no Client Access server", targetName()))
	}
	ep, err := t.ClientAccessEndpoint(server)
	gomega.Expect(err).NotTo(gomega.HaveOccurred(), "Client Access endpoint of %s", server)
	return ep
}
