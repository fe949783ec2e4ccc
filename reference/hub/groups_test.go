package hub

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/mailflow/mailflow/clock"
	"github.com/mailflow/mailflow/reference/categorizer"
	"github.com/mailflow/mailflow/reference/directory"
	"github.com/mailflow/mailflow/scenario"
	"github.com/mailflow/mailflow/trace"
)

// An organisation in coexistence: the 2007 site hq and the legacy groups a (two Hubs,
// HUB-A2 the bridgehead towards b) and b, with a size limit on RGC A-B.
const coexistence = `org:
  accepted_domains:
    - {domain: contoso.test, type: authoritative, default: true}
  routing: routing-groups
  sites: [{name: hq}]
  routing_groups:
    - {name: a, servers: [HUB-A1, HUB-A2, MBX-A]}
    - {name: b, servers: [HUB-B, MBX-B]}
  routing_group_connectors:
    - {name: RGC A-B, from: a, to: b, cost: 10, local_bridgeheads: [HUB-A2], remote_bridgeheads: [HUB-B], max_message_size: 1000}
    - {name: Interop A-HQ, from: a, to: hq, cost: 5, local_bridgeheads: [HUB-A1], remote_bridgeheads: [HUB-HQ]}
    - {name: Interop HQ-B, from: hq, to: b, cost: 5, local_bridgeheads: [HUB-HQ], remote_bridgeheads: [HUB-B]}
  servers:
    - {name: HUB-HQ, role: hub, site: hq}
    - {name: MBX-HQ, role: mailbox, site: hq}
    - {name: HUB-A1, role: hub}
    - {name: HUB-A2, role: hub}
    - {name: MBX-A, role: mailbox}
    - {name: HUB-B, role: hub}
    - {name: MBX-B, role: mailbox}
`

func TestRouteGroups(t *testing.T) {
	s, err := scenario.Parse("coexistence.yaml", []byte(coexistence))
	if err != nil {
		t.Fatal(err)
	}
	d := dir{
		"hq@contoso.test": {Mail: "hq@contoso.test", Type: directory.TypeMailbox, MailboxServer: "MBX-HQ"},
		"a@contoso.test":  {Mail: "a@contoso.test", Type: directory.TypeMailbox, MailboxServer: "MBX-A"},
		"b@contoso.test":  {Mail: "b@contoso.test", Type: directory.TypeMailbox, MailboxServer: "MBX-B"},
	}
	peers := map[string]string{}
	for i, sv := range s.Org.Servers {
		peers[sv.Name] = "127.0.1." + string(rune('1'+i)) + ":25"
	}
	org, err := NewOrg(s, peers)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, server, rcpt string
		size               int
		want               string // "kind key -> next hop (connector)"
		reason             string
	}{
		{"in the group: straight to the home server (ROUTE-018)", "HUB-A2", "a@contoso.test", 100,
			"mailbox mailbox:mbx-a -> MBX-A (Intra-Organization SMTP)", "in the Hub's own routing group a: local delivery"},
		{"not a bridgehead: to the connector's local bridgehead (ROUTE-019)", "HUB-A1", "b@contoso.test", 100,
			"site bridgehead:rgc a-b -> HUB-A2 (Intra-Organization SMTP)", "to RGC A-B's local bridgeheads HUB-A2"},
		{"the local bridgehead: over the connector (ROUTE-019)", "HUB-A2", "b@contoso.test", 100,
			"site rgc:rgc a-b -> b (RGC A-B)", "over RGC A-B to its remote bridgeheads HUB-B"},
		{"too large for the connector: 5.3.4", "HUB-A2", "b@contoso.test", 5000,
			"failed failed:b@contoso.test ->  ()", "exceeds the 1000-byte limit of a connector"},
		{"legacy to a 2007 site over the interop connector", "HUB-A2", "hq@contoso.test", 100,
			"site bridgehead:interop a-hq -> HUB-A1 (Intra-Organization SMTP)", "mailbox on MBX-HQ in site hq: a -(Interop A-HQ, 5)-> hq"},
		{"a 2007 Hub to a routing group, by cost, no link state (ROUTE-022)", "HUB-HQ", "b@contoso.test", 100,
			"site rgc:interop hq-b -> b (Interop HQ-B)", "an Exchange 2007 Hub routes by cost and ignores link state"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := org.Router(tt.server, categorizer.New(d))
			if err != nil {
				t.Fatal(err)
			}
			ds, err := r.Route(context.Background(), []string{tt.rcpt}, tt.size)
			if err != nil || len(ds) != 1 {
				t.Fatalf("%d decisions, %v", len(ds), err)
			}
			dc := ds[0]
			if got := string(dc.Kind) + " " + dc.Key + " -> " + dc.NextHop + " (" + dc.Connector + ")"; got != tt.want {
				t.Errorf("decision\n got: %s\nwant: %s", got, tt.want)
			}
			if !strings.Contains(dc.Reason, tt.reason) {
				t.Errorf("reason %q lacks %q", dc.Reason, tt.reason)
			}
			if dc.Kind != KindFailed && (len(dc.Hosts) == 0 || !dc.RequireTLS) {
				t.Errorf("hosts %v, TLS %v", dc.Hosts, dc.RequireTLS)
			}
		})
	}
	// A connector the legacy side holds down: HUB-A2 routes around it, back through
	// hq (ROUTE-020); HUB-HQ holds no link state at all (ROUTE-022).
	ls := org.LinkState()
	clk := clock.NewFake(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	for _, n := range []string{"HUB-A1", "HUB-A2", "HUB-HQ"} {
		ls.Attach(n, trace.NewLog(nil), clk, nil)
		defer ls.Detach(n)
	}
	ls.Failed("HUB-A2", "RGC A-B")
	r, err := org.Router("HUB-A2", categorizer.New(d))
	if err != nil {
		t.Fatal(err)
	}
	ds, err := r.Route(context.Background(), []string{"b@contoso.test"}, 100)
	if err != nil || len(ds) != 1 {
		t.Fatalf("%d decisions, %v", len(ds), err)
	}
	if got := ds[0].Key + " -> " + ds[0].NextHop; got != "bridgehead:interop a-hq -> HUB-A1" || !strings.Contains(ds[0].Reason, "RGC A-B down v1") {
		t.Errorf("with RGC A-B down: %s (%s)", got, ds[0].Reason)
	}
	if ls.Table("HUB-HQ") != nil {
		t.Errorf("a 2007 Hub has a link-state table")
	}
}
