package smtpsuite

import (
	"bytes"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/mailflow/mailflow/fixtures/internet"
	f "github.com/mailflow/mailflow/suites/framework"
)

// stuffed is a body with lines that start with a dot, as the client puts them on the
// wire (each leading dot doubled), and unstuffed as they must be delivered.
const (
	stuffed   = "first\r\n..x\r\n...\r\n..\r\nend\r\n"
	unstuffed = "first\r\n.x\r\n..\r\n.\r\nend\r\n"
)

// eightBit is UTF-8 text: octets above 127 in every word but one.
const eightBit = "Gr\u00fc\u00dfe aus K\u00f6ln, \u00bd \u20ac\r\n"

// dsnStatus finds a DSN's per-recipient Status field (RFC 3464 §2.3.4).
var dsnStatus = regexp.MustCompile(`(?mi)^Status:\s*([245]\.\d{1,3}\.\d{1,3})`)

// statuses are the DSN Status codes in a mailbox.
func statuses(ms [][]byte) []string {
	var out []string
	for _, m := range ms {
		for _, s := range dsnStatus.FindAllSubmatch(m, -1) {
			out = append(out, string(s[1]))
		}
	}
	return out
}

// rcpts are n distinct recipients outside the organisation.
func rcpts(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("r%04d@fabrikam.test", i+1)
	}
	return out
}

// relayedTo is every recipient the smart host accepted a message for.
func relayedTo(w *f.World) map[string]bool {
	got := map[string]bool{}
	for _, m := range w.Received("smarthost.isp.test") {
		for _, r := range m.RcptTo {
			got[r] = true
		}
	}
	return got
}

// set is a list as a set.
func set(l []string) map[string]bool {
	out := map[string]bool{}
	for _, x := range l {
		out[x] = true
	}
	return out
}

var _ = Describe("SMTP message transfer", Label("smtp"), func() {
	It("delivers a line the client sent as ..x as .x", f.Clause("SMTP-012"), func() {
		w := f.StartShipped("edge-smarthost.yaml")
		s := sendRaw(w, f.Internet, "alice@contoso.test", msg("dots-in@fabrikam.test", stuffed)+".\r\n")
		Expect(string(delivered(w, s, "dots-in@fabrikam.test"))).To(ContainSubstring(unstuffed), s.Explain("each doubled leading dot delivered as one"))
	})

	It("doubles a leading dot on the wire when it relays", f.Clause("SMTP-012"), func() {
		w := f.StartShipped("edge-smarthost.yaml")
		// Dot stuffing is DATA's: BDAT chunks (RFC 3030) carry the lines as they are, so
		// the smart host offers no CHUNKING and the MTA must use DATA.
		Expect(w.MustHost("smarthost.isp.test").SetWithout("CHUNKING")).To(Succeed())
		s := sendRaw(w, f.FromOrg, "bob@fabrikam.test", msg("dots-out@contoso.test", stuffed)+".\r\n")
		m, wire := relayed(w, s, "dots-out@contoso.test")
		Expect(wire).NotTo(BeNil(), s.Explain("the message reaches the smart host after DATA, which is all it offers"))
		Expect(string(wire)).To(ContainSubstring(stuffed), s.Explain("the smart host gets every leading dot doubled on the wire; it got:\n%q", wire))
		Expect(string(m.Data)).To(ContainSubstring(unstuffed), s.Explain("and so reads the lines as sent"))
	})

	It("delivers 1000-octet text lines unchanged, to a mailbox and to the next hop", f.Clause("SMTP-013"), func() {
		w := f.StartShipped("edge-smarthost.yaml")
		line := strings.Repeat("y", 998) + "\r\n"
		in := sendRaw(w, f.Internet, "alice@contoso.test", msg("long-in@fabrikam.test", line)+".\r\n")
		Expect(string(delivered(w, in, "long-in@fabrikam.test"))).To(ContainSubstring("\r\n"+line), in.Explain("the 1000-octet line reaches alice unchanged"))
		out := sendRaw(w, f.FromOrg, "bob@fabrikam.test", msg("long-out@contoso.test", line)+".\r\n")
		m, _ := relayed(w, out, "long-out@contoso.test")
		Expect(string(m.Data)).To(ContainSubstring("\r\n"+line), out.Explain("the 1000-octet line reaches the smart host unchanged"))
	})

	It("takes 512-octet command lines without a line-too-long error", f.Clause("SMTP-013"), func() {
		w := f.StartShipped("edge-smarthost.yaml")
		s, _ := w.Dial("EDGE1", "Internet")
		s.Cmd("EHLO mail.fabrikam.test")
		// RFC 5321 §4.1.1.9 lets NOOP take an argument, but a server may still refuse
		// one: the 512-octet line must get what a short one gets, whatever that is.
		short := s.Cmd("NOOP n")
		noop := "NOOP " + strings.Repeat("n", 512-len("NOOP \r\n"))
		Expect(s.Cmd("%s", noop)).To(f.HaveReply(short.Code), s.Explain("a NOOP line of 512 octets gets the %d a short NOOP with an argument got", short.Code))
		// The longest path RFC 5321 §4.5.3.1 allows: a 64-octet local part at a
		// 255-octet domain.
		domain := strings.Repeat(strings.Repeat("d", 62)+".", 4) + "fabrikam.test"
		mail := s.Cmd("MAIL FROM:<%s@%s>", strings.Repeat("l", 64), domain)
		Expect(mail.Err).NotTo(HaveOccurred(), s.Explain("the connection stays up"))
		Expect(mail.Code).NotTo(Equal(500), s.Explain("no line-too-long error (500) to a MAIL line of %d octets", len("MAIL FROM:<@>\r\n")+64+len(domain)))
	})

	It("accepts 100 recipients in one transaction and delivers to all of them", f.Clause("SMTP-014"), func() {
		w := f.StartShipped("edge-smarthost.yaml")
		w.RequireRelay(f.FromOrg, rcpts(1)...)
		s := w.DialVia(f.FromOrg)
		Expect(s.Cmd("MAIL FROM:<alice@contoso.test>")).To(f.HaveClass(2), s.Explain("sender accepted"))
		all := rcpts(100)
		for _, r := range all {
			Expect(s.Cmd("RCPT TO:<%s>", r)).To(f.HaveClass(2), s.Explain("each of 100 recipients accepted"))
		}
		_, end := s.Data(msg("hundred@contoso.test", "to many\r\n"))
		Expect(end).To(f.HaveClass(2), s.Explain("the message accepted"))
		Eventually(func() map[string]bool { return relayedTo(w) }).Should(Equal(set(all)), s.Explain("every recipient gets the message"))
	})

	It("answers recipients past its limit with 452 4.5.3 and keeps the ones it accepted", f.Clause("SMTP-014"), func() {
		w := f.StartShipped("recipient-limit.yaml")
		w.RequireRelay(f.FromOrg, rcpts(1)...)
		s := w.DialVia(f.FromOrg)
		Expect(s.Cmd("MAIL FROM:<alice@contoso.test>")).To(f.HaveClass(2), s.Explain("sender accepted"))
		// More than any limit the targets configure (the scenario's 100, Postfix's
		// built-in 1000); the first refusal ends the loop.
		var accepted []string
		var excess f.Reply
		for _, r := range rcpts(1100) {
			if rr := s.Cmd("RCPT TO:<%s>", r); rr.Code/100 != 2 {
				excess = rr
				break
			}
			accepted = append(accepted, r)
		}
		if excess.Code == 0 {
			f.Info("no recipient limit within 1100 recipients: the 452 part had nothing to judge")
			return
		}
		Expect(len(accepted)).To(BeNumerically(">=", 100), s.Explain("at least 100 recipients before the limit"))
		Expect(excess).To(s.HaveReply(452, "4.5.3"), s.Explain("452 4.5.3 to the first recipient past the limit"))
		Expect(s.Cmd("RCPT TO:<late@fabrikam.test>")).To(s.HaveReply(452, "4.5.3"), s.Explain("452 4.5.3 to the next one too"))
		_, end := s.Data(msg("limit@contoso.test", "to the limit\r\n"))
		Expect(end).To(f.HaveClass(2), s.Explain("the message accepted for the recipients accepted"))
		Eventually(func() map[string]bool { return relayedTo(w) }).Should(Equal(set(accepted)), s.Explain("exactly the %d accepted recipients get the message", len(accepted)))
	})

	It("advertises SIZE with its limit", f.Clause("SMTP-015"), func() {
		w := f.StartShipped("limits.yaml")
		s, _ := w.Dial("EDGE1", "Internet")
		args, ok := s.Cmd("EHLO mail.fabrikam.test").Extension("SIZE")
		n := 0
		if ok && len(args) > 0 {
			n, _ = strconv.Atoi(args[0])
		}
		f.Should(n > 0, s, "a server with a %d-byte limit SHOULD advertise SIZE <n>", w.MessageLimit("EDGE1", "Internet"))
	})

	It("refuses MAIL with SIZE= over its limit with 552 5.3.4", f.Clause("SMTP-015"), func() {
		w := f.StartShipped("limits.yaml")
		r, s := w.SendOversize("declared@fabrikam.test", true)
		Expect(r).To(s.HaveReply(552, "5.3.4"), s.Explain("552 5.3.4 to MAIL declaring a size over the limit"))
	})

	It("refuses an undeclared message over its limit with 552 5.3.4 after the end of data and does not deliver it", f.Clause("SMTP-015"), func() {
		w := f.StartShipped("limits.yaml")
		r, s := w.SendOversize("undeclared@fabrikam.test", false)
		Expect(r).To(s.HaveReply(552, "5.3.4"), s.Explain("552 5.3.4 after the end of data"))
		w.SendMarker()
		Expect(w.Copies("alice@contoso.test", "undeclared@fabrikam.test")).To(BeZero(), s.Explain("the refused message is not delivered"))
	})

	It("answers MAIL, RCPT, RCPT and DATA sent in one write with four replies in order", f.Clause("SMTP-016"), func() {
		w := f.StartShipped("edge-smarthost.yaml")
		s, _ := w.Dial("EDGE1", "Internet")
		if !s.Cmd("EHLO mail.fabrikam.test").Advertises("PIPELINING") {
			Skip("N/A: EDGE1 does not advertise PIPELINING\n" + s.Transcript())
		}
		// Each reply differs from its neighbours, so their order shows.
		Expect(s.Raw("MAIL FROM:<bob@fabrikam.test>\r\nRCPT TO:<alice@contoso.test>\r\nRCPT TO:<victim@fabrikam.test>\r\nDATA\r\n")).To(Succeed())
		Expect(s.Read()).To(f.HaveClass(2), s.Explain("first reply: MAIL accepted"))
		Expect(s.Read()).To(f.HaveClass(2), s.Explain("second reply: alice accepted"))
		Expect(s.Read()).To(f.HaveClass(5), s.Explain("third reply: relay to fabrikam.test refused"))
		Expect(s.Read()).To(f.HaveReply(354), s.Explain("fourth reply: 354 to DATA"))
		Expect(s.ReadAll(w.Quiet(time.Second))).To(BeEmpty(), s.Explain("no fifth reply"))
		Expect(s.Raw(msg("pipelined@fabrikam.test", "pipelined\r\n") + ".\r\n")).To(Succeed())
		Expect(s.Read()).To(f.HaveClass(2), s.Explain("the message accepted"))
		delivered(w, s, "pipelined@fabrikam.test")
	})

	It("accepts BODY=8BITMIME and delivers 8-bit octets unchanged", f.Clause("SMTP-017"), func() {
		w := f.StartShipped("edge-smarthost.yaml")
		s, _ := w.Dial("EDGE1", "Internet")
		if !s.Cmd("EHLO mail.fabrikam.test").Advertises("8BITMIME") {
			Skip("N/A: EDGE1 does not advertise 8BITMIME\n" + s.Transcript())
		}
		Expect(s.Cmd("MAIL FROM:<bob@fabrikam.test> BODY=8BITMIME")).To(f.HaveClass(2), s.Explain("BODY=8BITMIME accepted"))
		Expect(s.Cmd("RCPT TO:<alice@contoso.test>")).To(f.HaveClass(2), s.Explain("alice accepted"))
		_, end := s.Data(mime8("8bit-in@fabrikam.test"))
		Expect(end).To(f.HaveClass(2), s.Explain("the message accepted"))
		Expect(string(delivered(w, s, "8bit-in@fabrikam.test"))).To(ContainSubstring(eightBit), s.Explain("the 8-bit octets reach alice unchanged"))
	})

	It("sends a next hop without 8BITMIME only 7-bit data, or fails the message with 5.6.3", f.Clause("SMTP-017"), func() {
		w := f.StartShipped("edge-smarthost.yaml")
		sink := w.MustHost("smarthost.isp.test")
		Expect(sink.SetWithout("8BITMIME")).To(Succeed())
		w.RequireRelay(f.FromOrg, "bob@fabrikam.test")
		s := w.DialVia(f.FromOrg)
		Expect(s.Cmd("MAIL FROM:<alice@contoso.test> BODY=8BITMIME")).To(f.HaveClass(2), s.Explain("BODY=8BITMIME accepted"))
		Expect(s.Cmd("RCPT TO:<bob@fabrikam.test>")).To(f.HaveClass(2), s.Explain("relay accepted"))
		_, end := s.Data(mime8("8bit-out@contoso.test"))
		Expect(end).To(f.HaveClass(2), s.Explain("the message accepted"))
		Eventually(func() int { return len(sink.Messages()) + len(w.Mailbox("alice@contoso.test")) }).
			Should(BeNumerically(">", 0), s.Explain("the message reaches the smart host, or alice gets a DSN"))
		for _, m := range sink.Messages() {
			i := bytes.IndexFunc(m.Data, func(r rune) bool { return r > 127 })
			Expect(i).To(Equal(-1), s.Explain("only 7-bit data to a next hop that does not advertise 8BITMIME; it got:\n%s", m.Data))
		}
		if len(sink.Messages()) == 0 {
			Expect(statuses(w.Mailbox("alice@contoso.test"))).To(ContainElement("5.6.3"), s.Explain("a DSN with Status 5.6.3 to the sender"))
		}
	})

	It("does not relay a non-ASCII address to a next hop without SMTPUTF8, and should fail it with 5.6.7", f.Clause("SMTP-018"), func() {
		w := f.StartShipped("edge-smarthost.yaml")
		sink := w.MustHost("smarthost.isp.test")
		const rcpt = "j\u00fcrgen@fabrikam.test"
		// The DSN names the non-ASCII address, so it is SMTPUTF8 mail itself: where the
		// organisation's Hub is a stand-in host (a third-party MTA plays EDGE1), that
		// host must take SMTPUTF8 for the DSN to reach alice.
		if hub := w.Host("HUB1"); hub != nil {
			Expect(hub.SetWith("SMTPUTF8")).To(Succeed())
		}
		w.RequireRelay(f.FromOrg, rcpt)
		s := w.DialVia(f.FromOrg)
		// RFC 6531 §3.4: a client names SMTPUTF8 on MAIL when the server offers it. A
		// server that does not is still offered the address, since it may take it.
		param := ""
		if s.Cmd("EHLO hub1.contoso.test").Advertises("SMTPUTF8") {
			param = " SMTPUTF8"
		}
		for _, c := range []string{"MAIL FROM:<alice@contoso.test>" + param, "RCPT TO:<" + rcpt + ">"} {
			if r := s.Cmd("%s", c); r.Code/100 != 2 {
				f.Info("EDGE1 refused %q with %s, so it never had a non-ASCII address to relay", c, r)
				return
			}
		}
		if _, end := s.Data(msg("utf8@contoso.test", "hello\r\n")); end.Code/100 != 2 {
			f.Info("EDGE1 refused the message (%s), so it never had a non-ASCII address to relay", end)
			return
		}
		// The message is settled once alice has a DSN or the smart host was offered a
		// recipient; one that stays queued keeps the MUST and misses the SHOULD.
		settled := InterceptGomegaFailure(func() {
			Eventually(func() bool { return len(w.Mailbox("alice@contoso.test")) > 0 || offered(sink) }).Should(BeTrue())
		}) == nil
		// The clause is about the envelope: what the MTA wrote in its own trace header
		// inside the message is TRACE's, not this clause's.
		for _, ss := range sink.Sessions() {
			for _, t := range ss.Transactions {
				env := []string{t.MailFrom}
				for _, r := range t.Rcpts {
					env = append(env, r.Addr)
				}
				Expect(env).NotTo(ContainElement(rcpt), s.Explain("the non-ASCII address is never sent to a next hop that does not advertise SMTPUTF8; it got:\n%s", ss.Transcript))
			}
		}
		f.Should(settled && slicesContain(statuses(w.Mailbox("alice@contoso.test")), "5.6.7"), s,
			"no DSN with Status 5.6.7 for %s in alice's mailbox (settled: %v)", rcpt, settled)
	})
})

// mime8 is a MIME message with an 8-bit text body, Message-ID <id>.
func mime8(id string) string {
	return "From: alice@contoso.test\r\nTo: bob@fabrikam.test\r\nSubject: 8bit\r\nMessage-ID: <" + id + ">\r\n" +
		"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n" + eightBit
}

// offered says whether a host was sent a RCPT.
func offered(h *internet.Host) bool {
	for _, ss := range h.Sessions() {
		for _, t := range ss.Transactions {
			if len(t.Rcpts) > 0 {
				return true
			}
		}
	}
	return false
}

func slicesContain(l []string, x string) bool {
	for _, y := range l {
		if y == x {
			return true
		}
	}
	return false
}
