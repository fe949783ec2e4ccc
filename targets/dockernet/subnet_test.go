package dockernet

import (
	"net/netip"
	"testing"
)

func TestParseRoutesSeesEveryBridgeSubnet(t *testing.T) {
	s := parseRoutes(`default via 192.0.2.1 dev eth0
172.17.0.0/16 dev docker0 proto kernel scope link src 172.17.0.1 linkdown
172.29.234.0/24 dev br-3f2a proto kernel scope link src 172.29.234.1
local 172.29.235.164 dev br-9c1d table local proto kernel scope host src 172.29.235.164
broadcast 127.255.255.255 dev lo table local proto kernel scope link src 127.0.0.1
`)
	for _, c := range []struct {
		subnet string
		used   bool
	}{
		{"172.29.234.0/24", true},
		{"172.29.235.0/24", true},
		{"172.29.236.0/24", false},
		{"172.17.5.0/24", true},
	} {
		if got := s.overlaps(netip.MustParsePrefix(c.subnet)); got != c.used {
			t.Errorf("%s in use = %v, want %v (routes %v)", c.subnet, got, c.used, s)
		}
	}
}
