// Package mailboxsuite holds the MBX-* clause specs. Until the IMAP service exists they
// read the Mailbox server's store directly, as the spec names say; on a third-party MTA,
// which relays to the organisation's internal host and keeps no mailbox, they are N/A.
package mailboxsuite

import (
	"regexp"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	f "github.com/mailflow/mailflow/suites/framework"
)

const body = "From: bob@fabrikam.test\r\nTo: alice@contoso.test\r\nSubject: store\r\nMessage-ID: <mbx@fabrikam.test>\r\n" +
	"\r\nLine one.\r\n.a line that starts with a dot\r\n\r\nLast line, 8-bit: caf\xc3\xa9\r\n"

// deliver sends msg to alice through the Edge and returns her stored copy.
func deliver(w *f.World, msg string) (*f.Session, string, string) {
	GinkgoHelper()
	s := w.SubmitMessage(f.Internet, msg, "alice@contoso.test")
	Eventually(func() int { return len(w.Store("alice@contoso.test")) }).Should(Equal(1), s.Explain("stored in alice's mailbox"))
	m := w.Store("alice@contoso.test")[0]
	return s, string(m.Data), m.Flags
}

// traceLines matches the header lines delivery may add: Return-Path and Received
// (with their continuation lines).
var traceLines = regexp.MustCompile(`(?m)\A(?:(?:Return-Path|Received):[^\r\n]*\r\n(?:[ \t][^\r\n]*\r\n)*)*`)

var _ = Describe("Mailbox delivery (store read directly; IMAP comes later)", Label("mailbox"), func() {
	It("stores the message with its body unchanged (read from the store)", f.Clause("MBX-001"), func() {
		w := f.StartShipped("edge-smarthost.yaml")
		s, got, _ := deliver(w, body)
		rest := got[len(traceLines.FindString(got)):]
		// The line starting with "." travelled dot-stuffed; the stored copy has it back.
		Expect(rest).To(Equal(body), s.Explain("the submitted message, byte for byte, below the trace lines"))
	})

	It("begins with exactly one Return-Path equal to MAIL FROM (read from the store)", f.Clause("MBX-002"), func() {
		w := f.StartShipped("edge-smarthost.yaml")
		// A forged Return-Path in the submitted header must not survive as a second one.
		s, got, _ := deliver(w, "Return-Path: <forged@example.test>\r\n"+body)
		Expect(got).To(HavePrefix("Return-Path: <bob@fabrikam.test>\r\nReceived: "), s.Explain("Return-Path first, then the Received lines"))
		Expect(regexp.MustCompile(`(?mi)^Return-Path:`).FindAllStringIndex(got, -1)).To(HaveLen(1), s.Explain("exactly one Return-Path"))
	})

	It("leaves a new message unseen (store flags)", f.Clause("MBX-003"), func() {
		w := f.StartShipped("edge-smarthost.yaml")
		s, _, flags := deliver(w, body)
		Expect(flags).NotTo(ContainSubstring("S"), s.Explain("no \\Seen flag on a new message"))
	})
})
