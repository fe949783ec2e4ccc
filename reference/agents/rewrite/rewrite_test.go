package rewrite_test

import (
	"context"
	"strings"
	"testing"

	"github.com/mailflow/mailflow/reference/agents"
	"github.com/mailflow/mailflow/reference/agents/rewrite"
)

func TestAddresses(t *testing.T) {
	a := rewrite.New(
		rewrite.Entry{Internal: "ceo@corp.contoso.test", External: "boss@contoso.test", Bidirectional: true},
		rewrite.Entry{Internal: "*@sales.contoso.test", External: "contoso.test", Bidirectional: true},
		rewrite.Entry{Internal: "*.eu.contoso.test", External: "contoso.eu", Bidirectional: true},
	)
	for _, tc := range []struct{ fn, in, want string }{
		{"out", "CEO@corp.contoso.test", "boss@contoso.test"},
		{"out", "bob@Sales.Contoso.test", "bob@contoso.test"},
		{"out", "x@de.eu.contoso.test", "x@contoso.eu"},
		{"out", "x@eu.contoso.test", "x@contoso.eu"},
		{"out", "x@contoso.test", "x@contoso.test"},
		{"in", "boss@contoso.test", "ceo@corp.contoso.test"},
		{"in", "bob@CONTOSO.test", "bob@sales.contoso.test"},
		{"in", "x@contoso.eu", "x@contoso.eu"}, // *.domain is outbound only
	} {
		got := a.Outbound(tc.in)
		if tc.fn == "in" {
			got = a.Inbound(tc.in)
		}
		if got != tc.want {
			t.Errorf("%s(%s) = %s, want %s", tc.fn, tc.in, got, tc.want)
		}
	}
}

func TestOutboundMessage(t *testing.T) {
	a := rewrite.New(rewrite.Entry{Internal: "*@sales.contoso.test", External: "contoso.test"})
	ctx := context.Background()
	run := func(bypass bool, data string) *agents.Message {
		s, err := agents.New("EDGE1", []agents.Agent{a}).Connect(ctx, agents.Conn{Bypass: func() bool { return bypass }})
		if err != nil {
			t.Fatal(err)
		}
		m := &agents.Message{From: "bob@sales.contoso.test", Rcpts: []string{"x@fabrikam.test"}, Data: []byte(data)}
		if err := s.EndOfData(ctx, m); err != nil {
			t.Fatal(err)
		}
		return m
	}
	data := "From: Bob <bob@sales.contoso.test>\r\nCC: a@sales.contoso.test,\r\n\tb@sales.contoso.test\r\nSender: bob@sales.contoso.test\r\n\r\nbob@sales.contoso.test\r\n"
	m := run(true, data)
	want := "From: Bob <bob@contoso.test>\r\nCC: a@contoso.test,\r\n\tb@contoso.test\r\nSender: bob@sales.contoso.test\r\n\r\nbob@sales.contoso.test\r\n"
	if m.From != "bob@contoso.test" || string(m.Data) != want {
		t.Errorf("outbound: from %s, data\n%q\nwant\n%q", m.From, m.Data, want)
	}
	if m := run(false, data); m.From != "bob@sales.contoso.test" || string(m.Data) != data {
		t.Errorf("an Internet client's message was rewritten: %s %q", m.From, m.Data)
	}
	signed := "From: bob@sales.contoso.test\r\nContent-Type: multipart/signed; boundary=x; protocol=\"application/pkcs7-signature\"\r\n\r\n--x--\r\n"
	if m := run(true, signed); m.From != "bob@sales.contoso.test" || !strings.Contains(string(m.Data), "From: bob@sales.contoso.test") {
		t.Errorf("a signed message was rewritten: %s %q", m.From, m.Data)
	}
}

// FuzzOutbound: the header rewriting never touches the body, and a message without
// an internal address comes out as it went in.
func FuzzOutbound(f *testing.F) {
	f.Add("From: Bob <bob@sales.contoso.test>\r\nTo: a@sales.contoso.test,\r\n b@x.test\r\n\r\nbody bob@sales.contoso.test\r\n")
	f.Add("Cc:\r\n\t\"a@sales.contoso.test\" <a@sales.contoso.test>\r\n\r\n")
	f.Add("From: a@x.test\r\n\r\n")
	a := rewrite.New(rewrite.Entry{Internal: "*@sales.contoso.test", External: "contoso.test"})
	ctx := context.Background()
	f.Fuzz(func(t *testing.T, data string) {
		s, _ := agents.New("EDGE1", []agents.Agent{a}).Connect(ctx, agents.Conn{Bypass: func() bool { return true }})
		m := &agents.Message{From: "x@y.test", Data: []byte(data)}
		if err := s.EndOfData(ctx, m); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(strings.ToLower(data), "@sales.contoso.test") && string(m.Data) != data {
			t.Fatalf("changed without an internal address: %q -> %q", data, m.Data)
		}
		if i := strings.Index(data, "\r\n\r\n"); i >= 0 && !strings.HasSuffix(string(m.Data), data[i:]) {
			t.Fatalf("body changed: %q -> %q", data, m.Data)
		}
	})
}
