package secsuite

import (
	"bytes"
	"fmt"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	f "github.com/mailflow/mailflow/suites/framework"
)

// injectedHeader is what a CR or LF smuggled into an address would turn into, should
// it reach a header line of its own.
const injectedHeader = "X-Injected"

// cleanHeader is why a delivered header section is not clean: a bare CR or LF, a
// NUL, or an injected field; "" when it is clean.
func cleanHeader(h []byte) string {
	norm := bytes.ReplaceAll(h, []byte("\r\n"), nil)
	switch {
	case bytes.ContainsAny(norm, "\r\n"):
		return "a bare CR or LF"
	case bytes.IndexByte(h, 0) >= 0:
		return "a NUL"
	case bytes.Contains(bytes.ToLower(h), []byte(strings.ToLower("\n"+injectedHeader))):
		return "an injected " + injectedHeader + " field"
	}
	return ""
}

var _ = Describe("Command-line injection", Label("security"), func() {
	DescribeTable("runs a line with a bare LF, a NUL or a CR/LF in an address as one command at most, and keeps it out of headers", f.Clause("SEC-006"),
		func(rcptStage bool, line string) {
			w := f.StartShipped("edge-smarthost.yaml")
			s, _ := w.Dial("EDGE1", "Internet")
			s.Cmd("EHLO mail.fabrikam.test")
			if rcptStage {
				Expect(s.Cmd("MAIL FROM:<bob@fabrikam.test>")).To(f.HaveClass(2), s.Explain("sender accepted"))
			}
			Expect(s.Raw(line)).To(Succeed())
			replies := s.ReadAll(w.Quiet(time.Second))
			Expect(replies).To(HaveLen(1), s.Explain("one reply to the line %q: two or more mean it ran as several commands", line))
			if closing(replies[0]) {
				closes(s)
				return
			}
			if !rcptStage && replies[0].Code/100 != 2 {
				Expect(s.Cmd("MAIL FROM:<bob@fabrikam.test>")).To(f.HaveClass(2), s.Explain("a proper MAIL after the refused one"))
			}
			Expect(s.Cmd("RCPT TO:<alice@contoso.test>")).To(f.HaveClass(2), s.Explain("alice accepted"))
			_, end := s.Data(message("injection@fabrikam.test", "body\r\n"))
			Expect(end).To(f.HaveClass(2), s.Explain("the message accepted"))
			var got []byte
			Eventually(func() []byte {
				got = f.WithMessageID(w.Mailbox("alice@contoso.test"), "injection@fabrikam.test")
				return got
			}).ShouldNot(BeNil(), s.Explain("the message reaches alice"))
			Expect(cleanHeader(f.Header(got))).To(BeEmpty(), s.Explain("nothing of the line in a header; the delivered header is:\n%s", f.Header(got)))
		},
		Entry("bare LF between two commands", false, "MAIL FROM:<bob@fabrikam.test>\nRCPT TO:<alice@contoso.test>\r\n"),
		Entry("NUL between two commands", false, "MAIL FROM:<bob@fabrikam.test>\x00RCPT TO:<alice@contoso.test>\r\n"),
		Entry("CR in the sender address", false, "MAIL FROM:<bob@fabrikam.test\r"+injectedHeader+": sender-cr>\r\n"),
		Entry("LF in the sender address", false, "MAIL FROM:<bob@fabrikam.test\n"+injectedHeader+": sender-lf>\r\n"),
		Entry("CR in a recipient address", true, "RCPT TO:<alice@contoso.test\r"+injectedHeader+": rcpt-cr>\r\n"),
		Entry("LF in a recipient address", true, "RCPT TO:<alice@contoso.test\n"+injectedHeader+": rcpt-lf>\r\n"),
	)
})

var _ = Describe("Transaction state", Label("security"), func() {
	It("answers MAIL inside a transaction with 503 5.5.1, or resets it, and never acknowledges a message it does not deliver", f.Clause("SEC-007"), func() {
		w := f.StartShipped("edge-smarthost.yaml")
		s, _ := w.Dial("EDGE1", "Internet")
		s.Cmd("EHLO mail.fabrikam.test")
		Expect(s.Cmd("MAIL FROM:<a@fabrikam.test>")).To(f.HaveClass(2), s.Explain("first sender accepted"))
		Expect(s.Cmd("RCPT TO:<alice@contoso.test>")).To(f.HaveClass(2), s.Explain("alice accepted"))
		second := s.Cmd("MAIL FROM:<b@fabrikam.test>")
		if second.Code/100 == 2 {
			// The transaction was reset: the new one has no recipient yet.
			r := s.Cmd("DATA")
			Expect(r.Code).To(Or(Equal(503), Equal(554)), s.Explain("MAIL reset the transaction, so DATA without a recipient in the new one gets 503 or 554"))
			Expect(r).To(s.EnhancedCode("5.5.1"), s.Explain("enhanced code 5.5.1"))
			return
		}
		Expect(second).To(s.HaveReply(503, "5.5.1"), s.Explain("503 5.5.1 to MAIL inside a transaction"))
		_, end := s.Data(message("state@fabrikam.test", "body\r\n"))
		Expect(end).To(f.HaveClass(2), s.Explain("the first transaction goes on and its message is accepted"))
		Eventually(func() int { return w.Copies("alice@contoso.test", "state@fabrikam.test") }).Should(Equal(1), s.Explain("a 250 means alice's copy is queued: it arrives"))
	})

	DescribeTable("refuses DATA with 503 5.5.1 or 554 5.5.1 without a current MAIL and an accepted RCPT", f.Clause("SEC-007"),
		func(before ...string) {
			w := f.StartShipped("edge-smarthost.yaml")
			s, _ := w.Dial("EDGE1", "Internet")
			s.Cmd("EHLO mail.fabrikam.test")
			for _, c := range before {
				s.Cmd("%s", c)
			}
			r := s.Cmd("DATA")
			Expect(r.Code).To(Or(Equal(503), Equal(554)), s.Explain("503 or 554 to DATA"))
			Expect(r).To(s.EnhancedCode("5.5.1"), s.Explain("enhanced code 5.5.1"))
		},
		Entry("no MAIL"),
		Entry("no accepted RCPT", "MAIL FROM:<bob@fabrikam.test>", "RCPT TO:<"+victim+">"),
		Entry("after RSET", "MAIL FROM:<bob@fabrikam.test>", "RCPT TO:<alice@contoso.test>", "RSET"),
	)

	It("delivers nothing for commands pipelined after a refused end of data without a new MAIL", f.Clause("SEC-007"), func() {
		w := f.StartShipped("limits.yaml")
		limit := w.MessageLimit("EDGE1", "Internet")
		s := openData(w, f.Internet, "alice@contoso.test")
		Expect(s.Raw(f.Oversize("big@fabrikam.test", limit) + ".\r\n" + "RCPT TO:<alice@contoso.test>\r\nDATA\r\n" + message("again@fabrikam.test", "again\r\n") + ".\r\n")).To(Succeed())
		Expect(endOfData(s)).To(f.HaveClass(5), s.Explain("the message over the %d-byte limit is refused", limit))
		for _, r := range s.ReadAll(w.Quiet(time.Second)) {
			Expect(r.Code).NotTo(Equal(354), s.Explain("no DATA accepted without a new MAIL"))
		}
		w.SendMarker()
		Expect(w.Copies("alice@contoso.test", "again@fabrikam.test")).To(BeZero(), s.Explain("no message from the pipelined commands"))
		Expect(w.Copies("alice@contoso.test", "big@fabrikam.test")).To(BeZero(), s.Explain("nor the refused one"))
	})
})

var _ = Describe("Resource limits", Label("security"), func() {
	DescribeTable("answers an overlong command line with 500 5.5.2 and goes on, or with 421 and closes", f.Clause("SEC-009"),
		func(format string) {
			w := f.StartShipped("edge-smarthost.yaml")
			s, _ := w.Dial("EDGE1", "Internet")
			ehlo := s.Cmd("EHLO mail.fabrikam.test")
			enhanced := ehlo.Advertises("ENHANCEDSTATUSCODES")
			Expect(s.Raw(fmt.Sprintf(format, strings.Repeat("a", 10240)) + "\r\n")).To(Succeed())
			r := s.ReadWithin(replyWait)
			if r.Code == 421 {
				closed, _ := s.AwaitClose(replyWait)
				Expect(closed).To(BeTrue(), s.Explain("the connection closes after 421"))
				return
			}
			Expect(r).To(f.HaveReply(500), s.Explain("500 to a 10 kB command line (or 421 and a close; no other close)"))
			if enhanced {
				Expect(r.Enhanced).To(Equal("5.5.2"), s.Explain("enhanced code 5.5.2 (syntax error), never 5.4.x"))
			}
			Expect(s.Cmd("NOOP")).To(f.HaveReply(250), s.Explain("the session goes on after the 500"))
		},
		Entry("NOOP with a 10 kB argument", "NOOP %s"),
		Entry("MAIL with a 10 kB address", "MAIL FROM:<%s@fabrikam.test>"),
	)

	It("refuses a message over the limit with 552 5.3.4, declared or not", f.Clause("SEC-009"), func() {
		w := f.StartShipped("limits.yaml")
		declared, s := w.SendOversize("declared@fabrikam.test", true)
		Expect(declared).To(s.HaveReply(552, "5.3.4"), s.Explain("552 5.3.4 to MAIL with SIZE= over the limit"))
		undeclared, s := w.SendOversize("undeclared@fabrikam.test", false)
		Expect(undeclared).To(s.HaveReply(552, "5.3.4"), s.Explain("552 5.3.4 after the end of data of an undeclared message over the limit"))
	})
})
