package routing

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/mailflow/mailflow/scenario"
)

// org builds a scenario from compact site and link lists: sites "a", "b*" (hub site);
// links "a-b:10" or "a-b:10/5" (cost 10, ExchangeCost 5) or "a-b:10@1000" (size limit).
func org(t testing.TB, sites string, links ...string) *Graph {
	t.Helper()
	var y strings.Builder
	y.WriteString("org:\n  accepted_domains:\n    - {domain: contoso.test, type: authoritative, default: true}\n  sites:\n")
	first := ""
	for _, s := range strings.Fields(sites) {
		name, hub := strings.CutSuffix(s, "*")
		if first == "" {
			first = name
		}
		fmt.Fprintf(&y, "    - {name: %s, hub: %v}\n", name, hub)
	}
	if len(links) > 0 {
		y.WriteString("  site_links:\n")
	}
	for _, l := range links {
		ends, rest, _ := strings.Cut(l, ":")
		a, b, _ := strings.Cut(ends, "-")
		size := "0"
		rest, size0, ok := strings.Cut(rest, "@")
		if ok {
			size = size0
		}
		cost, xcost, _ := strings.Cut(rest, "/")
		if xcost == "" {
			xcost = "0"
		}
		fmt.Fprintf(&y, "    - {sites: [%s, %s], cost: %s, exchange_cost: %s, max_message_size: %s}\n", a, b, cost, xcost, size)
	}
	fmt.Fprintf(&y, "  servers:\n    - {name: HUB-%s, role: hub, site: %s}\n", strings.ToUpper(first), first)
	s, err := scenario.Parse("graph.yaml", []byte(y.String()))
	if err != nil {
		t.Fatalf("%v\n%s", err, y.String())
	}
	g, err := NewGraph(s)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func TestPath(t *testing.T) {
	tests := []struct {
		name     string
		sites    string
		links    []string
		from, to string
		path     string // sites joined by " "
		total    int
		rule     string
		relays   string
	}{
		{"one link", "a b", []string{"a-b:10"}, "a", "b", "a b", 10, RuleOnlyPath, "b"},
		{"same site", "a b", []string{"a-b:10"}, "a", "a", "a", 0, RuleOnlyPath, ""},
		{"least cost over fewer hops (ROUTE-001)", "a b c", []string{"a-c:30", "a-b:10", "b-c:10"}, "a", "c", "a b c", 20, RuleCost, "c"},
		{"ExchangeCost replaces cost (ROUTE-001)", "a b c", []string{"a-c:30/5", "a-b:10", "b-c:10"}, "a", "c", "a c", 5, RuleCost, "c"},
		{"cost tie: fewest hops (ROUTE-002)", "a b c", []string{"a-c:20", "a-b:10", "b-c:10"}, "a", "c", "a c", 20, RuleHops, "c"},
		{"diamond tie: lowest name nearest destination (ROUTE-003)", "a b c d", []string{"a-b:10", "a-c:10", "b-d:10", "c-d:10"}, "a", "d", "a b d", 20, RuleSiteName, "d"},
		{"diamond tie, names reversed (ROUTE-003)", "a x y d", []string{"a-y:10", "a-x:10", "y-d:10", "x-d:10"}, "a", "d", "a x d", 20, RuleSiteName, "d"},
		{"names compared nearest the destination first (ROUTE-003)", "s a z m n d", []string{"s-a:5", "a-n:5", "n-d:5", "s-z:5", "z-m:5", "m-d:5"}, "s", "d", "s z m d", 15, RuleSiteName, "d"},
		{"nearest names equal: earlier sites decide (ROUTE-003)", "s a b m d", []string{"s-a:5", "a-m:5", "s-b:5", "b-m:5", "m-d:5"}, "s", "d", "s a m d", 15, RuleSiteName, "d"},
		{"hub site on the path relays (ROUTE-006)", "lon par* ber", []string{"lon-par:10", "par-ber:10"}, "lon", "ber", "lon par ber", 20, RuleOnlyPath, "par ber"},
		{"two hub sites, closest first (ROUTE-006)", "a b* c* d", []string{"a-b:1", "b-c:1", "c-d:1"}, "a", "d", "a b c d", 3, RuleOnlyPath, "b c d"},
		{"hub site off the path ignored (ROUTE-007)", "a h* b", []string{"a-b:10", "a-h:1", "h-b:20"}, "a", "b", "a b", 10, RuleCost, "b"},
		{"no hub site: direct relay (ROUTE-005)", "a m b", []string{"a-m:1", "m-b:1"}, "a", "b", "a m b", 2, RuleOnlyPath, "b"},
		{"destination is a hub site", "a b*", []string{"a-b:1"}, "a", "b", "a b", 1, RuleOnlyPath, "b"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := org(t, tt.sites, tt.links...)
			p, err := g.Path(tt.from, tt.to)
			if err != nil {
				t.Fatal(err)
			}
			if got := strings.Join(p.Sites, " "); got != tt.path {
				t.Errorf("path %q, want %q (%s)", got, tt.path, p)
			}
			if p.Total != tt.total {
				t.Errorf("total %d, want %d", p.Total, tt.total)
			}
			if p.TieBreak != tt.rule {
				t.Errorf("decided by %q, want %q (%s)", p.TieBreak, tt.rule, p)
			}
			if got := strings.Join(p.Relays(), " "); got != tt.relays {
				t.Errorf("relays %q, want %q", got, tt.relays)
			}
		})
	}
}

func TestPathIsDeterministic(t *testing.T) {
	// ROUTE-004: the same answer every time, whatever the map iteration order.
	g := org(t, "a b c d e", "a-b:1", "a-c:1", "b-d:1", "c-d:1", "d-e:1", "b-e:2", "c-e:2")
	first, err := g.Path("a", "e")
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 200; i++ {
		p, _ := g.Path("a", "e")
		if !reflect.DeepEqual(p.Sites, first.Sites) || p.TieBreak != first.TieBreak {
			t.Fatalf("run %d: %s, first %s", i, p, first)
		}
	}
}

func TestBackoff(t *testing.T) {
	// ROUTE-008: queue at the reachable site closest to the destination, hop by hop back.
	g := org(t, "a b* c d", "a-b:1", "b-c:1", "c-d:1")
	p, err := g.Path("a", "d")
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(p.Backoff(), " "); got != "d c b" {
		t.Errorf("backoff %q, want %q", got, "d c b")
	}
}

func TestFanOut(t *testing.T) {
	// ROUTE-009: d1 and d2 lie behind hub site h: one copy to h; e has its own path.
	g := org(t, "s h* d1 d2 e", "s-h:1", "h-d1:1", "h-d2:1", "s-e:1")
	paths, err := g.Paths("s")
	if err != nil {
		t.Fatal(err)
	}
	delete(paths, "s")
	got := FanOut(paths)
	want := map[string][]string{"h": {"d1", "d2", "h"}, "e": {"e"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("fan-out %v, want %v", got, want)
	}
}

func TestLinkSizeLimit(t *testing.T) {
	// ROUTE-016: the path carries the smallest link limit so the caller can refuse 5.3.4.
	g := org(t, "a b c", "a-b:1@5000", "b-c:1@2000")
	p, err := g.Path("a", "c")
	if err != nil {
		t.Fatal(err)
	}
	if p.MaxMessageSize != 2000 {
		t.Errorf("max size %d, want 2000", p.MaxMessageSize)
	}
}

func TestNoPath(t *testing.T) {
	g := org(t, "a b c", "a-b:1")
	if _, err := g.Path("a", "c"); !errors.Is(err, ErrNoPath) {
		t.Errorf("err %v, want ErrNoPath", err)
	}
	if _, err := g.Path("a", "nowhere"); err == nil || errors.Is(err, ErrNoPath) {
		t.Errorf("unknown site: err %v", err)
	}
}

func TestPathString(t *testing.T) {
	g := org(t, "lon par* ber", "lon-par:10", "par-ber:5")
	p, _ := g.Path("lon", "ber")
	want := "lon -(10)-> par -(5)-> ber; cost 15, 2 hops; relay via par -> ber; decided by only path"
	if p.String() != want {
		t.Errorf("got  %s\nwant %s", p, want)
	}
}

func TestPathsAgreeWithPath(t *testing.T) {
	// The route table from one search equals the single decisions, tie-breaks included.
	for _, n := range []int{4, 10, 40} {
		g, err := NewGraph(genOrg(n))
		if err != nil {
			t.Fatal(err)
		}
		table, err := g.Paths("site000")
		if err != nil {
			t.Fatal(err)
		}
		for _, to := range g.Sites() {
			p, err := g.Path("site000", to)
			if err != nil {
				t.Fatal(err)
			}
			if got := table[to]; !reflect.DeepEqual(got.Sites, p.Sites) || got.Total != p.Total {
				t.Errorf("n=%d to %s: table %v (%d), Path %v (%d)", n, to, got.Sites, got.Total, p.Sites, p.Total)
			}
		}
	}
}
