package scenario

import (
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// timelineBase is a small world for the timeline's tests: one site's Edge, Hub and
// Mailbox server, a fake host, and two messages. Line 14 is the first step.
const timelineBase = `org:
  accepted_domains: [{domain: contoso.test}]
  servers:
    - {name: EDGE1, role: edge}
    - {name: HUB1, role: hub}
    - {name: MBX1, role: mailbox}
  recipients: [{mail: alice@contoso.test, mailbox: MBX1}]
internet:
  hosts: [{name: mx1.fabrikam.test}]
messages:
  - {from: bob@fabrikam.test, to: [alice@contoso.test], via: EDGE1}
  - {from: bob@fabrikam.test, to: [alice@contoso.test], via: EDGE1}
timeline:
`

func TestTimelineParses(t *testing.T) {
	s, err := Parse("t.yaml", []byte(timelineBase+`  - down: hub1
  - send: 2
  - advance: 1h30m
  - up: HUB1
  - dns: {set: ["fabrikam.test. MX 10 mx1.fabrikam.test."], remove: ["fabrikam.test. a", "x.fabrikam.test."]}
  - host: {name: MX1.fabrikam.test., behaviour: defer}
`))
	if err != nil {
		t.Fatal(err)
	}
	var actions []string
	for _, st := range s.Timeline {
		actions = append(actions, st.Action())
	}
	if got := strings.Join(actions, " "); got != "down send advance up dns host" {
		t.Errorf("actions = %s", got)
	}
	if s.Timeline[0].Down != "HUB1" {
		t.Errorf("down = %q, want the declared spelling HUB1", s.Timeline[0].Down)
	}
	if s.Timeline[2].Advance.D() != 90*time.Minute {
		t.Errorf("advance = %v", s.Timeline[2].Advance)
	}
	if b := s.Timeline[5].Host.Behaviour; b.Action != "defer" || b.Code != 451 || b.Stage != DefaultStage {
		t.Errorf("host behaviour = %+v, want the host defaults", b)
	}
	for _, c := range []struct {
		in    string
		name  string
		qtype uint16
	}{{"fabrikam.test. a", "fabrikam.test.", dns.TypeA}, {"x.fabrikam.test.", "x.fabrikam.test.", dns.TypeANY}} {
		if n, q, ok := RemoveTarget(c.in); !ok || n != c.name || q != c.qtype {
			t.Errorf("RemoveTarget(%q) = %q %d %v", c.in, n, q, ok)
		}
	}
}

func TestTimelineErrors(t *testing.T) {
	tests := []struct{ name, steps, want string }{
		{"unknown key", "  - dowm: HUB1\n", `t.yaml:14:5: timeline[0].dowm: unknown key; did you mean "down"?`},
		{"link_down of no connector", "  - link_down: lon-par\n", `t.yaml:14:16: timeline[0].link_down: unknown routing group connector "lon-par"; link_down names a routing group connector, of which the scenario has none (an AD site link has no state of its own: take its Hubs down instead)`},
		{"empty step", "  - {}\n", `t.yaml:14:5: timeline[0]: empty step; a step gives one of down, up, link_down, link_up, advance, send, dns, host`},
		{"two actions", "  - {down: HUB1, advance: 1h}\n", `t.yaml:14:18: timeline[0].advance: a step gives one action, and this one also gives down: put each in a step of its own`},
		{"unknown server", "  - down: HUB9\n", `t.yaml:14:11: timeline[0].down: unknown server "HUB9"; down names a server of the organisation (EDGE1, HUB1, MBX1)`},
		{"up before down", "  - up: HUB1\n", `t.yaml:14:9: timeline[0].up: HUB1 is not down at this point of the timeline; a step down: HUB1 must come first`},
		{"down twice", "  - down: HUB1\n  - down: hub1\n", `t.yaml:15:11: timeline[1].down: HUB1 is down already (since line 14); bring it up first`},
		{"bad duration", "  - advance: 2 hours\n", `t.yaml:14:14: timeline[0].advance: invalid duration "2 hours": want a duration such as 10m, 1h30m or 500ms`},
		{"negative advance", "  - advance: -1m\n", `t.yaml:14:14: timeline[0].advance: must be a duration > 0, such as 10m or 2h, got -1m0s`},
		{"no such message", "  - send: 3\n", `t.yaml:14:11: timeline[0].send: no message 3; send names a message of messages: by its number, 1 to 2`},
		{"sent twice", "  - send: 1\n  - send: 1\n", `t.yaml:15:11: timeline[1].send: message 1 is sent already (line 14); a message is sent once`},
		{"send not a number", "  - send: first\n", `t.yaml:14:11: timeline[0].send: expected an integer, got "first"`},
		{"empty dns", "  - dns: {}\n", `t.yaml:14:10: timeline[0].dns: nothing to change; dns gives set: [RECORD, ...] (zone-file lines) and/or remove: [NAME or NAME TYPE, ...]`},
		{"bad record", "  - dns: {set: [\"fabrikam.test. MX ten mx1.fabrikam.test.\"]}\n", `t.yaml:14:17: timeline[0].dns.set[0]: bad record: dns: bad MX Pref: "ten" at line: 1:22`},
		{"bad remove", "  - dns: {remove: [\"fabrikam.test. BOGUS\"]}\n", `t.yaml:14:20: timeline[0].dns.remove[0]: "fabrikam.test. BOGUS" is not NAME or NAME TYPE (e.g. "mx1.fabrikam.test." or "fabrikam.test. MX")`},
		{"unknown host", "  - host: {name: mx2.fabrikam.test, behaviour: defer}\n", `t.yaml:14:18: timeline[0].host.name: unknown host "mx2.fabrikam.test"; host names a fake Internet host of internet.hosts (known: mx1.fabrikam.test)`},
		{"host without behaviour", "  - host: {name: mx1.fabrikam.test}\n", `t.yaml:14:11: timeline[0].host.behaviour: missing; want one of accept, defer, reject, drop, stall, or a mapping as internet.hosts[].behaviour has`},
		{"bad behaviour", "  - host: {name: mx1.fabrikam.test, behaviour: bounce}\n", `t.yaml:14:48: timeline[0].host.behaviour.action: unknown action "bounce"; want one of accept, defer, reject, drop, stall`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("t.yaml", []byte(timelineBase+tt.steps))
			if err == nil {
				t.Fatalf("parsed, want %s", tt.want)
			}
			if err.Error() != tt.want {
				t.Errorf("error\n got: %s\nwant: %s", err, tt.want)
			}
		})
	}
}

func TestMessageContentErrors(t *testing.T) {
	const base = `org:
  accepted_domains: [{domain: contoso.test}]
  servers: [{name: EDGE1, role: edge}]
messages:
  - from: bob@fabrikam.test
    to: [alice@contoso.test]
    via: EDGE1
`
	tests := []struct{ name, more, want string }{
		{"size and body", "    size: 10\n    body: hi\n", `m.yaml:8:11: messages[0].size: size generates the body, and body gives one: keep one of them`},
		{"negative size", "    size: -1\n", `m.yaml:8:11: messages[0].size: must not be negative, got -1`},
		{"huge size", "    size: 1000000000\n", `m.yaml:8:11: messages[0].size: 1000000000 octets is more than repro generates (at most 67108864)`},
		{"attachment without content", "    attachments: [{name: a.bin}]\n", `m.yaml:8:19: messages[0].attachments[0]: an attachment gives its content or a size to generate`},
		{"attachment with both", "    attachments: [{name: a.bin, content: x, size: 3}]\n", `m.yaml:8:51: messages[0].attachments[0].size: size generates the content, and content gives it: keep one of them`},
		{"attachment without name", "    attachments: [{size: 3}]\n", `m.yaml:8:19: messages[0].attachments[0].name: missing (an attachment needs a file name)`},
		{"attachment path", "    attachments: [{name: ../a.bin, size: 3}]\n", `m.yaml:8:26: messages[0].attachments[0].name: "../a.bin" is not a file name (no path, quotes or line breaks)`},
		{"bad content type", "    attachments: [{name: a.bin, size: 3, content_type: pdf}]\n", `m.yaml:8:56: messages[0].attachments[0].content_type: "pdf" is not a content type for a file (want type/subtype, e.g. application/pdf)`},
		{"unknown attachment key", "    attachments: [{name: a.bin, bytes: 3}]\n", `m.yaml:8:33: messages[0].attachments[0].bytes: unknown key`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("m.yaml", []byte(base+tt.more))
			if err == nil {
				t.Fatalf("parsed, want %s", tt.want)
			}
			if err.Error() != tt.want {
				t.Errorf("error\n got: %s\nwant: %s", err, tt.want)
			}
		})
	}
}
