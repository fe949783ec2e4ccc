// Package filtersuite holds the FILTER-* clause specs: the Edge's agents (connection
// filtering with DNS block lists, IP Allow and Block lists, sender filtering, SPF,
// attachment filtering, Edge rules, address rewriting) and the Hub's transport rules
// as a client on the Internet meets them, the sessions that bypass them, and the
// order the agents act in.
package filtersuite

import (
	"fmt"
	"net/netip"
	"strings"
	"sync/atomic"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/mailflow/mailflow/fixtures/dnsfake"
	"github.com/mailflow/mailflow/profiles"
	"github.com/mailflow/mailflow/scenario"
	"github.com/mailflow/mailflow/scenarios"
	f "github.com/mailflow/mailflow/suites/framework"
	"github.com/mailflow/mailflow/trace"
)

// The zones of edge-filter.yaml: bl lists on any code, codes on 127.0.0.4 only, bits
// on any code with bit 4.
const (
	zoneBL    = "bl.mailflow.test"
	zoneCodes = "codes.mailflow.test"
	zoneBits  = "bits.mailflow.test"
	// listedNet is where the specs' listed and clean clients connect from.
	listedNet = "127.9.0.0/16"
	// agentConnFilter is the agent the trace names for a connection filter refusal.
	agentConnFilter = "Connection Filtering Agent"
	agentSender     = "Sender Filter Agent"
)

func start() *f.World { return f.StartShipped("edge-filter.yaml") }

// startWith starts edge-filter.yaml changed by edit (EDGE1's settings).
func startWith(edit func(edge *scenario.Server)) *f.World {
	GinkgoHelper()
	s, err := scenarios.Load("edge-filter.yaml")
	Expect(err).NotTo(HaveOccurred())
	sv, ok := s.Server("EDGE1")
	Expect(ok).To(BeTrue())
	edit(sv)
	return f.StartScenario(s)
}

// startDNSBL starts edge-filter.yaml on a target that can check DNS block lists, and
// reports the spec N/A on one that cannot.
func startDNSBL() *f.World {
	GinkgoHelper()
	f.Require(profiles.FeatureDNSBL)
	return start()
}

// reversed is the RFC 5782 query name of an IPv4 client under zone, as a DNS log
// shows it.
func reversed(ip netip.Addr, zone string) string {
	b := ip.As4()
	return fmt.Sprintf("%d.%d.%d.%d.%s.", b[3], b[2], b[1], b[0], zone)
}

// list publishes client in zone with the return code ("" for 127.0.0.2) and reason.
func list(w *f.World, zone string, client netip.Addr, code, reason string) {
	GinkgoHelper()
	e := dnsfake.DNSBLEntry{IP: client, Reason: reason}
	if code != "" {
		e.Code = netip.MustParseAddr(code)
	}
	Expect(w.DNS().List(zone, e)).To(Succeed())
}

// from connects from client to EDGE1's connector and says EHLO.
func from(w *f.World, client netip.Addr, connector string) *f.Session {
	GinkgoHelper()
	addr, err := w.Endpoint("EDGE1", connector)
	Expect(err).NotTo(HaveOccurred())
	s, greeting := f.DialFrom(client, addr)
	Expect(greeting).To(f.HaveClass(2), s.Explain("a greeting: the connection filter waits for RCPT"))
	Expect(s.Cmd("EHLO mail.fabrikam.test")).To(f.HaveClass(2), s.Explain("EHLO accepted"))
	return s
}

var seq atomic.Int64

// message is a short message with a Message-ID of its own.
func message(what string) (id, text string) {
	id = fmt.Sprintf("filter-%d-%d@fabrikam.test", GinkgoParallelProcess(), seq.Add(1))
	return id, "From: bob@fabrikam.test\r\nTo: alice@contoso.test\r\nSubject: " + what + "\r\nMessage-ID: <" + id + ">\r\n\r\n" + what + "\r\n"
}

// delivered waits for the message <id> in addr's mailbox.
func delivered(w *f.World, s *f.Session, addr, id string) []byte {
	GinkgoHelper()
	var m []byte
	Eventually(func() []byte { m = f.WithMessageID(w.Mailbox(addr), id); return m }).
		ShouldNot(BeNil(), s.Explain("the message reaches %s", addr))
	return m
}

// notDelivered checks that <id> never reaches addr.
func notDelivered(w *f.World, s *f.Session, addr, id string) {
	GinkgoHelper()
	Consistently(func() []byte { return f.WithMessageID(w.Mailbox(addr), id) }).
		WithTimeout(w.Quiet(time.Second)).WithPolling(50*time.Millisecond).
		Should(BeNil(), s.Explain("nothing reaches %s", addr))
}

// agentEvents are the trace events an agent caused, of type t.
func agentEvents(w *f.World, t trace.Type, agent string) []trace.Event {
	return trace.Filter(w.Events(t), func(e trace.Event) bool {
		return e.Source == trace.SourceAgent && e.Agent == agent
	})
}

// queried says whether the DNS log holds an A query for name.
func queried(w *f.World, name string) func() bool {
	return func() bool {
		for _, q := range w.DNS().Queries() {
			if q.Type == "A" && strings.EqualFold(q.Name, name) {
				return true
			}
		}
		return false
	}
}
