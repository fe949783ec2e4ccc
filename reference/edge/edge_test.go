package edge_test

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/mailflow/mailflow/reference/edge"
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

// A Close right after Start must not hang: go-smtp's Close only reaches listeners its
// Serve has already registered.
func TestCloseRightAfterStart(t *testing.T) {
	s, err := scenario.Parse("edge.yaml", []byte(org))
	if err != nil {
		t.Fatal(err)
	}
	srv, _ := s.Server("EDGE1")
	for i := 0; i < 200; i++ {
		e, err := edge.Start(context.Background(), edge.Config{
			Scenario: s, Server: srv, Addr: netip.MustParseAddr("127.0.0.1"),
			PortMap: func(int) int { return 0 }, SpoolDir: t.TempDir(),
		})
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan struct{})
		go func() { e.Close(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatalf("round %d: Close did not return", i)
		}
	}
}
