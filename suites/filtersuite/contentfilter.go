package filtersuite

import (
	"fmt"
	"net"
	"strings"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/mailflow/mailflow/fixtures/spamdaemon"
	"github.com/mailflow/mailflow/profiles"
	"github.com/mailflow/mailflow/scenario"
	f "github.com/mailflow/mailflow/suites/framework"
	"github.com/mailflow/mailflow/trace"
)

const (
	agentContent = "Content Filter Agent"
	quarantine   = "quarantine@contoso.test"
	headerSCL    = "X-MS-Exchange-Organization-SCL"
)

// thresholds are the content filter's SCL thresholds a spec turns on; 0 is off.
type thresholds struct{ delete, reject, quarantine int }

func scl(n int) *int {
	if n == 0 {
		return nil
	}
	return &n
}

// startSpam starts edge-filter.yaml with EDGE1's content filter asking the world's
// spamd (in-process: the test process's, started on first use and shared by every
// spec of the process; in containers: one beside the servers) and acting on t.
func startSpam(t thresholds) *f.World {
	GinkgoHelper()
	return startSpamd("", t)
}

// needSpamd reports the spec N/A on a target that cannot score (in-process: where
// spamd is not installed), saying why. Every FILTER-013 spec asks, those that need no
// scoring too (a dead spamd, the organisation's boundary): a target that cannot score
// gets N/A for the clause, never a PASS on its corners alone.
func needSpamd() {
	GinkgoHelper()
	f.Require(profiles.FeatureContentFilter)
}

// startSpamd is startSpam with EDGE1 asking the spamd at addr ("": the world's).
func startSpamd(addr string, t thresholds) *f.World {
	GinkgoHelper()
	needSpamd()
	return startWith(func(edge *scenario.Server) {
		edge.Agents.ContentFilter = scenario.ContentFilter{
			Enabled: true, Spamd: addr,
			SCLDeleteThreshold: scl(t.delete), SCLRejectThreshold: scl(t.reject), SCLQuarantineThreshold: scl(t.quarantine),
			QuarantineMailbox: quarantine,
		}
	})
}

// spamMessage is a message with a Message-ID of its own whose body is text.
func spamMessage(text string) (id, msg string) {
	id = fmt.Sprintf("content-%d-%d@fabrikam.test", GinkgoParallelProcess(), seq.Add(1))
	return id, "From: bob@fabrikam.test\r\nTo: alice@contoso.test\r\nSubject: an offer\r\nMessage-ID: <" + id + ">\r\n" +
		"Date: Mon, 7 Dec 2026 12:00:00 +0000\r\n\r\n" + text + "\r\n"
}

var gtube = "This is the GTUBE, the Generic Test for Unsolicited Bulk Email:\r\n" + spamdaemon.GTUBE

// sendSpam sends msg to alice from an anonymous client on the Internet connector and
// returns the end-of-data reply.
func sendSpam(w *f.World, msg string) (*f.Session, f.Reply) {
	GinkgoHelper()
	return sendFile(w, msg)
}

// contentEvents are the content filter's trace events of type t, waited for: the
// containers target reads them from the servers' logs as they come.
func contentEvents(w *f.World, s *f.Session, t trace.Type) []trace.Event {
	GinkgoHelper()
	var evs []trace.Event
	Eventually(func() []trace.Event { evs = agentEvents(w, t, agentContent); return evs }).
		ShouldNot(BeEmpty(), s.Explain("a %s event naming the %s", t, agentContent))
	return evs
}

// headerOf is the value of the first field name in the header section of m.
func headerOf(m []byte, name string) (string, bool) {
	head, _, _ := strings.Cut(string(m), "\r\n\r\n")
	for _, line := range strings.Split(head, "\r\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.EqualFold(k, name) {
			return strings.TrimSpace(v), true
		}
	}
	return "", false
}

// inJunk waits for the message <id> as the only one in addr's Junk E-mail folder
// over IMAP, and returns it and the connection, that folder selected.
func inJunk(w *f.World, s *f.Session, addr, id string) ([]byte, *imapclient.Client) {
	GinkgoHelper()
	c := w.IMAP(addr, nil)
	Eventually(func() (uint32, error) {
		sel, err := c.Select("Junk E-mail", nil).Wait()
		if err != nil {
			return 0, err
		}
		return sel.NumMessages, nil
	}).Should(Equal(uint32(1)), s.Explain("SELECT \"Junk E-mail\" shows the message"))
	section := &imap.FetchItemBodySection{}
	msgs, err := c.Fetch(imap.SeqSetNum(1), &imap.FetchOptions{BodySection: []*imap.FetchItemBodySection{section}}).Collect()
	Expect(err).NotTo(HaveOccurred(), "FETCH 1 BODY[] in Junk E-mail")
	Expect(msgs).To(HaveLen(1))
	got := msgs[0].FindBodySection(section)
	Expect(string(got)).To(ContainSubstring("Message-ID: <"+id+">"), s.Explain("it is the message sent"))
	return got, c
}

var _ = Describe("Content filtering", Label("filter"), func() {
	It("rejects GTUBE at end-of-data with 550 5.7.1 at or above the reject threshold", f.Clause("FILTER-013"), func() {
		w := startSpam(thresholds{reject: 7})
		id, msg := spamMessage(gtube)
		s, end := sendSpam(w, msg)
		Expect(end).To(f.HaveReply(550, "5.7.1"), s.Explain("GTUBE scores as spam (SCL 9) and is refused at end-of-data"))
		Expect(end.Text).To(ContainSubstring("Message rejected due to content restrictions"), s.Explain("Exchange's default text"))
		notDelivered(w, s, "alice@contoso.test", id)
		if w.Traced() {
			evs := contentEvents(w, s, trace.Fail)
			Expect(evs[0].Detail).To(And(ContainSubstring("SCL 9"), ContainSubstring("GTUBE")), s.Explain("the FAIL names the SCL and spamd's GTUBE rule"))
		}
	})

	It("deletes GTUBE with 250 and no DSN at or above the delete threshold, before the reject threshold", f.Clause("FILTER-013"), func() {
		w := startSpam(thresholds{delete: 9, reject: 7, quarantine: 5})
		id, msg := spamMessage(gtube)
		s, end := sendSpam(w, msg)
		Expect(end).To(f.HaveClass(2), s.Explain("the client is told the message was taken"))
		notDelivered(w, s, "alice@contoso.test", id)
		Expect(f.WithMessageID(w.Mailbox(quarantine), id)).To(BeNil(), s.Explain("nor quarantined: the delete threshold acts first"))
		if w.Traced() {
			contentEvents(w, s, trace.Drop)
			Expect(w.Events(trace.DSN)).To(BeEmpty(), s.Explain("and no DSN"))
		}
	})

	It("sends GTUBE to the quarantine mailbox alone at or above the quarantine threshold", f.Clause("FILTER-013"), func() {
		w := startSpam(thresholds{quarantine: 6})
		id, msg := spamMessage(gtube)
		s, end := sendSpam(w, msg)
		Expect(end).To(f.HaveClass(2), s.Explain("a quarantined message is taken"))
		got := delivered(w, s, quarantine, id)
		v, ok := headerOf(got, headerSCL)
		Expect(ok && v == "9").To(BeTrue(), s.Explain("the quarantined copy carries %s: 9, got %q", headerSCL, v))
		notDelivered(w, s, "alice@contoso.test", id)
		if w.Traced() {
			evs := contentEvents(w, s, trace.AgentInfo)
			Expect(evs[0].Detail).To(ContainSubstring("quarantined to "+quarantine), s.Explain("the event says where it went"))
		}
	})

	It("delivers a message below every threshold with its SCL recorded", f.Clause("FILTER-013"), func() {
		w := startSpam(thresholds{delete: 9, reject: 7, quarantine: 6})
		id, msg := spamMessage("Shall we have lunch on Tuesday? The usual place at noon.")
		s, end := sendSpam(w, msg)
		Expect(end).To(f.HaveClass(2), s.Explain("a plain message is taken"))
		got := delivered(w, s, "alice@contoso.test", id)
		v, ok := headerOf(got, headerSCL)
		Expect(ok).To(BeTrue(), s.Explain("the delivered copy records its SCL in %s", headerSCL))
		Expect(v).To(BeElementOf("0", "1", "2", "3"), s.Explain("a plain message scores low"))
		if w.Traced() {
			evs := contentEvents(w, s, trace.AgentInfo)
			Expect(evs[0].Detail).To(ContainSubstring("SCL "+v), s.Explain("the event names the SCL"))
		}
	})

	It("files a message at or above the junk threshold (SCL 4) in the recipient's Junk E-mail folder, shown over IMAP", f.Clause("FILTER-013"), func() {
		w := startSpam(thresholds{})
		w.IMAPEndpoint("alice@contoso.test") // N/A before any mail is sent on a target without IMAP
		id, msg := spamMessage(gtube)
		s, end := sendSpam(w, msg)
		Expect(end).To(f.HaveClass(2), s.Explain("with no threshold enabled, GTUBE is taken"))
		got, c := inJunk(w, s, "alice@contoso.test", id)
		v, _ := headerOf(got, headerSCL)
		Expect(v).To(Equal("9"), s.Explain("with its SCL of 9"))
		sel, err := c.Select("INBOX", nil).Wait()
		Expect(err).NotTo(HaveOccurred())
		Expect(sel.NumMessages).To(BeZero(), s.Explain("and INBOX holds nothing"))
		if w.Traced() {
			Eventually(func() []trace.Event { return w.Events(trace.Deliver) }).Should(ContainElement(HaveField("Detail", ContainSubstring("Junk E-mail"))),
				s.Explain("the DELIVER event names the Junk E-mail folder"))
		}
	})

	It("takes the SCL and every other X-MS-Exchange-Organization field off a message leaving the organisation", f.Clause("FILTER-013"), func() {
		needSpamd()
		w := startRewriting(false)
		id, msg := outboundMessage("")
		org := headerSCL + ": 5\r\nX-MS-Exchange-Organization-AuthAs: Internal\r\n\tfolded\r\n"
		s := w.SubmitMessage(fromOrg, org+msg, "dan@fabrikam.test")
		m := atSink(w, s, id)
		Expect(strings.ToLower(string(f.Header(m.Data)))).NotTo(ContainSubstring("x-ms-exchange-organization-"),
			s.Explain("the Internet sees none of the organisation's own fields"))
		Expect(field(m.Data, "X-Origin")).To(Equal("bob@sales.contoso.test"), s.Explain("and every other field as sent"))
	})

	It("does not score a session that bypasses anti-spam (FILTER-007)", f.Clause("FILTER-013"), func() {
		w := startSpam(thresholds{reject: 7})
		id, msg := spamMessage(gtube)
		s := from(w, w.ClientIn("127.66.0.0/16"), "Internal")
		Expect(s.Cmd("MAIL FROM:<bob@fabrikam.test>")).To(f.HaveClass(2), s.Explain("MAIL accepted"))
		Expect(s.Cmd("RCPT TO:<alice@contoso.test>")).To(f.HaveClass(2), s.Explain("RCPT accepted"))
		_, end := s.Data(msg)
		Expect(end).To(f.HaveClass(2), s.Explain("an organisation's server is not content filtered"))
		delivered(w, s, "alice@contoso.test", id)
		if w.Traced() {
			Expect(agentEvents(w, trace.Fail, agentContent)).To(BeEmpty(), s.Explain("no %s event", agentContent))
			Expect(agentEvents(w, trace.AgentInfo, agentContent)).To(BeEmpty(), s.Explain("no %s event", agentContent))
		}
	})

	It("answers 451 naming spamd when spamd does not answer, and delivers nothing", f.Clause("FILTER-013"), func() {
		// A loopback port nobody listens on: in a container, the Edge's own loopback,
		// where nothing listens on it either.
		l, err := net.Listen("tcp", "127.0.0.1:0")
		Expect(err).NotTo(HaveOccurred())
		dead := l.Addr().String()
		Expect(l.Close()).To(Succeed())
		w := startSpamd(dead, thresholds{reject: 7})
		id, msg := spamMessage(gtube)
		s, end := sendSpam(w, msg)
		Expect(end).To(f.HaveReply(451, "4.3.0"), s.Explain("a temporary failure: the client keeps the message"))
		Expect(end.Text).To(ContainSubstring("spamd"), s.Explain("the reply names the spam filter"))
		notDelivered(w, s, "alice@contoso.test", id)
		if w.Traced() {
			evs := contentEvents(w, s, trace.Fail)
			Expect(evs[0].Detail).To(ContainSubstring(dead), s.Explain("the FAIL names spamd's address"))
		}
	})
})
