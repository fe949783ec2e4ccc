package secsuite

import (
	"bytes"
	"fmt"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	f "github.com/mailflow/mailflow/suites/framework"
)

// sequences are the end-of-data look-alikes of SEC-001: what one parser takes for
// <CRLF>.<CRLF> and another does not (CVE-2023-51764, CVE-2023-51765,
// CVE-2023-51766).
var sequences = []TableEntry{
	Entry("<LF>.<LF>", "\n.\n"),
	Entry("<LF>.<CR><LF>", "\n.\r\n"),
	Entry("<CR><LF>.<LF>", "\r\n.\n"),
	Entry("<CR>.<CR>", "\r.\r"),
}

// smuggled is a second transaction hidden in a message after a look-alike: a server
// that ends DATA at the look-alike runs it, and the victim gets a message.
const smuggled = "MAIL FROM:<mallory@fabrikam.test>\r\nRCPT TO:<" + victim + ">\r\nDATA\r\n" +
	"From: ceo@contoso.test\r\nSubject: smuggled\r\nMessage-ID: <smuggled@fabrikam.test>\r\n\r\nsmuggled\r\n"

// lookalikes are the SEC-001 sequences found in a payload as it crossed the wire
// (the real terminator at its end excluded).
func lookalikes(payload []byte) []string {
	var found []string
	for _, seq := range []string{"\n.\n", "\n.\r\n", "\r\n.\n", "\r.\r"} {
		for i := 0; ; i++ {
			j := bytes.Index(payload[i:], []byte(seq))
			if j < 0 {
				break
			}
			i += j
			// <CR><LF>.<CR><LF> is the real end of data, not a bare <LF> before a dot.
			if seq == "\n.\r\n" && i > 0 && payload[i-1] == '\r' {
				continue
			}
			found = append(found, fmt.Sprintf("%q at octet %d", seq, i))
			break
		}
	}
	return found
}

var _ = Describe("End-of-data smuggling", Label("security"), func() {
	DescribeTable("ends DATA only at <CRLF>.<CRLF>: a look-alike followed by commands gives one message or a refusal of the whole, and the smuggled recipient gets nothing", f.Clause("SEC-001"),
		func(seq string) {
			w := f.StartShipped("edge-smarthost.yaml")
			// The organisation's side may relay, so a smuggled RCPT to the outside is one
			// the server would carry out.
			s := openData(w, f.FromOrg, "alice@contoso.test")
			Expect(s.Raw(message("whole@contoso.test", "before"+seq+smuggled) + ".\r\n")).To(Succeed())
			end := endOfData(s)
			Expect(end.Code/100).To(Or(Equal(2), Equal(5)), s.Explain("one 2yz (one message) or 5yz (the whole refused) to the end of data"))
			Expect(s.ReadAll(w.Quiet(time.Second))).To(BeEmpty(), s.Explain("exactly one reply after the real end of data: any more answer commands smuggled inside the message"))
			if closing(end) {
				closes(s)
			} else {
				Expect(s.Cmd("NOOP")).To(f.HaveReply(250), s.Explain("the session is still in step: NOOP gets its own 250"))
			}

			want := 0
			if end.Code/100 == 2 {
				want = 1
				Eventually(func() int { return w.Copies("alice@contoso.test", "whole@contoso.test") }).Should(Equal(1), s.Explain("the accepted message reaches alice"))
				got := f.WithMessageID(w.Mailbox("alice@contoso.test"), "whole@contoso.test")
				Expect(string(got)).To(ContainSubstring("RCPT TO:<"+victim+">"), s.Explain("alice's message is the whole payload, the smuggled commands included"))
			}
			Consistently(func() int { return toVictim(w) }).WithTimeout(w.Quiet(2*time.Second)).Should(BeZero(), s.Explain("the smuggled recipient %s receives nothing", victim))
			Expect(w.Copies("alice@contoso.test", "whole@contoso.test")).To(Equal(want), s.Explain("alice holds %d copies", want))
			Expect(w.Copies("alice@contoso.test", "smuggled@fabrikam.test")).To(BeZero(), s.Explain("no smuggled message as one of its own"))
		},
		sequences,
	)

	It("ends DATA at <CRLF>.<CRLF> after a bare <CR> and answers what follows as commands", f.Clause("SEC-001"), func() {
		w := f.StartShipped("edge-smarthost.yaml")
		s := openData(w, f.FromOrg, "alice@contoso.test")
		// before<CR><CR><LF>.<CR><LF>: the CR before the real terminator is bare, and the
		// terminator is real. A parser that stays in a "CR seen" state past it reads on.
		Expect(s.Raw(message("first@contoso.test", "before\r\r\n.\r\n") +
			"MAIL FROM:<alice@contoso.test>\r\nRCPT TO:<" + victim + ">\r\nDATA\r\n")).To(Succeed())
		end := endOfData(s)
		Expect(end.Code/100).To(Or(Equal(2), Equal(5)), s.Explain("2yz or 5yz to the end of data"))
		if closing(end) {
			// A server may end a session that sent it a bare CR; then it read no commands.
			closes(s)
			return
		}
		Expect(s.ReadWithin(replyWait)).To(f.HaveClass(2), s.Explain("the next line is a command: MAIL accepted"))
		Expect(s.ReadWithin(replyWait)).To(f.HaveClass(2), s.Explain("RCPT accepted"))
		Expect(s.ReadWithin(replyWait)).To(f.HaveReply(354), s.Explain("354 to DATA"))
		Expect(s.Raw(message("second@contoso.test", "second\r\n") + ".\r\n")).To(Succeed())
		Expect(endOfData(s)).To(f.HaveClass(2), s.Explain("the second message accepted"))
		Eventually(func() int { return toVictim(w) }).Should(Equal(1), s.Explain("the second message reaches %s", victim))
		if end.Code/100 == 2 {
			Eventually(func() int { return w.Copies("alice@contoso.test", "first@contoso.test") }).Should(Equal(1), s.Explain("the first message reaches alice"))
			Expect(string(f.WithMessageID(w.Mailbox("alice@contoso.test"), "first@contoso.test"))).NotTo(ContainSubstring("second"), s.Explain("the first message ends at its terminator"))
		}
	})

	DescribeTable("never passes a look-alike on to the next hop", f.Clause("SEC-002"),
		func(seq string) {
			w := f.StartShipped("edge-smarthost.yaml")
			s := openData(w, f.FromOrg, "bob@fabrikam.test")
			Expect(s.Raw(message("out@contoso.test", "before"+seq+"after\r\n") + ".\r\n")).To(Succeed())
			end := endOfData(s)
			sink := w.MustHost("smarthost.isp.test")
			if end.Code/100 != 2 {
				// Refusing the message is the clause's other way out: nothing is relayed.
				Expect(end).To(f.HaveClass(5), s.Explain("a message with %q is refused for good, or relayed normalised", seq))
				Consistently(func() int { return len(sink.Messages()) }).WithTimeout(w.Quiet(time.Second)).Should(BeZero(), s.Explain("the refused message reaches no next hop"))
				return
			}
			Eventually(func() int { return len(sink.Messages()) }).Should(Equal(1), s.Explain("the smart host receives the message"))
			for _, ss := range sink.Sessions() {
				for _, p := range ss.Payloads() {
					Expect(lookalikes(p)).To(BeEmpty(), s.Explain("the bytes the smart host got hold no bare-newline end-of-data look-alike before the real terminator; they were:\n%q", p))
				}
			}
		},
		sequences,
	)
})
