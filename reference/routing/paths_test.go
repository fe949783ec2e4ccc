package routing

import (
	"reflect"
	"strings"
	"testing"

	"github.com/mailflow/mailflow/scenario"
	"github.com/mailflow/mailflow/scenario/scenariogen"
)

// TestPathsAsPathOf holds the route table to what each path computed on its own gives
// (pathOf on the same search), field by field, for every source of generated site
// graphs and routing-group graphs: the table shares its slices for speed, and no path
// may see another's sites, costs or connectors.
func TestPathsAsPathOf(t *testing.T) {
	for _, c := range []struct {
		name string
		s    *scenario.Scenario
	}{
		{"sites=10", scenariogen.Org(10)},
		{"sites=100", scenariogen.Org(100)},
		{"groups=10", scenariogen.RoutingGroups(10)},
		{"groups=100", scenariogen.RoutingGroups(100)},
	} {
		g, err := NewGraph(c.s)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		for _, from := range g.Sites() {
			table, err := g.Paths(from)
			if err != nil {
				t.Fatalf("%s: %s: %v", c.name, from, err)
			}
			settled := g.searchFrom(g.index[strings.ToLower(from)])
			want := 0
			for node, l := range settled {
				if l == nil {
					continue
				}
				want++
				p := g.pathOf(label{cost: l.cost, hops: l.hops, seq: l.seqToSource()})
				if got := table[g.sites[node]]; !reflect.DeepEqual(got, p) {
					t.Fatalf("%s: %s to %s:\n got %+v\nwant %+v", c.name, from, g.sites[node], got, p)
				}
			}
			if len(table) != want {
				t.Fatalf("%s: %s: %d paths, want %d", c.name, from, len(table), want)
			}
		}
	}
}
