package routing

import (
	"errors"
	"strings"
	"testing"

	"github.com/mailflow/mailflow/scenario"
)

// connOrg is three sites in a line, A -5- B -1- C, with A-C also linked at 20: the way
// from A to C costs 6 through B.
func connOrg(t *testing.T) *Graph {
	t.Helper()
	s := &scenario.Scenario{Org: scenario.Org{
		Sites: []scenario.Site{{Name: "A"}, {Name: "B"}, {Name: "C"}},
		SiteLinks: []scenario.SiteLink{
			{Sites: []string{"A", "B"}, Cost: 5}, {Sites: []string{"B", "C"}, Cost: 1}, {Sites: []string{"A", "C"}, Cost: 20},
		},
		Servers: []scenario.Server{
			{Name: "HUB-A1", Role: scenario.RoleHub, Site: "A"}, {Name: "HUB-A2", Role: scenario.RoleHub, Site: "A"},
			{Name: "HUB-B", Role: scenario.RoleHub, Site: "B"}, {Name: "HUB-C", Role: scenario.RoleHub, Site: "C"},
			{Name: "EDGE1", Role: scenario.RoleEdge, Site: "A"},
		},
	}}
	g, err := NewGraph(s)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func conn(name, space string, cost int, source ...string) scenario.SendConnector {
	return scenario.SendConnector{Name: name, AddressSpaces: []string{space}, Cost: cost, Source: source}
}

func TestSelectConnector(t *testing.T) {
	g := connOrg(t)
	off := false
	disabled := conn("disabled", "fabrikam.test", 0, "HUB-A1")
	disabled.Enabled = &off
	scoped := conn("scoped-b", "fabrikam.test", 0, "HUB-B")
	scoped.Scoped = true
	small := conn("small", "fabrikam.test", 0, "HUB-A1")
	small.MaxMessageSize = 10
	fromA1 := Origin{Server: "HUB-A1", Graph: g}
	tests := []struct {
		name   string
		conns  []scenario.SendConnector
		from   Origin
		domain string
		size   int
		want   string // connector name, or the error
		source string
		reason string
	}{
		// ROUTE-011: the candidates.
		{name: "disabled is no candidate", conns: []scenario.SendConnector{disabled, conn("star", "*", 9, "HUB-C")}, from: fromA1, domain: "fabrikam.test", want: "star"},
		{name: "scoped elsewhere is no candidate", conns: []scenario.SendConnector{scoped, conn("star", "*", 9, "HUB-C")}, from: fromA1, domain: "fabrikam.test", want: "star"},
		{name: "scoped to the server's site", conns: []scenario.SendConnector{scoped, conn("star", "*", 0, "HUB-B")}, from: Origin{Server: "HUB-B", Graph: g}, domain: "fabrikam.test", want: "scoped-b"},
		{name: "too small is no candidate", conns: []scenario.SendConnector{small, conn("star", "*", 9, "HUB-C")}, from: fromA1, domain: "fabrikam.test", size: 100, want: "star"},
		{name: "small enough", conns: []scenario.SendConnector{small, conn("star", "*", 9, "HUB-C")}, from: fromA1, domain: "fabrikam.test", size: 10, want: "small"},
		{name: "every match too small", conns: []scenario.SendConnector{small, conn("other", "woodgrove.test", 0)}, from: fromA1, domain: "fabrikam.test", size: 100, want: ErrTooLarge.Error()},
		{name: "no match", conns: []scenario.SendConnector{conn("other", "woodgrove.test", 0)}, from: fromA1, domain: "fabrikam.test", want: ErrNoConnector.Error()},
		{name: "an Edge uses its own connectors only", conns: []scenario.SendConnector{conn("hubs", "fabrikam.test", 0, "HUB-A1"), conn("own", "*", 5, "EDGE1")}, from: Origin{Server: "EDGE1", Own: true}, domain: "fabrikam.test", want: "own"},
		{name: "a connector without source servers", conns: []scenario.SendConnector{conn("nosource", "fabrikam.test", 0)}, from: Origin{Server: "EDGE1", Own: true}, domain: "fabrikam.test", want: "nosource"},
		// ROUTE-012: the most specific address space, whatever the cost.
		{name: "exact beats wildcard", conns: []scenario.SendConnector{conn("exact", "marketing.contoso.test", 50, "HUB-C"), conn("wild", "*.contoso.test", 0, "HUB-A1"), conn("star", "*", 0, "HUB-A1")}, from: fromA1, domain: "marketing.contoso.test", want: "exact", reason: "most specific"},
		{name: "wildcard beats star", conns: []scenario.SendConnector{conn("wild", "*.contoso.test", 50, "HUB-C"), conn("star", "*", 0, "HUB-A1")}, from: fromA1, domain: "marketing.contoso.test", want: "wild", reason: "most specific"},
		{name: "star", conns: []scenario.SendConnector{conn("wild", "*.contoso.test", 0, "HUB-A1"), conn("star", "*", 50, "HUB-C")}, from: fromA1, domain: "fabrikam.test", want: "star"},
		{name: "case and root dot", conns: []scenario.SendConnector{conn("exact", "fabrikam.test", 0, "HUB-A1"), conn("star", "*", 0, "HUB-A1")}, from: fromA1, domain: "FABRIKAM.TEST.", want: "exact"},
		// ROUTE-013 (1): aggregate cost = link costs to the source's site + address space cost.
		{name: "remote but cheaper in aggregate", conns: []scenario.SendConnector{conn("via-b", "fabrikam.test", 1, "HUB-B"), conn("via-a2", "fabrikam.test", 7, "HUB-A2")}, from: fromA1, domain: "fabrikam.test", want: "via-b", source: "HUB-B", reason: "lowest aggregate cost 6"},
		{name: "link costs outweigh the address space cost", conns: []scenario.SendConnector{conn("via-c", "fabrikam.test", 0, "HUB-C"), conn("via-a2", "fabrikam.test", 5, "HUB-A2")}, from: fromA1, domain: "fabrikam.test", want: "via-a2", reason: "lowest aggregate cost 5"},
		{name: "least-cost path, not the direct link", conns: []scenario.SendConnector{conn("via-c", "fabrikam.test", 0, "HUB-C"), conn("via-a2", "fabrikam.test", 7, "HUB-A2")}, from: fromA1, domain: "fabrikam.test", want: "via-c", reason: "lowest aggregate cost 6"},
		{name: "the nearest of several source servers", conns: []scenario.SendConnector{conn("multi", "fabrikam.test", 1, "HUB-C", "HUB-A2"), conn("via-b", "fabrikam.test", 0, "HUB-B")}, from: fromA1, domain: "fabrikam.test", want: "multi", source: "HUB-A2"},
		// ROUTE-013 (2): fewest hops, local server, then same site, then remote.
		{name: "local server before same site", conns: []scenario.SendConnector{conn("same", "fabrikam.test", 2, "HUB-A2"), conn("local", "fabrikam.test", 2, "HUB-A1")}, from: fromA1, domain: "fabrikam.test", want: "local", reason: "nearest source: the routing server itself"},
		{name: "same site before remote", conns: []scenario.SendConnector{conn("a-remote", "fabrikam.test", 0, "HUB-B"), conn("z-same", "fabrikam.test", 5, "HUB-A2")}, from: fromA1, domain: "fabrikam.test", want: "z-same", reason: "nearest source: a server of the same site"},
		// ROUTE-013 (3): the lowest name.
		{name: "lowest name", conns: []scenario.SendConnector{conn("beta", "fabrikam.test", 1, "HUB-A2"), conn("alpha", "fabrikam.test", 1, "HUB-A2")}, from: fromA1, domain: "fabrikam.test", want: "alpha", reason: "lowest name"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := SelectConnector(tc.conns, tc.from, tc.domain, tc.size)
			if err != nil {
				if !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("error %v, want %s", err, tc.want)
				}
				return
			}
			if got.Connector.Name != tc.want {
				t.Fatalf("got %s (%s), want %s", got.Connector.Name, got.Reason, tc.want)
			}
			if tc.source != "" && got.Source != tc.source {
				t.Errorf("source %s, want %s", got.Source, tc.source)
			}
			if !strings.Contains(got.Reason, tc.reason) {
				t.Errorf("reason %q, want it to say %q", got.Reason, tc.reason)
			}
		})
	}
	if _, err := SelectConnector(nil, fromA1, "fabrikam.test", 1); !errors.Is(err, ErrNoConnector) {
		t.Fatalf("no connectors: err = %v, want ErrNoConnector", err)
	}
}
