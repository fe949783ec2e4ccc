package linkwire

import (
	"context"
	"errors"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mailflow/mailflow/clock"
	"github.com/mailflow/mailflow/reference/linkstate"
	"github.com/mailflow/mailflow/reference/routing"
	"github.com/mailflow/mailflow/scenario"
	"github.com/mailflow/mailflow/scenarios"
	"github.com/mailflow/mailflow/trace"
)

// The Hubs of scenarios/routing-groups.yaml: London (HUB-LON1, the master; HUB-LON2,
// RGC London-Paris's bridgehead), Paris, Berlin, Madrid and Oslo.
var servers = []string{"HUB-LON1", "HUB-LON2", "HUB-PAR", "HUB-BER", "HUB-MAD", "HUB-OSL"}

// world runs each server as a process of its own would: its own Net, which knows
// only itself, a Server taking what is sent to it and a Client sending to the others
// over loopback. The servers record into one log.
type world struct {
	t     *testing.T
	s     *scenario.Scenario
	g     *routing.Graph
	log   *trace.Log
	clk   *clock.Fake
	addrs map[string]string
	lns   map[string]net.Listener
	nets  map[string]*linkstate.Net
	srvs  map[string]*Server
}

func newWorld(t *testing.T) *world {
	t.Helper()
	s, err := scenarios.Load("routing-groups.yaml")
	if err != nil {
		t.Fatal(err)
	}
	g, err := routing.NewGraph(s)
	if err != nil {
		t.Fatal(err)
	}
	w := &world{t: t, s: s, g: g, log: trace.NewLog(nil), clk: clock.NewFake(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)),
		addrs: map[string]string{}, lns: map[string]net.Listener{}, nets: map[string]*linkstate.Net{}, srvs: map[string]*Server{}}
	// Every address is taken first, as a network plan gives each server its own.
	for _, n := range servers {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		w.lns[n], w.addrs[n] = ln, ln.Addr().String()
	}
	t.Cleanup(func() {
		for _, n := range servers {
			w.stop(n)
			if ln := w.lns[n]; ln != nil {
				ln.Close()
			}
		}
	})
	return w
}

// start runs a server: its Net attached, then its listener serving.
func (w *world) start(name string) {
	w.t.Helper()
	peers := map[string]string{}
	for _, p := range linkstate.Peers(w.s, name) {
		peers[p] = w.addrs[p]
	}
	n := linkstate.New(w.s, w.g, nil, linkstate.WithTransport(NewClient(peers, WithDialTimeout(time.Second))))
	n.Attach(name, w.log, w.clk, nil)
	ln := w.lns[name]
	if ln == nil {
		var err error
		if ln, err = net.Listen("tcp", w.addrs[name]); err != nil {
			w.t.Fatal(err)
		}
	}
	w.lns[name] = nil
	w.nets[name], w.srvs[name] = n, Serve(ln, name, n)
}

// stop takes a server down: its address refuses connections.
func (w *world) stop(name string) {
	if s := w.srvs[name]; s != nil {
		if err := s.Close(); err != nil {
			w.t.Errorf("closing %s: %v", name, err)
		}
		w.nets[name].Detach(name)
		delete(w.srvs, name)
	}
	if ln := w.lns[name]; ln != nil {
		ln.Close()
		w.lns[name] = nil
	}
}

func (w *world) events() []string {
	var out []string
	for _, e := range w.log.Events() {
		out = append(out, e.Server+": "+e.Detail+" [from "+e.Source+"]")
	}
	return out
}

func (w *world) down(server, conn string) bool {
	return w.nets[server].Table(server).Down()[strings.ToLower(conn)]
}

func TestAcrossProcesses(t *testing.T) {
	const paris, oslo = "RGC London-Paris", "RGC London-Oslo"
	tests := []struct {
		name    string
		running []string
		server  string
		conn    string
		want    []string
		downOn  []string
		upOn    []string
	}{
		{name: "a member reports to its master, which passes it to the other masters; a server that is down hears nothing (ROUTE-020)",
			running: []string{"HUB-LON1", "HUB-LON2", "HUB-BER", "HUB-MAD", "HUB-OSL"}, server: "HUB-LON2", conn: paris,
			want: []string{
				"HUB-LON2: RGC London-Paris down: every remote bridgehead (HUB-PAR) failed; reported to master HUB-LON1 [from ]",
				"HUB-LON1: RGC London-Paris down v1 from HUB-LON2 [from HUB-LON2]",
				"HUB-BER: RGC London-Paris down v1 from master HUB-LON1 [from HUB-LON1]",
				"HUB-MAD: RGC London-Paris down v1 from master HUB-LON1 [from HUB-LON1]",
				"HUB-OSL: RGC London-Paris down v1 from master HUB-LON1 [from HUB-LON1]",
			},
			downOn: []string{"HUB-LON1", "HUB-LON2", "HUB-BER", "HUB-MAD", "HUB-OSL"}},
		{name: "the master marks a connector down and passes it to its member and the other masters (ROUTE-020)",
			running: servers, server: "HUB-LON1", conn: paris,
			want: []string{
				"HUB-LON1: RGC London-Paris down v1: every remote bridgehead (HUB-PAR) failed (as master) [from ]",
				"HUB-LON2: RGC London-Paris down v1 from master HUB-LON1 [from HUB-LON1]",
				"HUB-PAR: RGC London-Paris down v1 from master HUB-LON1 [from HUB-LON1]",
				"HUB-BER: RGC London-Paris down v1 from master HUB-LON1 [from HUB-LON1]",
				"HUB-MAD: RGC London-Paris down v1 from master HUB-LON1 [from HUB-LON1]",
				"HUB-OSL: RGC London-Paris down v1 from master HUB-LON1 [from HUB-LON1]",
			},
			downOn: servers},
		{name: "with its master down, a member keeps the change to itself",
			running: []string{"HUB-LON2", "HUB-BER", "HUB-MAD"}, server: "HUB-LON2", conn: paris,
			want:   []string{"HUB-LON2: RGC London-Paris down: every remote bridgehead (HUB-PAR) failed; master HUB-LON1 unreachable, state kept here only (RGC London-Paris down v1) [from ]"},
			downOn: []string{"HUB-LON2"}, upOn: []string{"HUB-BER", "HUB-MAD"}},
		{name: "the only path to a group is never marked down (ROUTE-021)",
			running: servers, server: "HUB-LON1", conn: oslo,
			want: []string{"HUB-LON1: RGC London-Oslo failed on every remote bridgehead (HUB-OSL); only path to routing group oslo: not marked down, mail waits and is retried [from ]"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t)
			for _, n := range servers {
				if slices.Contains(tc.running, n) {
					w.start(n)
				} else {
					w.stop(n)
				}
			}
			w.nets[tc.server].Failed(tc.server, tc.conn)
			if got := w.events(); strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Errorf("events\n got: %q\nwant: %q", got, tc.want)
			}
			for _, n := range tc.downOn {
				if !w.down(n, tc.conn) {
					t.Errorf("%s holds %s up, want down", n, tc.conn)
				}
			}
			for _, n := range tc.upOn {
				if w.down(n, tc.conn) {
					t.Errorf("%s holds %s down, want up", n, tc.conn)
				}
			}
		})
	}
}

// A server that starts asks its master for the table: one that was down while a
// connector went down learns of it then.
func TestStartAsksMaster(t *testing.T) {
	w := newWorld(t)
	for _, n := range servers {
		if n == "HUB-LON2" {
			w.stop(n)
		} else {
			w.start(n)
		}
	}
	w.nets["HUB-LON1"].Failed("HUB-LON1", "RGC London-Paris")
	w.start("HUB-LON2")
	if !w.down("HUB-LON2", "RGC London-Paris") {
		t.Fatalf("HUB-LON2 started without its master's table; events %q", w.events())
	}
	want := "HUB-LON2: table from master HUB-LON1: RGC London-Paris down v1 [from HUB-LON1]"
	if got := w.events(); got[len(got)-1] != want {
		t.Errorf("last event %q, want %q", got[len(got)-1], want)
	}
}

// The receiver refuses what it should not take, in words the sender sees.
func TestRefused(t *testing.T) {
	w := newWorld(t)
	w.start("HUB-PAR")
	c := NewClient(map[string]string{"HUB-PAR": w.addrs["HUB-PAR"], "HUB-X": w.addrs["HUB-PAR"]})
	ctx := context.Background()
	for _, tc := range []struct {
		to   string
		m    linkstate.Message
		want string
	}{
		{to: "HUB-PAR", m: linkstate.Message{Kind: linkstate.KindState, From: "HUB-LON2", State: linkstate.State{Connector: "RGC London-Paris", Version: 1}}, want: "not a link-state peer"},
		{to: "HUB-PAR", m: linkstate.Message{Kind: linkstate.KindState, From: "HUB-LON1", State: linkstate.State{Connector: "nowhere", Version: 1}}, want: `no connector "nowhere"`},
		{to: "HUB-X", m: linkstate.Message{Kind: linkstate.KindTable, From: "HUB-LON1"}, want: "this is HUB-PAR, not HUB-X"},
	} {
		_, err := c.Send(ctx, tc.to, tc.m)
		var re *RemoteError
		if !errors.As(err, &re) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Send(%s, %+v) = %v, want a refusal saying %q", tc.to, tc.m, err, tc.want)
		}
	}
	if _, err := c.Send(ctx, "HUB-BER", linkstate.Message{Kind: linkstate.KindTable, From: "HUB-PAR"}); err == nil || !strings.Contains(err.Error(), "no link-state address for HUB-BER") {
		t.Errorf("Send to a server with no address = %v", err)
	}
	if got := w.events(); len(got) != 0 {
		t.Errorf("refused messages left events %q", got)
	}
	// A server that was taken down does not answer.
	w.stop("HUB-PAR")
	if _, err := c.Send(ctx, "HUB-PAR", linkstate.Message{Kind: linkstate.KindTable, From: "HUB-LON1"}); err == nil {
		t.Error("a stopped server answered")
	}
}
