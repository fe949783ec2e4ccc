package senderid_test

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"github.com/emersion/go-smtp"

	"github.com/mailflow/mailflow/fixtures/dnsfake"
	"github.com/mailflow/mailflow/reference/agents"
	"github.com/mailflow/mailflow/reference/agents/senderid"
	"github.com/mailflow/mailflow/reference/resolve"
)

func TestSPF(t *testing.T) {
	ctx := context.Background()
	srv, err := dnsfake.Start(ctx, "127.201.0.59:0", dnsfake.WithRecords(
		`pass.test. TXT "v=spf1 ip4:127.9.0.0/16 -all"`,
		`fail.test. TXT "v=spf1 ip4:192.0.2.1 -all"`,
		`soft.test. TXT "v=spf1 ~all"`,
		`mx.test. TXT "v=spf1 mx -all"`,
		`mx.test. MX 10 mail.mx.test.`,
		`mail.mx.test. A 127.9.0.1`,
		`helo.test. TXT "v=spf1 a -all"`,
		`helo.test. A 127.9.0.1`,
		`none.test. A 127.9.0.1`,
	))
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	srv.SetFailure("broken.test", dnsfake.ModeServfail)
	r := resolve.New(srv.Addr())
	stamp := senderid.New(r, "edge1.contoso.test")
	reject := senderid.New(r, "edge1.contoso.test", senderid.WithReject(true))
	for _, tc := range []struct {
		name       string
		f          *senderid.Filter
		helo, from string
		want       string // MAIL reply, or the Received-SPF field
	}{
		{"pass", reject, "mail.pass.test", "bob@pass.test", "Received-SPF: pass (edge1.contoso.test: domain of pass.test designates 127.9.0.1 as permitted sender) client-ip=127.9.0.1; envelope-from=bob@pass.test; helo=mail.pass.test;"},
		{"fail refused when rejecting", reject, "x.test", "bob@fail.test", "550 5.7.23 SPF validation failed: fail.test does not permit 127.9.0.1 to send its mail"},
		{"fail stamped otherwise", stamp, "x.test", "bob@fail.test", "Received-SPF: fail (edge1.contoso.test: domain of fail.test does not designate 127.9.0.1 as permitted sender)"},
		{"softfail taken", reject, "x.test", "bob@soft.test", "Received-SPF: softfail "},
		{"mx mechanism", reject, "x.test", "bob@mx.test", "Received-SPF: pass "},
		{"no record", reject, "x.test", "bob@none.test", "Received-SPF: none (edge1.contoso.test: none.test publishes no SPF record)"},
		{"SERVFAIL is a temperror, never a refusal", reject, "x.test", "bob@broken.test", "Received-SPF: temperror "},
		{"null sender: the HELO name", reject, "helo.test", "", "Received-SPF: pass (edge1.contoso.test: domain of helo.test designates 127.9.0.1 as permitted sender) client-ip=127.9.0.1; envelope-from=<>; helo=helo.test;"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := agents.New("EDGE1", []agents.Agent{tc.f}).Connect(ctx, agents.Conn{
				Remote: netip.MustParseAddr("127.9.0.1"), Helo: func() string { return tc.helo }})
			if err != nil {
				t.Fatal(err)
			}
			got := ""
			if err := s.Mail(ctx, tc.from); err != nil {
				var se *smtp.SMTPError
				if !errors.As(err, &se) {
					t.Fatal(err)
				}
				e := se.EnhancedCode
				got = fmt.Sprintf("%d %d.%d.%d %s", se.Code, e[0], e[1], e[2], se.Message)
			} else {
				m := &agents.Message{From: tc.from, Rcpts: []string{"alice@contoso.test"}}
				if err := s.EndOfData(ctx, m); err != nil {
					t.Fatal(err)
				}
				got = string(m.Header())
			}
			if !strings.HasPrefix(got, tc.want) {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}
