package linkstate

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mailflow/mailflow/clock"
	"github.com/mailflow/mailflow/reference/routing"
	"github.com/mailflow/mailflow/scenario"
	"github.com/mailflow/mailflow/trace"
)

// Three routing groups: a (A1 master, A2), b (B) and c (C); a reaches c directly or
// through b, and b only from a. A2 suppresses state changes.
const org = `org:
  routing: routing-groups
  routing_groups:
    - {name: a, servers: [A1, A2, A3], master: A1}
    - {name: b, servers: [B]}
    - {name: c, servers: [C]}
  routing_group_connectors:
    - {name: a-b, from: a, to: b, local_bridgeheads: [A1], remote_bridgeheads: [B]}
    - {name: b-c, from: b, to: c, remote_bridgeheads: [C]}
    - {name: a-c, from: a, to: c, cost: 5, local_bridgeheads: [A1], remote_bridgeheads: [C]}
    - {name: A2-c, from: a, to: c, cost: 9, local_bridgeheads: [A2], remote_bridgeheads: [C]}
    - {name: A3-c, from: a, to: c, cost: 9, local_bridgeheads: [A3], remote_bridgeheads: [C]}
  servers:
    - {name: A1, role: hub}
    - {name: A2, role: hub, suppress_state_changes: true}
    - {name: A3, role: hub}
    - {name: B, role: hub}
    - {name: C, role: hub}
`

type world struct {
	net   *Net
	log   *trace.Log
	clk   *clock.Fake
	alive atomic.Bool // whether probes find a remote bridgehead
}

func newWorld(t *testing.T, attached ...string) *world {
	t.Helper()
	s, err := scenario.Parse("org.yaml", []byte(org))
	if err != nil {
		t.Fatal(err)
	}
	g, err := routing.NewGraph(s)
	if err != nil {
		t.Fatal(err)
	}
	w := &world{log: trace.NewLog(nil), clk: clock.NewFake(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))}
	w.net = New(s, g, func(context.Context, string, []string) bool { return w.alive.Load() })
	for _, n := range attached {
		w.net.Attach(n, w.log, w.clk, nil)
	}
	t.Cleanup(func() {
		for _, n := range []string{"A1", "A2", "A3", "B", "C"} {
			w.net.Detach(n)
		}
	})
	return w
}

func (w *world) events() []string {
	var out []string
	for _, e := range w.log.Events() {
		out = append(out, e.Server+": "+e.Detail)
	}
	return out
}

func TestFailedConnector(t *testing.T) {
	tests := []struct {
		name     string
		attached []string
		server   string
		conn     string
		want     []string
		down     map[string]bool // server -> a-c down in its table
	}{
		{name: "marked down and passed from the master to every server (ROUTE-020)", attached: []string{"A1", "A2", "B", "C"}, server: "A1", conn: "a-c",
			want: []string{"A1: a-c down v1: every remote bridgehead (C) failed (as master)", "A2: a-c down v1 from master A1", "B: a-c down v1 from master A1", "C: a-c down v1 from master A1"},
			down: map[string]bool{"A1": true, "A2": true, "B": true, "C": true}},
		{name: "a server that is down hears nothing", attached: []string{"A1", "A2", "C"}, server: "A1", conn: "a-c",
			want: []string{"A1: a-c down v1: every remote bridgehead (C) failed (as master)", "A2: a-c down v1 from master A1", "C: a-c down v1 from master A1"},
			down: map[string]bool{"A1": true, "B": false}},
		{name: "the only path to a group is never marked down (ROUTE-021)", attached: []string{"A1", "B"}, server: "A1", conn: "a-b",
			want: []string{"A1: a-b failed on every remote bridgehead (B); only path to routing group b: not marked down, mail waits and is retried"}},
		{name: "state changes suppressed (ROUTE-021)", attached: []string{"A1", "A2"}, server: "A2", conn: "A2-c",
			want: []string{"A2: A2-c failed on every remote bridgehead (C); state changes suppressed: not marked down, mail waits and is retried"}},
		{name: "a stopped server reports nothing", attached: []string{"A2"}, server: "A1", conn: "a-c"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t, tc.attached...)
			w.net.Failed(tc.server, tc.conn)
			if tc.down != nil {
				w.net.Failed(tc.server, tc.conn) // once down, a second failure changes nothing
			}
			if got := w.events(); strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Errorf("events\n got: %q\nwant: %q", got, tc.want)
			}
			for server, down := range tc.down {
				if got := w.net.Table(server).Down()["a-c"]; got != down {
					t.Errorf("%s holds a-c down = %v, want %v", server, got, down)
				}
			}
		})
	}
}

func TestMasterUnreachable(t *testing.T) {
	w := newWorld(t, "A3", "B", "C")
	w.net.Failed("B", "A3-c")
	if got := w.events(); len(got) != 0 {
		t.Fatalf("a connector of group a reported by a server of group b: %q", got)
	}
	// With its master down, the bridgehead keeps the state to itself: the partition
	// a stale table comes from.
	w.net.Failed("A3", "A3-c")
	want := "A3: A3-c down: every remote bridgehead (C) failed; master A1 unreachable, state kept here only (A3-c down v1)"
	if got := w.events(); len(got) != 1 || got[0] != want {
		t.Errorf("events = %q, want %q", got, want)
	}
	if !w.net.Table("A3").Down()["a3-c"] || w.net.Table("C").Down()["a3-c"] {
		t.Errorf("A3 holds %v, C holds %v; want down on A3 only", w.net.Table("A3").Down(), w.net.Table("C").Down())
	}
}

func TestUpAfterMinorChangeDelay(t *testing.T) {
	w := newWorld(t, "A1", "A2", "C")
	w.net.Failed("A1", "a-c")
	// The retry waits on the fake clock in a goroutine of its own.
	eventually(t, func() bool { return w.clk.Pending() > 0 })
	w.clk.Advance(scenario.MinorChangeDelay - time.Second)
	if w.net.Table("A2").Down()["a-c"] != true {
		t.Fatal("a-c up again before the minor-change delay")
	}
	w.alive.Store(true)
	w.clk.Advance(time.Second)
	if !eventually(t, func() bool { return !w.net.Table("A2").Down()["a-c"] }) {
		t.Fatalf("a-c still down after the delay with C answering; events:\n%s", strings.Join(w.events(), "\n"))
	}
	if got := w.net.Table("C").String(); !strings.Contains(got, "a-c up v2") {
		t.Errorf("C's table = %s, want a-c up v2", got)
	}
	// A server started again asks its master for the table.
	w.net.Detach("A2")
	w.net.Failed("A1", "a-c")
	w.net.Attach("A2", w.log, w.clk, nil)
	if !w.net.Table("A2").Down()["a-c"] {
		t.Errorf("A2 started again without its master's table")
	}
}

// eventually polls cond for up to 5 s, as gomega's Eventually does.
func eventually(t *testing.T, cond func() bool) bool {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		<-time.After(time.Millisecond)
	}
	return true
}

func TestPeers(t *testing.T) {
	text := strings.Replace(org, "    - {name: C, role: hub}\n", "    - {name: C, role: hub}\n    - {name: M, role: mailbox}\n", 1)
	text = strings.Replace(text, "servers: [A1, A2, A3]", "servers: [A1, A2, A3, M]", 1)
	s, err := scenario.Parse("org.yaml", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		server string
		want   []string
	}{
		{"A1", []string{"A2", "A3", "B", "C"}}, // a master: its members and the other masters
		{"A2", []string{"A1"}},                 // a member: its master
		{"B", []string{"A1", "C"}},
		{"M", nil}, // not a Hub
		{"nobody", nil},
	} {
		if got := Peers(s, tc.server); strings.Join(got, ",") != strings.Join(tc.want, ",") {
			t.Errorf("Peers(%s) = %v, want %v", tc.server, got, tc.want)
		}
	}
}

// A server takes state only from the servers it exchanges it with, and only while it
// runs.
func TestHandleRefuses(t *testing.T) {
	w := newWorld(t, "A1", "A2", "B")
	ctx := context.Background()
	down := Message{Kind: KindState, From: "A2", State: State{Connector: "a-c", Version: 1}}
	if _, err := w.net.Handle(ctx, "B", down); !errors.Is(err, ErrNotPeer) {
		t.Errorf("B took a state from A2, a member of another group: %v", err)
	}
	if _, err := w.net.Handle(ctx, "C", Message{Kind: KindState, From: "A1", State: down.State}); !errors.Is(err, ErrNotRunning) {
		t.Errorf("C, not running, took a state: %v", err)
	}
	if _, err := w.net.Handle(ctx, "A1", Message{Kind: KindState, From: "A2", State: State{Connector: "nowhere", Version: 1}}); err == nil {
		t.Error("A1 took a state of a connector the organisation does not have")
	}
	if got := w.events(); len(got) != 0 {
		t.Errorf("refused messages left events %q", got)
	}
	rep, err := w.net.Handle(ctx, "A1", down)
	if err != nil || !rep.Taken {
		t.Fatalf("A1 did not take its member's report: %+v, %v", rep, err)
	}
	if rep, err := w.net.Handle(ctx, "A1", down); err != nil || rep.Taken {
		t.Errorf("A1 took the same version twice: %+v, %v", rep, err)
	}
}
