package agents_test

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/emersion/go-smtp"

	"github.com/mailflow/mailflow/reference/agents"
	"github.com/mailflow/mailflow/trace"
)

// fake is an agent that refuses or notes at the events it is told to.
type fake struct {
	name   string
	prio   agents.Priority
	refuse string // event name at which it refuses
	note   string // event name at which it notes
	calls  *[]string
}

func (f fake) Name() string              { return f.name }
func (f fake) Priority() agents.Priority { return f.prio }

func (f fake) act(event string) agents.Result {
	*f.calls = append(*f.calls, f.name+"@"+event)
	switch event {
	case f.refuse:
		return agents.Rejected(&smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 7, 1}, Message: f.name}, "refused at %s", event)
	case f.note:
		return agents.Noted("noted at %s", event)
	}
	return agents.Passed()
}

func (f fake) OnConnect(context.Context, *agents.Session) agents.Result { return f.act("connect") }
func (f fake) OnMail(context.Context, *agents.Session, string) agents.Result {
	return f.act("mail")
}
func (f fake) OnRcpt(context.Context, *agents.Session, string) agents.Result {
	return f.act("rcpt")
}
func (f fake) OnEndOfData(_ context.Context, _ *agents.Session, m *agents.Message) agents.Result {
	m.AddHeader("X-"+strings.ReplaceAll(f.name, " ", "-"), "seen")
	return f.act("data")
}

// TestOrder: agents act in the order of FILTER-018 whatever order they are given in;
// the first refusal stops the later agents and is the reply; each action is a trace
// event naming its agent.
func TestOrder(t *testing.T) {
	var calls []string
	log := trace.NewLog(nil)
	p := agents.New("EDGE1", []agents.Agent{
		fake{name: "Content", prio: agents.ContentFiltering, calls: &calls, refuse: "data"},
		fake{name: "Sender", prio: agents.SenderFiltering, calls: &calls, refuse: "rcpt", note: "mail"},
		fake{name: "Connection", prio: agents.ConnectionFiltering, calls: &calls, refuse: "rcpt"},
	}, agents.WithTrace(log))
	ctx := context.Background()
	s, err := p.Connect(ctx, agents.Conn{Remote: netip.MustParseAddr("127.9.0.1"), Connector: "Internet"})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Mail(ctx, "a@fabrikam.test"); err != nil {
		t.Fatal(err)
	}
	err = s.Rcpt(ctx, "alice@contoso.test")
	var se *smtp.SMTPError
	if !errors.As(err, &se) || se.Message != "Connection" {
		t.Fatalf("RCPT: %v, want the connection agent's refusal", err)
	}
	m := &agents.Message{From: "a@fabrikam.test", Rcpts: []string{"alice@contoso.test"}}
	if err := s.EndOfData(ctx, m); !errors.As(err, &se) || se.Message != "Content" {
		t.Fatalf("end of data: %v", err)
	}
	if got := string(m.Header()); got != "X-Connection: seen\r\nX-Sender: seen\r\nX-Content: seen\r\n" {
		t.Errorf("added header %q", got)
	}
	if got := strings.Join(calls, " "); got != "Connection@connect Sender@connect Content@connect Connection@mail Sender@mail Content@mail Connection@rcpt Connection@data Sender@data Content@data" {
		t.Errorf("calls %s", got)
	}
	ev := log.Events()
	if len(ev) != 3 {
		t.Fatalf("events %+v", ev)
	}
	for i, w := range []struct {
		typ   trace.Type
		agent string
	}{{trace.AgentInfo, "Sender"}, {trace.Fail, "Connection"}, {trace.Fail, "Content"}} {
		if ev[i].Type != w.typ || ev[i].Agent != w.agent || ev[i].Source != trace.SourceAgent || !strings.HasPrefix(ev[i].Detail, w.agent+": ") {
			t.Errorf("event %d = %+v, want %s by %s", i, ev[i], w.typ, w.agent)
		}
	}
	if ev[1].Reply != "550 5.7.1 Connection" || ev[1].Recipients[0] != "alice@contoso.test" {
		t.Errorf("refusal event %+v", ev[1])
	}
}

// TestBypass: a session holding ms-Exch-Bypass-Anti-Spam meets no agent, from the
// moment it holds it (FILTER-007).
func TestBypass(t *testing.T) {
	var calls []string
	log := trace.NewLog(nil)
	p := agents.New("EDGE1", []agents.Agent{fake{name: "Sender", prio: agents.SenderFiltering, calls: &calls, refuse: "mail"}}, agents.WithTrace(log))
	ctx := context.Background()
	bypass := false
	s, _ := p.Connect(ctx, agents.Conn{Bypass: func() bool { return bypass }})
	if err := s.Mail(ctx, "a@b.test"); err == nil {
		t.Fatal("not refused before AUTH")
	}
	bypass = true
	if err := s.Mail(ctx, "a@b.test"); err != nil {
		t.Fatalf("refused after AUTH: %v", err)
	}
	if len(calls) != 2 || len(log.Events()) != 1 {
		t.Errorf("calls %v, events %+v", calls, log.Events())
	}
}

// dropper deletes every message; closer refuses and ends the session; both act on
// every session (Everyone) when told to.
type dropper struct{ everyone bool }

func (dropper) Name() string              { return "Dropper" }
func (dropper) Priority() agents.Priority { return agents.AttachmentFiltering }
func (d dropper) Everyone() bool          { return d.everyone }
func (dropper) OnEndOfData(context.Context, *agents.Session, *agents.Message) agents.Result {
	return agents.Dropped("deleted")
}

type closer struct{}

func (closer) Name() string              { return "Closer" }
func (closer) Priority() agents.Priority { return agents.EdgeRules }
func (closer) Everyone() bool            { return true }
func (closer) OnEndOfData(context.Context, *agents.Session, *agents.Message) agents.Result {
	r := agents.Rejected(&smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 7, 950}, Message: "no"}, "refused")
	r.Close = true
	return r
}

type renamer struct{}

func (renamer) Name() string              { return "Renamer" }
func (renamer) Priority() agents.Priority { return agents.AddressRewriting }
func (renamer) RewriteRcpt(_ context.Context, _ *agents.Session, rcpt string) (string, string) {
	return strings.Replace(rcpt, "@contoso.test", "@sales.contoso.test", 1), "renamed"
}

// TestDropCloseBypass: a drop is ErrDropped and a DROP event; a closing refusal
// says it ends the session; a bypassing session meets only the agents that act on
// everyone.
func TestDropCloseBypass(t *testing.T) {
	ctx := context.Background()
	log := trace.NewLog(nil)
	s, _ := agents.New("EDGE1", []agents.Agent{dropper{}, closer{}, renamer{}}, agents.WithTrace(log)).Connect(ctx, agents.Conn{})
	if err := s.EndOfData(ctx, &agents.Message{}); !errors.Is(err, agents.ErrDropped) {
		t.Fatalf("drop: got %v", err)
	}
	if ev := trace.OfType(log.Events(), trace.Drop, ""); len(ev) != 1 || ev[0].Agent != "Dropper" {
		t.Errorf("DROP events: %+v", ev)
	}
	if got := s.RewriteRcpt(ctx, "bob@contoso.test"); got != "bob@sales.contoso.test" {
		t.Errorf("RewriteRcpt = %s", got)
	}
	bypass := agents.Conn{Bypass: func() bool { return true }}
	s, _ = agents.New("EDGE1", []agents.Agent{dropper{}, closer{}, renamer{}}).Connect(ctx, bypass)
	err := s.EndOfData(ctx, &agents.Message{})
	var ce *agents.ClosingError
	var se *smtp.SMTPError
	if !errors.As(err, &ce) || !ce.EndsSession() || !errors.As(err, &se) || se.Code != 554 {
		t.Fatalf("bypassing session: got %v, want the closer's 554 that ends the session", err)
	}
	if got := s.RewriteRcpt(ctx, "bob@contoso.test"); got != "bob@contoso.test" {
		t.Errorf("an anti-spam agent rewrote a bypassing session's recipient: %s", got)
	}
	s, _ = agents.New("EDGE1", []agents.Agent{dropper{everyone: true}}).Connect(ctx, bypass)
	if err := s.EndOfData(ctx, &agents.Message{}); !errors.Is(err, agents.ErrDropped) {
		t.Errorf("an Everyone agent skipped on a bypassing session: %v", err)
	}
}
