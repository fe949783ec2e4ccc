package smtpout

import (
	"context"
	"crypto/tls"
	"net"
	"net/netip"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mailflow/mailflow/fixtures/dnsfake"
	"github.com/mailflow/mailflow/fixtures/internet"
	"github.com/mailflow/mailflow/fixtures/testca"
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

// dns serves records at ip for the test and returns a resolver asking it.
func dns(t *testing.T, ip string, records ...string) *resolve.Resolver {
	t.Helper()
	d, err := dnsfake.Start(context.Background(), ip+":0", dnsfake.WithRecords(records...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return resolve.New(d.Addr())
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
			res := c.Send(ctx, tc.hop, "a@contoso.test", []string{"b@fabrikam.test"}, []byte("Subject: t\r\n\r\nx\r\n"), nil)
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

// A relay that finds itself among a domain's MXs uses only the more preferred ones, and
// fails the recipient with 5.4.6 when none is left, without connecting to itself
// (RFC 5321 §5.1, TRACE-005).
func TestMXLoopsBackToMyself(t *testing.T) {
	ctx := context.Background()
	r := dns(t, "127.207.1.53",
		"loop.test. MX 10 edge1.contoso.test.",
		"edge1.contoso.test. A 127.207.1.20",
		"byaddr.test. MX 10 alias.contoso.test.",
		"alias.contoso.test. A 127.207.1.20",
		"samepref.test. MX 10 mx1.fabrikam.test.",
		"samepref.test. MX 10 edge1.contoso.test.",
		"backup.test. MX 10 mx1.fabrikam.test.",
		"backup.test. MX 20 edge1.contoso.test.",
		"backupdown.test. MX 10 dead.isp.test.",
		"backupdown.test. MX 20 alias.contoso.test.",
		"backupdown.test. MX 30 mx2.fabrikam.test.",
		"self.test. A 127.207.1.20",
		"mx1.fabrikam.test. A 127.207.1.11",
		"mx2.fabrikam.test. A 127.207.1.12",
		"dead.isp.test. A 127.207.1.15",
	)
	self := host(t, "edge1.contoso.test", "127.207.1.20") // where the sender itself listens
	mx1 := host(t, "mx1.fabrikam.test", "127.207.1.11")
	mx2 := host(t, "mx2.fabrikam.test", "127.207.1.12")
	c := New(r, "edge1.contoso.test", WithPort(port), WithTimeout(5*time.Second),
		WithSelf(nil, []netip.Addr{netip.MustParseAddr("127.207.1.20")}))

	tests := []struct {
		name      string
		domain    string
		want      *internet.Host
		permanent bool
	}{
		{"the only MX is me by name", "loop.test", nil, true},
		{"the only MX is me by address", "byaddr.test", nil, true},
		{"an MX of my preference goes with me", "samepref.test", nil, true},
		{"implicit MX at my address", "self.test", nil, true},
		{"I am a backup: the better MX gets it", "backup.test", mx1, false},
		{"I am a backup and the better MX is down: retry, never me or worse", "backupdown.test", nil, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var before int
			if tc.want != nil {
				before = len(tc.want.Messages())
			}
			res := c.Send(ctx, Hop{Domain: tc.domain}, "a@contoso.test", []string{"b@" + tc.domain}, []byte("Subject: t\r\n\r\nx\r\n"), nil)
			if len(res) != 1 || res[0].Delivered != (tc.want != nil) || res[0].Permanent != tc.permanent {
				t.Fatalf("result %+v; want delivered=%v permanent=%v", res, tc.want != nil, tc.permanent)
			}
			if tc.permanent {
				want := "554 5.4.6 mail for " + tc.domain + " loops back to myself"
				if res[0].Reply != want || res[0].RemoteMTA != "" {
					t.Errorf("reply %q from %q; want %q from nobody", res[0].Reply, res[0].RemoteMTA, want)
				}
			}
			if tc.want != nil && len(tc.want.Messages()) != before+1 {
				t.Fatalf("%s did not receive the message", tc.want.Name())
			}
		})
	}
	if n := self.Connections(); n != 0 {
		t.Errorf("the sender connected to itself %d times", n)
	}
	if n := mx2.Connections(); n != 0 {
		t.Errorf("an MX less preferred than the sender itself was tried %d times", n)
	}
}

// A next hop that takes two recipients per transaction gets the rest in further
// transactions of the same session, none failed (QUEUE-008).
func TestSendSplitsWhenTooManyRecipients(t *testing.T) {
	h := host(t, "mx1.many.test", "127.207.1.11", internet.WithMaxRecipients(2))
	c := New(dns(t, "127.207.1.53"), "edge1.contoso.test", WithPort(port), WithTimeout(5*time.Second))
	rcpts := []string{"a@many.test", "b@many.test", "c@many.test", "d@many.test", "e@many.test"}
	res := c.Send(context.Background(), Hop{Hosts: []string{"[127.207.1.11]"}}, "x@contoso.test", rcpts, []byte("Subject: t\r\n\r\nhi\r\n"), nil)
	for _, r := range res {
		if !r.Delivered {
			t.Errorf("%s: %s, want delivered", r.Rcpt, r.Reply)
		}
	}
	if n := len(h.Sessions()); n != 1 {
		t.Errorf("%d sessions, want one", n)
	}
	var got []int
	for _, m := range h.Messages() {
		got = append(got, len(m.RcptTo))
	}
	if len(got) != 3 || got[0] != 2 || got[1] != 2 || got[2] != 1 {
		t.Errorf("transactions took %v recipients, want [2 2 1]", got)
	}
}

// TestTLSSessionsResume: the second STARTTLS session to a next hop resumes the first
// one's TLS session, and both deliver.
func TestTLSSessionsResume(t *testing.T) {
	ca := testca.Shared()
	srv, err := ca.ServerConfig("mx1.tls.test")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var resumed []bool
	srv.VerifyConnection = func(cs tls.ConnectionState) error {
		mu.Lock()
		defer mu.Unlock()
		resumed = append(resumed, cs.DidResume)
		return nil
	}
	h := host(t, "mx1.tls.test", "127.207.1.21", internet.WithTLS(srv))
	// Without reuse: a kept session would carry the second message without a handshake.
	c := New(dns(t, "127.207.1.53"), "edge1.contoso.test", WithPort(port), WithTimeout(5*time.Second),
		WithTLSConfig(ca.ClientConfig("mx1.tls.test")), WithoutReuse())
	for i := 0; i < 2; i++ {
		res := c.Send(context.Background(), Hop{Hosts: []string{"[127.207.1.21]"}, RequireTLS: true}, "x@contoso.test",
			[]string{"a@tls.test"}, []byte("Subject: t\r\n\r\nhi\r\n"), nil)
		if len(res) != 1 || !res[0].Delivered {
			t.Fatalf("message %d: %+v, want delivered", i, res)
		}
	}
	if n := len(h.Messages()); n != 2 {
		t.Fatalf("%d messages at the next hop, want 2", n)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(resumed) != 2 || resumed[0] || !resumed[1] {
		t.Errorf("handshakes resumed: %v, want [false true]", resumed)
	}
}

// A seed repeats the equal-preference choices (DNS-003) draw for draw; without one they
// come from the runtime's generator.
func TestSeedRepeatsChoices(t *testing.T) {
	draws := func(c *Client) []int {
		var out []int
		for i := 0; i < 64; i++ {
			group := []int{0, 1, 2}
			c.shuffle(len(group), func(a, b int) { group[a], group[b] = group[b], group[a] })
			out = append(out, group[0])
		}
		return out
	}
	a, b := draws(New(nil, "a.test", WithSeed(7))), draws(New(nil, "b.test", WithSeed(7)))
	if !slices.Equal(a, b) {
		t.Fatalf("seed 7 drew %v, then %v", a, b)
	}
	if c := draws(New(nil, "c.test", WithSeed(8))); slices.Equal(a, c) {
		t.Fatalf("seeds 7 and 8 drew the same %v", a)
	}
	if New(nil, "d.test", WithSeed(0)).rnd != nil {
		t.Fatal("seed 0 made a seeded generator")
	}
	seen := map[int]int{}
	for _, v := range a {
		seen[v]++
	}
	if len(seen) != 3 {
		t.Fatalf("64 draws of a seeded shuffle of 3 chose first only %v", seen)
	}
}

// TestSessionReuse: messages to a smart host share a session, up to ReuseLimit of them;
// messages to an MX each get their own (DNS-003); a kept session the next hop has closed
// is replaced without failing the message; Close ends kept sessions.
func TestSessionReuse(t *testing.T) {
	smart := host(t, "smart.reuse.test", "127.207.1.31")
	mx := host(t, "mx1.reuse.test", "127.207.1.32")
	r := dns(t, "127.207.1.54", "reuse.test. MX 10 mx1.reuse.test.", "mx1.reuse.test. A 127.207.1.32")
	c := New(r, "edge1.contoso.test", WithPort(port), WithTimeout(5*time.Second))
	send := func(h Hop, n int) {
		t.Helper()
		for i := 0; i < n; i++ {
			res := c.Send(context.Background(), h, "x@contoso.test", []string{"a@reuse.test"}, []byte("Subject: t\r\n\r\nhi\r\n"), nil)
			if len(res) != 1 || !res[0].Delivered {
				t.Fatalf("message %d: %+v, want delivered", i, res)
			}
		}
	}
	viaSmart := Hop{Hosts: []string{"[127.207.1.31]"}}
	send(viaSmart, ReuseLimit+1)
	if n, m := smart.Connections(), len(smart.Messages()); n != 2 || m != ReuseLimit+1 {
		t.Errorf("smart host: %d messages over %d connections, want %d over 2", m, n, ReuseLimit+1)
	}
	// A transaction whose every recipient is refused leaves MAIL open at the next hop:
	// the kept session is reset before the next message.
	smart.SetRecipientBehaviour("refused@reuse.test", scenario.Behaviour{Action: "reject", Stage: "rcpt", Code: 550, Enhanced: "5.1.1"})
	res := c.Send(context.Background(), viaSmart, "x@contoso.test", []string{"refused@reuse.test"}, []byte("Subject: t\r\n\r\nhi\r\n"), nil)
	if len(res) != 1 || res[0].Delivered || !res[0].Permanent {
		t.Fatalf("refused recipient: %+v", res)
	}
	send(viaSmart, 1)
	if n, m := smart.Connections(), len(smart.Messages()); n != 2 || m != ReuseLimit+2 {
		t.Errorf("smart host: %d messages over %d connections, want %d over 2", m, n, ReuseLimit+2)
	}
	// The reference's own server refuses MAIL inside a transaction (SEC-007); this
	// host does not, so the RSET is looked for on the wire.
	for _, ss := range smart.Sessions() {
		tr := ss.Transcript
		if i := strings.Index(tr, "C: RCPT TO:<refused@reuse.test>"); i >= 0 {
			rest := tr[i:]
			if r, m := strings.Index(rest, "C: RSET"), strings.Index(rest, "C: MAIL"); r < 0 || m < r {
				t.Errorf("no RSET between the refused transaction and the next MAIL:\n%s", rest)
			}
		}
	}
	send(Hop{Domain: "reuse.test"}, 3)
	if n := mx.Connections(); n != 3 {
		t.Errorf("MX: %d connections for 3 messages, want one each", n)
	}

	// The next hop goes away and comes back at the same address: the kept session no
	// longer answers, and the message goes over a new one.
	smart.Close()
	again := host(t, "smart.reuse.test", "127.207.1.31")
	send(viaSmart, 1)
	if n, m := again.Connections(), len(again.Messages()); n != 1 || m != 1 {
		t.Errorf("after the restart: %d messages over %d connections, want 1 over 1", m, n)
	}

	c.Close()
	deadline := time.Now().Add(5 * time.Second)
	for ss := again.Sessions(); len(ss) == 0 || !strings.Contains(ss[0].Transcript, "C: QUIT"); ss = again.Sessions() {
		if time.Now().After(deadline) {
			t.Fatalf("the kept session did not end with QUIT after Close: %+v", again.Sessions())
		}
		runtime.Gosched()
	}
}

// TestPipelining: to a next hop that offers PIPELINING, MAIL, the RCPTs and DATA go
// before any of their replies is read (RFC 2920), and a refused recipient fails alone;
// to one that does not, each command waits for its reply.
func TestPipelining(t *testing.T) {
	tests := []struct {
		name string
		opts []internet.Option
		want string // in the next hop's transcript
	}{
		{"offered", nil, "C: MAIL FROM:<x@contoso.test> BODY=8BITMIME\r\nC: RCPT TO:<a@pipe.test>\r\nC: RCPT TO:<refused@pipe.test>\r\nC: RCPT TO:<b@pipe.test>\r\nC: DATA\r\nS: 250"},
		{"not offered", []internet.Option{internet.WithoutExtension("PIPELINING")}, "C: MAIL FROM:<x@contoso.test> BODY=8BITMIME\r\nS: 250"},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ip := "127.207.2." + strconv.Itoa(10+i)
			h := host(t, "smart.pipe.test", ip, tc.opts...)
			h.SetRecipientBehaviour("refused@pipe.test", scenario.Behaviour{Action: "reject", Stage: "rcpt", Code: 550, Enhanced: "5.1.1"})
			c := New(dns(t, "127.207.2.53"), "edge1.contoso.test", WithPort(port), WithTimeout(5*time.Second))
			defer c.Close()
			rcpts := []string{"a@pipe.test", "refused@pipe.test", "b@pipe.test"}
			res := c.Send(context.Background(), Hop{Hosts: []string{"[" + ip + "]"}}, "x@contoso.test", rcpts, []byte("Subject: t\r\n\r\nhi\r\n"), nil)
			for _, r := range res {
				if want := r.Rcpt != "refused@pipe.test"; r.Delivered != want {
					t.Errorf("%s: delivered %v (%s), want %v", r.Rcpt, r.Delivered, r.Reply, want)
				}
				if r.Rcpt == "refused@pipe.test" && (!r.Permanent || !strings.HasPrefix(r.Reply, "550 5.1.1")) {
					t.Errorf("refused recipient: %+v", r)
				}
			}
			if ms := h.Messages(); len(ms) != 1 || !slices.Equal(ms[0].RcptTo, []string{"a@pipe.test", "b@pipe.test"}) {
				t.Errorf("next hop took %+v, want one message for a and b", ms)
			}
			if ss := h.Sessions(); len(ss) != 1 || !strings.Contains(ss[0].Transcript, tc.want) {
				t.Errorf("transcript lacks %q:\n%+v", tc.want, ss)
			}
		})
	}
}
