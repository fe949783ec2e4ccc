package routing

import (
	"fmt"
	"testing"

	"github.com/mailflow/mailflow/scenario"
	"github.com/mailflow/mailflow/scenario/scenariogen"
)

// BenchmarkSelectConnector picks among 200 connectors, the scale of a large org.
func BenchmarkSelectConnector(b *testing.B) {
	var conns []scenario.SendConnector
	for i := 0; i < 200; i++ {
		conns = append(conns, scenario.SendConnector{Name: fmt.Sprintf("c%03d", i), AddressSpaces: []string{fmt.Sprintf("d%d.test", i), "*.contoso.test"}, Cost: i % 7})
	}
	conns = append(conns, scenario.SendConnector{Name: "star", AddressSpaces: []string{"*"}})
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := SelectConnector(conns, Origin{Server: "EDGE1", Own: true}, "marketing.contoso.test", 1000); err != nil {
			b.Fatal(err)
		}
	}
}

// genOrg is the generated organisation of n sites the start-up benchmark uses too
// (scenariogen.Org: a ring with chords and every seventh site a hub site, so paths are
// long enough to need every tie-break rule).
func genOrg(n int) *scenario.Scenario { return scenariogen.Org(n) }

// routeTables benchmarks computing the route tables of sites (one site's, or every
// site's) for generated orgs of 10, 100 and 200 sites.
func routeTables(b *testing.B, sites func(g *Graph) []string) {
	for _, size := range scenariogen.Sizes {
		n := size.Sites
		b.Run(size.Name(), func(b *testing.B) {
			g, err := NewGraph(genOrg(n))
			if err != nil {
				b.Fatal(err)
			}
			from := sites(g)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				for _, site := range from {
					if ps, err := g.Paths(site); err != nil || len(ps) != n {
						b.Fatalf("%s: %d paths, %v", site, len(ps), err)
					}
				}
			}
		})
	}
}

// BenchmarkRoutes computes one Hub's route table, the paths from its site to every
// site (without explaining each decision: Path does that for one).
func BenchmarkRoutes(b *testing.B) {
	routeTables(b, func(*Graph) []string { return []string{"site000"} })
}

// BenchmarkAllRoutes computes every site's route table: all routes of the org.
func BenchmarkAllRoutes(b *testing.B) { routeTables(b, (*Graph).Sites) }

// BenchmarkGraph builds the graph of generated orgs.
func BenchmarkGraph(b *testing.B) {
	for _, size := range scenariogen.Sizes {
		n := size.Sites
		b.Run(size.Name(), func(b *testing.B) {
			s := genOrg(n)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := NewGraph(s); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkDecision is one explained routing decision (path plus deciding tie-break),
// what a Hub computes per destination site of a message.
func BenchmarkDecision(b *testing.B) {
	for _, size := range scenariogen.Sizes {
		n := size.Sites
		b.Run(size.Name(), func(b *testing.B) {
			g, err := NewGraph(genOrg(n))
			if err != nil {
				b.Fatal(err)
			}
			to := scenariogen.SiteName(n / 2)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := g.Path("site000", to); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkGroupsVsSites computes, for the same generated organisations as sites and as
// Exchange 2003 routing groups (200 groups of 1,000 servers at the largest), one Hub's
// route table and one explained decision side by side; for routing groups also the
// decision a Hub makes with a connector on its path held down (ROUTE-020), which
// searches around it.
func BenchmarkGroupsVsSites(b *testing.B) {
	for _, size := range scenariogen.Sizes {
		n := size.Sites
		sites, err := NewGraph(genOrg(n))
		if err != nil {
			b.Fatal(err)
		}
		groups, err := NewGraph(scenariogen.RoutingGroups(n))
		if err != nil {
			b.Fatal(err)
		}
		// The first connector of the least-cost path, held down.
		p, err := groups.Path(scenariogen.GroupName(0), scenariogen.GroupName(n/2))
		if err != nil {
			b.Fatal(err)
		}
		down := Down{}
		if len(p.Connectors) > 0 {
			down[p.Connectors[0]] = true
		}
		for _, c := range []struct {
			name     string
			g        *Graph
			from, to string
			down     Down
		}{
			{"sites", sites, "site000", scenariogen.SiteName(n / 2), nil},
			{"groups", groups, scenariogen.GroupName(0), scenariogen.GroupName(n / 2), nil},
			{"groups-down", groups, scenariogen.GroupName(0), scenariogen.GroupName(n / 2), down},
		} {
			b.Run(fmt.Sprintf("%s=%d/decision", c.name, n), func(b *testing.B) {
				b.ReportAllocs()
				for i := 0; i < b.N; i++ {
					if _, err := c.g.PathAvoiding(c.from, c.to, c.down); err != nil {
						b.Fatal(err)
					}
				}
			})
			if c.down != nil {
				continue
			}
			b.Run(fmt.Sprintf("%s=%d/routes", c.name, n), func(b *testing.B) {
				b.ReportAllocs()
				for i := 0; i < b.N; i++ {
					if ps, err := c.g.Paths(c.from); err != nil || len(ps) != n {
						b.Fatalf("%d paths, %v", len(ps), err)
					}
				}
			})
			// Every site's or routing group's table: all routes of the organisation,
			// the figure the site graph's budget is set for (well under 100 ms at
			// 200 sites).
			b.Run(fmt.Sprintf("%s=%d/all-routes", c.name, n), func(b *testing.B) {
				nodes := c.g.Sites()
				if len(nodes) != n {
					b.Fatalf("%d nodes, want %d", len(nodes), n)
				}
				b.ReportAllocs()
				for i := 0; i < b.N; i++ {
					for _, from := range nodes {
						if ps, err := c.g.Paths(from); err != nil || len(ps) != n {
							b.Fatalf("%s: %d paths, %v", from, len(ps), err)
						}
					}
				}
			})
		}
	}
}
