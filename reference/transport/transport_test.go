package transport_test

import (
	"context"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mailflow/mailflow/fixtures/dnsfake"
	"github.com/mailflow/mailflow/fixtures/internet"
	"github.com/mailflow/mailflow/reference/dsn"
	"github.com/mailflow/mailflow/reference/resolve"
	"github.com/mailflow/mailflow/reference/smtpout"
	"github.com/mailflow/mailflow/reference/transport"
	"github.com/mailflow/mailflow/scenario"
	"github.com/mailflow/mailflow/trace"
)

// edgeOrg is an organisation whose one Edge is EDGE1, up to its servers.
const edgeOrg = `org:
  accepted_domains:
    - {domain: contoso.test, type: authoritative, default: true}
  sites:
    - {name: london}
  servers:
    - {name: EDGE1, role: edge}
`

const org = edgeOrg + `    - {name: HUB1, role: hub, site: london}
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
		e, err := transport.Start(context.Background(), transport.Config{
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

// An Edge that is the only MX of a domain it does not accept fails the recipient with
// 5.4.6 and a DSN to the sender, and never sends the message to itself (TRACE-005).
func TestMXLoopFailsTheRecipient(t *testing.T) {
	const loopOrg = edgeOrg + `  receive_connectors:
    - {name: Relay, server: EDGE1, bind: ":25", permissions: [anonymous], accept_any_recipient: true}
  send_connectors:
    - {name: To Internet, address_spaces: ["*"], source: [EDGE1], cost: 1}
`
	const port = 2598
	ctx := context.Background()
	s, err := scenario.Parse("loop.yaml", []byte(loopOrg))
	if err != nil {
		t.Fatal(err)
	}
	d, err := dnsfake.Start(ctx, "127.207.2.53:0", dnsfake.WithRecords(
		"loop.test. MX 10 edge1.contoso.test.",
		"edge1.contoso.test. A 127.207.2.20",
		"fabrikam.test. MX 10 mx.fabrikam.test.",
		"mx.fabrikam.test. A 127.207.2.11",
	))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	mx, err := internet.Start(ctx, "mx.fabrikam.test", "127.207.2.11:"+strconv.Itoa(port))
	if err != nil {
		t.Fatal(err)
	}
	defer mx.Close()
	srv, _ := s.Server("EDGE1")
	log := trace.NewLog(nil)
	e, err := transport.Start(ctx, transport.Config{
		Scenario: s, Server: srv, Addr: netip.MustParseAddr("127.207.2.20"),
		PortMap: func(int) int { return port }, OutPort: port, SpoolDir: t.TempDir(),
		Resolver: resolve.New(d.Addr()), Trace: log,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()

	c := smtpout.New(nil, "client.fabrikam.test", smtpout.WithTimeout(5*time.Second))
	res := c.Send(ctx, smtpout.Hop{Hosts: []string{"127.207.2.20:" + strconv.Itoa(port)}}, "bob@fabrikam.test",
		[]string{"x@loop.test"}, []byte("Message-ID: <loop@fabrikam.test>\r\nSubject: loop\r\n\r\nx\r\n"), nil)
	if len(res) != 1 || !res[0].Delivered {
		t.Fatalf("submission: %+v", res)
	}
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	msgs, err := mx.WaitForMessages(wctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	p, err := dsn.Parse(msgs[0].Data)
	if err != nil {
		t.Fatal(err)
	}
	if msgs[0].MailFrom != "" || len(p.Recipients) != 1 || dsn.Field(p.Recipients[0], "Status") != "5.4.6" ||
		dsn.Field(p.Recipients[0], "Action") != "failed" {
		t.Fatalf("want a failed DSN with Status 5.4.6 from <>; got from <%s>: %+v", msgs[0].MailFrom, p.Recipients)
	}
	if !strings.Contains(p.HumanText, "loops back to myself") {
		t.Errorf("the DSN does not say why: %q", p.HumanText)
	}
	if n := len(trace.OfType(log.Events(), trace.Receive, "EDGE1")); n != 1 {
		t.Errorf("the Edge received %d messages; want only the submission (no copy sent to itself)", n)
	}
}
