package inprocess

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/mailflow/mailflow/scenario"
	"github.com/mailflow/mailflow/scenarios"
	"github.com/mailflow/mailflow/trace"
)

// TestTimelineSteps runs steps of a timeline on backoff.yaml (London - Madrid -
// Berlin, bob's mailbox in Berlin) around one message, and checks what a user of
// repro would see: where the message waits, when it was retried, whether it arrived.
func TestTimelineSteps(t *testing.T) {
	down := scenario.Step{Down: "HUB-BER"}
	up := scenario.Step{Up: "HUB-BER"}
	advance := func(d time.Duration) scenario.Step { return scenario.Step{Advance: scenario.Duration(d)} }
	tests := []struct {
		name   string
		before []scenario.Step // before the message is sent
		after  []scenario.Step
		// delivered: bob has the message; heldAt: the server whose queue holds it
		// otherwise; retries: failed attempts at HUB-MAD at distinct times, at least.
		delivered bool
		heldAt    string
		retries   int
	}{
		{"no outage: straight through", nil, nil, true, "", 0},
		{"Berlin down: held in Madrid, retried every 5 minutes", []scenario.Step{down}, []scenario.Step{advance(16 * time.Minute)}, false, "HUB-MAD", 4},
		{"Berlin back: delivered at Madrid's next retry", []scenario.Step{down}, []scenario.Step{advance(16 * time.Minute), up, advance(5 * time.Minute)}, true, "", 4},
		{"Berlin back but no time passes: still held", []scenario.Step{down}, []scenario.Step{up}, false, "HUB-MAD", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := scenarios.Load("backoff.yaml")
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			topo, err := Start(ctx, s, WithBlock(64))
			if err != nil {
				t.Fatal(err)
			}
			defer topo.Stop(context.Background())
			for _, st := range tt.before {
				if err := topo.Apply(ctx, st); err != nil {
					t.Fatalf("%s: %v", st.Action(), err)
				}
			}
			addr, err := topo.Endpoint("EDGE1", "")
			if err != nil {
				t.Fatal(err)
			}
			if err := send(addr, "carol@fabrikam.test", "bob@contoso.test", "Subject: t\r\nMessage-ID: <t@fabrikam.test>\r\n\r\nhi\r\n"); err != nil {
				t.Fatalf("send: %v", err)
			}
			topo.Quiesce(ctx)
			for _, st := range tt.after {
				if err := topo.Apply(ctx, st); err != nil {
					t.Fatalf("%s: %v", st.Action(), err)
				}
			}
			if !tt.delivered {
				// Time does not move here, so what has not arrived by now never will.
				topo.Quiesce(ctx)
			}
			deadline := time.Now().Add(10 * time.Second)
			for tt.delivered && len(topo.Mailbox("bob@contoso.test")) == 0 && time.Now().Before(deadline) {
				topo.Quiesce(ctx)
			}
			events := topo.Trace().Events()
			if got := len(topo.Mailbox("bob@contoso.test")) == 1; got != tt.delivered {
				t.Errorf("delivered = %v, want %v; trace: %+v", got, tt.delivered, events)
			}
			if tt.heldAt != "" && topo.QueueLen(tt.heldAt) != 1 {
				t.Errorf("%s holds %d messages, want 1", tt.heldAt, topo.QueueLen(tt.heldAt))
			}
			times := map[time.Time]bool{}
			for _, e := range trace.OfType(events, trace.Defer, "HUB-MAD") {
				times[e.Time] = true
			}
			if len(times) < tt.retries {
				t.Errorf("HUB-MAD deferred at %d distinct times, want at least %d; trace: %+v", len(times), tt.retries, events)
			}
			if fails := trace.OfType(events, trace.Fail, ""); len(fails) > 0 {
				t.Errorf("bounced while Madrid was reachable (ROUTE-008): %+v", fails)
			}
		})
	}
}

func TestTimelineStepErrors(t *testing.T) {
	s, err := scenarios.Load("edge-mx.yaml")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	topo, err := Start(ctx, s, WithBlock(64))
	if err != nil {
		t.Fatal(err)
	}
	defer topo.Stop(ctx)
	if err := topo.StartServer("EDGE1"); !errors.Is(err, ErrNotDown) {
		t.Errorf("starting a running server: %v, want ErrNotDown", err)
	}
	for _, err := range []error{topo.StartServer("NOPE"), topo.StopServer("NOPE"), topo.SetHostBehaviour("nope.test", scenario.Behaviour{Action: "defer"})} {
		if !errors.Is(err, ErrUnknownEndpoint) {
			t.Errorf("%v, want ErrUnknownEndpoint", err)
		}
	}
	if err := topo.Apply(ctx, scenario.Step{Send: 1}); err == nil {
		t.Error("Apply ran a send step; sending is the caller's")
	}
	// A real clock cannot be stepped.
	real, err := Start(ctx, s, WithBlock(64), WithClock(realClock{}))
	if err != nil {
		t.Fatal(err)
	}
	defer real.Stop(ctx)
	if err := real.Elapse(ctx, time.Minute); !errors.Is(err, ErrRealClock) {
		t.Errorf("Elapse on real time: %v, want ErrRealClock", err)
	}
}

type realClock struct{}

func (realClock) Now() time.Time                         { return time.Now() }
func (realClock) After(d time.Duration) <-chan time.Time { return time.After(d) }
func (realClock) Advance(time.Duration) bool             { return false }
func (realClock) IsFake() bool                           { return false }

// TestSetDNS: a record set is answered, at the topology's stand-in for a loopback
// address; a record removed is not.
func TestSetDNS(t *testing.T) {
	s, err := scenarios.Load("edge-mx.yaml")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	topo, err := Start(ctx, s, WithBlock(64))
	if err != nil {
		t.Fatal(err)
	}
	defer topo.Stop(ctx)
	ask := func(name string, qtype uint16) []dns.RR {
		t.Helper()
		m := new(dns.Msg)
		m.SetQuestion(dns.Fqdn(name), qtype)
		r, err := dns.Exchange(m, topo.DNS().Addr())
		if err != nil {
			t.Fatal(err)
		}
		return r.Answer
	}
	if err := topo.Apply(ctx, scenario.Step{DNS: &scenario.DNSStep{Set: []string{"new.fabrikam.test. A 127.0.0.77"}}}); err != nil {
		t.Fatal(err)
	}
	ans := ask("new.fabrikam.test", dns.TypeA)
	if len(ans) != 1 {
		t.Fatalf("answer %v, want one A record", ans)
	}
	got := ans[0].(*dns.A).A
	if got.Equal(net.ParseIP("127.0.0.77")) || !got.IsLoopback() {
		t.Errorf("A %v: want the topology's stand-in for 127.0.0.77", got)
	}
	if err := topo.Apply(ctx, scenario.Step{DNS: &scenario.DNSStep{Remove: []string{"new.fabrikam.test. A"}}}); err != nil {
		t.Fatal(err)
	}
	if ans := ask("new.fabrikam.test", dns.TypeA); len(ans) != 0 {
		t.Errorf("answer %v after remove, want none", ans)
	}
}

// TestDownAndUpEachRole: an Edge that is down refuses clients and takes them again once
// up; a Mailbox server that is down leaves the message with its Hub, which delivers it
// at a retry once the store is back.
func TestDownAndUpEachRole(t *testing.T) {
	s, err := scenarios.Load("backoff.yaml")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	topo, err := Start(ctx, s, WithBlock(64))
	if err != nil {
		t.Fatal(err)
	}
	defer topo.Stop(context.Background())
	addr, err := topo.Endpoint("EDGE1", "")
	if err != nil {
		t.Fatal(err)
	}
	msg := "Subject: t\r\nMessage-ID: <t@fabrikam.test>\r\n\r\nhi\r\n"
	apply := func(st scenario.Step) {
		t.Helper()
		if err := topo.Apply(ctx, st); err != nil {
			t.Fatalf("%s: %v", st.Action(), err)
		}
	}
	apply(scenario.Step{Down: "EDGE1"})
	if err := send(addr, "carol@fabrikam.test", "bob@contoso.test", msg); err == nil {
		t.Fatal("an Edge that is down took a message")
	}
	apply(scenario.Step{Up: "EDGE1"})
	apply(scenario.Step{Down: "MBX-BER"})
	if err := send(addr, "carol@fabrikam.test", "bob@contoso.test", msg); err != nil {
		t.Fatalf("the Edge, up again, refused: %v", err)
	}
	topo.Quiesce(ctx)
	apply(scenario.Step{Advance: scenario.Duration(5 * time.Minute)})
	if n := topo.QueueLen("HUB-BER"); n != 1 {
		t.Fatalf("HUB-BER holds %d messages while MBX-BER is down, want 1; trace: %+v", n, topo.Trace().Events())
	}
	apply(scenario.Step{Up: "MBX-BER"})
	apply(scenario.Step{Advance: scenario.Duration(5 * time.Minute)})
	deadline := time.Now().Add(10 * time.Second)
	for len(topo.Mailbox("bob@contoso.test")) == 0 && time.Now().Before(deadline) {
		topo.Quiesce(ctx)
	}
	if len(topo.Mailbox("bob@contoso.test")) != 1 {
		t.Fatalf("not delivered once MBX-BER was back; trace: %+v", topo.Trace().Events())
	}
}
