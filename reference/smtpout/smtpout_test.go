package smtpout

import (
	"context"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/mailflow/mailflow/fixtures/dnsfake"
	"github.com/mailflow/mailflow/fixtures/internet"
	"github.com/mailflow/mailflow/reference/resolve"
	"github.com/mailflow/mailflow/scenario"
)

const port = 2599

func host(t *testing.T, name, ip string, opts ...internet.Option) *internet.Host {
	t.Helper()
	h, err := internet.Start(context.Background(), name, net.JoinHostPort(ip, strconv.Itoa(port)), opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

func TestSendChoosesAndFallsBack(t *testing.T) {
	ctx := context.Background()
	d, err := dnsfake.Start(ctx, "127.207.0.53:0", dnsfake.WithRecords(
		"fabrikam.test. MX 10 mx1.fabrikam.test.",
		"fabrikam.test. MX 20 mx2.fabrikam.test.",
		"mx1.fabrikam.test. A 127.207.0.11",
		"mx2.fabrikam.test. A 127.207.0.12",
		"implicit.test. A 127.207.0.13",
		"relay.isp.test. A 127.207.0.14",
		"dead.isp.test. A 127.207.0.15",
		"nullmx.test. MX 0 .",
	))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	mx1 := host(t, "mx1.fabrikam.test", "127.207.0.11")
	mx2 := host(t, "mx2.fabrikam.test", "127.207.0.12")
	imp := host(t, "implicit.test", "127.207.0.13")
	relay := host(t, "relay.isp.test", "127.207.0.14")
	c := New(resolve.New(d.Addr()), "edge1.contoso.test", WithPort(port), WithTimeout(5*time.Second))

	tests := []struct {
		name      string
		hop       Hop
		prepare   func()
		want      *internet.Host
		delivered bool
		permanent bool
	}{
		{"lowest MX first", Hop{Domain: "fabrikam.test"}, nil, mx1, true, false},
		{"next MX when the first defers at greeting", Hop{Domain: "fabrikam.test"}, func() {
			mx1.SetBehaviour(scenario.Behaviour{Action: "defer", Stage: "greeting"})
		}, mx2, true, false},
		{"implicit MX", Hop{Domain: "implicit.test"}, nil, imp, true, false},
		{"smart host by name", Hop{Hosts: []string{"relay.isp.test"}, Domain: "fabrikam.test"}, nil, relay, true, false},
		{"bracketed IP literal", Hop{Hosts: []string{"[127.207.0.14]"}, Domain: "fabrikam.test"}, nil, relay, true, false},
		{"second smart host when the first is dead", Hop{Hosts: []string{"dead.isp.test", "relay.isp.test"}, Domain: "fabrikam.test"}, nil, relay, true, false},
		{"5xx at RCPT is permanent", Hop{Hosts: []string{"relay.isp.test"}}, func() {
			relay.SetRecipientBehaviour("b@fabrikam.test", scenario.Behaviour{Action: "reject", Code: 550, Enhanced: "5.1.1"})
		}, nil, false, true},
		{"null MX fails without connecting", Hop{Domain: "nullmx.test"}, nil, nil, false, true},
		{"NXDOMAIN is permanent", Hop{Domain: "nowhere.test"}, nil, nil, false, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.prepare != nil {
				tc.prepare()
			}
			var before int
			if tc.want != nil {
				before = len(tc.want.Messages())
			}
			res := c.Send(ctx, tc.hop, "a@contoso.test", []string{"b@fabrikam.test"}, []byte("Subject: t\r\n\r\nx\r\n"))
			if len(res) != 1 || res[0].Delivered != tc.delivered || res[0].Permanent != tc.permanent {
				t.Fatalf("result %+v; want delivered=%v permanent=%v", res, tc.delivered, tc.permanent)
			}
			if tc.want != nil && len(tc.want.Messages()) != before+1 {
				t.Fatalf("%s did not receive the message", tc.want.Name())
			}
		})
	}
	for _, q := range d.Queries() {
		if q.Name == "127.207.0.14." {
			t.Errorf("an IP literal was looked up: %+v", q)
		}
	}
}
