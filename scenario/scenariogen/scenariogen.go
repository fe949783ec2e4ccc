// Package scenariogen makes organisations of any size, for benchmarks and scale tests
// that need more sites, servers and recipients than a hand-written scenario holds.
// The same inputs always give the same scenario, so figures from two runs compare.
package scenariogen

import (
	"fmt"
	"testing"

	"github.com/mailflow/mailflow/scenario"
)

// Option configures Org.
type Option func(*config)

type config struct {
	hubs, mailboxes int
	edges           int
	recipients      int
}

// WithHubsPerSite sets how many Hub servers each site has (default 2).
func WithHubsPerSite(n int) Option { return func(c *config) { c.hubs = n } }

// WithMailboxesPerSite sets how many Mailbox servers each site has (default 3).
func WithMailboxesPerSite(n int) Option { return func(c *config) { c.mailboxes = n } }

// WithEdges sets how many Edge servers the organisation has (default one per 100
// sites, at least one). Edges belong to no site, as in Exchange.
func WithEdges(n int) Option { return func(c *config) { c.edges = n } }

// WithRecipients sets how many mailbox recipients the directory holds (default none);
// they are spread evenly over the Mailbox servers and the accepted domains.
func WithRecipients(n int) Option { return func(c *config) { c.recipients = n } }

// Size is one generated organisation of the benchmarks.
type Size struct{ Sites, Recipients int }

// Sizes are the organisations benchmarks show side by side: 10, 100 and 200 sites with
// 1k, 10k and 100k recipients.
var Sizes = []Size{{10, 1_000}, {100, 10_000}, {200, 100_000}}

// Name names a sub-benchmark of the size ("sites=10").
func (z Size) Name() string { return fmt.Sprintf("sites=%d", z.Sites) }

// Org is the organisation of the size: Org(z.Sites) with z.Recipients recipients.
func (z Size) Org(opts ...Option) *scenario.Scenario {
	return Org(z.Sites, append([]Option{WithRecipients(z.Recipients)}, opts...)...)
}

// Bench runs bench as a sub-benchmark of b for each of Sizes, given the size's
// organisation, made before the timer starts; allocations are reported. Setup that
// bench does before its loop should end with b.ResetTimer.
func Bench(b *testing.B, bench func(b *testing.B, s *scenario.Scenario)) {
	for _, size := range Sizes {
		b.Run(size.Name(), func(b *testing.B) {
			s := size.Org()
			b.ReportAllocs()
			b.ResetTimer()
			bench(b, s)
		})
	}
}

// SiteName is the name of site i, as Org spells it ("site000").
func SiteName(i int) string { return fmt.Sprintf("site%03d", i) }

// Org is an organisation of n sites, with the defaults applied, ready for a target.
//
// The sites form a ring, with a chord from every site to the one n/3 further on, and
// every seventh site is a hub site, so routes are long enough to need every tie-break
// rule. Each site has its Hub and Mailbox servers. The Edges take the Internet's mail
// for the accepted domains (one per ten sites) and hold the one Internet send connector.
func Org(n int, opts ...Option) *scenario.Scenario {
	cfg := config{hubs: 2, mailboxes: 3, edges: max(1, n/100)}
	for _, o := range opts {
		o(&cfg)
	}
	s := &scenario.Scenario{}
	domains := max(1, n/10)
	for d := 0; d < domains; d++ {
		s.Org.AcceptedDomains = append(s.Org.AcceptedDomains, scenario.AcceptedDomain{
			Domain: domainName(d), Type: scenario.Authoritative, Default: d == 0,
		})
	}
	var mailboxServers []string
	for i := 0; i < n; i++ {
		s.Org.Sites = append(s.Org.Sites, scenario.Site{Name: SiteName(i), Hub: i%7 == 3})
		if n > 1 {
			s.Org.SiteLinks = append(s.Org.SiteLinks, scenario.SiteLink{Sites: []string{SiteName(i), SiteName((i + 1) % n)}, Cost: 1 + i%5})
		}
		if n > 3 {
			s.Org.SiteLinks = append(s.Org.SiteLinks, scenario.SiteLink{Sites: []string{SiteName(i), SiteName((i + n/3) % n)}, Cost: 10})
		}
		for k := 1; k <= cfg.hubs; k++ {
			s.Org.Servers = append(s.Org.Servers, scenario.Server{Name: fmt.Sprintf("HUB%03d-%d", i, k), Role: scenario.RoleHub, Site: SiteName(i)})
		}
		for k := 1; k <= cfg.mailboxes; k++ {
			name := fmt.Sprintf("MBX%03d-%d", i, k)
			s.Org.Servers = append(s.Org.Servers, scenario.Server{Name: name, Role: scenario.RoleMailbox, Site: SiteName(i)})
			mailboxServers = append(mailboxServers, name)
		}
	}
	var edges []string
	for e := 1; e <= cfg.edges; e++ {
		name := fmt.Sprintf("EDGE%d", e)
		edges = append(edges, name)
		s.Org.Servers = append(s.Org.Servers, scenario.Server{Name: name, Role: scenario.RoleEdge})
		s.Org.ReceiveConnectors = append(s.Org.ReceiveConnectors, scenario.ReceiveConnector{
			Name: "Internet", Server: name, Bind: ":25", Permissions: []scenario.Permission{scenario.PermAnonymous},
		})
	}
	if len(edges) > 0 {
		s.Org.SendConnectors = append(s.Org.SendConnectors, scenario.SendConnector{
			Name: "To Internet", AddressSpaces: []string{"*"}, Source: edges, Cost: 1,
		})
	}
	s.Org.Recipients = make([]scenario.Recipient, 0, cfg.recipients)
	for r := 0; r < cfg.recipients; r++ {
		domain := domainName(r % domains)
		rc := scenario.Recipient{Mail: fmt.Sprintf("user%06d@%s", r, domain)}
		if len(mailboxServers) > 0 {
			rc.Mailbox = mailboxServers[r%len(mailboxServers)]
		}
		// Some recipients are also known by a second address, as renamed users are.
		if r%10 == 0 {
			rc.Proxies = []string{fmt.Sprintf("alias%06d@%s", r, domain)}
		}
		s.Org.Recipients = append(s.Org.Recipients, rc)
	}
	s.Internet = scenario.Internet{
		DNS: []string{
			"fabrikam.test. MX 10 mx1.fabrikam.test.",
			"mx1.fabrikam.test. A 127.1.0.10",
		},
		Hosts: []scenario.Host{{Name: "mx1.fabrikam.test", Behaviour: scenario.Behaviour{Action: "accept"}}},
	}
	s.ApplyDefaults()
	return s
}

// domainName is accepted domain d: the default domain first, then one per ten sites.
func domainName(d int) string {
	if d == 0 {
		return "contoso.test"
	}
	return fmt.Sprintf("d%02d.contoso.test", d)
}

// GroupName is the name of routing group i, as RoutingGroups spells it ("rg000").
func GroupName(i int) string { return fmt.Sprintf("rg%03d", i) }

// RoutingGroups is Org(n) as an Exchange 2003 organisation (org.routing:
// routing-groups): site i is routing group i with the same servers, its first Hub
// the master and the bridgehead of every connector; each site link is a routing group
// connector each way at the link's cost. With the defaults, 200 groups hold 1,000
// servers.
func RoutingGroups(n int, opts ...Option) *scenario.Scenario {
	s := Org(n, opts...)
	s.Org.Routing = scenario.RoutingGroups
	groups := map[string]int{}
	for i, st := range s.Org.Sites {
		groups[st.Name] = i
		s.Org.RoutingGroups = append(s.Org.RoutingGroups, scenario.RoutingGroup{Name: GroupName(i)})
	}
	for i := range s.Org.Servers {
		sv := &s.Org.Servers[i]
		if sv.Site == "" {
			continue
		}
		g := &s.Org.RoutingGroups[groups[sv.Site]]
		g.Servers = append(g.Servers, sv.Name)
		if g.Master == "" && sv.Role == scenario.RoleHub {
			g.Master = sv.Name
		}
		sv.Site = ""
	}
	for _, l := range s.Org.SiteLinks {
		a, b := groups[l.Sites[0]], groups[l.Sites[1]]
		for _, e := range [][2]int{{a, b}, {b, a}} {
			from, to := s.Org.RoutingGroups[e[0]], s.Org.RoutingGroups[e[1]]
			s.Org.RoutingGroupConnectors = append(s.Org.RoutingGroupConnectors, scenario.RoutingGroupConnector{
				Name: "RGC " + from.Name + "-" + to.Name, From: from.Name, To: to.Name, Cost: l.Cost,
				LocalBridgeheads: []string{from.Master}, RemoteBridgeheads: []string{to.Master}, AddressSpace: "*",
			})
		}
	}
	s.Org.Sites, s.Org.SiteLinks = nil, nil
	s.ApplyDefaults()
	return s
}
