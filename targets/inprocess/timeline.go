package inprocess

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/mailflow/mailflow/reference/edge"
	"github.com/mailflow/mailflow/reference/hub"
	"github.com/mailflow/mailflow/reference/mailbox"
	"github.com/mailflow/mailflow/scenario"
)

// StopServer takes one server of the organisation down, as a host that died would: its
// listeners close and its queue stops; its spool stays for StartServer. A server that
// is down already stays down.
func (t *Topology) StopServer(name string) error {
	k := strings.ToLower(name)
	if t.down[k] {
		return nil
	}
	var err error
	switch {
	case t.edges[k] != nil:
		err = t.edges[k].Close()
	case t.hubs[k] != nil:
		err = t.hubs[k].Close()
	case t.mailboxes[k] != nil:
		err = t.mailboxes[k].Close()
	default:
		return fmt.Errorf("server %q: %w", name, ErrUnknownEndpoint)
	}
	t.down[k] = true
	return err
}

// ErrNotDown is StartServer's answer for a server that is running.
var ErrNotDown = errors.New("server is not down")

// StartServer brings a server StopServer took down back on its spool, at its address:
// what it held when it went down it delivers at its queue's next retry, and the servers
// that queued mail for it reach it again at theirs.
func (t *Topology) StartServer(name string) error {
	k := strings.ToLower(name)
	if !t.down[k] {
		if t.edges[k] == nil && t.hubs[k] == nil && t.mailboxes[k] == nil {
			return fmt.Errorf("server %q: %w", name, ErrUnknownEndpoint)
		}
		return fmt.Errorf("inprocess: starting %s: %w", name, ErrNotDown)
	}
	// Its lifetime is the topology's, not the caller's: Background, as CrashServer.
	ctx := context.Background()
	switch {
	case t.edges[k] != nil:
		e, err := edge.Start(ctx, t.edgeCfgs[k])
		if err != nil {
			return fmt.Errorf("inprocess: starting %s again: %w", name, err)
		}
		t.edges[k] = e
	case t.hubs[k] != nil:
		h, err := hub.Start(ctx, t.hubCfgs[k])
		if err != nil {
			return fmt.Errorf("inprocess: starting %s again: %w", name, err)
		}
		t.hubs[k] = h
	default:
		m, err := mailbox.Start(ctx, t.mboxCfgs[k])
		if err != nil {
			return fmt.Errorf("inprocess: starting %s again: %w", name, err)
		}
		t.mailboxes[k] = m
	}
	delete(t.down, k)
	return nil
}

// ErrRealClock is Elapse's answer on a topology that runs on real time.
var ErrRealClock = errors.New("the topology runs on real time: there is no clock to step")

// maxSteps bounds Elapse: a timer that re-arms itself at the current time would
// otherwise step forever.
const maxSteps = 100_000

// Elapse moves the fake clock d forward the way time passes: to each timer due on the
// way in turn, letting the world settle after each step (Quiesce), so a queue retries
// at each of its own due times and a server that came back is found at the first
// retry after it did, not once at the end. A single Advance would fire each timer
// once, at the end, with its retries still ahead.
func (t *Topology) Elapse(ctx context.Context, d time.Duration) error {
	f := t.FakeClock()
	if f == nil {
		return fmt.Errorf("inprocess: %w", ErrRealClock)
	}
	// What is under way first: an attempt in flight arms its retry timer only when it
	// ends, and a step taken before that would jump over the retry.
	t.Quiesce(ctx)
	end := f.Now().Add(d)
	for range maxSteps {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("inprocess: elapse: %w", err)
		}
		now := f.Now()
		next, ok := f.Next()
		if !ok || next.After(end) {
			if now.Before(end) {
				f.Advance(end.Sub(now))
			}
			t.Quiesce(ctx)
			return nil
		}
		f.Advance(max(next.Sub(now), 0))
		t.Quiesce(ctx)
	}
	return fmt.Errorf("inprocess: elapse %v: timers still due after %d steps", d, maxSteps)
}

// quietFor is how long nothing must happen for the world to count as settled: a
// reference server acts within milliseconds of a timer or a connection.
const quietFor = 30 * time.Millisecond

// Quiesce waits until no queue is in a delivery attempt and no trace event has been
// recorded for a short while, or 10 s have passed, or ctx ends.
func (t *Topology) Quiesce(ctx context.Context) {
	deadline := time.Now().Add(10 * time.Second)
	last, since := -1, time.Now()
	for time.Now().Before(deadline) && ctx.Err() == nil {
		n := len(t.trace.Events())
		busy := t.busy()
		if n != last || busy > 0 {
			last, since = n, time.Now()
		} else if time.Since(since) >= quietFor {
			return
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// busy counts the messages in delivery attempts on the running servers.
func (t *Topology) busy() int {
	n := 0
	for k, e := range t.edges {
		if !t.down[k] {
			n += e.Queue().Busy()
		}
	}
	for k, h := range t.hubs {
		if !t.down[k] {
			n += h.Queue().Busy()
		}
	}
	return n
}

// SetDNS adds records to the fake DNS (zone-file lines; a loopback A record moves into
// the topology's addresses as the scenario's own do) and removes others ("NAME" for
// every record at a name, "NAME TYPE" for one type).
func (t *Topology) SetDNS(set, remove []string) error {
	for _, line := range set {
		rr, err := dns.NewRR(line)
		if err != nil || rr == nil {
			return fmt.Errorf("inprocess: dns record %q: %w", line, errors.Join(err, errors.New("not a record")))
		}
		if a, ok := rr.(*dns.A); ok {
			if ip, ok := netip.AddrFromSlice(a.A.To4()); ok && ip.IsLoopback() {
				r, err := t.plan.Remap(ip)
				if err != nil {
					return fmt.Errorf("inprocess: dns record %q: %w", line, err)
				}
				a.A = r.AsSlice()
			}
		}
		if err := t.dns.Add(rr.String()); err != nil {
			return fmt.Errorf("inprocess: dns record %q: %w", line, err)
		}
	}
	for _, r := range remove {
		name, qtype, ok := scenario.RemoveTarget(r)
		if !ok {
			return fmt.Errorf("inprocess: dns remove %q: want NAME or NAME TYPE", r)
		}
		t.dns.Remove(name, qtype)
	}
	return nil
}

// SetHostBehaviour gives a fake Internet host a new behaviour, from its next command on.
func (t *Topology) SetHostBehaviour(name string, b scenario.Behaviour) error {
	h := t.fleet.Host(name)
	if h == nil {
		return fmt.Errorf("host %q: %w", name, ErrUnknownEndpoint)
	}
	h.SetBehaviour(b)
	return nil
}

// Apply runs one step of a scenario's timeline (all but send, which is the caller's:
// it is a client's submission), and lets the world settle after it.
func (t *Topology) Apply(ctx context.Context, st scenario.Step) error {
	var err error
	switch st.Action() {
	case "down":
		err = t.StopServer(st.Down)
	case "up":
		err = t.StartServer(st.Up)
	case "link_down":
		err = t.CutLink(st.LinkDown)
	case "link_up":
		err = t.MendLink(st.LinkUp)
	case "advance":
		return t.Elapse(ctx, st.Advance.D())
	case "dns":
		err = t.SetDNS(st.DNS.Set, st.DNS.Remove)
	case "host":
		err = t.SetHostBehaviour(st.Host.Name, st.Host.Behaviour)
	default:
		return fmt.Errorf("inprocess: step %q is not one the topology runs", st.Action())
	}
	t.Quiesce(ctx)
	return err
}

// SharesLinkState says that the Hubs of routing groups pass link state to each other
// (ROUTE-020): they run in one process and share the organisation's link-state traffic.
func (t *Topology) SharesLinkState() bool { return true }

// CutLink takes down the network path of a routing group connector: its local
// bridgeheads can no longer connect to its remote bridgeheads, while every server
// stays up and every other path stays open (ROUTE-020). The bridgeheads find out as
// a real one would, by failing to connect; MendLink opens the path again.
func (t *Topology) CutLink(connector string) error { return t.setCut("link_down", connector, true) }

// MendLink opens a path CutLink took down.
func (t *Topology) MendLink(connector string) error { return t.setCut("link_up", connector, false) }

func (t *Topology) setCut(step, connector string, cut bool) error {
	c, ok := t.scenario.RoutingGroupConnector(connector)
	if !ok {
		return fmt.Errorf("inprocess: %s %q: no routing group connector of that name", step, connector)
	}
	t.cutMu.Lock()
	defer t.cutMu.Unlock()
	if t.cut == nil {
		t.cut = map[string]bool{}
	}
	if cut {
		t.cut[strings.ToLower(c.Name)] = true
	} else {
		delete(t.cut, strings.ToLower(c.Name))
	}
	return nil
}

// gate is server's connection gate: a connection from a local bridgehead of a cut
// connector to one of its remote bridgeheads fails as refused.
func (t *Topology) gate(server string) func(addr string) error {
	return func(addr string) error {
		t.cutMu.Lock()
		defer t.cutMu.Unlock()
		if len(t.cut) == 0 {
			return nil
		}
		host, _, err := net.SplitHostPort(addr)
		if err != nil {
			return nil
		}
		ip, err := netip.ParseAddr(host)
		if err != nil {
			return nil
		}
		for _, c := range t.scenario.Org.RoutingGroupConnectors {
			if !t.cut[strings.ToLower(c.Name)] || !slices.ContainsFunc(c.LocalBridgeheads, func(b string) bool { return strings.EqualFold(b, server) }) {
				continue
			}
			for _, r := range c.RemoteBridgeheads {
				if t.serverAddr["server:"+strings.ToLower(r)] == ip {
					return fmt.Errorf("connection refused: the link of routing group connector %s is down", c.Name)
				}
			}
		}
		return nil
	}
}
