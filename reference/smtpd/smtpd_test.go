package smtpd

import (
	"bufio"
	"context"
	"errors"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mailflow/mailflow/reference/queue"
	"github.com/mailflow/mailflow/scenario"
)

type memQueue struct {
	mu   sync.Mutex
	msgs []*queue.Message
	data [][]byte
}

func (q *memQueue) Enqueue(_ context.Context, m *queue.Message, data []byte) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.msgs = append(q.msgs, m)
	q.data = append(q.data, data)
	return nil
}

type mapDir map[string]bool

func (d mapDir) Exists(_ context.Context, addr string) error {
	if d[strings.ToLower(addr)] {
		return nil
	}
	return ErrUnknown
}

func startServer(t *testing.T) (string, *memQueue) {
	t.Helper()
	s := &scenario.Scenario{Org: scenario.Org{AcceptedDomains: []scenario.AcceptedDomain{{Domain: "contoso.test", Type: scenario.Authoritative}}}}
	q := &memQueue{}
	srv := New("EDGE1", "edge1.contoso.test", []Connector{{Name: "Internet", Permissions: []scenario.Permission{scenario.PermAnonymous, scenario.PermExchangeUsers}}},
		WithDomains(s), WithQueue(q), WithDirectory(mapDir{"alice@contoso.test": true}), WithRecipientFiltering(true, nil),
		WithAuthenticator(mapDir{"alice@contoso.test": true}))
	return serve(t, srv), q
}

// Authenticate takes any password of a known user.
func (d mapDir) Authenticate(ctx context.Context, user, _ string) error { return d.Exists(ctx, user) }

// converse writes each chunk as one write and reads the given number of reply lines.
func converse(t *testing.T, addr string, steps []struct {
	send    string
	replies int
}) []string {
	t.Helper()
	c, r := dial(t, addr)
	var got []string
	read := func(n int) {
		for i := 0; i < n; i++ {
			for {
				line, err := r.ReadString('\n')
				if err != nil {
					t.Fatalf("reading reply: %v (so far %q)", err, got)
				}
				if len(line) >= 4 && line[3] == '-' {
					continue // continuation of a multi-line reply
				}
				got = append(got, strings.TrimRight(line, "\r\n"))
				break
			}
		}
	}
	read(1) // greeting
	for _, s := range steps {
		if s.send != "" {
			if _, err := c.Write([]byte(s.send)); err != nil {
				t.Fatal(err)
			}
		}
		read(s.replies)
	}
	return got
}

type step = struct {
	send    string
	replies int
}

func TestReplies(t *testing.T) {
	addr, _ := startServer(t)
	got := converse(t, addr, []step{
		{"MAIL FROM:<a@b.test>\r\n", 1},
		{"EHLO c.test\r\n", 1},
		{"RCPT TO:<alice@contoso.test>\r\n", 1},
		{"MAIL FROM: <a@b.test>\r\n", 1},
		{"MAIL FROM:a@b.test\r\n", 1},
		{"DATA\r\n", 1},
		{"MAIL FROM:<a@b.test>\r\n", 1},
		{"RCPT TO:<alice@contoso.test>\r\n", 1},
		{"RCPT TO:<nobody@contoso.test>\r\n", 1},
		{"RCPT TO:<x@fabrikam.test>\r\n", 1},
	})
	want := []string{"220", "503 5.5.1", "250", "503 5.5.1", "501", "501", "503 5.5.1", "250 2.1.0", "250 2.1.5", "550 5.1.1", "550 5.7.1"}
	if len(got) != len(want) {
		t.Fatalf("got %d replies %q", len(got), got)
	}
	for i := range want {
		if !strings.HasPrefix(got[i], want[i]) {
			t.Errorf("reply %d = %q, want prefix %q", i, got[i], want[i])
		}
	}
}

func TestData(t *testing.T) {
	tests := []struct {
		name  string
		steps []step
		body  string
	}{
		{"pipelined with dot-stuffed lines", []step{
			{"EHLO c.test\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<alice@contoso.test>\r\nDATA\r\n", 4},
			{"Subject: x\r\n\r\n..leading dot\r\nMAIL FROM: <evil@x.test>\r\n.\r\n", 1},
		}, "Subject: x\r\n\r\n.leading dot\r\nMAIL FROM: <evil@x.test>\r\n"},
		{"terminator split across writes", []step{
			{"EHLO c.test\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<alice@contoso.test>\r\nDATA\r\n", 4},
			{"Subject: y\r\n\r\nbody\r\n.", 0},
			{"\r\n", 1},
		}, "Subject: y\r\n\r\nbody\r\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			addr, q := startServer(t)
			got := converse(t, addr, append(tc.steps, step{"QUIT\r\n", 1}))
			last := got[len(got)-2]
			if !strings.HasPrefix(last, "250 2.6.0") {
				t.Fatalf("end of data reply %q (all %q)", last, got)
			}
			q.mu.Lock()
			defer q.mu.Unlock()
			if len(q.msgs) != 1 {
				t.Fatalf("queued %d messages", len(q.msgs))
			}
			data := string(q.data[0])
			if !strings.HasPrefix(data, "Received: from c.test ([127.0.0.1])\r\n\tby ") || !strings.HasSuffix(data, tc.body) {
				t.Fatalf("queued data %q, want Received + %q", data, tc.body)
			}
		})
	}
}

func TestNormalizeRcpt(t *testing.T) {
	tests := []struct{ in, addr, domain string }{
		{"@relay.test:user@remote.test", "user@remote.test", "remote.test"},
		{"@a.test,@b.test:user@remote.test", "user@remote.test", "remote.test"},
		{"User@Contoso.TEST.", "User@contoso.test", "contoso.test"},
		{"Postmaster", "Postmaster", ""},
	}
	for _, tc := range tests {
		addr, _, domain, err := normalizeRcpt(tc.in)
		if err != nil || addr != tc.addr || domain != tc.domain {
			t.Errorf("normalizeRcpt(%q) = %q, %q, %v; want %q, %q", tc.in, addr, domain, err, tc.addr, tc.domain)
		}
	}
	var se interface{ Error() string }
	if _, _, _, err := normalizeRcpt("nodomain"); !errors.As(err, &se) {
		t.Errorf("bare local part accepted")
	}
}

// dial connects to addr with a deadline that ends a test whose server stops answering;
// the connection closes with the test. The deadline is for a hang, not a measure: an
// 11 MB message through a server built with -race on a loaded machine takes seconds.
func dial(t *testing.T, addr string) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(60 * time.Second))
	return c, bufio.NewReader(c)
}

// TestORCPTAsWritten: the domain is lower-cased for routing, and the address as the
// client wrote it stays with the recipient as ORCPT, which the DSN shows as
// Original-Recipient; an address kept as written, or one with an ORCPT of its own,
// gets no other.
func TestORCPTAsWritten(t *testing.T) {
	addr, q := startServer(t)
	converse(t, addr, []step{{"EHLO x\r\nMAIL FROM:<a@fabrikam.test>\r\nRCPT TO:<alice@Contoso.TEST>\r\n" +
		"RCPT TO:<alice@contoso.test>\r\nRCPT TO:<alice@CONTOSO.test> ORCPT=rfc822;first+40contoso.test\r\nDATA\r\n", 6},
		{"Subject: t\r\n\r\nx\r\n.\r\n", 1}})
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.msgs) != 1 {
		t.Fatalf("%d messages queued, want 1", len(q.msgs))
	}
	var got []string
	for _, r := range q.msgs[0].Recipients {
		got = append(got, r.Addr+" ORCPT="+r.ORCPT)
	}
	want := []string{"alice@contoso.test ORCPT=alice@Contoso.TEST", "alice@contoso.test ORCPT=", "alice@contoso.test ORCPT=first@contoso.test"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("recipients %q, want %q", got, want)
	}
}
