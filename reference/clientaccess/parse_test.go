package clientaccess

import (
	"bufio"
	"bytes"
	"strings"
	"testing"
)

func parse(line, more string) (command, string, error) {
	var out bytes.Buffer
	w := bufio.NewWriter(&out)
	cmd, err := parseCommand(line, bufio.NewReader(strings.NewReader(more)), w)
	_ = w.Flush()
	return cmd, out.String(), err
}

func TestParseCommand(t *testing.T) {
	for _, tt := range []struct {
		name, line, more string
		args             []string
		sent             string // continuations the server wrote
		bad              bool
	}{
		{"atoms", `a LOGIN alice pw`, "", []string{"alice", "pw"}, "", false},
		{"quoted", `a login "alice@contoso.test" "p w\"\\"`, "", []string{"alice@contoso.test", `p w"\`}, "", false},
		{"literal", `a LOGIN {5}`, "alice {3}\r\np\x00w\r\n", []string{"alice", "p\x00w"}, "+ Ready for literal data\r\n+ Ready for literal data\r\n", false},
		{"non-synchronizing literal", `a LOGIN alice {2+}`, "pw\r\n", []string{"alice", "pw"}, "", false},
		{"plain with initial response", `a AUTHENTICATE PLAIN AGFsaWNlAHB3`, "", []string{"alice", "pw"}, "", false},
		{"plain after a continuation", `a AUTHENTICATE plain`, "AGFsaWNlAHB3\r\n", []string{"alice", "pw"}, "+ \r\n", false},
		{"plain with another identity", `a AUTHENTICATE PLAIN Ym9iAGFsaWNlAHB3`, "", nil, "", true},
		{"one argument", `a LOGIN alice`, "", nil, "", true},
		{"three arguments", `a LOGIN alice pw x`, "", nil, "", true},
		{"unterminated quote", `a LOGIN "alice pw`, "", nil, "", true},
		{"bad tag", `* LOGIN a b`, "", nil, "", true},
		{"huge literal", `a LOGIN {99999999}`, "", nil, "", true},
		{"other mechanism", `a AUTHENTICATE LOGIN`, "", nil, "", true},
		{"other command", `a SELECT INBOX`, "", nil, "", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cmd, sent, err := parse(tt.line, tt.more)
			if (err != nil) != tt.bad {
				t.Fatalf("error %v, want bad: %v", err, tt.bad)
			}
			if !tt.bad && strings.Join(cmd.args, "\x01") != strings.Join(tt.args, "\x01") {
				t.Errorf("args %q, want %q", cmd.args, tt.args)
			}
			if sent != tt.sent {
				t.Errorf("sent %q, want %q", sent, tt.sent)
			}
		})
	}
}

// FuzzParseCommand: no input crashes the pre-login parser or makes it read more than
// a literal it allowed, and LOGIN and AUTHENTICATE that parse have two arguments.
func FuzzParseCommand(f *testing.F) {
	for _, s := range []string{`a LOGIN alice pw`, `a LOGIN "q\"" {3}`, `a AUTHENTICATE PLAIN AGEAYg==`, `a LOGIN {2+}`, `x CAPABILITY`} {
		f.Add(s, "ab\r\nrest\r\n")
	}
	f.Fuzz(func(t *testing.T, line, more string) {
		cmd, _, err := parse(line, more)
		if err == nil && (cmd.name == "LOGIN" || cmd.name == "AUTHENTICATE") && len(cmd.args) != 2 {
			t.Fatalf("%q: %s with %d arguments", line, cmd.name, len(cmd.args))
		}
	})
}
