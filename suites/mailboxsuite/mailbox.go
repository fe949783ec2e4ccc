// Package mailboxsuite holds the MBX-* clause specs. They read the recipient's mailbox
// the way a user does, over IMAP (go-imap's client), from the Mailbox server that holds
// it. A third-party MTA delivers to a Dovecot in its container in the scenarios whose
// recipients log in to their mailbox (targets/mta), and the pair is judged; elsewhere
// the MTA relays to the organisation's internal host and the specs are N/A.
package mailboxsuite

import (
	"regexp"
	"sync/atomic"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/mailflow/mailflow/scenarios"
	f "github.com/mailflow/mailflow/suites/framework"
	"github.com/mailflow/mailflow/trace"
)

const body = "From: bob@fabrikam.test\r\nTo: alice@contoso.test\r\nSubject: store\r\nMessage-ID: <mbx@fabrikam.test>\r\n" +
	"\r\nLine one.\r\n.a line that starts with a dot\r\n\r\nLast line, 8-bit: caf\xc3\xa9\r\n"

const alice = "alice@contoso.test"

// start brings up the smallest Internet-facing organisation, alice given a password
// so she can log in to her mailbox.
func start() *f.World {
	GinkgoHelper()
	s, err := scenarios.Load("edge-smarthost.yaml")
	Expect(err).NotTo(HaveOccurred())
	for i := range s.Org.Recipients {
		if s.Org.Recipients[i].Mail == alice {
			s.Org.Recipients[i].Password = "alice-secret"
		}
	}
	return f.StartScenario(s)
}

// inbox selects alice's INBOX once it holds n messages.
func inbox(c *imapclient.Client, n uint32, why func() string) {
	GinkgoHelper()
	Eventually(func() (uint32, error) {
		sel, err := c.Select("INBOX", nil).Wait()
		if err != nil {
			return 0, err
		}
		return sel.NumMessages, nil
	}).Should(Equal(n), why)
}

// deliver sends msg to alice through the Edge and returns the session, and alice's
// IMAP connection with her INBOX selected once the message is in it.
func deliver(w *f.World, msg string) (*f.Session, *imapclient.Client) {
	GinkgoHelper()
	w.IMAPEndpoint(alice) // N/A before any mail is sent on a target without IMAP
	s := w.SubmitMessage(f.Internet, msg, alice)
	c := w.IMAP(alice, nil)
	inbox(c, 1, s.Explain("SELECT INBOX shows the delivered message"))
	return s, c
}

// fetchBody is FETCH 1 BODY[]: the whole message as the server renders it.
func fetchBody(c *imapclient.Client) string {
	GinkgoHelper()
	section := &imap.FetchItemBodySection{}
	msgs, err := c.Fetch(imap.SeqSetNum(1), &imap.FetchOptions{BodySection: []*imap.FetchItemBodySection{section}}).Collect()
	Expect(err).NotTo(HaveOccurred(), "FETCH 1 BODY[]")
	Expect(msgs).To(HaveLen(1), "FETCH 1 BODY[] answers for one message")
	return string(msgs[0].FindBodySection(section))
}

// traceLines matches the header lines delivery may add: Return-Path and Received
// (with their continuation lines).
var traceLines = regexp.MustCompile(`(?m)\A(?:(?:Return-Path|Received):[^\r\n]*\r\n(?:[ \t][^\r\n]*\r\n)*)*`)

var _ = Describe("Mailbox delivery, read over IMAP", Label("mailbox"), func() {
	It("shows the message in INBOX with its body unchanged (FETCH BODY[])", f.Clause("MBX-001"), func() {
		w := start()
		s, c := deliver(w, body)
		got := fetchBody(c)
		rest := got[len(traceLines.FindString(got)):]
		// The line starting with "." travelled dot-stuffed; the stored copy has it back.
		Expect(rest).To(Equal(body), s.Explain("FETCH BODY[]: the submitted message, byte for byte, below the trace lines"))
	})

	It("begins with exactly one Return-Path equal to MAIL FROM (FETCH BODY[])", f.Clause("MBX-002"), func() {
		w := start()
		// A forged Return-Path in the submitted header must not survive as a second one.
		s, c := deliver(w, "Return-Path: <forged@example.test>\r\n"+body)
		got := fetchBody(c)
		Expect(got).To(HavePrefix("Return-Path: <bob@fabrikam.test>\r\nReceived: "), s.Explain("Return-Path first, then the Received lines"))
		Expect(regexp.MustCompile(`(?mi)^Return-Path:`).FindAllStringIndex(got, -1)).To(HaveLen(1), s.Explain("exactly one Return-Path"))
	})

	It("leaves a new message without \\Seen (FETCH FLAGS)", f.Clause("MBX-003"), func() {
		w := start()
		s, c := deliver(w, body)
		msgs, err := c.Fetch(imap.SeqSetNum(1), &imap.FetchOptions{Flags: true, UID: true}).Collect()
		Expect(err).NotTo(HaveOccurred(), "FETCH 1 (FLAGS UID)")
		Expect(msgs).To(HaveLen(1))
		Expect(msgs[0].Flags).NotTo(ContainElement(imap.FlagSeen), s.Explain("no \\Seen flag on a new message"))
	})

	It("tells a client idling on INBOX of new mail with EXISTS, without a command", f.Clause("MBX-012"), func() {
		w := start()
		var exists atomic.Uint32
		c := w.IMAP(alice, &imapclient.UnilateralDataHandler{Mailbox: func(d *imapclient.UnilateralDataMailbox) {
			if d.NumMessages != nil {
				exists.Store(*d.NumMessages)
			}
		}})
		sel, err := c.Select("INBOX", nil).Wait()
		Expect(err).NotTo(HaveOccurred(), "SELECT INBOX")
		Expect(sel.NumMessages).To(BeZero(), "INBOX empty before the delivery")
		idle, err := c.Idle()
		Expect(err).NotTo(HaveOccurred(), "IDLE")
		s := w.SubmitMessage(f.Internet, body, alice)
		if w.Traced() {
			Eventually(func() []trace.Event { return w.Events(trace.Deliver) }).ShouldNot(BeEmpty(), s.Explain("delivered to alice's mailbox"))
		}
		// Still idling: no command has been sent since IDLE, so the EXISTS was unasked.
		Eventually(exists.Load).Should(Equal(uint32(1)), s.Explain("* 1 EXISTS while in IDLE, before DONE"))
		if w.Traced() {
			Eventually(func() []trace.Event { return w.Events(trace.Notify) }).Should(ContainElement(And(
				HaveField("Recipients", ConsistOf(alice)), HaveField("Detail", HavePrefix("* 1 EXISTS")))),
				s.Explain("a NOTIFY event for alice's delivery: the trace shows who was told"))
		}
		Expect(idle.Close()).To(Succeed(), "DONE")
		Expect(idle.Wait()).To(Succeed(), "IDLE ends with OK")
	})
})
