package mtaconf_test

import (
	"net/netip"
	"reflect"
	"testing"
	"time"

	"github.com/mailflow/mailflow/profiles"
	"github.com/mailflow/mailflow/scenario"
	"github.com/mailflow/mailflow/scenarios"
	"github.com/mailflow/mailflow/targets/internal/mtaconf"
)

// scenarios/edge-relay.yaml as an MTA playing EDGE1 must be configured: its four
// listeners, the AppRelay range as a relay network, the authoritative domain's
// addresses as recipients, alice as an AUTH user, two routes.
func TestDataOfEdgeRelay(t *testing.T) {
	s, err := scenarios.Load("edge-relay.yaml")
	if err != nil {
		t.Fatal(err)
	}
	edge := s.ServersByRole(scenario.RoleEdge)[0]
	d := mtaconf.Data(s, edge, mtaconf.Inputs{DNS: netip.MustParseAddr("192.0.2.53"), Internal: []string{"192.0.2.1", "192.0.2.2"},
		Retry: 10 * time.Second, DelayWarning: time.Minute, Expiry: 5 * time.Minute, CACert: "/ca.pem"})
	for _, c := range []struct {
		name      string
		got, want any
	}{
		{"Hostname", d.Hostname, "edge1.contoso.test"},
		{"DNS", d.DNS, "192.0.2.53"},
		{"InternalHost", d.InternalHost, "192.0.2.1"},
		{"Recipients", d.Recipients, []string{"a.smith@contoso.test", "alice@contoso.test"}},
		{"Users", d.Users, []profiles.User{{Name: "alice@contoso.test", Password: "alice-secret"}}},
		{"RelayNetworks", d.RelayNetworks, []string{"127.77.0.0/16"}},
		{"Routes", d.Routes, []profiles.Route{
			{Domains: []string{"*"}, SmartHosts: []string{"smarthost.isp.test"}},
			{Domains: []string{"outsourced.test"}, SmartHosts: []string{"mx.outsourcer.test"}}}},
		{"Listeners", d.Listeners, []profiles.Listener{
			{Name: "Internet", Port: 25},
			{Name: "Partners", Port: 587, TLS: true},
			{Name: "Clients", Port: 588, TLS: true, Auth: true, RequireAuth: true},
			{Name: "AppRelay", Port: 25, AcceptAnyRecipient: true, RemoteRanges: []string{"127.77.0.0/16"}}}},
		{"timers", []time.Duration{d.RetryInterval, d.DelayWarning, d.Expiry}, []time.Duration{10 * time.Second, time.Minute, 5 * time.Minute}},
		{"CACert", d.CACert, "/ca.pem"},
	} {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("%s = %#v, want %#v", c.name, c.got, c.want)
		}
	}
}
