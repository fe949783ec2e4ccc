package framework

import (
	"fmt"

	"github.com/onsi/ginkgo/v2"
	"github.com/onsi/gomega"
)

// submissionTopology is a topology whose Mailbox servers take client submission.
type submissionTopology interface {
	SubmissionEndpoint(addr string) (string, error)
}

// SubmissionEndpoint is where addr submits mail (port 587 of the Mailbox server holding
// addr's mailbox). A target without one (a third-party MTA in a scenario with no
// mailbox logins, which relays everything to the organisation's internal host) reports
// the spec N/A.
func (w *World) SubmissionEndpoint(addr string) string {
	ginkgo.GinkgoHelper()
	t, ok := w.Topology.(submissionTopology)
	if !ok {
		ginkgo.Skip(fmt.Sprintf("N/A: target %s has no mailbox server whose submission port serves %s (it relays to the organisation's internal host and keeps no mailbox)", targetName(), addr))
	}
	ep, err := t.SubmissionEndpoint(addr)
	skipIfNotApplicable(err)
	gomega.Expect(err).NotTo(gomega.HaveOccurred(), "submission endpoint of %s", addr)
	return ep
}

// DialSubmission connects to addr's submission port and sends EHLO; the session is
// closed when the spec ends.
func (w *World) DialSubmission(addr string) (*Session, Reply) {
	ginkgo.GinkgoHelper()
	s, greeting := DialAddr(w.SubmissionEndpoint(addr))
	w.sessions = append(w.sessions, s)
	gomega.Expect(greeting).To(HaveReply(220), s.Explain("220 greeting on the submission port"))
	return s, s.Cmd("EHLO client.contoso.test")
}

// SubmitAs opens a submission session for addr, upgrades it with STARTTLS and
// authenticates with the scenario's password, expecting each step to succeed.
func (w *World) SubmitAs(addr string) *Session {
	ginkgo.GinkgoHelper()
	r, ok := w.Scenario.Recipient(addr)
	gomega.Expect(ok && r.Password != "").To(gomega.BeTrue(), "%s has no password in %s", addr, w.Scenario.File)
	s, _ := w.DialSubmission(addr)
	gomega.Expect(s.StartTLS(w.ClientTLS())).To(HaveReply(220), s.Explain("STARTTLS on the submission port"))
	ehlo := s.Cmd("EHLO client.contoso.test")
	gomega.Expect(ehlo).To(HaveReply(250), s.Explain("EHLO inside TLS"))
	gomega.Expect(s.Cmd("AUTH PLAIN %s", PlainAuth(r.Mail, r.Password))).To(HaveReply(235), s.Explain("AUTH PLAIN as %s inside TLS", r.Mail))
	return s
}

// RequireMailboxServer reports the spec N/A before its world starts on a target with no
// Mailbox server of its own (a third-party MTA plays the Edge and relays to stand-ins
// of the organisation's Hubs), so no MTA is started for a spec that could not look.
// The specs a Dovecot behind the MTA can answer (submission, quota) do not call it.
func RequireMailboxServer() {
	ginkgo.GinkgoHelper()
	t, err := CurrentTarget()
	if err == nil && AnyMTAOnly(t) {
		ginkgo.Skip(fmt.Sprintf("N/A: target %s has no mailbox server (it relays to the organisation's internal host and keeps no mailbox)", t.Name()))
	}
}
