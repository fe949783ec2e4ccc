package filtersuite

import (
	"encoding/base64"
	"fmt"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/mailflow/mailflow/scenario"
	f "github.com/mailflow/mailflow/suites/framework"
	"github.com/mailflow/mailflow/trace"
)

const agentAttachment = "Attachment Filtering Agent"

// program stands in for an executable: what matters is the name it travels under.
var program = base64.StdEncoding.EncodeToString([]byte("MZ\x90\x00 a program, as far as names go"))

// mimeMessage is a multipart/mixed message with a Message-ID of its own, a text part
// and parts, each a whole body part (header, empty line, body).
func mimeMessage(boundary string, parts ...string) (id, text string) {
	id = fmt.Sprintf("attach-%d-%d@fabrikam.test", GinkgoParallelProcess(), seq.Add(1))
	var b strings.Builder
	fmt.Fprintf(&b, "From: bob@fabrikam.test\r\nTo: alice@contoso.test\r\nSubject: files\r\nMessage-ID: <%s>\r\nMIME-Version: 1.0\r\n"+
		"Content-Type: multipart/mixed; boundary=\"%s\"\r\n\r\n", id, boundary)
	for _, p := range append([]string{textPart}, parts...) {
		fmt.Fprintf(&b, "--%s\r\n%s\r\n", boundary, p)
	}
	fmt.Fprintf(&b, "--%s--\r\n", boundary)
	return id, b.String()
}

const textPart = "Content-Type: text/plain; charset=us-ascii\r\n\r\nThe files you asked for."

func filePart(name, ctype, cte, body string) string {
	return fmt.Sprintf("Content-Type: %s\r\nContent-Disposition: attachment; filename=\"%s\"\r\nContent-Transfer-Encoding: %s\r\n\r\n%s", ctype, name, cte, body)
}

// attachedMessage is a message/rfc822 part holding a message with part, in cte.
func attachedMessage(cte, part string) string {
	_, inner := mimeMessage("inner-boundary", part)
	if cte == "base64" {
		inner = base64.StdEncoding.EncodeToString([]byte(inner))
	}
	return "Content-Type: message/rfc822\r\nContent-Transfer-Encoding: " + cte + "\r\n\r\n" + inner
}

// sendFile sends a message to alice through EDGE1's Internet connector and returns
// the end-of-data reply.
func sendFile(w *f.World, msg string) (*f.Session, f.Reply) {
	GinkgoHelper()
	s := from(w, w.ClientIn(listedNet), "Internet")
	Expect(s.Cmd("MAIL FROM:<bob@fabrikam.test>")).To(f.HaveClass(2), s.Explain("MAIL accepted"))
	Expect(s.Cmd("RCPT TO:<alice@contoso.test>")).To(f.HaveClass(2), s.Explain("RCPT accepted"))
	_, end := s.Data(msg)
	return s, end
}

var _ = Describe("Attachment filtering", Label("filter"), func() {
	DescribeTable("refuses a blocked attachment at end-of-data with 5.7.1 by default, wherever it is", f.Clause("FILTER-016"),
		func(part string) {
			w := start()
			id, msg := mimeMessage("outer-boundary", part)
			s, end := sendFile(w, msg)
			Expect(end).To(f.HaveReply(550, "5.7.1"), s.Explain("the message is refused at end-of-data with 550 5.7.1"))
			notDelivered(w, s, "alice@contoso.test", id)
			if w.Traced() {
				Eventually(func() []trace.Event { return agentEvents(w, trace.Fail, agentAttachment) }).Should(HaveLen(1), s.Explain("one FAIL event naming the %s", agentAttachment))
			}
		},
		Entry("a *.exe in multipart/mixed", filePart("invoice.exe", "application/octet-stream", "base64", program)),
		Entry("a *.EXE in another case", filePart("INVOICE.EXE", "application/octet-stream", "base64", program)),
		Entry("a *.exe in a quoted-printable part", filePart("invoice.exe", "application/octet-stream", "quoted-printable", "MZ=90=00 a program")),
		Entry("a *.exe inside an attached message (message/rfc822)", attachedMessage("7bit", filePart("invoice.exe", "application/octet-stream", "base64", program))),
		Entry("a *.exe inside a base64-encoded attached message", attachedMessage("base64", filePart("invoice.exe", "application/octet-stream", "base64", program))),
		Entry("a blocked content type without a name", "Content-Type: application/x-msdownload\r\nContent-Transfer-Encoding: base64\r\n\r\n"+program),
	)

	It("lets a message through whose attachments are not blocked", f.Clause("FILTER-016"), func() {
		w := start()
		pdf := filePart("invoice.exe.pdf", "application/pdf", "base64", base64.StdEncoding.EncodeToString([]byte("%PDF-1.4")))
		id, msg := mimeMessage("outer-boundary", pdf)
		s, end := sendFile(w, msg)
		Expect(end).To(f.HaveClass(2), s.Explain("a PDF, even one named *.exe.pdf, is not blocked"))
		Expect(string(delivered(w, s, "alice@contoso.test", id))).To(ContainSubstring(pdf), s.Explain("delivered with its attachment"))
	})

	It("strips the attachment and adds a notice naming it when set to strip", f.Clause("FILTER-016"), func() {
		w := startWith(func(edge *scenario.Server) { edge.Agents.AttachmentFilter.Action = scenario.AttachmentStrip })
		pdf := filePart("report.pdf", "application/pdf", "base64", base64.StdEncoding.EncodeToString([]byte("%PDF-1.4 the report")))
		id, msg := mimeMessage("outer-boundary", filePart("invoice.exe", "application/octet-stream", "base64", program), pdf)
		s, end := sendFile(w, msg)
		Expect(end).To(f.HaveClass(2), s.Explain("a stripping filter takes the message"))
		got := string(delivered(w, s, "alice@contoso.test", id))
		Expect(got).NotTo(ContainSubstring(program), s.Explain("the delivered copy does not carry the program"))
		Expect(got).NotTo(ContainSubstring(`filename="invoice.exe"`), s.Explain("nor its part"))
		Expect(got).To(ContainSubstring("--outer-boundary\r\n"+textPart+"\r\n"), s.Explain("the text part is intact"))
		Expect(got).To(ContainSubstring("--outer-boundary\r\n"+pdf+"\r\n"), s.Explain("the PDF is intact"))
		Expect(got).To(MatchRegexp(`--outer-boundary\r\nContent-Type: text/plain[^\r]*\r\n(?:[^\r]*\r\n)*\r\n[^\r]*invoice\.exe`), s.Explain("a notice part names the removed file"))
		if w.Traced() {
			Eventually(func() []trace.Event { return agentEvents(w, trace.AgentInfo, agentAttachment) }).Should(ContainElement(HaveField("Detail", ContainSubstring("invoice.exe"))),
				s.Explain("an AGENTINFO event names the %s and the file", agentAttachment))
		}
	})

	It("deletes the message without delivery or DSN when set to delete silently", f.Clause("FILTER-016"), func() {
		w := startWith(func(edge *scenario.Server) { edge.Agents.AttachmentFilter.Action = scenario.AttachmentSilentDelete })
		id, msg := mimeMessage("outer-boundary", attachedMessage("base64", filePart("invoice.exe", "application/octet-stream", "base64", program)))
		s, end := sendFile(w, msg)
		Expect(end).To(f.HaveClass(2), s.Explain("the client is told the message was taken"))
		notDelivered(w, s, "alice@contoso.test", id)
		if w.Traced() {
			Eventually(func() []trace.Event { return agentEvents(w, trace.Drop, agentAttachment) }).Should(HaveLen(1), s.Explain("one DROP event naming the %s", agentAttachment))
			Expect(w.Events(trace.DSN)).To(BeEmpty(), s.Explain("and no DSN"))
		}
	})
})
