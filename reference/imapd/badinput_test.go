package imapd_test

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mailflow/mailflow/fixtures/testca"
	"github.com/mailflow/mailflow/reference/imapd"
)

// raw is a client that writes bytes as given, for input no well-behaved client sends.
type raw struct {
	t    *testing.T
	conn net.Conn
	r    *bufio.Reader
}

func dialRaw(t *testing.T, addr string) *raw {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	c := &raw{t: t, conn: conn, r: bufio.NewReader(conn)}
	if g := c.line(); !strings.HasPrefix(g, "* OK") {
		t.Fatalf("greeting %q", g)
	}
	return c
}

// line reads one line; the deadline only keeps a broken server from hanging the test.
func (c *raw) line() string {
	c.t.Helper()
	_ = c.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	l, err := c.r.ReadString('\n')
	if err != nil {
		c.t.Fatalf("read: %v (after %q)", err, l)
	}
	return strings.TrimRight(l, "\r\n")
}

func (c *raw) send(s string) {
	c.t.Helper()
	if _, err := io.WriteString(c.conn, s); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

// cmd sends a command line and returns the tagged reply, the untagged ones before it
// collected in seen.
func (c *raw) cmd(tag, line string) (reply string, seen []string) {
	c.t.Helper()
	c.send(tag + " " + line + "\r\n")
	return c.until(tag)
}

func (c *raw) until(tag string) (string, []string) {
	c.t.Helper()
	var seen []string
	for {
		l := c.line()
		if strings.HasPrefix(l, tag+" ") {
			return l, seen
		}
		seen = append(seen, l)
	}
}

func (c *raw) starttls() {
	c.t.Helper()
	if r, _ := c.cmd("tls", "STARTTLS"); !strings.HasPrefix(r, "tls OK") {
		c.t.Fatalf("STARTTLS: %q", r)
	}
	tc := tls.Client(c.conn, testca.Shared().ClientConfig("127.0.0.1"))
	if err := tc.Handshake(); err != nil {
		c.t.Fatal(err)
	}
	c.conn, c.r = tc, bufio.NewReader(tc)
}

func (c *raw) login() {
	c.t.Helper()
	c.starttls()
	if r, _ := c.cmd("l", `LOGIN "`+alice+`" "pw"`); !strings.HasPrefix(r, "l OK") {
		c.t.Fatalf("LOGIN: %q", r)
	}
}

func want(t *testing.T, what, got, prefix string) {
	t.Helper()
	if !strings.HasPrefix(got, prefix) {
		t.Errorf("%s: %q, want %q...", what, got, prefix)
	}
}

// The listener answers bad input and keeps serving: on the same connection where the
// protocol allows, and on new ones in every case.
func TestBadInputBeforeLogin(t *testing.T) {
	e := start(t)
	c := dialRaw(t, e.srv.Addr())
	r, _ := c.cmd("a1", "SELECT INBOX")
	want(t, "SELECT before login", r, "a1 BAD")
	r, _ = c.cmd("a3", `LOGIN "`+alice+`" "pw"`)
	want(t, "LOGIN in the clear", r, "a3 NO [PRIVACYREQUIRED]")
	r, _ = c.cmd("a4", "AUTHENTICATE PLAIN "+plainIR(alice, "pw"))
	want(t, "AUTHENTICATE in the clear", r, "a4 NO [PRIVACYREQUIRED]")
	r, _ = c.cmd("a5", "LOGIN {x}")
	want(t, "malformed literal", r, "a5 BAD")
	r, _ = c.cmd("a6", "NOOP")
	want(t, "NOOP after the bad literal", r, "a6 OK")
	c.starttls()
	r, _ = c.cmd("a7", `LOGIN "`+alice+`" "nope"`)
	want(t, "wrong password", r, "a7 NO [AUTHENTICATIONFAILED]")
	r, _ = c.cmd("a8", `LOGIN "`+alice+`" "pw"`)
	want(t, "right password", r, "a8 OK")
	r, _ = c.cmd("a9", "FROBNICATE now")
	want(t, "unknown command after login", r, "a9 BAD")
	r, _ = c.cmd("a10", "NOOP")
	want(t, "NOOP after the unknown command", r, "a10 OK")

	// Before login one unknown command ends the connection (BYE), so another protocol's
	// client cannot talk to this server through it (cross-protocol attacks); the
	// listener still serves the next connection.
	c2 := dialRaw(t, e.srv.Addr())
	r, _ = c2.cmd("b1", "EHLO attacker.example")
	want(t, "unknown command before login", r, "b1 BAD")
	c3 := dialRaw(t, e.srv.Addr())
	r, _ = c3.cmd("c1", "NOOP")
	want(t, "NOOP on a new connection", r, "c1 OK")
}

func TestHugeLiteralsAreRefusedUnread(t *testing.T) {
	e := start(t, imapd.WithAppendLimit(1024))
	c := dialRaw(t, e.srv.Addr())
	c.login()
	// A synchronizing literal is refused before the client may send it: no "+".
	c.send("h1 APPEND INBOX {99999999999}\r\n")
	r, seen := c.until("h1")
	want(t, "APPEND of 99999999999 bytes", r, "h1 NO [TOOBIG]")
	for _, l := range seen {
		if strings.HasPrefix(l, "+") {
			t.Errorf("continuation %q offered for a literal over the limit", l)
		}
	}
	c.send("h2 APPEND INBOX {2000}\r\n")
	r, _ = c.until("h2")
	want(t, "APPEND just over the limit", r, "h2 NO [TOOBIG]")
	r, _ = c.cmd("h3", "NOOP")
	want(t, "NOOP after refused literals", r, "h3 OK")
	// A literal over 4 KiB where the command buffers it (a folder name) is refused
	// without a continuation either. go-imap v2.0.0-beta.8 then discards the client's
	// next line as the rest of the refused command, so h5 gets no answer of its own;
	// the connection goes on.
	c.send("h4 SELECT {10000000}\r\nh5 NOOP\r\n")
	r, seen = c.until("h4")
	want(t, "SELECT with a 10 MB literal", r, "h4 BAD")
	if len(seen) > 0 {
		t.Errorf("untagged %q before the refusal", seen)
	}
	r, _ = c.cmd("h6", "NOOP")
	want(t, "NOOP after the refused literal", r, "h6 OK")
	c2 := dialRaw(t, e.srv.Addr())
	c2.login()
	r, _ = c2.cmd("n1", "SELECT INBOX")
	want(t, "SELECT on a new connection", r, "n1 OK")
	if entries(t, filepath.Join(e.root, alice, "tmp"))+entries(t, filepath.Join(e.root, alice, "cur")) != 0 {
		t.Error("a refused literal left a file behind")
	}
}

// A client gone in the middle of an APPEND loses that message only: every APPEND
// answered OK is there, and nothing half-written is.
func TestClosedMidAppendKeepsWhatWasAcknowledged(t *testing.T) {
	e := start(t)
	c := dialRaw(t, e.srv.Addr())
	c.login()
	m := msg("kept@x")
	c.send(fmt.Sprintf("p1 APPEND INBOX (\\Seen) {%d}\r\n", len(m)))
	if l := c.line(); !strings.HasPrefix(l, "+") {
		t.Fatalf("APPEND: %q, want a continuation", l)
	}
	c.send(m + "\r\n")
	r, _ := c.until("p1")
	want(t, "first APPEND", r, "p1 OK [APPENDUID ")
	lost := msg("lost@x")
	c.send(fmt.Sprintf("p2 APPEND INBOX {%d}\r\n", len(lost)))
	if l := c.line(); !strings.HasPrefix(l, "+") {
		t.Fatalf("APPEND: %q, want a continuation", l)
	}
	c.send(lost[:len(lost)/2])
	c.conn.Close()

	c2 := dialRaw(t, e.srv.Addr())
	c2.login()
	r, seen := c2.cmd("s", "SELECT INBOX")
	want(t, "SELECT", r, "s OK")
	if !contains(seen, "* 1 EXISTS") {
		t.Errorf("SELECT INBOX after the dropped APPEND: %q, want 1 EXISTS", seen)
	}
	r, seen = c2.cmd("f", "FETCH 1 (FLAGS BODY.PEEK[])")
	want(t, "FETCH", r, "f OK")
	if len(seen) == 0 || !strings.Contains(strings.Join(seen, "\n"), "kept@x") || !strings.Contains(seen[0], `\Seen`) {
		t.Errorf("FETCH 1: %q, want the acknowledged message with \\Seen", seen)
	}
	// The server may still be reading the dropped literal when SELECT runs; once its
	// session has ended (Close waits for it) nothing of it may remain.
	if err := e.srv.Close(); err != nil {
		t.Fatal(err)
	}
	if n := entries(t, filepath.Join(e.root, alice, "tmp")); n != 0 {
		t.Errorf("%d files left in tmp", n)
	}
	if n := entries(t, filepath.Join(e.root, alice, "cur")); n != 1 {
		t.Errorf("%d files in cur, want the one acknowledged", n)
	}
}

func contains(lines []string, s string) bool {
	for _, l := range lines {
		if l == s {
			return true
		}
	}
	return false
}

func entries(t *testing.T, dir string) int {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if os.IsNotExist(err) {
		return 0
	}
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}
