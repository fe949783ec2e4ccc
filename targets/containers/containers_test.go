package containers_test

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/mailflow/mailflow/containers/scanner"
	"github.com/mailflow/mailflow/scenario"
	"github.com/mailflow/mailflow/scenarios"
	"github.com/mailflow/mailflow/targets/containers"
	"github.com/mailflow/mailflow/trace"
)

// These tests need a Docker engine and the reference image; `make test-containers`
// builds the image and sets MAILFLOW_DOCKER_TESTS=1.
func requireDocker(t testing.TB) {
	if os.Getenv("MAILFLOW_DOCKER_TESTS") == "" {
		t.Skip("set MAILFLOW_DOCKER_TESTS=1 (make test-containers does) to run Docker tests")
	}
}

func TestStartStop(t *testing.T) {
	requireDocker(t)
	s, err := scenarios.Load("edge-smarthost.yaml")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	t0 := time.Now()
	topo, err := containers.Start(ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("3 containers ready in %v", time.Since(t0))
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			_ = topo.Stop(context.Background())
		}
	})
	if os.Getenv("MAILFLOW_DEBUG") != "" {
		for _, c := range topo.Containers() {
			out, _ := exec.Command("docker", "logs", c.GetContainerID()).CombinedOutput()
			t.Logf("%s:\n%s", c.Server, out)
		}
	}
	addr, err := topo.Endpoint("EDGE1", "")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("EDGE1 at %s", addr)
	c, err := smtp.Dial(addr)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.SendMail("bob@fabrikam.test", []string{"alice@contoso.test"}, strings.NewReader("Message-ID: <startstop@fabrikam.test>\r\nSubject: hi\r\n\r\nhello\r\n")); err != nil {
		t.Fatal(err)
	}
	_ = c.Quit()
	// The Edge records RECEIVE before its 250: the trace, read once right after it,
	// has the event, though the Edge's log is read asynchronously.
	if evs := trace.OfType(topo.Trace().Events(), trace.Receive, "EDGE1"); len(evs) != 1 || evs[0].HeaderID != "startstop@fabrikam.test" {
		t.Errorf("right after the 250, the trace has %d RECEIVE event(s) at EDGE1 (%+v), want the message's", len(evs), evs)
	}
	deadline := time.Now().Add(20 * time.Second)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for len(topo.Mailbox("alice@contoso.test")) == 0 && time.Now().Before(deadline) {
		<-tick.C
	}
	if n := len(topo.Mailbox("alice@contoso.test")); n != 1 {
		t.Errorf("alice's mailbox holds %d messages; trace: %+v", n, topo.Trace().Events())
		for _, c := range topo.Containers() {
			out, _ := exec.Command("docker", "logs", c.GetContainerID()).CombinedOutput()
			t.Logf("%s:\n%s", c.Server, out)
		}
	}
	// Only what this topology made is judged: the engine may be shared.
	var ids []string
	for _, c := range topo.Containers() {
		ids = append(ids, c.GetContainerID())
	}
	stopped = true
	if err := topo.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		if exec.Command("docker", "container", "inspect", id).Run() == nil {
			t.Errorf("container %s left after Stop", id)
		}
	}
	if exec.Command("docker", "network", "inspect", topo.Net.ID).Run() == nil {
		t.Errorf("network %s left after Stop", topo.Net.ID)
	}
}

// TestScanners: a world whose Edge scans for malware and filters content with no
// spamd of its own gets a clamd and a spamd container on its network, labelled as the
// Makefile's leftover check counts them; StopClamd kills clamd and leaves spamd; Stop
// removes both.
func TestScanners(t *testing.T) {
	requireDocker(t)
	s, err := scenarios.Load("edge-filter.yaml")
	if err != nil {
		t.Fatal(err)
	}
	edge, ok := s.Server("EDGE1")
	if !ok {
		t.Fatal("edge-filter.yaml has no EDGE1")
	}
	edge.Agents.Antivirus = scenario.Antivirus{Enabled: true, Action: scenario.AntivirusReject}
	edge.Agents.ContentFilter = scenario.ContentFilter{Enabled: true}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	topo, err := containers.Start(ctx, s) // which stops what it started when it fails
	if err != nil {
		t.Fatal(err)
	}
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			_ = topo.Stop(context.Background())
		}
	})
	out, err := exec.Command("docker", "ps", "-q", "--filter", "label=org.mailflow.server", "--filter", "label="+scanner.Label,
		"--filter", "network="+topo.Net.ID).Output()
	if err != nil {
		t.Fatal(err)
	}
	ids := strings.Fields(string(out))
	if len(ids) != 2 {
		t.Fatalf("%d scanner containers on the world's network, want 2 (clamd, spamd): %v", len(ids), ids)
	}
	if err := topo.StopClamd(); err != nil {
		t.Fatal(err)
	}
	stopped = true
	if err := topo.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		if exec.Command("docker", "container", "inspect", id).Run() == nil {
			t.Errorf("scanner container %s left after Stop", id)
		}
	}
}

// five is a five-server organisation: two Edges, two Hubs, one Mailbox.
const five = `org:
  accepted_domains:
    - {domain: contoso.test, type: authoritative, default: true}
  sites:
    - {name: london}
  servers:
    - {name: EDGE1, role: edge}
    - {name: EDGE2, role: edge}
    - {name: HUB1, role: hub, site: london}
    - {name: HUB2, role: hub, site: london}
    - {name: MBX1, role: mailbox, site: london}
  receive_connectors:
    - {name: Internet, server: EDGE1, bind: ":25", permissions: [anonymous]}
    - {name: Internet, server: EDGE2, bind: ":25", permissions: [anonymous]}
  recipients:
    - {mail: alice@contoso.test, mailbox: MBX1}
`

// BenchmarkStartFive measures a five-container topology from nothing to every server
// ready (images already built), and its teardown. `make bench-containers` runs it.
func BenchmarkStartFive(b *testing.B) {
	requireDocker(b)
	s, err := scenario.Parse("five.yaml", []byte(five))
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	var up, down time.Duration
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		topo, err := containers.Start(ctx, s)
		if err != nil {
			b.Fatal(err)
		}
		up += time.Since(t0)
		if n := len(topo.Containers()); n != 5 {
			b.Fatalf("%d containers, want 5", n)
		}
		t1 := time.Now()
		if err := topo.Stop(ctx); err != nil {
			b.Fatal(err)
		}
		down += time.Since(t1)
	}
	b.ReportMetric(up.Seconds()/float64(b.N), "s-ready/op")
	b.ReportMetric(down.Seconds()/float64(b.N), "s-teardown/op")
}
