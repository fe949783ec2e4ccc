package shadow

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mailflow/mailflow/clock"
	"github.com/mailflow/mailflow/reference/queue"
	"github.com/mailflow/mailflow/reference/smtpd"
	"github.com/mailflow/mailflow/scenario"
	"github.com/mailflow/mailflow/trace"
)

func TestParseAnswer(t *testing.T) {
	for _, tc := range []struct {
		name, text string
		inc        string
		done       []string
		wantErr    bool
	}{
		{"incarnation only", "INCARNATION abc\n2.0.0 0 of 0 finished", "abc", nil, false},
		{"done ids", "INCARNATION abc\nDONE p1\nDONE p2\n2.0.0 2 of 3 finished", "abc", []string{"p1", "p2"}, false},
		{"keywords in any case", "incarnation abc\ndone p1", "abc", []string{"p1"}, false},
		{"no incarnation", "DONE p1\n2.0.0 1 of 1 finished", "", nil, true},
		{"a server that says something else", "2.0.0 OK", "", nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, err := parseAnswer(tc.text)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, want error %v", err, tc.wantErr)
			}
			if tc.wantErr {
				return
			}
			if a.Incarnation != tc.inc || len(a.Done) != len(tc.done) {
				t.Fatalf("got %+v, want incarnation %s done %v", a, tc.inc, tc.done)
			}
			for _, id := range tc.done {
				if !a.Done[id] {
					t.Errorf("%s not done in %+v", id, a)
				}
			}
		})
	}
}

func TestQueuedID(t *testing.T) {
	for _, tc := range []struct{ reply, want string }{
		{"250 2.6.0 <18ecd3f3748e9400f016b21ce154> Queued mail for delivery", "18ecd3f3748e9400f016b21ce154"},
		{"250 <abc> Queued mail for delivery", "abc"},
		{"250 2.0.0 Ok: queued as 4F2A1", ""},
		{"", ""},
	} {
		if got := QueuedID(tc.reply); got != tc.want {
			t.Errorf("QueuedID(%q) = %q, want %q", tc.reply, got, tc.want)
		}
	}
}

func TestPrimaryAnswer(t *testing.T) {
	held := []string{"a1", ForkedID("b1")}
	for _, tc := range []struct {
		name    string
		remote  string
		allowed []string
		args    string
		code    int
		done    []string
	}{
		{"held, forked and finished", "10.0.0.5", nil, "a1 b1 c1", 250, []string{"c1"}},
		{"incarnation only", "10.0.0.5", nil, "", 250, nil},
		{"an organisation server", "10.0.0.5", []string{"10.0.0.0/24"}, "c1", 250, []string{"c1"}},
		{"anyone else is not answered", "192.0.2.1", []string{"10.0.0.0/24"}, "c1", 0, nil},
		{"too many IDs", "10.0.0.5", nil, strings.Repeat("x ", maxIDs+1), 501, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var allowed []netip.Prefix
			for _, a := range tc.allowed {
				allowed = append(allowed, netip.MustParsePrefix(a))
			}
			p := NewPrimary(t.TempDir(), func() []string { return held }, allowed)
			code, lines := p.Answer(netip.MustParseAddr(tc.remote), tc.args)
			if code != tc.code {
				t.Fatalf("code %d, want %d (%v)", code, tc.code, lines)
			}
			if code != 250 {
				return
			}
			a, err := parseAnswer(strings.Join(lines, "\n"))
			if err != nil {
				t.Fatal(err)
			}
			if len(a.Done) != len(tc.done) {
				t.Fatalf("done %v, want %v", a.Done, tc.done)
			}
			for _, id := range tc.done {
				if !a.Done[id] {
					t.Errorf("%s not done: %v", id, a.Done)
				}
			}
		})
	}
}

func TestIncarnationLastsWithTheSpool(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "EDGE1")
	first, err := NewPrimary(dir, nil, nil).Incarnation()
	if err != nil {
		t.Fatal(err)
	}
	again, err := NewPrimary(dir, nil, nil).Incarnation()
	if err != nil || again != first {
		t.Fatalf("after a restart: %q, %v; want %q", again, err, first)
	}
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	lost, err := NewPrimary(dir, nil, nil).Incarnation()
	if err != nil || lost == first {
		t.Fatalf("after the spool was lost: %q, %v; want a new incarnation", lost, err)
	}
}

// fakePrimary answers a Manager's questions as a primary at one address would.
type fakePrimary struct {
	inc  string
	done map[string]bool
	down bool
}

func (f *fakePrimary) query(_ context.Context, _ string, ids []string) (Answer, error) {
	if f.down {
		return Answer{}, errors.New("connection refused")
	}
	a := Answer{Incarnation: f.inc, Done: map[string]bool{}}
	for _, id := range ids {
		if f.done[id] {
			a.Done[id] = true
		}
	}
	return a, nil
}

const primaryAddr = "10.0.0.1:25"

func newManager(t *testing.T, dir string, clk *clock.Fake, p *fakePrimary, resubmitted *[]*queue.Message, tr trace.Recorder) *Manager {
	t.Helper()
	m, err := Open(dir, WithClock(clk), WithQuerier(p.query), WithHeartbeat(15*time.Minute, 3), WithAutoDiscard(48*time.Hour),
		WithPeers(map[string]string{"EDGE1": primaryAddr}), WithServer("HUB1"), WithTrace(tr),
		WithResubmitter(func(_ context.Context, m *queue.Message, _ []byte) error {
			m.ID = "new"
			*resubmitted = append(*resubmitted, m)
			return nil
		}))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func relayed() *queue.Message {
	return &queue.Message{ID: "m1", From: "alice@contoso.test", Categorized: true, Attempts: 1,
		Recipients: []queue.Recipient{{Addr: "bob@fabrikam.test", State: queue.Pending}, {Addr: "carol@elsewhere.test", State: queue.Pending}}}
}

func TestBeat(t *testing.T) {
	for _, tc := range []struct {
		name string
		// after is how long after the relay the heartbeat asks; then the primary is as
		// set here.
		after      time.Duration
		inc        string
		done, down bool
		kept       int
		resubmit   bool
	}{
		{"still held", 15 * time.Minute, "inc-1", false, false, 1, false},
		{"delivered onward", 15 * time.Minute, "inc-1", true, false, 0, false},
		{"came back empty", 15 * time.Minute, "inc-2", false, false, 0, true},
		{"came back empty, its new spool answering done", 15 * time.Minute, "inc-2", true, false, 0, true},
		{"silent for less than three heartbeats", 30 * time.Minute, "inc-1", false, true, 1, false},
		{"silent for three heartbeats", 45 * time.Minute, "inc-1", false, true, 0, true},
		{"kept past the auto-discard interval", 49 * time.Hour, "inc-1", false, false, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clk := clock.NewFake(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
			p := &fakePrimary{inc: "inc-1", done: map[string]bool{}}
			var resubmitted []*queue.Message
			log := trace.NewLog(nil)
			m := newManager(t, t.TempDir(), clk, p, &resubmitted, log)
			ctx := context.Background()
			m.Prepare(ctx, []string{primaryAddr})
			if err := m.Keep(ctx, relayed(), []string{primaryAddr}, "10.0.0.1", "250 2.6.0 <p1> Queued mail for delivery", []string{"bob@fabrikam.test"}, []byte("data")); err != nil {
				t.Fatal(err)
			}
			if m.Len() != 1 {
				t.Fatalf("kept %d shadow copies after the relay, want 1", m.Len())
			}
			p.inc, p.down = tc.inc, tc.down
			p.done["p1"] = tc.done
			clk.Advance(tc.after)
			m.Beat(ctx)
			if m.Len() != tc.kept {
				t.Errorf("kept %d, want %d", m.Len(), tc.kept)
			}
			if got := len(resubmitted) > 0; got != tc.resubmit {
				t.Fatalf("resubmitted %v, want %v", got, tc.resubmit)
			}
			if !tc.resubmit {
				return
			}
			r := resubmitted[0]
			if len(r.Recipients) != 1 || r.Recipients[0].Addr != "bob@fabrikam.test" || r.Recipients[0].State != queue.Pending || !r.Categorized || r.Attempts != 0 {
				t.Errorf("resubmitted %+v: want bob only, pending, categorized, never tried", r)
			}
			if ev := trace.OfType(log.Events(), trace.Resubmit, "HUB1"); len(ev) != 1 || ev[0].NextHop != "EDGE1" {
				t.Errorf("RESUBMIT events %+v, want one naming EDGE1", ev)
			}
		})
	}
}

func TestShadowsSurviveARestart(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "shadow")
	clk := clock.NewFake(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	p := &fakePrimary{inc: "inc-1", done: map[string]bool{}}
	var resubmitted []*queue.Message
	ctx := context.Background()
	m := newManager(t, dir, clk, p, &resubmitted, nil)
	// A next hop whose incarnation is unknown (it never answered) is not shadowed.
	if err := m.Keep(ctx, relayed(), []string{primaryAddr}, "10.0.0.1", "250 2.6.0 <p0> Queued mail for delivery", []string{"bob@fabrikam.test"}, []byte("data")); err != nil || m.Len() != 0 {
		t.Fatalf("Keep without an incarnation: %d kept, %v", m.Len(), err)
	}
	m.Prepare(ctx, []string{primaryAddr})
	if err := m.Keep(ctx, relayed(), []string{primaryAddr}, "10.0.0.1", "250 2.6.0 <p1> Queued mail for delivery", []string{"bob@fabrikam.test"}, []byte("data")); err != nil {
		t.Fatal(err)
	}
	again := newManager(t, dir, clk, p, &resubmitted, nil)
	got := again.Snapshot()
	if len(got) != 1 || got[0].Queue != "Shadow Redundancy (EDGE1)" {
		t.Fatalf("after a restart: %+v, want one copy in Shadow Redundancy (EDGE1)", got)
	}
	listed, err := List(dir)
	if err != nil || len(listed) != 1 {
		t.Fatalf("List: %v, %v", listed, err)
	}
	// The restarted shadow still resubmits what its primary lost.
	p.inc = "inc-2"
	again.Beat(ctx)
	if len(resubmitted) != 1 || again.Len() != 0 {
		t.Fatalf("after the primary lost its spool: %d resubmitted, %d kept", len(resubmitted), again.Len())
	}
}

// TestQueryOverSMTP asks a receive connector that answers as a primary, through the
// connection-level shim in front of go-smtp.
func TestQueryOverSMTP(t *testing.T) {
	p := NewPrimary(t.TempDir(), func() []string { return []string{"held1"} }, []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")})
	srv := smtpd.New("EDGE1", "edge1.contoso.test", []smtpd.Connector{{Name: "Org", Permissions: []scenario.Permission{scenario.PermAnonymous}}},
		smtpd.WithExtension(p.Extension()))
	addr := serve(t, srv)
	q := SMTPQuerier("hub1.contoso.test", netip.Addr{}, 5*time.Second)
	for _, tc := range []struct {
		name string
		ids  []string
		done []string
	}{
		{"incarnation only", nil, nil},
		{"one held, one finished", []string{"held1", "gone1"}, []string{"gone1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, err := q(context.Background(), addr, tc.ids)
			if err != nil {
				t.Fatal(err)
			}
			inc, _ := p.Incarnation()
			if a.Incarnation != inc || len(a.Done) != len(tc.done) {
				t.Fatalf("answer %+v, want incarnation %s and done %v", a, inc, tc.done)
			}
		})
	}
	// A server without the extension does not understand the question.
	plain := smtpd.New("EDGE2", "edge2.contoso.test", []smtpd.Connector{{Name: "Org", Permissions: []scenario.Permission{scenario.PermAnonymous}}})
	if _, err := q(context.Background(), serve(t, plain), []string{"x"}); !errors.Is(err, ErrUnsupported) {
		t.Fatalf("a server without shadow redundancy: %v, want ErrUnsupported", err)
	}
}

// serve runs srv on a fresh loopback port until the test ends and returns its address.
func serve(t *testing.T, srv *smtpd.Server) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = srv.Serve(l); close(done) }()
	t.Cleanup(func() { srv.Close(); <-done })
	return l.Addr().String()
}

// TestPrepareAsksADownHostOncePerHeartbeat: a fail-over host that does not answer is
// not asked before every relay.
func TestPrepareAsksADownHostOncePerHeartbeat(t *testing.T) {
	clk := clock.NewFake(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	asked := 0
	p := &fakePrimary{inc: "inc-1", down: true}
	m, err := Open(t.TempDir(), WithClock(clk), WithHeartbeat(15*time.Minute, 3),
		WithQuerier(func(ctx context.Context, addr string, ids []string) (Answer, error) {
			asked++
			return p.query(ctx, addr, ids)
		}))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, step := range []struct {
		after time.Duration
		down  bool
		asked int
	}{
		{0, true, 1},
		{time.Minute, true, 1},
		{15 * time.Minute, false, 2},
		{time.Minute, false, 2}, // known now
	} {
		clk.Advance(step.after)
		p.down = step.down
		m.Prepare(ctx, []string{primaryAddr})
		if asked != step.asked {
			t.Fatalf("after %v more: asked %d times, want %d", step.after, asked, step.asked)
		}
	}
}
