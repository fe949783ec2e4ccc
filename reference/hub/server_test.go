package hub_test

import (
	"context"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/mailflow/mailflow/clock"
	"github.com/mailflow/mailflow/fixtures/internet"
	"github.com/mailflow/mailflow/fixtures/ldapfake"
	"github.com/mailflow/mailflow/fixtures/testca"
	"github.com/mailflow/mailflow/reference/directory"
	"github.com/mailflow/mailflow/reference/hub"
	"github.com/mailflow/mailflow/reference/smtpout"
	"github.com/mailflow/mailflow/scenario"
	"github.com/mailflow/mailflow/trace"
)

const twoSites = `org:
  accepted_domains:
    - {domain: contoso.test, type: authoritative, default: true}
  sites:
    - {name: lon}
    - {name: ber}
  site_links:
    - {sites: [lon, ber], cost: 10}
  servers:
    - {name: HUB-LON, role: hub, site: lon}
    - {name: HUB-BER, role: hub, site: ber}
    - {name: MBX-LON, role: mailbox, site: lon}
  recipients:
    - {mail: alice@contoso.test, proxies: [a.smith@contoso.test], mailbox: MBX-LON}
    - {mail: bob@contoso.test, mailbox: MBX-LON}
    - {mail: team@contoso.test, type: group, members: [alice@contoso.test, inner@contoso.test]}
    - {mail: inner@contoso.test, type: group, members: [alice@contoso.test, bob@contoso.test]}
`

// world is one Hub in London with sinks standing in for its mailbox server and for the
// Berlin Hub, all on 127.0.0.1 with their own ports.
type world struct {
	hub   *hub.Server
	mbx   *internet.Host
	ber   *internet.Host
	trace *trace.Log
	clock *clock.Fake
	ldap  *ldapfake.Server
}

func start(t *testing.T) *world {
	t.Helper()
	ctx := context.Background()
	s, err := scenario.Parse("two-sites.yaml", []byte(twoSites))
	if err != nil {
		t.Fatal(err)
	}
	ca := testca.Shared()
	sink := func(name string) *internet.Host {
		tc, err := ca.ServerConfig(name, "127.0.0.1")
		if err != nil {
			t.Fatal(err)
		}
		h, err := internet.Start(ctx, name, "127.0.0.1:0", internet.WithTLS(tc))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { h.Close() })
		return h
	}
	w := &world{mbx: sink("MBX-LON"), ber: sink("HUB-BER"), trace: trace.NewLog(nil), clock: clock.NewFake(time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC))}
	w.ldap, err = ldapfake.Start(ctx, "127.0.0.1:0", s.Org.Recipients)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.ldap.Close() })
	dir := directory.New("ldap://"+w.ldap.Addr(), w.ldap.BaseDN())
	t.Cleanup(func() { dir.Close() })
	srv, _ := s.Server("HUB-LON")
	stc, err := ca.ServerConfig("hub-lon.contoso.test", "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	w.hub, err = hub.Start(ctx, hub.Config{
		Scenario: s, Server: srv, Addr: netip.MustParseAddr("127.0.0.1"), PortMap: func(int) int { return 0 },
		Peers:     map[string]string{"MBX-LON": w.mbx.Addr(), "HUB-BER": w.ber.Addr()},
		OrgRanges: []string{"127.0.0.0/8"}, SpoolDir: t.TempDir(), Directory: dir,
		Trace: w.trace, Clock: w.clock, ServerTLS: stc, ClientTLS: ca.ClientConfig(""),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.hub.Close() })
	return w
}

// submit hands a message to the Hub as an organisation peer would: over STARTTLS.
func (w *world) submit(t *testing.T, rcpts ...string) {
	t.Helper()
	c := smtpout.New(nil, "edge1.contoso.test", smtpout.WithTLSConfig(testca.Shared().ClientConfig("")))
	addr := w.hub.Listeners()[0].Addr
	_, port, _ := net.SplitHostPort(addr)
	res := c.Send(context.Background(), smtpout.Hop{Hosts: []string{"127.0.0.1:" + port}, RequireTLS: true}, "carol@fabrikam.test", rcpts,
		[]byte("From: carol@fabrikam.test\r\nSubject: hi\r\nMessage-ID: <hub@fabrikam.test>\r\n\r\nhello\r\n"), nil)
	for _, r := range res {
		if !r.Delivered {
			t.Fatalf("submission of %s: %s", r.Rcpt, r.Reply)
		}
	}
}

// waitFor polls cond, as Gomega's Eventually does, for up to 10 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(10 * time.Second)
	for !cond() {
		select {
		case <-tick.C:
		case <-deadline:
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

func rcptsOf(ms []internet.Message) []string {
	var out []string
	for _, m := range ms {
		out = append(out, m.RcptTo...)
	}
	return out
}

func TestHubDeliversLocallyAndExpandsGroups(t *testing.T) {
	w := start(t)
	// a.smith is a secondary proxy of alice (CAT-001); team holds alice twice over
	// (directly and through inner) and bob (CAT-003): alice gets one copy.
	w.submit(t, "a.smith@contoso.test", "team@contoso.test")
	waitFor(t, "delivery to MBX-LON", func() bool { return len(rcptsOf(w.mbx.Messages())) >= 2 })
	got := strings.Join(rcptsOf(w.mbx.Messages()), " ")
	if got != "alice@contoso.test bob@contoso.test" {
		t.Errorf("MBX-LON got RCPTs %q, want alice once and bob", got)
	}
	for _, m := range w.mbx.Messages() {
		if !m.TLS {
			t.Errorf("Hub to Mailbox in the clear (ROUTE-017)")
		}
	}
	if n := len(trace.OfType(w.trace.Events(), trace.Categorize, "HUB-LON")); n != 1 {
		t.Errorf("%d CATEGORIZE events, want 1", n)
	}
	if len(w.ber.Messages()) != 0 {
		t.Errorf("the Berlin Hub saw the London mail")
	}
}

func TestHubFollowsAHomeMDBMoveAfterTheCache(t *testing.T) {
	w := start(t)
	w.submit(t, "bob@contoso.test")
	waitFor(t, "bob in London", func() bool { return len(w.mbx.Messages()) == 1 })
	// CAT-002: bob's mailbox moves to a server in Berlin (its database's server there).
	w.ldap.SetHomeServer("bob@contoso.test", "HUB-BER")
	w.clock.Advance(6 * time.Minute)
	w.submit(t, "bob@contoso.test")
	waitFor(t, "bob routed to Berlin", func() bool { return len(w.ber.Messages()) == 1 })
}

func TestHubNDRsAnUnknownRecipient(t *testing.T) {
	w := start(t)
	w.submit(t, "nobody@contoso.test")
	failFor := func() []trace.Event {
		return trace.Filter(w.trace.Events(), func(e trace.Event) bool {
			return e.Type == trace.Fail && len(e.Recipients) == 1 && e.Recipients[0] == "nobody@contoso.test"
		})
	}
	waitFor(t, "a FAIL event for nobody", func() bool { return len(failFor()) == 1 })
	if f := failFor()[0]; !strings.Contains(f.Reply, "5.1.1") {
		t.Errorf("FAIL reply %q, want 5.1.1", f.Reply)
	}
	waitFor(t, "a DSN event", func() bool { return len(trace.OfType(w.trace.Events(), trace.DSN, "HUB-LON")) == 1 })
}
