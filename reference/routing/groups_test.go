package routing

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/mailflow/mailflow/scenario"
)

// groups builds an Exchange 2003 organisation of routing groups, one Hub each (HUB-A
// for group a), from one-way connectors "a>b:10" (named a-b).
func groups(t testing.TB, names string, conns ...string) *Graph {
	t.Helper()
	var y strings.Builder
	y.WriteString("org:\n  routing: routing-groups\n  routing_groups:\n")
	var servers strings.Builder
	for _, n := range strings.Fields(names) {
		fmt.Fprintf(&y, "    - {name: %s, servers: [HUB-%s]}\n", n, strings.ToUpper(n))
		fmt.Fprintf(&servers, "    - {name: HUB-%s, role: hub}\n", strings.ToUpper(n))
	}
	if len(conns) > 0 {
		y.WriteString("  routing_group_connectors:\n")
	}
	for _, c := range conns {
		ends, cost, _ := strings.Cut(c, ":")
		a, b, _ := strings.Cut(ends, ">")
		fmt.Fprintf(&y, "    - {name: %s-%s, from: %s, to: %s, cost: %s, remote_bridgeheads: [HUB-%s]}\n", a, b, a, b, cost, strings.ToUpper(b))
	}
	y.WriteString("  servers:\n" + servers.String())
	s, err := scenario.Parse("groups.yaml", []byte(y.String()))
	if err != nil {
		t.Fatalf("%v\n%s", err, y.String())
	}
	g, err := NewGraph(s)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func TestGroupPaths(t *testing.T) {
	g := groups(t, "a b c d", "a>b:10", "b>d:10", "a>c:5", "c>d:30", "d>a:1")
	tests := []struct {
		name     string
		from, to string
		down     Down
		want     string
		err      error
	}{
		{name: "least cost over connectors (ROUTE-019)", from: "a", to: "d",
			want: "a -(a-b, 10)-> b -(b-d, 10)-> d; cost 20, 2 hops; decided by least cost"},
		{name: "connector down: the least-cost path still up (ROUTE-020)", from: "a", to: "d", down: Down{"a-b": true},
			want: "a -(a-c, 5)-> c -(c-d, 30)-> d; cost 35, 2 hops; decided by only path"},
		{name: "a connector down elsewhere changes nothing", from: "a", to: "d", down: Down{"c-d": true, "nope": true},
			want: "a -(a-b, 10)-> b -(b-d, 10)-> d; cost 20, 2 hops; decided by only path"},
		{name: "connectors are one way", from: "d", to: "b",
			want: "d -(d-a, 1)-> a -(a-b, 10)-> b; cost 11, 2 hops; decided by only path"},
		{name: "every path down", from: "a", to: "d", down: Down{"a-b": true, "a-c": true}, err: ErrNoPath},
		{name: "no connector back", from: "b", to: "c",
			want: "b -(b-d, 10)-> d -(d-a, 1)-> a -(a-c, 5)-> c; cost 16, 3 hops; decided by only path"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := g.PathAvoiding(tc.from, tc.to, tc.down)
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("err = %v, want %v", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := p.String(); got != tc.want {
				t.Errorf("path\n got: %s\nwant: %s", got, tc.want)
			}
		})
	}
	if got := g.SiteOf("hub-c"); got != "c" {
		t.Errorf("SiteOf(hub-c) = %q", got)
	}
	if !g.IsRoutingGroup("A") || g.IsRoutingGroup("x") {
		t.Errorf("IsRoutingGroup")
	}
	if c, ok := g.Connector("A-B"); !ok || c.From != "a" || c.To != "b" || c.RemoteBridgeheads[0] != "HUB-B" || c.LocalBridgeheads[0] != "HUB-A" {
		t.Errorf("Connector(A-B) = %+v, %v", c, ok)
	}
}

func TestOnlyPath(t *testing.T) {
	// a reaches b directly or through c, and c directly or through b; nothing leaves
	// b but b-c, nor c but c-b and c-d.
	g := groups(t, "a b c d", "a>b:10", "b>c:10", "a>c:30", "c>b:5", "c>d:1")
	for name, want := range map[string]bool{"a-b": false, "a-c": false, "b-c": true, "c-b": true, "c-d": true, "x": false} {
		if got := g.OnlyPath(name); got != want {
			t.Errorf("OnlyPath(%s) = %v, want %v", name, got, want)
		}
	}
}
