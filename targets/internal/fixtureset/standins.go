package fixtureset

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strings"

	"github.com/mailflow/mailflow/fixtures/internet"
	"github.com/mailflow/mailflow/fixtures/testca"
	"github.com/mailflow/mailflow/scenario"
)

// StartHubStandIns starts a sink for each of the scenario's Hubs, at ips in the order
// of s.ServersByRole(RoleHub), on port 25 with STARTTLS (as the organisation's peers
// offer it): where a third-party MTA playing the Edge hands the organisation's mail.
// Each joins fleet and gets its A record in z.
func StartHubStandIns(ctx context.Context, s *scenario.Scenario, ips []netip.Addr, z *Zone, fleet *internet.Fleet) error {
	hubs := s.ServersByRole(scenario.RoleHub)
	if len(ips) < len(hubs) {
		return fmt.Errorf("hub stand-ins: %d addresses for %d Hubs", len(ips), len(hubs))
	}
	ca := testca.Shared()
	for i, h := range hubs {
		tc, err := ca.ServerConfig(h.FQDN, ips[i].String())
		if err != nil {
			return err
		}
		host, err := internet.Start(ctx, h.Name, net.JoinHostPort(ips[i].String(), "25"), internet.WithTLS(tc))
		if err != nil {
			return fmt.Errorf("hub stand-in %s: %w", h.Name, err)
		}
		fleet.Add(host)
		z.Add(h.FQDN, ips[i])
	}
	return nil
}

// HubMailbox is what the Hub stand-ins of s received for addr, each message with its
// reverse-path on top as a store would keep it: a third-party MTA's view of
// "delivered to the organisation".
func HubMailbox(s *scenario.Scenario, fleet *internet.Fleet, addr string) [][]byte {
	var out [][]byte
	for _, h := range s.ServersByRole(scenario.RoleHub) {
		host := fleet.Host(h.Name)
		if host == nil {
			continue
		}
		for _, m := range host.Messages() {
			for _, rc := range m.RcptTo {
				if strings.EqualFold(rc, addr) {
					out = append(out, append([]byte("Return-Path: <"+m.MailFrom+">\r\n"), m.Data...))
					break
				}
			}
		}
	}
	return out
}
