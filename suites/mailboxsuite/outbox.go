package mailboxsuite

import (
	"io"
	"strings"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	f "github.com/mailflow/mailflow/suites/framework"
	"github.com/mailflow/mailflow/trace"
)

// fromOutbox is what pierre's mail client places in his Outbox: alice sees it, and bob,
// on the Internet, gets it as a blind copy.
const fromOutbox = "From: pierre@contoso.test\r\nTo: alice@contoso.test\r\nBcc: bob@fabrikam.test\r\n" +
	"Subject: from the outbox\r\nDate: Mon, 07 Dec 2026 09:00:00 +0100\r\nMessage-ID: <outbox-1@contoso.test>\r\n\r\nPlaced in the Outbox.\r\n"

// outboxRetry is how long the reference's Mailbox server waits before trying a Hub
// again for what is left in an Outbox (reference/mailbox.OutboxRetryInterval).
const outboxRetry = time.Minute

// appendTo is IMAP APPEND of msg to folder with flags.
func appendTo(c *imapclient.Client, folder, msg string, flags ...imap.Flag) *imap.AppendData {
	GinkgoHelper()
	cmd := c.Append(folder, int64(len(msg)), &imap.AppendOptions{Flags: flags})
	_, err := io.WriteString(cmd, msg)
	Expect(err).NotTo(HaveOccurred(), "APPEND %q: the literal", folder)
	Expect(cmd.Close()).To(Succeed(), "APPEND %q: the literal's end", folder)
	data, err := cmd.Wait()
	Expect(err).NotTo(HaveOccurred(), "APPEND %q", folder)
	return data
}

// count is a folder's number of messages, by STATUS.
func count(c *imapclient.Client, folder string) func() (uint32, error) {
	return func() (uint32, error) {
		st, err := c.Status(folder, &imap.StatusOptions{NumMessages: true}).Wait()
		if err != nil || st.NumMessages == nil {
			return 0, err
		}
		return *st.NumMessages, nil
	}
}

// sentFolder is the folder LIST RETURN (SPECIAL-USE) marks \Sent, "" when none is.
func sentFolder(c *imapclient.Client) string {
	GinkgoHelper()
	list, err := c.List("", "*", &imap.ListOptions{ReturnSpecialUse: true}).Collect()
	Expect(err).NotTo(HaveOccurred(), `LIST "" "*" RETURN (SPECIAL-USE)`)
	for _, l := range list {
		for _, a := range l.Attrs {
			if a == imap.MailboxAttrSent {
				return l.Mailbox
			}
		}
	}
	return ""
}

// messageIDs are the Message-ID fields of a folder's messages, read with FETCH BODY[].
func messageIDs(c *imapclient.Client, folder string) []string {
	GinkgoHelper()
	sel, err := c.Select(folder, nil).Wait()
	Expect(err).NotTo(HaveOccurred(), "SELECT %q", folder)
	if sel.NumMessages == 0 {
		return nil
	}
	section := &imap.FetchItemBodySection{Specifier: imap.PartSpecifierHeader}
	msgs, err := c.Fetch(allSeqs(sel.NumMessages), &imap.FetchOptions{BodySection: []*imap.FetchItemBodySection{section}}).Collect()
	Expect(err).NotTo(HaveOccurred(), "FETCH BODY[HEADER] in %q", folder)
	var ids []string
	for _, m := range msgs {
		for _, line := range strings.Split(string(m.FindBodySection(section)), "\r\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.EqualFold(k, "Message-ID") {
				ids = append(ids, strings.TrimSpace(v))
			}
		}
	}
	return ids
}

// sendsOf are the Hubs a server handed messages to, by its SEND events.
func sendsOf(w *f.World, server string) []string {
	var hops []string
	for _, e := range trace.OfType(w.Trace().Events(), trace.Send, server) {
		hops = append(hops, e.NextHop)
	}
	return hops
}

var _ = Describe("Store submission: Outbox to Sent Items", Label("mailbox", "outbox"), func() {
	It("files a message the Hub took in Sent Items and empties the Outbox", f.Clause("MBX-006"), func() {
		w := startSubmission()
		c := w.IMAP(pierre, nil)
		appendTo(c, "Outbox", fromOutbox)
		Eventually(count(c, "Sent Items")).Should(Equal(uint32(1)), "SELECT \"Sent Items\" shows the message the Hub took")
		Eventually(count(c, "Outbox")).Should(BeZero(), "the Outbox empty once the message is sent")
		Expect(messageIDs(c, "Sent Items")).To(Equal([]string{"<outbox-1@contoso.test>"}), "the Sent copy has the same Message-ID")

		a := w.IMAP(alice, nil)
		inbox(a, 1, func() string { return "alice gets the message pierre's Outbox held" })
		Expect(messageIDs(a, "INBOX")).To(Equal([]string{"<outbox-1@contoso.test>"}), "alice's copy has the same Message-ID")
		Expect(fetchBody(a)).NotTo(MatchRegexp(`(?mi)^Bcc:`), "no Bcc: in what alice got")
		Eventually(func() int { return len(w.Received("smarthost.isp.test")) }).Should(Equal(1), "bob, the blind copy, gets it on the Internet")
		// A message placed without Message-ID: is sent with one, and filed with the same.
		appendTo(c, "Outbox", "From: pierre@contoso.test\r\nTo: alice@contoso.test\r\nSubject: no id\r\n\r\nNo Message-ID.\r\n")
		Eventually(count(c, "Sent Items")).Should(Equal(uint32(2)), "the second message sent")
		inbox(a, 2, func() string { return "alice gets the second message" })
		sentIDs, gotIDs := messageIDs(c, "Sent Items"), messageIDs(a, "INBOX")
		Expect(sentIDs).To(HaveLen(2), "both Sent copies have a Message-ID")
		Expect(gotIDs).To(HaveLen(2))
		Expect(sentIDs[1]).To(Equal(gotIDs[1]), "the Message-ID the Mailbox server gave is the Sent copy's too")
		if w.Traced() {
			Eventually(func() []trace.Event { return trace.OfType(w.Trace().Events(), trace.Receive, "MBX-PAR") }).Should(ContainElement(HaveField("Connector", "Outbox")), "MBX-PAR traces the message it took from the Outbox")
			Eventually(func() []string { return sendsOf(w, "MBX-PAR") }).Should(Equal([]string{"HUB-PAR", "HUB-PAR"}), "MBX-PAR handed both to HUB-PAR")
		}
	})
})

var _ = Describe("A Mailbox server's Hub", Label("mailbox", "outbox"), func() {
	It("is one of its own site, never another site's", f.Clause("MBX-010"), func() {
		w := startSubmission()
		c := w.IMAP(pierre, nil)
		appendTo(c, "Outbox", fromOutbox)
		Eventually(count(c, "Sent Items")).Should(Equal(uint32(1)), "the message sent")
		if !w.Traced() {
			Skip("N/A: the target keeps no message-tracking log, which names the Hub")
		}
		Eventually(func() []string { return sendsOf(w, "MBX-PAR") }).Should(Equal([]string{"HUB-PAR"}), "MBX-PAR, in Paris, hands it to HUB-PAR, Paris's Hub")
		hubs := func() []string {
			var out []string
			for _, e := range trace.OfType(w.Trace().Events(), trace.Receive, "") {
				if e.HeaderID == "outbox-1@contoso.test" && strings.HasPrefix(e.Server, "HUB-") {
					out = append(out, e.Server)
				}
			}
			return out
		}
		Eventually(hubs).ShouldNot(BeEmpty(), "a Hub received it")
		Expect(hubs()[0]).To(Equal("HUB-PAR"), "the first Hub to receive it is Paris's")
	})

	It("keeps a message in the Outbox while no Hub of its site answers, and sends it at a retry once one does", f.Clause("MBX-010"), func() {
		w := startSubmission()
		w.RequireFakeClock()
		w.RequireUp()
		c := w.IMAP(pierre, nil)
		w.Down("HUB-PAR")

		// Over SMTP the client keeps it: the reply is a temporary failure.
		s := w.SubmitAs(pierre)
		Expect(s.Cmd("MAIL FROM:<%s>", pierre)).To(f.HaveClass(2), s.Explain("MAIL"))
		Expect(s.Cmd("RCPT TO:<%s>", alice)).To(f.HaveClass(2), s.Explain("RCPT"))
		_, end := s.Data(bare)
		Expect(end).To(s.HaveReply(451, "4.4.1"), s.Explain("451 4.4.1: no Hub of Paris took it, so the client keeps it"))

		appendTo(c, "Outbox", fromOutbox)
		if w.Traced() {
			Eventually(func() []trace.Event { return trace.OfType(w.Trace().Events(), trace.Defer, "MBX-PAR") }).Should(HaveLen(2), "MBX-PAR defers both, SMTP's and the Outbox's")
		}
		Consistently(count(c, "Outbox"), 200*time.Millisecond).Should(Equal(uint32(1)), "the message stays in the Outbox")
		Expect(count(c, "Sent Items")()).To(BeZero(), "nothing in Sent Items while no Hub took it")
		Expect(sendsOf(w, "MBX-PAR")).To(BeEmpty(), "never handed to another site's Hub")

		w.Up("HUB-PAR")
		w.Advance(outboxRetry)
		Eventually(count(c, "Sent Items")).Should(Equal(uint32(1)), "sent at the retry after HUB-PAR came back")
		Eventually(count(c, "Outbox")).Should(BeZero(), "the Outbox empty")
		a := w.IMAP(alice, nil)
		inbox(a, 1, func() string { return "alice gets the message from the Outbox, and only it" })
		if w.Traced() {
			Eventually(func() []string { return sendsOf(w, "MBX-PAR") }).Should(Equal([]string{"HUB-PAR"}), "handed to HUB-PAR, once")
		}
	})
})

var _ = Describe("Sent copies", Label("mailbox", "outbox"), func() {
	It("are not made by SMTP submission; an APPEND to the \\Sent folder keeps the message and its flags", f.Clause("MBX-007"), func() {
		w := startSubmission()
		c := w.IMAP(pierre, nil)
		sent := sentFolder(c)
		Expect(sent).NotTo(BeEmpty(), "a folder marked \\Sent")
		s := w.SubmitAs(pierre)
		Expect(s.Cmd("MAIL FROM:<%s>", pierre)).To(f.HaveClass(2), s.Explain("MAIL"))
		Expect(s.Cmd("RCPT TO:<%s>", alice)).To(f.HaveClass(2), s.Explain("RCPT"))
		msg := strings.Replace(bare, "Subject: submitted", "Message-ID: <smtp-1@contoso.test>\r\nSubject: submitted", 1)
		_, end := s.Data(msg)
		Expect(end).To(f.HaveClass(2), s.Explain("submitted"))
		a := w.IMAP(alice, nil)
		inbox(a, 1, s.Explain("delivered to alice"))
		Expect(count(c, sent)()).To(BeZero(), s.Explain("no copy in %q from SMTP submission", sent))

		appendTo(c, sent, msg, imap.FlagSeen, imap.FlagFlagged)
		sel, err := c.Select(sent, nil).Wait()
		Expect(err).NotTo(HaveOccurred(), "SELECT %q", sent)
		Expect(sel.NumMessages).To(Equal(uint32(1)), "the appended copy in %q", sent)
		section := &imap.FetchItemBodySection{}
		msgs, err := c.Fetch(imap.SeqSetNum(1), &imap.FetchOptions{Flags: true, BodySection: []*imap.FetchItemBodySection{section}}).Collect()
		Expect(err).NotTo(HaveOccurred(), "FETCH 1 (FLAGS BODY[])")
		Expect(msgs).To(HaveLen(1))
		Expect(msgs[0].Flags).To(ContainElements(imap.FlagSeen, imap.FlagFlagged), "the flags APPEND gave")
		Expect(string(msgs[0].FindBodySection(section))).To(Equal(msg), "the appended message, byte for byte")
	})

	It("are kept in a folder LIST RETURN (SPECIAL-USE) marks \\Sent", f.Clause("MBX-008"), func() {
		w := start()
		c := w.IMAP(alice, nil)
		Expect(sentFolder(c)).NotTo(BeEmpty(), `LIST "" "*" RETURN (SPECIAL-USE) marks a folder \Sent`)
	})
})

// allSeqs is 1:n.
func allSeqs(n uint32) imap.SeqSet {
	var s imap.SeqSet
	s.AddRange(1, n)
	return s
}
