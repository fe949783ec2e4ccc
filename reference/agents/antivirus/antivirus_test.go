package antivirus_test

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/emersion/go-smtp"

	"github.com/mailflow/mailflow/fixtures/clamdaemon"
	"github.com/mailflow/mailflow/reference/agents"
	"github.com/mailflow/mailflow/reference/agents/antivirus"
	"github.com/mailflow/mailflow/reference/clamd"
	"github.com/mailflow/mailflow/trace"
)

// daemon is one real clamd for the package's tests, or nil when none is installed.
var daemon *clamdaemon.Daemon

func TestMain(m *testing.M) {
	clamdaemon.RunTests(m, "antivirus", func(d *clamdaemon.Daemon) { daemon = d })
}

func scanner(t *testing.T) *clamd.Client {
	t.Helper()
	if daemon == nil {
		t.Skip(clamdaemon.ErrNotInstalled)
	}
	return clamd.New(daemon.Addr())
}

var eicar64 = base64.StdEncoding.EncodeToString([]byte(clamdaemon.EICAR))

func mixed(parts ...string) string {
	s := "From: bob@fabrikam.test\r\nTo: alice@contoso.test\r\nSubject: files\r\nMIME-Version: 1.0\r\n" +
		"Content-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n"
	for _, p := range parts {
		s += "--b1\r\n" + p + "\r\n"
	}
	return s + "--b1--\r\n"
}

const text = "Content-Type: text/plain\r\n\r\nSee the attachments.\r\n"

func attachment(name, body string) string {
	return "Content-Type: application/octet-stream\r\nContent-Disposition: attachment; filename=\"" + name +
		"\"\r\nContent-Transfer-Encoding: base64\r\n\r\n" + body + "\r\n"
}

// run passes data through a pipeline of the agent alone and returns the message as
// the agents left it, the trace and the pipeline's answer.
func run(t *testing.T, a *antivirus.Agent, conn agents.Conn, data string) (*agents.Message, []trace.Event, error) {
	t.Helper()
	ctx := context.Background()
	log := trace.NewLog(nil)
	s, err := agents.New("EDGE1", []agents.Agent{a}, agents.WithTrace(log)).Connect(ctx, conn)
	if err != nil {
		t.Fatal(err)
	}
	m := &agents.Message{From: "bob@fabrikam.test", Rcpts: []string{"alice@contoso.test"}, Data: []byte(data)}
	err = s.EndOfData(ctx, m)
	return m, log.Events(), err
}

func reply(err error) string {
	var se *smtp.SMTPError
	if !errors.As(err, &se) {
		return fmt.Sprint(err)
	}
	e := se.EnhancedCode
	return fmt.Sprintf("%d %d.%d.%d %s", se.Code, e[0], e[1], e[2], se.Message)
}

func TestActions(t *testing.T) {
	infected := mixed(text, attachment("eicar.com", eicar64))
	bypass := agents.Conn{Bypass: func() bool { return true }}
	for _, tc := range []struct {
		name   string
		action antivirus.Action
		conn   agents.Conn
		msg    string
		want   string // a reply, "dropped" or "pass"
		event  trace.Type
	}{
		{"delete is the default", "", agents.Conn{}, infected, "dropped", trace.Drop},
		{"reject", antivirus.Reject, agents.Conn{}, infected, "554 5.7.1 Message rejected: malware detected", trace.Fail},
		{"a session that bypasses anti-spam is scanned too", antivirus.Reject, bypass, infected, "554 5.7.1 Message rejected: malware detected", trace.Fail},
		{"EICAR as the whole message", antivirus.Reject, agents.Conn{}, clamdaemon.EICAR, "554 5.7.1 Message rejected: malware detected", trace.Fail},
		{"a clean message passes", antivirus.Reject, agents.Conn{}, mixed(text, attachment("a.txt", base64.StdEncoding.EncodeToString([]byte("harmless")))), "pass", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, events, err := run(t, antivirus.New(scanner(t), antivirus.WithAction(tc.action)), tc.conn, tc.msg)
			switch tc.want {
			case "pass":
				if err != nil || len(events) != 0 {
					t.Fatalf("got %v and %v, want the message through and no event", err, events)
				}
				return
			case "dropped":
				if !errors.Is(err, agents.ErrDropped) {
					t.Fatalf("got %v, want the message deleted", err)
				}
			default:
				if got := reply(err); got != tc.want {
					t.Fatalf("got %q, want %q", got, tc.want)
				}
			}
			if len(events) != 1 || events[0].Type != tc.event || events[0].Agent != antivirus.Name ||
				!strings.Contains(events[0].Detail, "eicar.com.UNOFFICIAL") {
				t.Errorf("events %+v, want one %s naming the %s and the signature", events, tc.event, antivirus.Name)
			}
		})
	}
}

func TestStrip(t *testing.T) {
	pdf := attachment("report.pdf", base64.StdEncoding.EncodeToString([]byte("%PDF-1.4 report")))
	msg := mixed(text, attachment("eicar.com", eicar64), pdf)
	m, events, err := run(t, antivirus.New(scanner(t), antivirus.WithAction(antivirus.Strip)), agents.Conn{}, msg)
	if err != nil {
		t.Fatal(err)
	}
	got := string(m.Data)
	for _, keep := range []string{"--b1\r\n" + text + "\r\n--b1\r\n", "--b1\r\n" + pdf + "\r\n--b1",
		"removed by the Malware Agent: eicar.com (eicar.com.UNOFFICIAL)", "--b1--\r\n"} {
		if !strings.Contains(got, keep) {
			t.Errorf("the message lacks %q:\n%s", keep, got)
		}
	}
	if strings.Contains(got, eicar64) || strings.Contains(got, `filename="eicar.com"`) {
		t.Errorf("the infected attachment is still there:\n%s", got)
	}
	if v, err := scanner(t).Scan(context.Background(), m.Data); err != nil || v.Infected {
		t.Errorf("the message as delivered scans %+v, %v", v, err)
	}
	if len(events) != 1 || events[0].Type != trace.AgentInfo || !strings.Contains(events[0].Detail, "attachment eicar.com (part 2) infected with eicar.com.UNOFFICIAL") {
		t.Errorf("events %+v, want one AGENTINFO naming the part", events)
	}
}

// TestStripUnplaced: malware the whole message's scan finds but no part's scan does
// cannot be replaced, and the message is deleted rather than let through.
func TestStripUnplaced(t *testing.T) {
	// An infected part inside a part that does not decode as MIME: the whole
	// message's scan finds it, the parts' scans do not.
	msg := mixed(text, "Content-Type: message/rfc822\r\nContent-Transfer-Encoding: base64\r\n\r\n!!!"+
		"\r\n"+base64.StdEncoding.EncodeToString([]byte(clamdaemon.EICAR)))
	_, events, err := run(t, antivirus.New(scanner(t), antivirus.WithAction(antivirus.Strip)), agents.Conn{}, msg)
	if v, serr := scanner(t).Scan(context.Background(), []byte(msg)); serr != nil || !v.Infected {
		t.Skipf("clamd does not find EICAR in this message (%+v, %v): nothing to check", v, serr)
	}
	if !errors.Is(err, agents.ErrDropped) || len(events) != 1 || events[0].Type != trace.Drop {
		t.Fatalf("got %v, %+v; want the message deleted", err, events)
	}
}

// TestScannerDown: a clamd that cannot be reached gets the client 451 4.3.0 naming
// clamd, and the trace the reason with the daemon's address; never a 250, never a 5yz.
func TestScannerDown(t *testing.T) {
	addr := "unix:" + filepath.Join(t.TempDir(), "clamd.sock")
	for _, action := range []antivirus.Action{antivirus.Delete, antivirus.Reject, antivirus.Strip} {
		_, events, err := run(t, antivirus.New(clamd.New(addr), antivirus.WithAction(action)), agents.Conn{}, mixed(text, attachment("eicar.com", eicar64)))
		if got, want := reply(err), "451 4.3.0 Antivirus scanner (clamd) unavailable, try again later"; got != want {
			t.Errorf("%s: got %q, want %q", action, got, want)
		}
		if len(events) != 1 || events[0].Agent != antivirus.Name || !strings.Contains(events[0].Detail, "could not scan the message: clamd at "+addr) {
			t.Errorf("%s: events %+v, want one naming clamd at %s", action, events, addr)
		}
	}
}

type notifier struct {
	calls []string
	err   error
}

func (n *notifier) NotifyMalware(_ context.Context, sender string, rcpts []string, what string) error {
	n.calls = append(n.calls, sender+" "+strings.Join(rcpts, ",")+": "+what)
	return n.err
}

// TestSenderNotification: the sender hears of a message taken and then deleted or
// stripped only when the agent is configured to tell it, never of a refused one (its
// client was told), and never at the null sender.
func TestSenderNotification(t *testing.T) {
	infected := mixed(text, attachment("eicar.com", eicar64))
	for _, tc := range []struct {
		name   string
		action antivirus.Action
		from   string
		notify bool
		want   int
	}{
		{"deleted, not configured", antivirus.Delete, "bob@fabrikam.test", false, 0},
		{"deleted, configured", antivirus.Delete, "bob@fabrikam.test", true, 1},
		{"stripped, configured", antivirus.Strip, "bob@fabrikam.test", true, 1},
		{"refused, configured", antivirus.Reject, "bob@fabrikam.test", true, 0},
		{"null sender, configured", antivirus.Delete, "", true, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := &notifier{}
			opts := []antivirus.Option{antivirus.WithAction(tc.action)}
			if tc.notify {
				opts = append(opts, antivirus.WithSenderNotification(n))
			}
			ctx := context.Background()
			log := trace.NewLog(nil)
			s, err := agents.New("EDGE1", []agents.Agent{antivirus.New(scanner(t), opts...)}, agents.WithTrace(log)).Connect(ctx, agents.Conn{})
			if err != nil {
				t.Fatal(err)
			}
			m := &agents.Message{From: tc.from, Rcpts: []string{"alice@contoso.test"}, Data: []byte(infected)}
			_ = s.EndOfData(ctx, m)
			if len(n.calls) != tc.want {
				t.Fatalf("notifications %q, want %d", n.calls, tc.want)
			}
			if tc.want == 1 {
				if !strings.HasPrefix(n.calls[0], "bob@fabrikam.test alice@contoso.test: ") || !strings.Contains(n.calls[0], "eicar.com.UNOFFICIAL") {
					t.Errorf("notification %q", n.calls[0])
				}
				if ev := log.Events(); len(ev) != 1 || !strings.Contains(ev[0].Detail, "the sender bob@fabrikam.test was notified") {
					t.Errorf("events %+v, want the notification in the detail", ev)
				}
			}
		})
	}
}
