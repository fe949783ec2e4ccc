package connfilter_test

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/mailflow/mailflow/fixtures/dnsfake"
	"github.com/mailflow/mailflow/reference/agents"
	"github.com/mailflow/mailflow/reference/agents/connfilter"
	"github.com/mailflow/mailflow/reference/resolve"
	"github.com/mailflow/mailflow/trace"
)

var (
	listed     = netip.MustParseAddr("127.9.0.2")
	listed4    = netip.MustParseAddr("127.9.0.4")
	listed6    = netip.MustParseAddr("2001:db8::9")
	clean      = netip.MustParseAddr("127.9.0.3")
	broken     = netip.MustParseAddr("127.9.0.5")
	silent     = netip.MustParseAddr("127.9.0.6")
	allowed    = netip.MustParseAddr("127.8.0.1")
	ipBlocked  = netip.MustParseAddr("127.7.0.1")
	blockRange = netip.MustParsePrefix("127.7.0.0/16")
)

func world(t *testing.T) *resolve.Resolver {
	t.Helper()
	ctx := context.Background()
	srv, err := dnsfake.Start(ctx, "127.201.0.58:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	for _, e := range []dnsfake.DNSBLEntry{
		{IP: listed, Reason: "see http://bl.test/?127.9.0.2"},
		{IP: listed4, Code: netip.MustParseAddr("127.0.0.4")},
		{IP: listed6, Reason: "v6 listed"},
		{IP: allowed},
		{IP: ipBlocked},
	} {
		if err := srv.List("bl.test", e); err != nil {
			t.Fatal(err)
		}
	}
	srv.SetFailure(resolve.ReverseName(broken, "bl.test"), dnsfake.ModeServfail)
	srv.SetFailure(resolve.ReverseName(silent, "bl.test"), dnsfake.ModeTimeout)
	return resolve.New(srv.Addr(), resolve.WithTimeout(50*time.Millisecond), resolve.WithAttempts(1))
}

// rcpt connects from ip and gives the RCPT reply for each recipient ("250" when the
// agent passes it), and the trace.
func rcpt(t *testing.T, f *connfilter.Filter, ip netip.Addr, rcpts ...string) ([]string, []trace.Event) {
	t.Helper()
	log := trace.NewLog(nil)
	p := agents.New("EDGE1", []agents.Agent{f}, agents.WithTrace(log))
	ctx := context.Background()
	s, err := p.Connect(ctx, agents.Conn{Remote: ip, Connector: "Internet"})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, r := range rcpts {
		err := s.Rcpt(ctx, r)
		var se *smtp.SMTPError
		switch {
		case err == nil:
			out = append(out, "250")
		case errors.As(err, &se):
			e := se.EnhancedCode
			out = append(out, fmt.Sprintf("%d %d.%d.%d %s", se.Code, e[0], e[1], e[2], se.Message))
		default:
			t.Fatal(err)
		}
	}
	return out, log.Events()
}

func TestConnectionFilter(t *testing.T) {
	r := world(t)
	any := connfilter.Provider{Name: "BL", Zone: "bl.test"}
	only4 := connfilter.Provider{Name: "BL4", Zone: "bl.test", Match: []netip.Addr{netip.MustParseAddr("127.0.0.4")}}
	bit4 := connfilter.Provider{Name: "BITS", Zone: "bl.test", Bitmask: netip.MustParseAddr("127.0.0.4")}
	custom := connfilter.Provider{Name: "BL", Zone: "bl.test", Response: "Go away"}
	base := []connfilter.Option{connfilter.WithBypassedRecipients("postmaster", "abuse@contoso.test"),
		connfilter.WithAllowList(netip.PrefixFrom(allowed, 32)), connfilter.WithBlockList(blockRange)}
	tests := []struct {
		name      string
		provider  connfilter.Provider
		ip        netip.Addr
		rcpts     []string
		want      []string
		eventType trace.Type // of the first event; "" for none
	}{
		{"listed: refused at RCPT with the TXT reason, postmaster and bypassed recipients taken", any, listed,
			[]string{"alice@contoso.test", "postmaster@contoso.test", "Postmaster", "abuse@contoso.test", "abuse@other.test"},
			[]string{"550 5.7.1 Service unavailable; Client host [127.9.0.2] blocked using BL; see http://bl.test/?127.9.0.2", "250", "250", "250",
				"550 5.7.1 Service unavailable; Client host [127.9.0.2] blocked using BL; see http://bl.test/?127.9.0.2"}, trace.Fail},
		{"listed over IPv6 (nibble name), reason given", any, listed6, []string{"alice@contoso.test"},
			[]string{"550 5.7.1 Service unavailable; Client host [2001:db8::9] blocked using BL; v6 listed"}, trace.Fail},
		{"IPv4-mapped address is the IPv4 client", any, netip.AddrFrom16(listed.As16()), []string{"alice@contoso.test"},
			[]string{"550 5.7.1 Service unavailable; Client host [127.9.0.2] blocked using BL; see http://bl.test/?127.9.0.2"}, trace.Fail},
		{"listed with 127.0.0.4, no TXT", any, listed4, []string{"alice@contoso.test"},
			[]string{"550 5.7.1 Service unavailable; Client host [127.9.0.4] blocked using BL"}, trace.Fail},
		{"custom rejection response replaces the reason", custom, listed, []string{"alice@contoso.test"},
			[]string{"550 5.7.1 Service unavailable; Client host [127.9.0.2] blocked using BL; Go away"}, trace.Fail},
		{"NXDOMAIN is not listed", any, clean, []string{"alice@contoso.test"}, []string{"250"}, ""},
		{"only 127.0.0.4 matches: 127.0.0.2 passes", only4, listed, []string{"alice@contoso.test"}, []string{"250"}, ""},
		{"only 127.0.0.4 matches: 127.0.0.4 refused", only4, listed4, []string{"alice@contoso.test"},
			[]string{"550 5.7.1 Service unavailable; Client host [127.9.0.4] blocked using BL4"}, trace.Fail},
		{"bitmask 4: 127.0.0.2 passes", bit4, listed, []string{"alice@contoso.test"}, []string{"250"}, ""},
		{"bitmask 4: 127.0.0.4 refused", bit4, listed4, []string{"alice@contoso.test"},
			[]string{"550 5.7.1 Service unavailable; Client host [127.9.0.4] blocked using BITS"}, trace.Fail},
		{"SERVFAIL: not listed, noted", any, broken, []string{"alice@contoso.test"}, []string{"250"}, trace.AgentInfo},
		{"timeout: not listed, noted", any, silent, []string{"alice@contoso.test"}, []string{"250"}, trace.AgentInfo},
		{"IP Allow list bypasses a listing", any, allowed, []string{"alice@contoso.test"}, []string{"250"}, trace.AgentInfo},
		{"IP Block list refuses, postmaster still taken", any, ipBlocked, []string{"alice@contoso.test", "postmaster@contoso.test"},
			[]string{"550 5.7.1 External client with IP address 127.7.0.1 does not have permissions to submit to this server", "250"}, trace.Fail},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := connfilter.New(r, append(base, connfilter.WithProviders(tc.provider), connfilter.WithLookupTimeout(200*time.Millisecond))...)
			got, ev := rcpt(t, f, tc.ip, tc.rcpts...)
			if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Errorf("replies\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
			switch {
			case tc.eventType == "" && len(ev) != 0:
				t.Errorf("events %+v, want none", ev)
			case tc.eventType != "" && (len(ev) == 0 || ev[0].Type != tc.eventType || ev[0].Agent != connfilter.Name):
				t.Errorf("events %+v, want first %s by %s", ev, tc.eventType, connfilter.Name)
			}
		})
	}
}
