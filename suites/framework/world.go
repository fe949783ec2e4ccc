package framework

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/onsi/ginkgo/v2"
	"github.com/onsi/gomega"

	"github.com/mailflow/mailflow/fixtures/internet"
	"github.com/mailflow/mailflow/profiles"
	"github.com/mailflow/mailflow/reference/store"
	"github.com/mailflow/mailflow/scenario"
	"github.com/mailflow/mailflow/scenarios"
	"github.com/mailflow/mailflow/targets/dockernet"
	"github.com/mailflow/mailflow/targets/live"
	"github.com/mailflow/mailflow/trace"
)

// World is one spec's running topology.
type World struct {
	Topology
	Scenario *scenario.Scenario
	sessions []*Session
}

// Start parses the scenario text, brings its world up on the current target and
// registers its teardown with the spec.
func Start(name, yamlText string) *World {
	ginkgo.GinkgoHelper()
	s, err := scenario.Parse(name, []byte(yamlText))
	gomega.Expect(err).NotTo(gomega.HaveOccurred(), "scenario %s", name)
	return StartScenario(s)
}

// StartShipped brings up one of the scenarios shipped in scenarios/ by file name.
func StartShipped(name string) *World {
	ginkgo.GinkgoHelper()
	s, err := scenarios.Load(name)
	gomega.Expect(err).NotTo(gomega.HaveOccurred())
	return StartScenario(s)
}

// StartScenario brings up an already parsed scenario.
func StartScenario(s *scenario.Scenario) *World {
	ginkgo.GinkgoHelper()
	t, err := CurrentTarget()
	gomega.Expect(err).NotTo(gomega.HaveOccurred())
	// Containers start in seconds alone, but a parallel run starts many at once on a
	// small machine: a slow start is load, not an MTA that cannot start.
	startTimeout := 30 * time.Second
	if _, ok := t.(InProcess); !ok {
		startTimeout = 3 * time.Minute
	}
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	topo, err := t.Start(ctx, s)
	var na *live.NotApplicableError
	if errors.As(err, &na) {
		// A live host runs as its user configured it; a world that needs it otherwise
		// is reported, with what it needs.
		ginkgo.Skip(na.Error())
	}
	if err != nil && AnyMTAOnly(t) {
		// An MTA that cannot start says nothing about any clause: stop the run as a
		// suite failure instead of writing FAIL against every clause.
		ginkgo.AbortSuite(fmt.Sprintf("starting %s on %s: %v", s.File, t.Name(), err))
	}
	gomega.Expect(err).NotTo(gomega.HaveOccurred(), "starting %s on %s", s.File, t.Name())
	w := &World{Topology: topo, Scenario: s}
	ginkgo.DeferCleanup(func() {
		if ginkgo.CurrentSpecReport().Failed() {
			// What the servers did is the first thing anyone asks after a failure.
			for _, e := range topo.Trace().Events() {
				fmt.Fprintf(ginkgo.GinkgoWriter, "trace: %s %s %s %s %s %s\n", e.Time.Format("15:04:05.000"), e.Server, e.Type, e.MessageID, e.NextHop, e.Reply+e.Detail)
			}
		}
		for _, s := range w.sessions {
			s.Close()
		}
		// Generous: a loaded Docker engine can take tens of seconds to remove a network,
		// and the bound only matters when it does (a passing stop takes well under one).
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		err := topo.Stop(ctx)
		if errors.Is(err, dockernet.ErrStaleEndpointCount) && !hasOther(err, dockernet.ErrStaleEndpointCount) {
			// The engine's own bookkeeping, not the target's behaviour: the empty
			// network stays, named in the spec's report, and make's check of what a
			// run leaves behind says so.
			ginkgo.AddReportEntry("docker engine", err.Error())
			fmt.Fprintf(ginkgo.GinkgoWriter, "warning: %v\n", err)
			return
		}
		gomega.Expect(err).To(gomega.Succeed())
	})
	return w
}

// hasOther says whether err, or one of the errors it joins, is something else than
// target.
func hasOther(err, target error) bool {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range j.Unwrap() {
			if hasOther(e, target) {
				return true
			}
		}
		return false
	}
	return err != nil && !errors.Is(err, target)
}

// MustHost is a fake host by name, failing the spec when there is none.
func (w *World) MustHost(name string) *internet.Host {
	ginkgo.GinkgoHelper()
	h := w.Host(name)
	gomega.Expect(h).NotTo(gomega.BeNil(), "no fake host %q in %s", name, w.Scenario.File)
	return h
}

// Events returns the trace events of one type (all servers).
func (w *World) Events(t trace.Type) []trace.Event {
	return trace.OfType(w.Trace().Events(), t, "")
}

// Received is every message the named hosts accepted.
func (w *World) Received(hosts ...string) []internet.Message {
	var out []internet.Message
	for _, h := range hosts {
		if host := w.Host(h); host != nil {
			out = append(out, host.Messages()...)
		}
	}
	return out
}

// Queue is how many messages a server holds.
func (w *World) Queue(server string) int { return w.QueueLen(server) }

// GiveUpWhenDequeued is for an Eventually that waits out an expiry for a failed DSN:
// called on each poll that has not seen the DSN yet, it ends the wait (as a failure
// saying why) once server's queue has stayed empty for settle of real time. The
// message has then left the queue with no DSN on its way: a bounce is queued before
// its message is removed, and one delivered is already in the sender's mailbox. A
// target whose queue cannot be read never ends the wait early.
func (w *World) GiveUpWhenDequeued(server string, settle time.Duration) func(what string) {
	var emptySince time.Time
	return func(what string) {
		if w.Queue(server) != 0 {
			emptySince = time.Time{}
			return
		}
		if emptySince.IsZero() {
			emptySince = time.Now()
			return
		}
		if time.Since(emptySince) >= settle {
			gomega.StopTrying(fmt.Sprintf("%s: %s's queue has been empty for %v", what, server, settle)).Now()
		}
	}
}

// ClientIn is an address inside a client range the scenario names (a 127.0.0.0/8 range
// in the scenario file), as the target maps it, for DialFrom.
func (w *World) ClientIn(prefix string) netip.Addr {
	ginkgo.GinkgoHelper()
	if cr, ok := w.Topology.(clientRanger); ok {
		p, err := netip.ParsePrefix(prefix)
		gomega.Expect(err).NotTo(gomega.HaveOccurred())
		a, err := cr.ClientIn(p)
		gomega.Expect(err).NotTo(gomega.HaveOccurred(), "client address in %s", prefix)
		return a
	}
	return LoopbackIn(prefix)
}

// Traced says whether the target has a message-tracking log; specs check trace events
// only where it has one.
func (w *World) Traced() bool {
	if t, ok := w.Topology.(tracer); ok {
		return t.Traced()
	}
	return true
}

// RequireFakeClock reports the spec N/A on a target whose time is real: stepping a
// fake clock is how the spec observes its timers.
func (w *World) RequireFakeClock() {
	if !w.Clock().IsFake() {
		ginkgo.Skip(fmt.Sprintf("N/A: needs the fake clock; target %s runs on real time", targetName()))
	}
}

func targetName() string {
	t, err := CurrentTarget()
	if err != nil {
		return "?"
	}
	return t.Name()
}

// RetryInterval is the real-time wait between delivery attempts on a target whose
// clock is real (0 on a fake clock: step it instead).
func (w *World) RetryInterval() time.Duration {
	if r, ok := w.Topology.(interface{ RetryInterval() time.Duration }); ok {
		return r.RetryInterval()
	}
	return 0
}

// FixedRetryInterval is why the interval between the target's attempts is not one its
// configuration sets (an MTA whose back-off is built in, retried by a forced queue run),
// or "".
func (w *World) FixedRetryInterval() string {
	if r, ok := w.Topology.(interface{ FixedRetryInterval() string }); ok {
		return r.FixedRetryInterval()
	}
	return ""
}

// Queues counts the messages in each queue of a server (Get-Queue, QUEUE-011): the
// Submission, Unreachable and Poison queues always, and one per next hop that holds
// mail. A target that shows no queues reports the spec N/A.
func (w *World) Queues(server string) map[string]int {
	ginkgo.GinkgoHelper()
	q, ok := w.Topology.(interface{ Queues(string) map[string]int })
	if !ok {
		ginkgo.Skip(fmt.Sprintf("N/A: target %s shows no named queues", targetName()))
	}
	return q.Queues(server)
}

// HopLimit is the Received-header limit in force at a server on this target: the
// scenario's max_hop_count, or what the MTA enforces whatever its configuration says
// (OpenSMTPD's compiled-in 100). A message arriving with more Received headers than
// this must be stopped (TRACE-004).
func (w *World) HopLimit(server string) int {
	ginkgo.GinkgoHelper()
	if h, ok := w.Topology.(interface{ HopLimit(server string) int }); ok {
		return h.HopLimit(server)
	}
	sv, ok := w.Scenario.Server(server)
	gomega.Expect(ok).To(gomega.BeTrue(), "no server %q in %s", server, w.Scenario.File)
	return sv.MaxHopCount
}

// Mailbox is every message the organisation delivered to a recipient's mailbox (by its
// primary address), as stored: on the reference, the Mailbox server's store (one
// Return-Path on top); on a third-party MTA, what it handed the organisation's
// internal host for that recipient.
func (w *World) Mailbox(addr string) [][]byte {
	if m, ok := w.Topology.(interface{ Mailbox(addr string) [][]byte }); ok {
		return m.Mailbox(addr)
	}
	return nil
}

// Crash stops a server abruptly and starts it again on its spool (QUEUE-010), or
// reports the spec N/A on a target that cannot.
func (w *World) Crash(name string) {
	ginkgo.GinkgoHelper()
	c, ok := w.Topology.(interface{ CrashServer(string) error })
	if !ok {
		ginkgo.Skip(fmt.Sprintf("N/A: target %s cannot crash and restart a server", targetName()))
	}
	gomega.Expect(c.CrashServer(name)).To(gomega.Succeed(), "crashing and restarting %s", name)
}

// StopServer takes a server of the organisation down for the rest of the spec, or
// reports the spec N/A on a target that cannot.
func (w *World) StopServer(name string) {
	ginkgo.GinkgoHelper()
	st, ok := w.Topology.(interface{ StopServer(string) error })
	if !ok {
		ginkgo.Skip(fmt.Sprintf("N/A: target %s cannot stop one server", targetName()))
	}
	gomega.Expect(st.StopServer(name)).To(gomega.Succeed(), "stopping %s", name)
}

// HasStore says whether the organisation's mailboxes are a store of the target's own,
// where mail is finally delivered (the reference), rather than a stand-in host it
// relays to (a third-party MTA).
func (w *World) HasStore() bool {
	_, ok := w.Topology.(interface {
		Store(addr string) []store.Message
	})
	return ok
}

// Store is the recipient's mailbox as the store holds it, flags included, read
// directly; what a user sees is read over IMAP (World.IMAP). A target without a store
// the suite can read (a third-party MTA relays to the organisation's internal host)
// reports the spec N/A.
func (w *World) Store(addr string) []store.Message {
	ginkgo.GinkgoHelper()
	st, ok := w.Topology.(interface {
		Store(addr string) []store.Message
	})
	if !ok {
		ginkgo.Skip(fmt.Sprintf("N/A: target %s has no mailbox store the suite can read", targetName()))
	}
	return st.Store(addr)
}

// Timers are a server's queue timers on the current target.
type Timers struct {
	// Retry is the wait after a failed attempt (the first, transient retries).
	Retry time.Duration
	// DelayNotification and Expiration count from arrival.
	DelayNotification, Expiration time.Duration
}

// Timers are server's queue timers: the scenario's (defaults applied) unless the target
// sets its own, as real-time targets do to keep specs short.
func (w *World) Timers(server string) Timers {
	if t, ok := w.Topology.(interface {
		QueueTimers(server string) (retry, delay, expiry time.Duration)
	}); ok {
		r, d, e := t.QueueTimers(server)
		return Timers{Retry: r, DelayNotification: d, Expiration: e}
	}
	var t Timers
	if sv, ok := w.Scenario.Server(server); ok {
		t = Timers{Retry: sv.TransientRetryInterval.D(), DelayNotification: sv.DelayNotification.D(), Expiration: sv.MessageExpiration.D()}
		if t.Retry == 0 {
			t.Retry = sv.RetryInterval.D()
		}
	}
	return t
}

// After brings time d further on and returns how long a spec should then wait for
// what it expects: on a fake clock it steps the clock and allows the default wait; on a
// real one nothing is stepped and the wait covers d, with room for an MTA's queue
// manager to get round to it.
func (w *World) After(d time.Duration) time.Duration {
	if w.Clock().Advance(d) {
		return 15 * time.Second
	}
	w.RequireWait(d, "a queue timer")
	return d + d/2 + 30*time.Second
}

// MaxWait is the longest a spec waits in real time for a target's timer: a target
// whose timer is longer (chasquid gives a message up after 20 h, and drops a client
// stalled in DATA 20 min after it connected, both compiled in) is N/A for the spec,
// which would outlast any run.
const MaxWait = 10 * time.Minute

// RequireWait reports the spec N/A when it would have to wait d of real time for what
// it judges, longer than MaxWait. After calls it on a real clock.
func (w *World) RequireWait(d time.Duration, what string) {
	ginkgo.GinkgoHelper()
	if d > MaxWait {
		ginkgo.Skip(fmt.Sprintf("N/A: on target %s the spec would wait %v for %s, longer than a spec waits (%v)", targetName(), d, what, MaxWait))
	}
}

// Quiet is how long a spec watches for something that must not happen (a second
// copy, a DSN that must not come): d where servers act in real time, a short window
// on a fake clock, where a reference server acts within milliseconds of the event
// and nothing waits on time the spec does not step.
func (w *World) Quiet(d time.Duration) time.Duration {
	if w.Clock().IsFake() {
		return min(d, 300*time.Millisecond)
	}
	return d
}

// InactivityTimeout is how long server waits on a silent client before it drops it
// (SEC-005): the shortest of its receive connectors', unless the target enforces its
// own.
func (w *World) InactivityTimeout(server string) time.Duration {
	if t, ok := w.Topology.(interface{ InactivityTimeout(string) time.Duration }); ok {
		return t.InactivityTimeout(server)
	}
	return w.Scenario.InactivityTimeout(server)
}

// Wipe stops a server abruptly and starts it again with an empty spool, as a server
// rebuilt after its disk was lost (QUEUE-012), or reports the spec N/A on a target
// that cannot.
func (w *World) Wipe(name string) {
	ginkgo.GinkgoHelper()
	c, ok := w.Topology.(interface{ WipeServer(string) error })
	if !ok {
		ginkgo.Skip(fmt.Sprintf("N/A: target %s cannot restart a server with an empty spool", targetName()))
	}
	gomega.Expect(c.WipeServer(name)).To(gomega.Succeed(), "wiping and restarting %s", name)
}

// ShadowHeartbeat is how often a Hub asks about its shadow copies on the current
// target: the scenario's (defaults applied) unless the target caps it.
func (w *World) ShadowHeartbeat(server string) time.Duration {
	if t, ok := w.Topology.(interface{ ShadowHeartbeat(string) time.Duration }); ok {
		return t.ShadowHeartbeat(server)
	}
	if sv, ok := w.Scenario.Server(server); ok {
		return sv.ShadowHeartbeatTimeout.D()
	}
	return 0
}

// RequireRelay reports the spec N/A on a target that cannot relay rcpts as the
// scenario says they are relayed when a client sends them through v: by the client's
// address, when v's connector lets the clients of its ranges send anywhere
// (accept_any_recipient with remote_ip_ranges: profiles.FeatureRelayByAddress), and
// through the smart hosts of the send connector that covers them
// (profiles.FeatureSmartHost). Recipients in the organisation's accepted domains need
// neither. Submit and SubmitMessage call it; a spec that relays by hand calls it
// before it dials.
func (w *World) RequireRelay(v Via, rcpts ...string) {
	ginkgo.GinkgoHelper()
	byAddress := false
	for _, rc := range w.Scenario.ReceiveConnectorsOf(v.Server) {
		if strings.EqualFold(rc.Name, v.Connector) && rc.AcceptAnyRecipient && len(rc.RemoteIPRanges) > 0 {
			byAddress = true
		}
	}
	for _, r := range rcpts {
		domain := strings.ToLower(r[strings.LastIndexByte(r, '@')+1:])
		if _, ok := w.Scenario.AcceptedDomain(domain); ok {
			continue
		}
		if byAddress {
			Require(profiles.FeatureRelayByAddress)
		}
		if sc := w.sendConnector(v.Server, domain); sc != nil && len(sc.SmartHosts) > 0 {
			Require(profiles.FeatureSmartHost)
		}
	}
}

// sendConnector is the send connector server uses for domain: the one whose address
// space names it, else the longest "*.parent" that covers it, else "*"; nil if none.
func (w *World) sendConnector(server, domain string) *scenario.SendConnector {
	var best *scenario.SendConnector
	bestLen := -1
	for i := range w.Scenario.Org.SendConnectors {
		sc := &w.Scenario.Org.SendConnectors[i]
		if sc.Enabled != nil && !*sc.Enabled {
			continue
		}
		if !slices.ContainsFunc(sc.Source, func(s string) bool { return strings.EqualFold(s, server) }) {
			continue
		}
		for _, as := range sc.AddressSpaces {
			as = strings.ToLower(strings.TrimSuffix(as, "."))
			n := -1
			switch parent, wild := strings.CutPrefix(as, "*."); {
			case as == domain:
				n = len(as) + 1
			case wild && strings.HasSuffix(domain, "."+parent):
				n = len(parent)
			case as == "*":
				n = 0
			}
			if n > bestLen {
				best, bestLen = sc, n
			}
		}
	}
	return best
}

// Require reports the spec N/A on a target that cannot be configured for feature (a
// profiles.Feature*), with the target's reason; a spec calls it before it starts its
// world, so no MTA is started for nothing.
func Require(feature string) {
	ginkgo.GinkgoHelper()
	t, err := CurrentTarget()
	if err != nil {
		return
	}
	if l, ok := t.(interface{ Lacks(feature string) string }); ok {
		if why := l.Lacks(feature); why != "" {
			ginkgo.Skip(fmt.Sprintf("N/A: target %s cannot be configured for %s: %s", t.Name(), feature, why))
		}
		return
	}
	m, ok := t.(MTA)
	if !ok {
		return
	}
	p, err := profiles.Load(m.Profile)
	gomega.Expect(err).NotTo(gomega.HaveOccurred())
	if why := p.Lacks[feature]; why != "" {
		ginkgo.Skip(fmt.Sprintf("N/A: target %s cannot be configured for %s: %s", m.Name(), feature, why))
	}
}
