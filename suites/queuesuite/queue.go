// Package queuesuite holds the QUEUE-* clause specs: what a server does with mail its
// next hop defers or refuses, when it retries, warns and gives up, and what a user
// sees of it (the sink's sessions, DSNs in the sender's mailbox, the queues). On the
// reference the specs step the fake clock through hours and days; on real-time
// targets they wait for the target's short timers.
package queuesuite

import (
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/mailflow/mailflow/reference/dsn"
	"github.com/mailflow/mailflow/scenario"
	f "github.com/mailflow/mailflow/suites/framework"
	"github.com/mailflow/mailflow/trace"
)

// world is scenarios/edge-mx.yaml with fabrikam.test's MX behaving as told (YAML, as
// in a scenario: "accept", or a mapping), and per recipient as rcpts says.
func world(behaviour string, rcpts ...string) *f.World {
	GinkgoHelper()
	w := f.StartShipped("edge-mx.yaml")
	mx := w.MustHost("mx1.fabrikam.test")
	mx.SetBehaviour(behaviourOf(behaviour))
	for i := 0; i+1 < len(rcpts); i += 2 {
		mx.SetRecipientBehaviour(rcpts[i], behaviourOf(rcpts[i+1]))
	}
	return w
}

func behaviourOf(text string) scenario.Behaviour {
	GinkgoHelper()
	b, err := scenario.ParseBehaviour(text)
	Expect(err).NotTo(HaveOccurred(), "behaviour %s", text)
	return b
}

var seq atomic.Int64

// submit relays one message from alice to rcpts and returns the session and the
// message's Message-ID.
func submit(w *f.World, rcpts ...string) (*f.Session, string) {
	GinkgoHelper()
	id := fmt.Sprintf("queue-%d@contoso.test", seq.Add(1))
	return w.Submit(f.FromOrg, id, rcpts...), id
}

// notices are the DSNs in alice's mailbox, parsed, with the Action of each block.
func notices(w *f.World) (failed, delayed []*dsn.Parsed) {
	for _, m := range w.Mailbox("alice@contoso.test") {
		p, err := dsn.Parse(m)
		if err != nil {
			continue // not a DSN
		}
		for _, r := range p.Recipients {
			switch strings.ToLower(dsn.Field(r, "Action")) {
			case "failed":
				failed = append(failed, p)
			case "delayed":
				delayed = append(delayed, p)
			}
		}
	}
	return failed, delayed
}

// dsnSummary lists the Action and Status of each DSN block in alice's mailbox, so that
// a notice of the wrong kind shows in a failure ("none" when there is none).
func dsnSummary(w *f.World) string {
	var out []string
	for _, m := range w.Mailbox("alice@contoso.test") {
		if p, err := dsn.Parse(m); err == nil {
			for _, r := range p.Recipients {
				out = append(out, dsn.Field(r, "Action")+" "+dsn.Field(r, "Status"))
			}
		}
	}
	if len(out) == 0 {
		return "none"
	}
	return strings.Join(out, ", ")
}

func failedCount(w *f.World) int  { n, _ := notices(w); return len(n) }
func delayedCount(w *f.World) int { _, n := notices(w); return len(n) }

// attempts is how many delivery attempts the MX has seen: a session that got no
// further than the greeting is one, and each MAIL transaction is one, since an MTA
// may keep a connection open and try again on it (OpenSMTPD does after a 451).
func attempts(w *f.World) int {
	n := 0
	for _, s := range w.MustHost("mx1.fabrikam.test").Sessions() {
		n += max(1, len(s.Transactions))
	}
	return n
}

// deferred waits until the Edge has deferred n times, on targets that track it, so
// that stepping a fake clock comes after the retry was scheduled.
func deferred(w *f.World, s *f.Session, n int) {
	GinkgoHelper()
	if w.Traced() {
		Eventually(func() int { return len(trace.OfType(w.Trace().Events(), trace.Defer, "EDGE1")) }).Should(BeNumerically(">=", n), s.Explain("the Edge deferred %d time(s)", n))
	}
}

func accept() scenario.Behaviour { return scenario.Behaviour{Action: "accept"} }

// retry is how long to wait for the Edge's next attempt, stepping a fake clock to it.
func retry(w *f.World) time.Duration { return w.After(w.Timers("EDGE1").Retry) }

var _ = Describe("Queues", Label("queue"), func() {
	DescribeTable("keeps the recipient queued after a temporary failure, then delivers it",
		func(behaviour string) {
			w := world(behaviour)
			s, _ := submit(w, "bob@fabrikam.test")
			Eventually(func() int { return attempts(w) }).Should(BeNumerically(">=", 1), s.Explain("the MX was tried"))
			deferred(w, s, 1)
			Eventually(func() int { return w.Queue("EDGE1") }).Should(Equal(1), s.Explain("the message stays queued"))
			Expect(failedCount(w)).To(BeZero(), s.Explain("no failed DSN"))
			w.MustHost("mx1.fabrikam.test").SetBehaviour(accept())
			wait := retry(w)
			Eventually(func() int { return len(w.Received("mx1.fabrikam.test")) }).WithTimeout(wait).Should(Equal(1), s.Explain("delivered once on the retry"))
			Eventually(func() int { return w.Queue("EDGE1") }).Should(BeZero())
			Expect(failedCount(w)).To(BeZero(), s.Explain("still no failed DSN"))
		},
		Entry("421 at the greeting", f.Clause("QUEUE-001"), `{action: defer, stage: greeting, code: 421}`),
		Entry("451 to MAIL", f.Clause("QUEUE-001"), `{action: defer, stage: mail, code: 451, enhanced: 4.3.0}`),
		Entry("450 to RCPT", f.Clause("QUEUE-001"), `{action: defer, stage: rcpt, code: 450, enhanced: 4.2.0}`),
		Entry("451 after the data", f.Clause("QUEUE-001"), `{action: defer, stage: data, code: 451, enhanced: 4.3.0}`),
		Entry("connection lost mid-data", f.Clause("QUEUE-001"), `{action: drop, stage: data, mid_data: true}`),
	)

	It("keeps the recipient queued when the connection is refused", f.Clause("QUEUE-001"), func() {
		w := world("accept")
		s, _ := submit(w, "bob@nowhere.fabrikam.test") // its MX has no listener
		deferred(w, s, 1)
		Eventually(func() int { return w.Queue("EDGE1") }).Should(Equal(1), s.Explain("the message stays queued"))
		wait := w.After(w.Timers("EDGE1").Retry)
		deferred(w, s, 2)
		Consistently(func() int { return w.Queue("EDGE1") }).WithTimeout(min(wait, 2*time.Second)).Should(Equal(1), s.Explain("still queued after a retry"))
		Expect(failedCount(w)).To(BeZero(), s.Explain("no failed DSN"))
	})

	It("fails a recipient refused with 5xx at RCPT and delivers the others", f.Clause("QUEUE-002"), func() {
		w := world("accept", "nobody@fabrikam.test", `{action: reject, stage: rcpt, code: 550, enhanced: 5.1.1, text: "no such user"}`)
		s, _ := submit(w, "bob@fabrikam.test", "nobody@fabrikam.test")
		Eventually(func() int { return len(w.Received("mx1.fabrikam.test")) }).Should(Equal(1), s.Explain("the accepted recipient is delivered"))
		Expect(w.Received("mx1.fabrikam.test")[0].RcptTo).To(Equal([]string{"bob@fabrikam.test"}))
		Eventually(func() int { return failedCount(w) }).Should(Equal(1), s.Explain("a failed DSN for the refused recipient"))
		Eventually(func() int { return w.Queue("EDGE1") }).Should(BeZero(), s.Explain("nothing left to retry"))
		rcpts := func() (n int) {
			for _, ss := range w.MustHost("mx1.fabrikam.test").Sessions() {
				for _, t := range ss.Transactions {
					for _, r := range t.Rcpts {
						if r.Addr == "nobody@fabrikam.test" {
							n++
						}
					}
				}
			}
			return n
		}
		w.After(w.Timers("EDGE1").Retry)
		Consistently(rcpts).WithTimeout(w.Quiet(time.Second)).Should(Equal(1), s.Explain("the refused recipient is never retried"))
	})

	It("fails every recipient of a transaction refused with 5xx after the data", f.Clause("QUEUE-003"), func() {
		w := world(`{action: reject, stage: data, code: 554, enhanced: 5.6.0, text: "content rejected"}`)
		s, _ := submit(w, "bob@fabrikam.test", "carol@fabrikam.test")
		Eventually(func() int { return failedCount(w) }).Should(BeNumerically(">=", 1), s.Explain("a failed DSN"))
		nf, _ := notices(w)
		var failed []string
		for _, p := range nf {
			for _, r := range p.Recipients {
				failed = append(failed, strings.ToLower(dsn.Field(r, "Final-Recipient")))
			}
		}
		Expect(failed).To(ContainElements(ContainSubstring("bob@fabrikam.test"), ContainSubstring("carol@fabrikam.test")), s.Explain("both recipients failed"))
		Eventually(func() int { return w.Queue("EDGE1") }).Should(BeZero(), s.Explain("nothing left to retry"))
		w.After(w.Timers("EDGE1").Retry)
		Consistently(func() int { return attempts(w) }).WithTimeout(w.Quiet(time.Second)).Should(Equal(1), s.Explain("no retry to that server"))
	})

	It("waits the configured interval before retrying", f.Clause("QUEUE-004"), func() {
		w := world(`{action: defer, stage: rcpt, code: 451, enhanced: 4.3.0}`)
		s, _ := submit(w, "bob@fabrikam.test")
		Eventually(func() int { return attempts(w) }).Should(Equal(1), s.Explain("the first attempt"))
		deferred(w, s, 1)
		if why := w.FixedRetryInterval(); why != "" {
			f.Info("the retry interval cannot be configured: %s", why)
			return
		}
		retry := w.Timers("EDGE1").Retry
		early := retry * 9 / 10 // the clause's 10 % tolerance
		if w.Clock().IsFake() {
			w.Clock().Advance(early - time.Second)
			Consistently(func() int { return attempts(w) }).WithTimeout(300*time.Millisecond).Should(Equal(1), s.Explain("no retry before %v", early))
			w.Clock().Advance(retry - early + time.Second)
		}
		Eventually(func() int { return attempts(w) }).WithTimeout(w.After(0)+3*retry).Should(Equal(2), s.Explain("a retry"))
		ss := w.MustHost("mx1.fabrikam.test").Sessions()
		gap := ss[1].Start.Sub(ss[0].Start)
		Expect(gap).To(BeNumerically(">=", early), s.Explain("the retry came %v after the first attempt; the interval is %v", gap, retry))
	})

	It("gives up at the expiry with exactly one failed DSN", f.Clause("QUEUE-005"), f.Long, func() {
		w := world(`{action: defer, stage: rcpt, code: 451, enhanced: 4.3.0}`)
		s, _ := submit(w, "bob@fabrikam.test")
		deferred(w, s, 1)
		t := w.Timers("EDGE1")
		wait := w.After(t.Expiration + time.Minute)
		gone := w.GiveUpWhenDequeued("EDGE1", 10*time.Second)
		Eventually(func() int {
			n := failedCount(w)
			if n == 0 {
				gone(fmt.Sprintf("no failed DSN (DSNs received: %s)", dsnSummary(w)))
			}
			return n
		}).WithTimeout(wait).Should(Equal(1), func() string {
			return s.Explain("one failed DSN after %v (DSNs received: %s)", t.Expiration, dsnSummary(w))()
		})
		Eventually(func() int { return w.Queue("EDGE1") }).Should(BeZero(), s.Explain("the message left the queue"))
		w.After(t.Retry)
		Consistently(func() int { return failedCount(w) }).WithTimeout(w.Quiet(time.Second)).Should(Equal(1), s.Explain("exactly one"))
		nf, _ := notices(w)
		Expect(f.Typed(dsn.Field(nf[0].Recipients[0], "Final-Recipient"))).To(Equal("rfc822;bob@fabrikam.test"))
	})

	It("sends one delay DSN at the delay-notification time and keeps trying", f.Clause("QUEUE-006"), f.Long, func() {
		w := world(`{action: defer, stage: rcpt, code: 451, enhanced: 4.3.0}`)
		s, _ := submit(w, "bob@fabrikam.test")
		deferred(w, s, 1)
		t := w.Timers("EDGE1")
		wait := w.After(t.DelayNotification + time.Minute)
		Eventually(func() int { return delayedCount(w) }).WithTimeout(wait).Should(Equal(1), s.Explain("a delay DSN after %v", t.DelayNotification))
		_, d := notices(w)
		Expect(strings.ToLower(dsn.Field(d[0].Recipients[0], "Action"))).To(Equal("delayed"))
		Expect(dsn.Field(d[0].Recipients[0], "Status")).To(HavePrefix("4."), s.Explain("a delay carries a 4.x.x status"))
		Expect(failedCount(w)).To(BeZero(), s.Explain("no failed DSN"))

		before := attempts(w)
		w.MustHost("mx1.fabrikam.test").SetBehaviour(accept())
		wait = retry(w)
		Eventually(func() int { return len(w.Received("mx1.fabrikam.test")) }).WithTimeout(wait).Should(Equal(1), s.Explain("attempts continue after the notice, and deliver"))
		Expect(attempts(w)).To(BeNumerically(">", before))
		Expect(delayedCount(w)).To(Equal(1), s.Explain("exactly one delay DSN"))
	})

	It("sends no delay DSN for a message delivered before the delay-notification time", f.Clause("QUEUE-006"), f.Long, func() {
		w := world(`{action: defer, stage: rcpt, code: 451, enhanced: 4.3.0}`)
		s, _ := submit(w, "bob@fabrikam.test")
		deferred(w, s, 1)
		w.MustHost("mx1.fabrikam.test").SetBehaviour(accept())
		wait := retry(w)
		Eventually(func() int { return len(w.Received("mx1.fabrikam.test")) }).WithTimeout(wait).Should(Equal(1), s.Explain("delivered on the retry"))
		w.After(w.Timers("EDGE1").DelayNotification)
		Consistently(func() int { return delayedCount(w) }).WithTimeout(w.Quiet(time.Second)).Should(BeZero(), s.Explain("no delay DSN"))
	})

	It("sends recipients that share a next hop in one transaction", f.Clause("QUEUE-007"), func() {
		w := world("accept")
		s, _ := submit(w, "bob@fabrikam.test", "carol@fabrikam.test", "dave@fabrikam.test")
		Eventually(func() int { return len(w.Received("mx1.fabrikam.test")) }).Should(BeNumerically(">=", 1), s.Explain("delivered"))
		Consistently(func() int { return len(w.Received("mx1.fabrikam.test")) }).WithTimeout(500*time.Millisecond).Should(Equal(1), s.Explain("one DATA for the three recipients"))
		Expect(w.Received("mx1.fabrikam.test")[0].RcptTo).To(ConsistOf("bob@fabrikam.test", "carol@fabrikam.test", "dave@fabrikam.test"))
	})

	It("delivers the recipients refused with 452 after 100 RCPTs in later transactions", f.Clause("QUEUE-008"), func() {
		w := world("accept")
		var rcpts []string
		for i := 0; i < 150; i++ {
			rcpts = append(rcpts, fmt.Sprintf("user%03d@many.test", i))
		}
		s, _ := submit(w, rcpts...)
		got := func() []string {
			var out []string
			for _, m := range w.Received("mx1.many.test") {
				out = append(out, m.RcptTo...)
			}
			return out
		}
		// Later transactions may wait for a retry (the reference sends them at once).
		wait := w.After(w.Timers("EDGE1").Retry)
		Eventually(got).WithTimeout(wait).Should(ConsistOf(rcpts), s.Explain("every recipient delivered, the last 50 in later transactions"))
		Expect(len(w.Received("mx1.many.test"))).To(BeNumerically(">=", 2), s.Explain("more than one transaction"))
		Expect(failedCount(w)).To(BeZero(), s.Explain("no recipient failed"))
	})

	It("does not remember a 5xx to MAIL for the next message", f.Clause("QUEUE-009"), func() {
		w := world(`{action: reject, stage: mail, code: 550, enhanced: 5.7.1, text: "sender refused"}`)
		s, _ := submit(w, "bob@fabrikam.test")
		Eventually(func() int { return failedCount(w) }).Should(Equal(1), s.Explain("the first message fails"))
		w.MustHost("mx1.fabrikam.test").SetBehaviour(accept())
		s, _ = submit(w, "carol@fabrikam.test")
		Eventually(func() int { return len(w.Received("mx1.fabrikam.test")) }).Should(Equal(1), s.Explain("the next message to the same host is attempted and delivered"))
	})

	It("delivers every accepted message after the server crashed and restarted", f.Clause("QUEUE-010"), f.Long, func() {
		w := world(`{action: defer, stage: rcpt, code: 451, enhanced: 4.3.0}`)
		var s *f.Session
		for i := 0; i < 3; i++ {
			s, _ = submit(w, fmt.Sprintf("user%d@fabrikam.test", i)) // each answered 250 after DATA
		}
		deferred(w, s, 3)
		w.Crash("EDGE1")
		w.MustHost("mx1.fabrikam.test").SetBehaviour(accept())
		wait := w.After(w.Timers("EDGE1").Retry)
		Eventually(func() int { return len(w.Received("mx1.fabrikam.test")) }).WithTimeout(wait).Should(Equal(3), s.Explain("all three delivered after the restart"))
		Expect(failedCount(w)).To(BeZero(), s.Explain("no failed DSN"))
	})

	It("shows queued mail in the queue of its next hop or in Unreachable", f.Clause("QUEUE-011"), func() {
		w := world(`{action: defer, stage: rcpt, code: 451, enhanced: 4.3.0}`)
		s, _ := submit(w, "bob@fabrikam.test")
		deferred(w, s, 1)
		var hop string
		Eventually(func() map[string]int { return w.Queues("EDGE1") }).Should(HaveKeyWithValue(Not(BeElementOf("Submission", "Unreachable", "Poison")), 1), s.Explain("one delivery queue for the next hop"))
		for name, n := range w.Queues("EDGE1") {
			if n == 1 {
				hop = name
			}
		}
		Expect(strings.ToLower(hop)).To(ContainSubstring("fabrikam.test"), s.Explain("the delivery queue is named for its next hop"))
		Expect(w.Queues("EDGE1")).To(And(HaveKeyWithValue("Submission", 0), HaveKeyWithValue("Unreachable", 0), HaveKeyWithValue("Poison", 0)), s.Explain("Submission, Unreachable and Poison are listed"))
	})
})
