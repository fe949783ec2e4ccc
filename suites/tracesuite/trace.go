// Package tracesuite holds the TRACE-* clause specs: Received headers and message
// tracking.
package tracesuite

import (
	"bytes"
	"fmt"
	"net/netip"
	"regexp"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	f "github.com/mailflow/mailflow/suites/framework"
	"github.com/mailflow/mailflow/trace"
)

// receivedRe finds Received fields at the start of a header line.
var receivedRe = regexp.MustCompile(`(?m)^Received: `)

const prior = "Received: from a.example.test (a.example.test [192.0.2.1])\r\n\tby b.example.test with ESMTP id 1; Mon, 2 Nov 2026 10:00:00 +0000\r\n" +
	"Received: from c.example.test by a.example.test with SMTP id 2; Mon, 2 Nov 2026 09:59:00 +0000\r\n"

const body = "From: bob@fabrikam.test\r\nTo: alice@contoso.test\r\nSubject: trace\r\nMessage-ID: <trace@fabrikam.test>\r\n\r\nbody\r\n"

var _ = Describe("Trace headers", Label("trace"), func() {
	It("prepends exactly one Received header and keeps the existing ones in order", f.Clause("TRACE-001"), func() {
		w := f.StartShipped("edge-smarthost.yaml")
		c, _ := w.Dial("EDGE1", "Internet")
		c.Cmd("EHLO mail.fabrikam.test")
		c.Cmd("MAIL FROM:<bob@fabrikam.test>")
		c.Cmd("RCPT TO:<alice@contoso.test>")
		_, end := c.Data(prior + body)
		Expect(end).To(f.HaveClass(2), c.Explain("accepted"))
		Eventually(func() int { return len(w.Mailbox("alice@contoso.test")) }).Should(Equal(1), c.Explain("delivered to alice's mailbox"))
		got := string(w.Mailbox("alice@contoso.test")[0])
		// The store puts Return-Path on top; below it is what the servers passed on.
		if strings.HasPrefix(got, "Return-Path: ") {
			got = got[strings.Index(got, "\r\n")+2:]
		}
		Expect(got).To(HavePrefix("Received: "), c.Explain("new Received headers at the top"))
		i := strings.Index(got, prior)
		Expect(i).To(BeNumerically(">", 0), c.Explain("the original Received lines are kept"))
		Expect(got[i:]).To(HavePrefix(prior+body), c.Explain("the original Received lines unchanged, in order, right after the new ones"))
		added := got[:i]
		Expect(added).To(ContainSubstring("mail.fabrikam.test"), c.Explain("the first server's Received header names the client's HELO"))
		// One per server that accepted the message: the Edge, and on the reference the
		// Hub and the Mailbox server too, as message tracking shows.
		servers := func() int {
			if !w.Traced() {
				return 1 // the MTA
			}
			seen := map[string]bool{}
			for _, e := range w.Trace().Events() {
				if (e.Type == trace.Receive || e.Type == trace.Deliver) && e.HeaderID == "trace@fabrikam.test" {
					seen[e.Server] = true
				}
			}
			return len(seen)
		}
		// Tracking events may trail the stored copy (a container's log is read
		// asynchronously); the count must settle on the number of headers added.
		headers := len(receivedRe.FindAllStringIndex(added, -1))
		Eventually(servers).Should(Equal(headers), c.Explain("exactly one Received added by each server that accepted the message (%d headers)", headers))
	})

	It("names the client's EHLO and address in from, one path in for, and dates with a numeric zone", f.Clause("TRACE-002"), func() {
		w := f.StartShipped("edge-relay.yaml")
		sawFor, inComment := false, false
		for i, rcpts := range [][]string{{"alice@contoso.test"}, {"alice@contoso.test", "carol@partner-int.test"}} {
			id := fmt.Sprintf("trace002-%d@fabrikam.test", i)
			c, _ := w.Dial("EDGE1", "Internet")
			c.Cmd("EHLO %s", clientName)
			Expect(c.Cmd("MAIL FROM:<bob@fabrikam.test>")).To(f.HaveClass(2), c.Explain("sender accepted"))
			for _, rc := range rcpts {
				Expect(c.Cmd("RCPT TO:<%s>", rc)).To(f.HaveClass(2), c.Explain("%s accepted", rc))
			}
			r, own := targetReceived(w, c, id, "trace")

			from, ok := r.Clause("from")
			f.Should(ok, c, "no from clause in\n%s", own)
			if ok {
				where := nameIn(from, clientName)
				f.Should(where != "", c, "the from clause does not name the client's EHLO name %s:\n%s", clientName, own)
				if where == "comment" && !inComment {
					inComment = true // once is enough
					f.Info("the EHLO name %s stands only in a comment of the from clause (RFC 5321 §4.4 has it as the From-domain, the TCP-info in parentheses after it):\n%s", clientName, own)
				}
				lit := addressLiteral(c.LocalAddr())
				f.Should(literalIn(from, lit), c, "the from clause has no address literal %s of the TCP peer:\n%s", lit, own)
			}

			fors := r.All("for")
			Expect(len(fors)).To(BeNumerically("<=", 1), c.Explain("at most one for clause:\n%s", own))
			if len(fors) == 1 {
				sawFor = true
				Expect(fors[0].Items).To(HaveLen(1), c.Explain("the for clause names exactly one path:\n%s", own))
				path, ok := forwardPath(fors[0].Items[0])
				Expect(ok).To(BeTrue(), c.Explain("the for clause names a Path or a Mailbox (RFC 5321 §4.4), got %q:\n%s", fors[0].Items[0], own))
				Expect(rcpts).To(ContainElement(BeEquivalentTo(strings.ToLower(path))), c.Explain("the for clause names a recipient of the transaction %v:\n%s", rcpts, own))
			}

			if _, numeric, err := r.DateTime(); err != nil {
				f.Should(false, c, "the date-time does not parse (%v):\n%s", err, own)
			} else {
				f.Should(numeric, c, "the date-time %q has no numeric zone offset:\n%s", r.Date, own)
			}
		}
		if !sawFor {
			f.Info("no for clause in either message (one recipient, then two), so its MUST had nothing to judge")
		}
	})
})

// clientName is the EHLO name the specs' clients give.
const clientName = "client.trace.fabrikam.test"

// message is a minimal message from bob to alice with a Message-ID to find it by.
func message(id, subject string) string {
	return messageFrom("bob@fabrikam.test", "alice@contoso.test", id, subject)
}

// messageFrom is a minimal message with a Message-ID to find it by.
func messageFrom(from, to, id, subject string) string {
	return "From: " + from + "\r\nTo: " + to + "\r\nSubject: " + subject + "\r\nMessage-ID: <" + id + ">\r\n\r\nbody\r\n"
}

// receivedFields are the values of the Received fields of a message's header, top
// first, folding kept.
func receivedFields(msg []byte) []string {
	h, _, _ := bytes.Cut(msg, []byte("\r\n\r\n"))
	var out []string
	cur := -1
	for _, l := range strings.Split(string(h), "\r\n") {
		switch {
		case l != "" && (l[0] == ' ' || l[0] == '\t'):
			if cur >= 0 {
				out[cur] += "\r\n" + l
			}
		case len(l) > 9 && strings.EqualFold(l[:9], "Received:"):
			out = append(out, l[9:])
			cur = len(out) - 1
		default:
			cur = -1
		}
	}
	return out
}

// nameIn says where a clause names a host: "domain" as its first item, "comment"
// as a word of a comment ("helo=NAME"), "" nowhere.
func nameIn(c Clause, name string) string {
	if len(c.Items) > 0 && strings.EqualFold(strings.TrimSuffix(c.Items[0], "."), name) {
		return "domain"
	}
	for _, cm := range c.Comments {
		for _, w := range wordRe.FindAllString(cm, -1) {
			if strings.EqualFold(strings.TrimSuffix(w, "."), name) {
				return "comment"
			}
		}
	}
	return ""
}

var wordRe = regexp.MustCompile(`[A-Za-z0-9._-]+`)

// addressLiteral is RFC 5321's address-literal of an address (§4.1.3).
func addressLiteral(a netip.Addr) string {
	if a.Is4() {
		return "[" + a.String() + "]"
	}
	return "[IPv6:" + a.String() + "]"
}

// literalIn says whether a clause carries lit, as its domain or in its TCP-info.
func literalIn(c Clause, lit string) bool {
	for _, it := range c.Items {
		if strings.EqualFold(it, lit) {
			return true
		}
	}
	for _, cm := range c.Comments {
		if strings.Contains(strings.ToLower(cm), strings.ToLower(lit)) {
			return true
		}
	}
	return false
}

// forwardPath reads a for clause's argument, a Path ("<alice@contoso.test>", a
// source route allowed) or a Mailbox, as the address it names.
func forwardPath(s string) (string, bool) {
	if strings.HasPrefix(s, "<") {
		if !strings.HasSuffix(s, ">") {
			return "", false
		}
		s = s[1 : len(s)-1]
		if strings.HasPrefix(s, "@") {
			_, s, _ = strings.Cut(s, ":")
		}
	}
	at := strings.LastIndexByte(s, '@')
	return s, at > 0 && at < len(s)-1 && !strings.ContainsAny(s, "<>, \t")
}

// targetReceived sends the message id on c, waits for alice's copy and returns the
// Received field the target added (the bottom one: the client sent none, and later
// servers prepend theirs), parsed, with its text for explanations.
func targetReceived(w *f.World, c *f.Session, id, body string) (Received, string) {
	GinkgoHelper()
	_, end := c.Data(message(id, body))
	Expect(end).To(f.HaveClass(2), c.Explain("accepted"))
	var got []byte
	Eventually(func() []byte { got = f.WithMessageID(w.Mailbox("alice@contoso.test"), id); return got }).
		ShouldNot(BeNil(), c.Explain("delivered to alice's mailbox"))
	fields := receivedFields(got)
	Expect(fields).NotTo(BeEmpty(), c.Explain("a Received header in the delivered copy:\n%s", got))
	own := "Received:" + fields[len(fields)-1]
	r, err := ParseReceived(fields[len(fields)-1])
	Expect(err).NotTo(HaveOccurred(), c.Explain("the target's Received field parses as RFC 5321 §4.4 says:\n%s", own))
	return r, own
}
