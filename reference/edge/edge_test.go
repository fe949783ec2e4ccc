package edge_test

import (
	"context"
	"net/netip"
	"testing"

	"github.com/mailflow/mailflow/reference/edge"
	"github.com/mailflow/mailflow/reference/transport"
	"github.com/mailflow/mailflow/scenario"
)

const org = `org:
  accepted_domains:
    - {domain: contoso.test, type: authoritative, default: true}
  sites:
    - {name: london}
  servers:
    - {name: EDGE1, role: edge}
    - {name: HUB1, role: hub, site: london}
  receive_connectors:
    - {name: Internet, server: EDGE1, bind: ":25", permissions: [anonymous]}
    - {name: Clients, server: EDGE1, bind: ":587", permissions: [exchange_users]}
`

// An Edge binds the scenario's receive connectors and, given the organisation's
// ranges, the implicit EdgeSync connector for its Hubs (ROUTE-015).
func TestStartBindsTheEdgeConnectors(t *testing.T) {
	s, err := scenario.Parse("edge.yaml", []byte(org))
	if err != nil {
		t.Fatal(err)
	}
	srv, _ := s.Server("EDGE1")
	e, err := edge.Start(context.Background(), edge.Config{
		Scenario: s, Server: srv, Addr: netip.MustParseAddr("127.0.0.1"),
		PortMap: func(int) int { return 0 }, SpoolDir: t.TempDir(), OrgRanges: []string{"127.0.0.0/8"},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	// PortMap sends every binding to port 0, so they share one listener.
	ls := e.Listeners()
	if want := "Internet,Clients," + transport.OrgConnector; len(ls) != 1 || ls[0].Name != want {
		t.Fatalf("listeners %+v; want one serving %q", ls, want)
	}
	if e.Queue() == nil {
		t.Error("no queue")
	}
}
