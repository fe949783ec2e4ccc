package mta

import (
	"net/netip"
	"testing"

	"github.com/mailflow/mailflow/profiles"
	"github.com/mailflow/mailflow/scenario"
	"github.com/mailflow/mailflow/scenarios"
	"github.com/mailflow/mailflow/targets/internal/mtaconf"
)

// TestMessageLimit: an MTA that takes its limit in MiB keeps the scenario's limit
// rounded up to whole MiB, and specs judge that; one that takes bytes keeps it as is.
func TestMessageLimit(t *testing.T) {
	tests := []struct {
		unit       int64
		limit, got int
	}{
		{0, 20000, 20000},
		{1 << 20, 20000, 1 << 20},
		{1 << 20, 1 << 20, 1 << 20},
		{1 << 20, 1<<20 + 1, 2 << 20},
		{1 << 20, 0, 0},
	}
	for _, tt := range tests {
		top := &Topology{profile: &profiles.Profile{MessageSizeUnit: tt.unit}}
		if got := top.MessageLimit(tt.limit); got != tt.got {
			t.Errorf("unit %d: MessageLimit(%d) = %d, want %d", tt.unit, tt.limit, got, tt.got)
		}
	}
}

// TestMailboxes: the MTA keeps mailboxes only in the scenarios the MBX specs start,
// where the passwords are for the mailbox; a scenario whose Edge takes them for SMTP
// AUTH, and every other shipped scenario, relays all its recipients to the Hubs as
// before, so the specs judging what the Hubs received see no change.
func TestMailboxes(t *testing.T) {
	boxes := func(s *scenario.Scenario) []string {
		edges := s.ServersByRole(scenario.RoleEdge)
		if len(edges) != 1 {
			return nil
		}
		var out []string
		for _, m := range mtaconf.Data(s, edges[0], mtaconf.Inputs{}).Mailboxes {
			out = append(out, m.Address)
		}
		return out
	}
	// The scenarios whose recipients log in to their mailbox, with an Edge for the MTA
	// to play (client-access.yaml serves reference-only clauses; outbox.yaml has no Edge).
	logins := map[string]bool{"submission.yaml": true, "client-access.yaml": true}
	for _, name := range scenarios.Names() {
		s, err := scenarios.Load(name)
		if err != nil {
			t.Fatal(err)
		}
		if got := boxes(s); (len(got) > 0) != logins[name] {
			t.Errorf("%s: mailboxes %v", name, got)
		}
	}
	// MBX-001's world: edge-smarthost.yaml with alice given a password.
	s, err := scenarios.Load("edge-smarthost.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for i := range s.Org.Recipients {
		if s.Org.Recipients[i].Mail == "alice@contoso.test" {
			s.Org.Recipients[i].Password = "alice-secret"
		}
	}
	if got := boxes(s); len(got) != 1 || got[0] != "alice@contoso.test" {
		t.Errorf("edge-smarthost.yaml with alice's password: mailboxes %v, want alice's", got)
	}
}

// TestProfileDataSPF: the Edge's SPF action reaches a profile that can check SPF,
// the default action when the scenario names none, and nothing reaches one that lacks
// it (its specs are N/A there, and the MTA must not be half-configured).
func TestProfileDataSPF(t *testing.T) {
	tests := []struct {
		spf   scenario.SPF
		lacks string
		want  string
	}{
		{scenario.SPF{Enabled: true, Action: scenario.SPFReject}, "", profiles.SPFReject},
		{scenario.SPF{Enabled: true}, "", scenario.DefaultSPFAction},
		{scenario.SPF{Action: scenario.SPFReject}, "", ""},
		{scenario.SPF{Enabled: true, Action: scenario.SPFReject}, "no SPF here", ""},
	}
	for _, tt := range tests {
		edge := &scenario.Server{Name: "EDGE1", FQDN: "edge1.contoso.test.", Role: scenario.RoleEdge}
		edge.Agents.SPF = tt.spf
		p := &profiles.Profile{Lacks: map[string]string{}}
		if tt.lacks != "" {
			p.Lacks[profiles.FeatureSPF] = tt.lacks
		}
		top := &Topology{profile: p, scenario: &scenario.Scenario{}, edge: edge}
		if got := top.profileData(netip.MustParseAddr("172.28.0.53"), nil).SPF; got != tt.want {
			t.Errorf("SPF %+v, lacks %q: Data.SPF = %q, want %q", tt.spf, tt.lacks, got, tt.want)
		}
	}
}
