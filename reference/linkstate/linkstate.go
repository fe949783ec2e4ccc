// Package linkstate is Exchange 2003's link-state routing between routing groups
// (ROUTE-020, ROUTE-021): each server's table of routing group connectors up or down,
// and the traffic that keeps the tables in step. A bridgehead whose every remote
// bridgehead failed for an attempt reports the connector down to its routing group
// master; the master raises the connector's version and passes the state to its
// members and to the other groups' masters, which pass it to theirs. Each message is
// a LINKSTATE trace event on the server that gets it, and a server that is down gets
// nothing, so a stale or partitioned state can be reproduced. After the minor-change
// delay the reporting bridgehead tries the connector's remote bridgeheads again and,
// when one answers, reports it up the same way.
//
// Exchange sends this over port 691 inside a routing group and X-LINK2STATE between
// groups (EX03-LINKSTATE). The servers of one process exchange it in memory; servers
// that each run in a process of their own exchange it through a Transport
// (reference/linkwire carries it over TCP).
package linkstate

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/mailflow/mailflow/clock"
	"github.com/mailflow/mailflow/reference/routing"
	"github.com/mailflow/mailflow/scenario"
	"github.com/mailflow/mailflow/trace"
)

// State is what a server holds of one connector.
type State struct {
	Connector string
	Up        bool
	// Version counts the connector's changes as its routing group master made them;
	// 0 is the state every server starts with (up).
	Version int
}

func (s State) String() string {
	st := "up"
	if !s.Up {
		st = "down"
	}
	return fmt.Sprintf("%s %s v%d", s.Connector, st, s.Version)
}

// Table is one server's link-state table.
type Table struct {
	mu     sync.Mutex
	states map[string]State // lower-case connector name
}

func newTable(g *routing.Graph) *Table {
	t := &Table{states: map[string]State{}}
	for _, c := range g.Connectors() {
		t.states[strings.ToLower(c.Name)] = State{Connector: c.Name, Up: true}
	}
	return t
}

// Down is the table as routing reads it.
func (t *Table) Down() routing.Down {
	if t == nil {
		return nil
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	var d routing.Down
	for k, s := range t.states {
		if !s.Up {
			if d == nil {
				d = routing.Down{}
			}
			d[k] = true
		}
	}
	return d
}

// States are the table's rows, by connector name.
func (t *Table) States() []State {
	if t == nil {
		return nil
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]State, 0, len(t.states))
	for _, s := range t.states {
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Connector < out[j].Connector })
	return out
}

// String is the table as a ROUTE decision quotes it: "a-b down v1, b-c up v0".
func (t *Table) String() string {
	var parts []string
	for _, s := range t.States() {
		parts = append(parts, s.String())
	}
	return strings.Join(parts, ", ")
}

func (t *Table) get(conn string) State {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.states[strings.ToLower(conn)]
}

// take keeps s when it is newer than what the table holds.
func (t *Table) take(s State) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	k := strings.ToLower(s.Connector)
	if old, ok := t.states[k]; ok && old.Version >= s.Version {
		return false
	}
	t.states[k] = s
	return true
}

// Transport carries link-state messages from one server to another. Between the
// servers of one process it is the Net itself, which hands each message to the server
// it names; between processes (reference/linkwire) it is an exchange over the network.
// Either way a server that is not running cannot be reached, and the sender goes on
// without it: that is how a partitioned server is left with a stale table.
type Transport interface {
	// Send gives m to the server named to and returns its answer; an error says it
	// could not be reached or refused the message.
	Send(ctx context.Context, to string, m Message) (Reply, error)
}

// Kind says what a Message asks of the server that gets it.
type Kind int

const (
	// KindState passes a state on: a bridgehead reporting a change to its routing
	// group master, a master telling its members and the other groups' masters.
	KindState Kind = iota
	// KindTable asks for the receiver's table: a server that starts asks its master,
	// and a bridgehead asks its master for a connector's version before reporting it.
	KindTable
)

// Message is one link-state message between two servers.
type Message struct {
	Kind Kind
	// From is the sending server; the server that takes a state names it in its
	// LINKSTATE event.
	From  string
	State State // KindState
}

// Reply is what the receiver of a Message answers.
type Reply struct {
	// Taken says the receiver's table took a KindState's state (it was newer).
	Taken bool
	// Table is the receiver's table, answering KindTable.
	Table []State
}

var (
	// ErrNotRunning is the answer for a server that is not attached here.
	ErrNotRunning = errors.New("not running")
	// ErrNotPeer is the answer to a server the receiver exchanges no link state with.
	ErrNotPeer = errors.New("not a link-state peer")
)

// Net is the link-state traffic of one organisation, as the servers attached to it
// see it: all of them when they run in one process, the one server of the process
// when each runs in its own and a Transport carries the messages between them.
type Net struct {
	s         *scenario.Scenario
	g         *routing.Graph
	delay     time.Duration
	probe     Prober
	transport Transport

	// changing keeps one change at a time: two messages failing on one connector
	// together mark it down once.
	changing sync.Mutex
	mu       sync.Mutex
	tables   map[string]*Table // lower-case server name; every Hub of a routing group
	members  map[string]*member
	// probing marks a connector whose reporter is trying it again after the delay.
	probing map[string]bool
}

type member struct {
	name string
	rec  trace.Recorder
	clk  clock.Clock
	stop context.CancelFunc
	ctx  context.Context
	// onChange is told of each change the server's table takes.
	onChange func(State)
}

// Prober says whether any of a connector's remote bridgeheads answers, by name.
type Prober func(ctx context.Context, from string, bridgeheads []string) bool

// Option configures a Net.
type Option func(*Net)

// WithDelay sets the minor-change delay (default scenario.MinorChangeDelay).
func WithDelay(d time.Duration) Option { return func(n *Net) { n.delay = d } }

// WithTransport sends the messages of the servers attached here to servers that run
// elsewhere; without it they go, in memory, to the servers attached to the same Net.
func WithTransport(t Transport) Option { return func(n *Net) { n.transport = t } }

// memory hands each message to a server attached to the same Net.
type memory struct{ n *Net }

func (m memory) Send(ctx context.Context, to string, msg Message) (Reply, error) {
	return m.n.Handle(ctx, to, msg)
}

// New is the link-state traffic of the organisation of s, whose graph is g; probe
// tries a connector's remote bridgeheads again after a change.
func New(s *scenario.Scenario, g *routing.Graph, probe Prober, opts ...Option) *Net {
	n := &Net{s: s, g: g, delay: scenario.MinorChangeDelay, probe: probe,
		tables: map[string]*Table{}, members: map[string]*member{}, probing: map[string]bool{}}
	for _, o := range opts {
		o(n)
	}
	if n.transport == nil {
		n.transport = memory{n}
	}
	for _, rg := range s.Org.RoutingGroups {
		for _, name := range rg.Servers {
			if sv, ok := s.Server(name); ok && sv.Role == scenario.RoleHub {
				n.tables[strings.ToLower(sv.Name)] = newTable(g)
			}
		}
	}
	return n
}

// Peers are the servers that server exchanges link state with: for a member of a
// routing group, its master; for a master, the group's other Hubs and every other
// group's master. None for a server that is not a Hub of a routing group.
func Peers(s *scenario.Scenario, server string) []string {
	rg := s.RoutingGroupOf(server)
	if sv, ok := s.Server(server); !ok || sv.Role != scenario.RoleHub || rg == nil || rg.Master == "" {
		return nil
	}
	if !strings.EqualFold(rg.Master, server) {
		return []string{rg.Master}
	}
	var out []string
	for _, name := range rg.Servers {
		if sv, ok := s.Server(name); ok && sv.Role == scenario.RoleHub && !strings.EqualFold(name, server) {
			out = append(out, sv.Name)
		}
	}
	for _, g := range s.Org.RoutingGroups {
		if g.Master != "" && !strings.EqualFold(g.Master, server) {
			out = append(out, g.Master)
		}
	}
	return out
}

// Table is a server's link-state table; nil for a server in no routing group (an
// Exchange 2007 Hub routes by sites and ignores link state, ROUTE-022).
func (n *Net) Table(server string) *Table {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.tables[strings.ToLower(server)]
}

// Attach says a server is running and hears link state, recorded in rec; onChange,
// when not nil, is told of each change its table takes. A member whose routing group
// master answers gets the master's table, as a server starting asks its master for
// it.
func (n *Net) Attach(server string, rec trace.Recorder, clk clock.Clock, onChange func(State)) {
	n.mu.Lock()
	k := strings.ToLower(server)
	if _, ok := n.tables[k]; !ok {
		n.mu.Unlock()
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	n.members[k] = &member{name: server, rec: rec, clk: clk, ctx: ctx, stop: cancel, onChange: onChange}
	master := n.masterOf(server)
	n.mu.Unlock()
	if master == "" || strings.EqualFold(master, server) {
		return
	}
	rep, err := n.transport.Send(ctx, master, Message{Kind: KindTable, From: server})
	if err != nil {
		return
	}
	var got []string
	for _, s := range rep.Table {
		if n.give(server, s) {
			got = append(got, n.Table(server).get(s.Connector).String())
		}
	}
	if len(got) > 0 {
		n.record(server, "", fmt.Sprintf("table from master %s: %s", master, strings.Join(got, ", ")), master)
	}
}

// Detach says a server stopped: it hears nothing until attached again, and its
// tries of a connector stop.
func (n *Net) Detach(server string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	k := strings.ToLower(server)
	if m, ok := n.members[k]; ok {
		m.stop()
		delete(n.members, k)
	}
}

// Handle is the server named to getting m from its transport. A state newer than its
// table's is taken and recorded, naming the sender; a master passes on what it takes:
// a member's report to its members and the other masters, another master's state to
// its members. A server not attached here, or a sender it exchanges nothing with, is
// an error.
func (n *Net) Handle(ctx context.Context, to string, m Message) (Reply, error) {
	if !n.running(to) {
		return Reply{}, fmt.Errorf("linkstate: %s: %w", to, ErrNotRunning)
	}
	if !slices.ContainsFunc(Peers(n.s, to), func(p string) bool { return strings.EqualFold(p, m.From) }) {
		return Reply{}, fmt.Errorf("linkstate: %s from %q: %w", to, m.From, ErrNotPeer)
	}
	switch m.Kind {
	case KindTable:
		return Reply{Table: n.Table(to).States()}, nil
	case KindState:
	default:
		return Reply{}, fmt.Errorf("linkstate: %s from %s: unknown message kind %d", to, m.From, m.Kind)
	}
	c, ok := n.g.Connector(m.State.Connector)
	if !ok {
		return Reply{}, fmt.Errorf("linkstate: %s from %s: no connector %q", to, m.From, m.State.Connector)
	}
	s := m.State
	s.Connector = c.Name
	if !n.give(to, s) {
		return Reply{}, nil
	}
	master := n.masterOf(to)
	switch {
	case !strings.EqualFold(master, to):
		n.record(to, s.Connector, fmt.Sprintf("%s from master %s", s, m.From), m.From)
	case strings.EqualFold(n.masterOf(m.From), to):
		// A member's report: the master gave the change its version.
		n.record(to, s.Connector, fmt.Sprintf("%s from %s", s, m.From), m.From)
		n.spread(ctx, to, s)
	default:
		n.record(to, s.Connector, fmt.Sprintf("%s from master %s", s, m.From), m.From)
		n.tellGroup(ctx, to, s)
	}
	return Reply{Taken: true}, nil
}

func (n *Net) running(server string) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	_, ok := n.members[strings.ToLower(server)]
	return ok
}

func (n *Net) member(server string) *member {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.members[strings.ToLower(server)]
}

// masterOf is the routing group master of server's group (n.mu held or not: it reads
// the scenario only).
func (n *Net) masterOf(server string) string {
	if g := n.s.RoutingGroupOf(server); g != nil {
		return g.Master
	}
	return ""
}

func (n *Net) record(server, conn, detail, from string) {
	m := n.member(server)
	if m == nil {
		return
	}
	m.rec.Record(trace.Event{Time: m.clk.Now(), Type: trace.LinkState, Server: m.name, Connector: conn, Source: from, Detail: detail})
}

// Failed is a bridgehead telling that every remote bridgehead of conn failed in one
// attempt (ROUTE-020). The connector is marked down unless it is the only path to
// its group or the bridgehead suppresses state changes (ROUTE-021).
func (n *Net) Failed(server, conn string) {
	n.changing.Lock()
	defer n.changing.Unlock()
	c, ok := n.g.Connector(conn)
	t := n.Table(server)
	m := n.member(server)
	if !ok || t == nil || m == nil || !n.localTo(server, c) {
		return
	}
	if !t.get(conn).Up {
		return
	}
	sv, _ := n.s.Server(server)
	switch {
	case sv != nil && sv.SuppressStateChanges:
		n.record(server, c.Name, fmt.Sprintf("%s failed on every remote bridgehead (%s); state changes suppressed: not marked down, mail waits and is retried",
			c.Name, strings.Join(c.RemoteBridgeheads, ", ")), "")
		return
	case n.g.OnlyPath(c.Name):
		n.record(server, c.Name, fmt.Sprintf("%s failed on every remote bridgehead (%s); only path to routing group %s: not marked down, mail waits and is retried",
			c.Name, strings.Join(c.RemoteBridgeheads, ", "), c.To), "")
		return
	}
	n.change(m.ctx, server, c, false, fmt.Sprintf("every remote bridgehead (%s) failed", strings.Join(c.RemoteBridgeheads, ", ")))
}

// Succeeded is a bridgehead telling that conn carried a message: a connector it held
// down is up again.
func (n *Net) Succeeded(server, conn string) {
	n.changing.Lock()
	defer n.changing.Unlock()
	c, ok := n.g.Connector(conn)
	t := n.Table(server)
	m := n.member(server)
	if !ok || t == nil || t.get(conn).Up || m == nil || !n.localTo(server, c) {
		return
	}
	n.change(m.ctx, server, c, true, "a remote bridgehead took a message")
}

// localTo says whether server is in the routing group c leaves from: only a server
// that sends over a connector can tell how it fares.
func (n *Net) localTo(server string, c routing.Connector) bool {
	rg := n.s.RoutingGroupOf(server)
	return rg != nil && strings.EqualFold(rg.Name, c.From)
}

// change marks c up or down on the reporting server and passes it on: to its master,
// which gives it the next version and tells its members and the other masters.
func (n *Net) change(ctx context.Context, reporter string, c routing.Connector, up bool, why string) {
	word := "down"
	if !up {
		defer n.retry(reporter, c)
	} else {
		word = "up"
	}
	cur := n.Table(reporter).get(c.Name)
	master := n.masterOf(reporter)
	if strings.EqualFold(master, reporter) {
		s := State{Connector: c.Name, Up: up, Version: cur.Version + 1}
		n.give(master, s)
		n.record(master, c.Name, fmt.Sprintf("%s: %s (%s)", s, why, "as master"), "")
		n.spread(ctx, master, s)
		return
	}
	// The master numbers the change, after both its own version and the reporter's.
	rep, err := n.transport.Send(ctx, master, Message{Kind: KindTable, From: reporter})
	if err != nil {
		// The master cannot be told: the change stays with the reporter.
		s := State{Connector: c.Name, Up: up, Version: cur.Version + 1}
		n.give(reporter, s)
		n.record(reporter, c.Name, fmt.Sprintf("%s %s: %s; master %s unreachable, state kept here only (%s)", c.Name, word, why, master, s), "")
		return
	}
	v := cur.Version
	for _, r := range rep.Table {
		if strings.EqualFold(r.Connector, c.Name) {
			v = max(v, r.Version)
		}
	}
	s := State{Connector: c.Name, Up: up, Version: v + 1}
	n.give(reporter, s)
	n.record(reporter, c.Name, fmt.Sprintf("%s %s: %s; reported to master %s", c.Name, word, why, master), "")
	if _, err := n.transport.Send(ctx, master, Message{Kind: KindState, From: reporter, State: s}); err != nil {
		// The master went away between the two messages.
		n.record(reporter, c.Name, fmt.Sprintf("%s %s: master %s did not take it (%v), state kept here only (%s)", c.Name, word, master, err, s), "")
	}
}

// spread passes s from a master to the members of its group and to every other
// group's master, which passes it to its members.
func (n *Net) spread(ctx context.Context, master string, s State) {
	n.tellGroup(ctx, master, s)
	for _, rg := range n.s.Org.RoutingGroups {
		if rg.Master == "" || strings.EqualFold(rg.Master, master) {
			continue
		}
		// One that cannot be reached hears nothing: its table stays as it was.
		_, _ = n.transport.Send(ctx, rg.Master, Message{Kind: KindState, From: master, State: s})
	}
}

func (n *Net) tellGroup(ctx context.Context, master string, s State) {
	rg := n.s.RoutingGroupOf(master)
	if rg == nil {
		return
	}
	for _, name := range rg.Servers {
		if strings.EqualFold(name, master) || n.Table(name) == nil {
			continue
		}
		_, _ = n.transport.Send(ctx, name, Message{Kind: KindState, From: master, State: s})
	}
}

// give puts s in server's table when it names a connector of the organisation and is
// newer, and tells the server.
func (n *Net) give(server string, s State) bool {
	c, ok := n.g.Connector(s.Connector)
	t := n.Table(server)
	if !ok || t == nil {
		return false
	}
	s.Connector = c.Name
	if !t.take(s) {
		return false
	}
	if m := n.member(server); m != nil && m.onChange != nil {
		m.onChange(s)
	}
	return true
}

// retry tries a connector marked down again after each minor-change delay, from the
// bridgehead that reported it, until a remote bridgehead answers or the bridgehead
// stops; the connector is then marked up (ROUTE-020). Waiting the delay first is
// what keeps a connector that comes and goes from flapping.
func (n *Net) retry(reporter string, c routing.Connector) {
	m := n.member(reporter)
	if m == nil {
		return
	}
	k := strings.ToLower(reporter + "\x00" + c.Name)
	n.mu.Lock()
	if n.probing[k] {
		n.mu.Unlock()
		return
	}
	n.probing[k] = true
	n.mu.Unlock()
	go func() {
		defer func() {
			n.mu.Lock()
			delete(n.probing, k)
			n.mu.Unlock()
		}()
		for {
			select {
			case <-m.ctx.Done():
				return
			case <-m.clk.After(n.delay):
			}
			if n.Table(reporter).get(c.Name).Up {
				return
			}
			if n.probe != nil && n.probe(m.ctx, reporter, c.RemoteBridgeheads) {
				n.changing.Lock()
				if m.ctx.Err() == nil && !n.Table(reporter).get(c.Name).Up {
					n.change(m.ctx, reporter, c, true, "a remote bridgehead answered after the minor-change delay")
				}
				n.changing.Unlock()
				return
			}
			n.record(reporter, c.Name, fmt.Sprintf("%s still down: no remote bridgehead (%s) answered; next try in %s", c.Name, strings.Join(c.RemoteBridgeheads, ", "), n.delay), "")
		}
	}()
}
