package live

import (
	"bufio"
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/mailflow/mailflow/scenario"
	"github.com/mailflow/mailflow/scenarios"
)

// edit is a shipped scenario as a spec changes it.
func edit(t *testing.T, name string, change func(s *scenario.Scenario)) *scenario.Scenario {
	t.Helper()
	s, err := scenarios.Load(name)
	if err != nil {
		t.Fatal(err)
	}
	change(s)
	return s
}

func edgeOf(s *scenario.Scenario) *scenario.Server { return s.ServersByRole(scenario.RoleEdge)[0] }

// A world that configures the Edge as the host is configured runs, whatever its
// Internet does and whatever queue timers it gives the Edge (the host keeps its own);
// any other is N/A, its reason naming the configured scenario and what differs.
func TestStartJudgesTheWorld(t *testing.T) {
	tg := configured(t, "edge-smarthost.yaml", "smtp://192.0.2.25:25", "192.0.2.96/28")
	for _, tc := range []struct {
		name  string
		world *scenario.Scenario
		want  []string // parts of the N/A reason; none: the world runs
	}{
		{"the same scenario", edit(t, "edge-smarthost.yaml", func(*scenario.Scenario) {}), nil},
		{"another Internet", edit(t, "edge-smarthost.yaml", func(s *scenario.Scenario) {
			s.Internet.Hosts[0].Behaviour = scenario.Behaviour{Action: "defer", Stage: "rcpt", Code: 451}
			s.Internet.DNS = append(s.Internet.DNS, "mx2.fabrikam.test. A 127.1.0.11")
		}), nil},
		{"other queue timers", edit(t, "edge-smarthost.yaml", func(s *scenario.Scenario) {
			edgeOf(s).RetryInterval = scenario.Duration(time.Minute)
			edgeOf(s).MessageExpiration = scenario.Duration(time.Hour)
		}), nil},
		{"a size limit", mustLoad(t, "limits.yaml"), []string{
			"is configured for scenarios/edge-smarthost.yaml, and this spec's world (scenarios/limits.yaml) needs settings",
			"Settings.MaxMessageSize 20000 (configured: none)"}},
		// A password with no AUTH connector is a mailbox login: the MTA gets a Dovecot
		// and a submission listener (mtaconf), the first settings that differ.
		{"a mailbox user", edit(t, "edge-smarthost.yaml", func(s *scenario.Scenario) { s.Org.Recipients[0].Password = "secret" }), []string{
			"(scenarios/edge-smarthost.yaml as this spec changes it)",
			`Settings.Listeners[0].Name "Submission" (configured: "Internet")`}},
		{"a hop limit", edit(t, "edge-smarthost.yaml", func(s *scenario.Scenario) { edgeOf(s).MaxHopCount = 30 }), []string{
			"Settings.HopLimit 30 (configured: 60)", "Edge.MaxHopCount 30 (configured: 60)"}},
		{"SPF on the Edge", edit(t, "edge-smarthost.yaml", func(s *scenario.Scenario) { edgeOf(s).Agents.SPF.Enabled = true }), []string{
			"Edge.Agents.SPF.Enabled true (configured: none)"}},
		{"another recipient", edit(t, "edge-smarthost.yaml", func(s *scenario.Scenario) {
			s.Org.Recipients[0].Proxies = nil
		}), []string{`Settings.Recipients ["alice@contoso.test"] (configured: ["a.smith@contoso.test" "alice@contoso.test"])`}},
		{"no Edge", noEdge(t), []string{"the spec's world (hubs.yaml) has no single Edge for the live host smtp://192.0.2.25:25 to play"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w, err := prepare(tc.world, tg.pool, tg.addr.Addr(), testTLS)
			if errors.Is(err, ErrNoEdge) {
				_, err = tg.Start(context.Background(), tc.world)
			} else if err != nil {
				t.Fatal(err)
			} else if diffs := differences(tg.configured.check, w.check); len(diffs) > 0 {
				err = &NotApplicableError{Reason: tg.mismatch(tc.world.File, diffs)}
			}
			var na *NotApplicableError
			switch {
			case len(tc.want) == 0 && err != nil:
				t.Errorf("the world does not run: %v", err)
			case len(tc.want) > 0 && !errors.As(err, &na):
				t.Errorf("the world runs (%v), want N/A", err)
			}
			for _, want := range tc.want {
				if na != nil && !strings.Contains(na.Reason, want) {
					t.Errorf("N/A reason does not say %q:\n%s", want, na.Reason)
				}
			}
		})
	}
}

func noEdge(t *testing.T) *scenario.Scenario {
	t.Helper()
	s, err := scenario.Parse("hubs.yaml", []byte(`
org:
  accepted_domains:
    - {domain: contoso.test, type: authoritative, default: true}
  sites:
    - {name: london}
  servers:
    - {name: HUB1, role: hub, site: london}
`))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func mustLoad(t *testing.T, name string) *scenario.Scenario {
	t.Helper()
	s, err := scenarios.Load(name)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// A world configured alike that needs more addresses than the pool has is N/A saying
// how many it needs; one the host's own scenario cannot fit is an error of New's.
func TestWorldShortOfAddresses(t *testing.T) {
	tg := configured(t, "edge-smarthost.yaml", "smtp://192.0.2.25:25", "192.0.2.100,192.0.2.101,192.0.2.102,192.0.2.103,192.0.2.104")
	bigger := edit(t, "edge-smarthost.yaml", func(s *scenario.Scenario) {
		s.Internet.DNS = append(s.Internet.DNS, "mx2.fabrikam.test. A 127.1.0.11")
	})
	_, err := tg.Start(context.Background(), bigger)
	var na *NotApplicableError
	if !errors.As(err, &na) || !strings.Contains(na.Reason, "configures the host alike, but it needs 6 addresses: more addresses than --listen gives (5)") {
		t.Errorf("Start = %v, want N/A for want of an address", err)
	}
	pool, _ := ParseListen("192.0.2.100,192.0.2.101")
	w, err := prepare(mustLoad(t, "edge-smarthost.yaml"), pool, netip.MustParseAddr("192.0.2.25"), testTLS)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.plan.short(); !errors.Is(err, ErrPoolExhausted) {
		t.Errorf("short() = %v, want ErrPoolExhausted", err)
	}
}

// What the MTA's configuration names takes the same addresses in every world: the
// fake DNS first, then the Hub stand-ins, then the client ranges, whatever the
// scenario's DNS records come to.
func TestPlanOrder(t *testing.T) {
	tg := configured(t, "edge-smarthost.yaml", "smtp://192.0.2.25:25", "192.0.2.96/28")
	d := tg.configured.data
	if d.DNS != "192.0.2.97" || d.InternalHost != "192.0.2.98" || len(d.RelayNetworks) != 1 || d.RelayNetworks[0] != "192.0.2.99/32" {
		t.Errorf("DNS %s, internal host %s, relay networks %v; want 192.0.2.97, 192.0.2.98, [192.0.2.99/32]", d.DNS, d.InternalHost, d.RelayNetworks)
	}
	if a := tg.configured.zone.Addr["smarthost.isp.test"]; a != netip.MustParseAddr("192.0.2.100") {
		t.Errorf("smarthost.isp.test at %s, want 192.0.2.100", a)
	}
}

// Start serves the world on the pool (loopback here, as root): the fake DNS names the
// Edge at the host's address and the fake hosts at theirs, the Hub stand-in greets,
// the Edge's endpoints are the host's, and Stop frees every port.
func TestStartServes(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to listen on ports 25 and 53")
	}
	tg := configured(t, "edge-smarthost.yaml", "smtp://127.0.0.1:2", "127.205.0.0/29")
	topo, err := tg.Start(context.Background(), mustLoad(t, "edge-smarthost.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	stopped := false
	defer func() {
		if !stopped {
			_ = topo.Stop(context.Background())
		}
	}()
	for name, want := range map[string]string{"edge1.contoso.test.": "127.0.0.1", "smarthost.isp.test.": "127.205.0.4", "hub1.contoso.test.": "127.205.0.2"} {
		m := new(dns.Msg)
		m.SetQuestion(name, dns.TypeA)
		r, err := dns.Exchange(m, "127.205.0.1:53")
		if err != nil {
			t.Fatalf("DNS %s: %v", name, err)
		}
		if len(r.Answer) != 1 || r.Answer[0].(*dns.A).A.String() != want {
			t.Errorf("DNS %s: %v, want A %s", name, r.Answer, want)
		}
	}
	c, err := net.DialTimeout("tcp", "127.205.0.2:25", 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	c.Close()
	if err != nil || !strings.HasPrefix(line, "220 ") {
		t.Errorf("Hub stand-in greets %q, %v", line, err)
	}
	for conn, want := range map[string]string{"Internet": "127.0.0.1:2", "From Org": "127.0.0.1:2"} {
		if got, err := topo.Endpoint("EDGE1", conn); err != nil || got != want {
			t.Errorf("Endpoint(EDGE1, %s) = %s, %v; want %s", conn, got, err, want)
		}
	}
	if _, err := topo.Endpoint("HUB1", "x"); err == nil {
		t.Error("Endpoint(HUB1): no error; the host plays the Edge only")
	}
	if a, err := topo.ClientIn(netip.MustParsePrefix("127.66.0.0/16")); err != nil || a != netip.MustParseAddr("127.205.0.3") {
		t.Errorf("ClientIn(127.66.0.0/16) = %s, %v; want 127.205.0.3", a, err)
	}
	if err := topo.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	stopped = true
	for _, p := range []string{"udp 127.205.0.1:53", "tcp 127.205.0.1:53", "tcp 127.205.0.2:25", "tcp 127.205.0.4:25"} {
		network, addr, _ := strings.Cut(p, " ")
		if err := probe(network, addr); err != nil {
			t.Errorf("after Stop, %s is still taken: %v", p, err)
		}
	}
}
