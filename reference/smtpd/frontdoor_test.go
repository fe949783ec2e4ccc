package smtpd

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"strings"
	"syscall"
	"testing"

	"github.com/mailflow/mailflow/fixtures/testca"
	"github.com/mailflow/mailflow/reference/queue"
	"github.com/mailflow/mailflow/scenario"
)

// The raw byte sequences that once lost a message, desynchronised a session or were
// executed as commands, each with the replies a client must see and what the queue
// must then hold (SEC-001, SEC-006, SEC-007, SEC-009).
func TestFrontDoor(t *testing.T) {
	const open = "EHLO x\r\nMAIL FROM:<a@fabrikam.test>\r\nRCPT TO:<alice@contoso.test>\r\nDATA\r\n"
	tests := []struct {
		name   string
		steps  []step
		want   []string // reply prefixes after the greeting
		queued []string // recipients of each queued message, "," joined
	}{
		{"MAIL inside a transaction keeps the first and queues it for its recipient", []step{
			{"EHLO x\r\nMAIL FROM:<a@fabrikam.test>\r\nRCPT TO:<alice@contoso.test>\r\nMAIL FROM:<b@fabrikam.test>\r\nDATA\r\n", 5},
			{"Subject: t\r\n\r\nbody\r\n.\r\n", 1},
		}, []string{"250", "250 2.1.0", "250 2.1.5", "503 5.5.1", "354", "250 2.6.0"}, []string{"alice@contoso.test"}},
		{"NUL in MAIL FROM is refused and nothing is queued", []step{
			{"EHLO x\r\nMAIL FROM:<a\x00@fabrikam.test>\r\nRCPT TO:<alice@contoso.test>\r\nDATA\r\n", 4},
		}, []string{"250", "500 5.5.2", "503 5.5.1", "503 5.5.1"}, nil},
		{"NUL in EHLO is refused", []step{{"EHLO x\x00y\r\nMAIL FROM:<a@fabrikam.test>\r\n", 2}},
			[]string{"500 5.5.2", "503 5.5.1"}, nil},
		{"CR CR LF . CR LF ends DATA, the message is refused and the rest are commands", []step{
			{open, 4},
			{"Subject: t\r\n\r\nbefore\r\r\n.\r\nMAIL FROM:<b@fabrikam.test>\r\nRCPT TO:<alice@contoso.test>\r\nNOOP\r\n", 4},
		}, []string{"250", "250", "250", "354", "554 5.6.0", "250 2.1.0", "250 2.1.5", "250 2.0.0"}, nil},
		{"LF . LF inside DATA is content, the whole message is refused", []step{
			{open, 4},
			{"Subject: t\r\n\r\nx\n.\nMAIL FROM:<b@fabrikam.test>\r\nRCPT TO:<y@contoso.test>\r\nDATA\r\nsmuggled\r\n.\r\nNOOP\r\n", 2},
		}, []string{"250", "250", "250", "354", "554 5.6.0", "250 2.0.0"}, nil},
		{"a bare LF inside a command line makes one refused command", []step{
			{"EHLO x\r\nMAIL FROM:<a@fabrikam.test>\nRCPT TO:<alice@contoso.test>\r\nNOOP\r\n", 3},
		}, []string{"250", "500 5.5.2", "250 2.0.0"}, nil},
		{"a 10 kB command line gets 500 5.5.2 and the session goes on", []step{
			{"EHLO x\r\nNOOP " + strings.Repeat("x", 10000) + "\r\nNOOP\r\n", 3},
		}, []string{"250", "500 5.5.2", "250 2.0.0"}, nil},
		{"an unknown MAIL parameter gets 555 5.5.4", []step{
			{"EHLO x\r\nMAIL FROM:<a@fabrikam.test> FROB=1\r\n", 2},
		}, []string{"250", "555 5.5.4"}, nil},
		{"SIZE of 2^32 or more is larger than the limit", []step{
			{"EHLO x\r\nMAIL FROM:<a@fabrikam.test> SIZE=4294967296\r\nMAIL FROM:<a@fabrikam.test> SIZE=99999999999999999999999\r\n", 3},
		}, []string{"250", "552 5.3.4", "552 5.3.4"}, nil},
		{"bad base64 in AUTH gets 501 5.5.2", []step{
			{"EHLO x\r\nAUTH PLAIN !!!\r\n", 2},
		}, []string{"250", "501 5.5.2"}, nil},
		{"DATA without a recipient and BDAT without MAIL get 503", []step{
			{"EHLO x\r\nDATA\r\nMAIL FROM:<a@fabrikam.test>\r\nDATA\r\nBDAT 3 LAST\r\nabc", 5},
		}, []string{"250", "503 5.5.1", "250 2.1.0", "503 5.5.1", "503 5.5.1"}, nil},
		{"commands pipelined after a refused end-of-data deliver nothing", []step{
			{open, 4},
			{"Subject: t\r\n\r\nx\rx\r\n.\r\nRCPT TO:<alice@contoso.test>\r\nDATA\r\n", 3},
		}, []string{"250", "250", "250", "354", "554 5.6.0", "503 5.5.1", "503 5.5.1"}, nil},
		{"BDAT chunks make one message", []step{
			{"EHLO x\r\nMAIL FROM:<a@fabrikam.test>\r\nRCPT TO:<alice@contoso.test>\r\nBDAT 14\r\nSubject: t\r\n\r\nBDAT 6 LAST\r\nbody\r\n", 5},
		}, []string{"250", "250", "250", "250 2.0.0", "250 2.6.0"}, []string{"alice@contoso.test"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			addr, q := startServer(t)
			got := converse(t, addr, tc.steps)[1:]
			if len(got) != len(tc.want) {
				t.Fatalf("got %d replies %q, want %q", len(got), got, tc.want)
			}
			for i := range tc.want {
				if !strings.HasPrefix(got[i], tc.want[i]) {
					t.Errorf("reply %d = %q, want %q (all %q)", i, got[i], tc.want[i], got)
				}
			}
			q.mu.Lock()
			defer q.mu.Unlock()
			var queued []string
			for _, m := range q.msgs {
				var rs []string
				for _, r := range m.Recipients {
					rs = append(rs, r.Addr)
				}
				queued = append(queued, strings.Join(rs, ","))
			}
			if strings.Join(queued, ";") != strings.Join(tc.queued, ";") {
				t.Errorf("queued %q, want %q", queued, tc.queued)
			}
		})
	}
}

// TestDefaultSizeLimit: a connector with no limit of its own takes Exchange's 10 MB,
// advertised and enforced after end-of-data without queuing anything (SEC-009).
func TestDefaultSizeLimit(t *testing.T) {
	addr, q := startServer(t)
	big := "Subject: big\r\n\r\n" + strings.Repeat(strings.Repeat("x", 998)+"\r\n", 11<<10) + ".\r\n"
	got := converse(t, addr, []step{{"EHLO x\r\n", 1}, {"MAIL FROM:<a@fabrikam.test>\r\nRCPT TO:<alice@contoso.test>\r\nDATA\r\n", 3}, {big, 1}})
	if !strings.HasPrefix(got[len(got)-1], "552 5.3.4") {
		t.Fatalf("end of a 11 MB message: %q", got)
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.msgs) != 0 {
		t.Fatalf("%d messages queued", len(q.msgs))
	}
}

// TestQueueFailure: a message the spool has no room for gets 452 4.3.1 and no 250
// (SEC-010).
func TestQueueFailure(t *testing.T) {
	s := &scenario.Scenario{Org: scenario.Org{AcceptedDomains: []scenario.AcceptedDomain{{Domain: "contoso.test", Type: scenario.Authoritative}}}}
	srv := New("EDGE1", "edge1.contoso.test", []Connector{{Name: "Internet", Permissions: []scenario.Permission{scenario.PermAnonymous}}},
		WithDomains(s), WithQueue(failingQueue{}))
	got := converse(t, serve(t, srv), []step{{open3, 4}, {"Subject: t\r\n\r\nx\r\n.\r\n", 1}})
	if last := got[len(got)-1]; !strings.HasPrefix(last, "452 4.3.1") {
		t.Fatalf("end of data with a full spool: %q", got)
	}
}

const open3 = "EHLO x\r\nMAIL FROM:<a@fabrikam.test>\r\nRCPT TO:<alice@contoso.test>\r\nDATA\r\n"

type failingQueue struct{}

func (failingQueue) Enqueue(context.Context, *queue.Message, []byte) error {
	return fmt.Errorf("spool put: %w", syscall.ENOSPC)
}

// TestSTARTTLS: what a client pipelines behind STARTTLS is thrown away, the session
// inside TLS is checked like the one before it, and a second STARTTLS is refused
// (SEC-003, SEC-008).
func TestSTARTTLS(t *testing.T) {
	ca := testca.Shared()
	srvTLS, err := ca.ServerConfig("edge1.contoso.test")
	if err != nil {
		t.Fatal(err)
	}
	s := &scenario.Scenario{Org: scenario.Org{AcceptedDomains: []scenario.AcceptedDomain{{Domain: "contoso.test", Type: scenario.Authoritative}}}}
	q := &memQueue{}
	srv := New("EDGE1", "edge1.contoso.test", []Connector{{Name: "Internet", Permissions: []scenario.Permission{scenario.PermAnonymous}}},
		WithDomains(s), WithQueue(q), WithTLS(srvTLS))
	addr := serve(t, srv)

	c, r := dial(t, addr)
	readReply(t, r) // greeting
	if _, err := io.WriteString(c, "EHLO x\r\n"); err != nil {
		t.Fatal(err)
	}
	if ehlo := readReply(t, r); !strings.Contains(ehlo, "STARTTLS") {
		t.Fatalf("EHLO reply without STARTTLS: %q", ehlo)
	}
	if _, err := io.WriteString(c, "STARTTLS\r\nNOOP\r\n"); err != nil {
		t.Fatal(err)
	}
	if got := readReply(t, r); !strings.HasPrefix(got, "220 ") {
		t.Fatalf("STARTTLS: %q", got)
	}
	tc := tls.Client(c, ca.ClientConfig("edge1.contoso.test"))
	if err := tc.Handshake(); err != nil {
		t.Fatalf("handshake after pipelined NOOP: %v", err)
	}
	tr := bufio.NewReader(tc)
	if _, err := io.WriteString(tc, "EHLO x\r\n"); err != nil {
		t.Fatal(err)
	}
	ehlo := readReply(t, tr)
	if !strings.HasPrefix(ehlo, "250-") || strings.Contains(ehlo, "STARTTLS") {
		t.Fatalf("first reply inside TLS %q: want the EHLO reply, without STARTTLS (the pipelined NOOP discarded)", ehlo)
	}
	for _, tt := range []struct{ send, want string }{
		{"MAIL FROM: <a@fabrikam.test>\r\n", "501 5.5.2"},
		{"RCPT TO:<alice@contoso.test>\r\n", "503 5.5.1"},
		{"STARTTLS\r\n", "503 5.5.1"},
		{"FROBNICATE\r\n", "500 5.5.1"},
	} {
		if _, err := io.WriteString(tc, tt.send); err != nil {
			t.Fatal(err)
		}
		if got := readReply(t, tr); !strings.HasPrefix(got, tt.want) {
			t.Errorf("inside TLS, %q got %q, want %q", tt.send, got, tt.want)
		}
	}

	// A handshake that fails ends the session: nothing more is read in the clear.
	c2, r2 := dial(t, addr)
	readReply(t, r2)
	if _, err := io.WriteString(c2, "EHLO x\r\nSTARTTLS\r\n"); err != nil {
		t.Fatal(err)
	}
	readReply(t, r2)
	readReply(t, r2)
	if _, err := io.WriteString(c2, "this is no TLS client hello\r\nNOOP\r\n"); err != nil {
		t.Fatal(err)
	}
	rest, _ := io.ReadAll(r2)
	if strings.Contains(string(rest), "250") {
		t.Fatalf("after a failed handshake the server answered in the clear: %q", rest)
	}
}

// readReply reads one whole reply, continuation lines included.
func readReply(t *testing.T, r *bufio.Reader) string {
	t.Helper()
	var b strings.Builder
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("reading reply: %v (so far %q)", err, b.String())
		}
		b.WriteString(line)
		if len(line) < 4 || line[3] != '-' {
			return b.String()
		}
	}
}
