package esmtp

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
)

// memBackend accepts every sender and recipient and keeps what Data is given.
type memBackend struct {
	mu   sync.Mutex
	envs []Envelope
	data [][]byte
}

func (b *memBackend) NewSession(*Conn) (Session, error) { return memSession{b}, nil }

type memSession struct{ b *memBackend }

func (memSession) Mail(string, MailParams) error { return nil }

func (memSession) Rcpt(to string, _ RcptParams) (string, error) {
	if strings.HasPrefix(to, "refused@") {
		return "", &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "User unknown"}
	}
	return to, nil
}

// endingErr is a policy's refusal that ends the session.
type endingErr struct{ *smtp.SMTPError }

func (endingErr) EndsSession() bool { return true }
func (e endingErr) Unwrap() error   { return e.SMTPError }

func (s memSession) Data(env *Envelope, data []byte) error {
	if bytes.Contains(data, []byte("end-the-session")) {
		return endingErr{&smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 7, 950}, Message: "Refused by a rule"}}
	}
	s.b.mu.Lock()
	defer s.b.mu.Unlock()
	s.b.envs = append(s.b.envs, *env)
	s.b.data = append(s.b.data, append([]byte(nil), data...))
	return &smtp.SMTPError{Code: 250, EnhancedCode: smtp.EnhancedCode{2, 6, 0}, Message: fmt.Sprintf("<%d> Queued", len(s.b.envs))}
}

// scriptConn is a client that sends in and records what the server writes: the
// session runs to the end of in without a network.
type scriptConn struct {
	in  io.Reader
	out bytes.Buffer
}

func (c *scriptConn) Read(p []byte) (int, error)  { return c.in.Read(p) }
func (c *scriptConn) Write(p []byte) (int, error) { return c.out.Write(p) }
func (c *scriptConn) Close() error                { return nil }
func (c *scriptConn) LocalAddr() net.Addr         { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2), Port: 25} }
func (c *scriptConn) RemoteAddr() net.Addr {
	return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 40000}
}
func (c *scriptConn) SetDeadline(time.Time) error      { return nil }
func (c *scriptConn) SetReadDeadline(time.Time) error  { return nil }
func (c *scriptConn) SetWriteDeadline(time.Time) error { return nil }

// run plays in against a fresh server and returns its replies and what it took.
func run(in string, opts ...Option) (string, *memBackend) {
	b := &memBackend{}
	s := NewServer("mx.test", b, append([]Option{WithDSN(), WithLimits(Limits{MaxMessageSize: 1 << 16, MaxRecipients: 3, Timeout: time.Minute})}, opts...)...)
	c := &scriptConn{in: strings.NewReader(in)}
	s.serveConn(c)
	return c.out.String(), b
}

func TestSession(t *testing.T) {
	const hello = "EHLO c.test\r\n"
	for _, tt := range []struct {
		name, in string
		replies  []string // reply codes (and enhanced codes) after the greeting and EHLO
		taken    int
	}{
		{"a message", hello + "MAIL FROM:<a@x.test>\r\nRCPT TO:<b@y.test>\r\nDATA\r\nSubject: s\r\n\r\n..dot\r\n.\r\n",
			[]string{"250 2.1.0", "250 2.1.5", "354", "250 2.6.0"}, 1},
		{"null sender, Postmaster, source route", hello + "MAIL FROM:<>\r\nRCPT TO:<Postmaster>\r\nRCPT TO:<@r.test:b@y.test>\r\n",
			[]string{"250 2.1.0", "250 2.1.5", "250 2.1.5"}, 0},
		{"bad paths", hello + "MAIL FROM:<a b@x.test>\r\nMAIL FROM:<a@>\r\nMAIL FROM:<a@x.test>x\r\nMAIL FROM:<a@x.test>\r\nRCPT TO:<b>\r\nRCPT TO:<\"q d\"@y.test>\r\n",
			[]string{"501 5.1.7", "501 5.1.7", "501 5.5.2", "250 2.1.0", "501 5.1.3", "250 2.1.5"}, 0},
		{"parameters", hello + "MAIL FROM:<a@x.test> BODY=8BITMIME RET=HDRS ENVID=a+2Bb SIZE=100\r\nRCPT TO:<b@y.test> NOTIFY=NEVER,DELAY\r\nRCPT TO:<b@y.test> NOTIFY=SUCCESS ORCPT=rfc822;b+40y.test\r\nRCPT TO:<b@y.test> X=1\r\n",
			[]string{"250 2.1.0", "501 5.5.4", "250 2.1.5", "555 5.5.4"}, 0},
		{"recipient limit", hello + "MAIL FROM:<a@x.test>\r\nRCPT TO:<1@y.test>\r\nRCPT TO:<refused@y.test>\r\nRCPT TO:<2@y.test>\r\nRCPT TO:<3@y.test>\r\nRCPT TO:<4@y.test>\r\n",
			[]string{"250 2.1.0", "250 2.1.5", "550 5.1.1", "250 2.1.5", "250 2.1.5", "452 4.5.3"}, 0},
		{"HELO takes no parameters", "HELO c.test\r\nMAIL FROM:<a@x.test> SIZE=1\r\n", []string{"250", "555 5.5.4"}, 0},
		{"too big", hello + "MAIL FROM:<a@x.test> SIZE=70000\r\nMAIL FROM:<a@x.test>\r\nRCPT TO:<b@y.test>\r\nDATA\r\n" + strings.Repeat("x\r\n", 30000) + ".\r\nNOOP\r\n",
			[]string{"552 5.3.4", "250 2.1.0", "250 2.1.5", "354", "552 5.3.4", "250 2.0.0"}, 0},
		{"client gone in DATA", hello + "MAIL FROM:<a@x.test>\r\nRCPT TO:<b@y.test>\r\nDATA\r\npartial\r\n", []string{"250 2.1.0", "250 2.1.5", "354"}, 0},
		{"too many errors", hello + strings.Repeat("XYZZY\r\n", 25), append(repeat("500 5.5.1", 19), "500 5.5.1", "421 4.7.0"), 0},
		{"a refusal that ends the session", hello + "MAIL FROM:<a@x.test>\r\nRCPT TO:<b@y.test>\r\nDATA\r\nend-the-session\r\n.\r\nNOOP\r\n",
			[]string{"250 2.1.0", "250 2.1.5", "354", "554 5.7.950"}, 0},
		{"BDAT", hello + "MAIL FROM:<a@x.test>\r\nRCPT TO:<b@y.test>\r\nBDAT 3\r\nab\nBDAT 0 LAST\r\nMAIL FROM:<a@x.test>\r\nRCPT TO:<b@y.test>\r\nBDAT 4 LAST\r\nab\r\n",
			[]string{"250 2.1.0", "250 2.1.5", "250 2.0.0", "554 5.6.0", "250 2.1.0", "250 2.1.5", "250 2.6.0"}, 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			out, b := run(tt.in)
			got := replyCodes(out)
			if len(got) < 2 {
				t.Fatalf("no greeting and EHLO reply in %q", out)
			}
			got = got[2:]
			if !strings.HasPrefix(tt.in, "EHLO") {
				got = replyCodes(out)[1:]
			}
			if strings.Join(got, "|") != strings.Join(tt.replies, "|") {
				t.Errorf("replies\n got %q\nwant %q\n%s", got, tt.replies, out)
			}
			if len(b.envs) != tt.taken {
				t.Errorf("%d messages taken, want %d", len(b.envs), tt.taken)
			}
		})
	}
}

func repeat(s string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = s
	}
	return out
}

// replyCodes lists each reply's code and enhanced code ("250 2.1.5"; the code alone
// when it has none), one per reply, continuation lines skipped.
func replyCodes(out string) []string {
	var codes []string
	for _, line := range strings.Split(out, "\r\n") {
		if len(line) < 4 || line[3] == '-' {
			continue
		}
		code, rest := line[:3], line[4:]
		if f, _, _ := strings.Cut(rest, " "); len(f) >= 5 && f[1] == '.' && f[0] == code[0] {
			code += " " + f
		}
		codes = append(codes, code)
	}
	return codes
}

// TestEnvelope: what Data is given is the transaction's own envelope: the parameters
// of MAIL and RCPT, for the recipients this transaction accepted.
func TestEnvelope(t *testing.T) {
	_, b := run("EHLO c.test\r\nMAIL FROM:<a@x.test> RET=HDRS ENVID=id+2B1\r\nRCPT TO:<b@y.test> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;orig+40y.test\r\nRCPT TO:<refused@y.test>\r\nDATA\r\nx\r\n.\r\n" +
		"MAIL FROM:<c@x.test>\r\nRCPT TO:<d@y.test>\r\nDATA\r\ny\r\n.\r\n")
	if len(b.envs) != 2 {
		t.Fatalf("%d messages", len(b.envs))
	}
	e := b.envs[0]
	if e.From != "a@x.test" || e.Mail.Ret != "HDRS" || e.Mail.EnvID != "id+1" || len(e.Rcpts) != 1 ||
		e.Rcpts[0].Addr != "b@y.test" || strings.Join(e.Rcpts[0].Notify, ",") != "SUCCESS,FAILURE" || e.Rcpts[0].ORCPT != "orig@y.test" {
		t.Errorf("first envelope %+v", e)
	}
	if e := b.envs[1]; e.From != "c@x.test" || len(e.Rcpts) != 1 || e.Rcpts[0].Addr != "d@y.test" {
		t.Errorf("second envelope %+v", e)
	}
	if string(b.data[0]) != "x\r\n" || string(b.data[1]) != "y\r\n" {
		t.Errorf("data %q", b.data)
	}
}

// FuzzSession feeds byte streams to a session. Whatever arrives, the server does not
// panic or stop reading before the input ends, every 250 after end-of-data is a
// message it took for at least one recipient, and it takes nothing without one.
func FuzzSession(f *testing.F) {
	for _, seed := range []string{
		"EHLO c\r\nMAIL FROM:<a@x.test>\r\nRCPT TO:<b@y.test>\r\nDATA\r\nhi\r\n.\r\nQUIT\r\n",
		"EHLO x\r\nMAIL FROM:<a@x.test>\r\nRCPT TO:<b@y.test>\r\nMAIL FROM:<c@x.test>\r\nDATA\r\nbody\r\n.\r\n",
		"EHLO x\r\nMAIL FROM:<a\x00@x.test>\r\n",
		"EHLO x\x00y\r\n",
		"EHLO x\r\nMAIL FROM:<a@x.test>\r\nRCPT TO:<b@y.test>\r\nDATA\r\nbefore\r\r\n.\r\nNOOP\r\n",
		"EHLO x\r\nMAIL FROM:<a@x.test>\r\nRCPT TO:<b@y.test>\r\nDATA\r\nx\n.\nMAIL FROM:<e@x.test>\r\nRCPT TO:<y@y.test>\r\nDATA\r\nz\r\n.\r\n",
		"EHLO x\r\nMAIL FROM:<a@x.test>\r\nRCPT TO:<b@y.test>\r\nDATA\r\nx\r\n.\nRCPT TO:<y@y.test>\r\n.\r\n",
		"EHLO x\r\nMAIL FROM:<a@x.test>\r\nRCPT TO:<b@y.test>\r\nDATA\r\nx\r.\r\r\n.\r\n",
		"EHLO x\r\nSTARTTLS\r\nNOOP\r\n",
		"EHLO x\r\nNOOP " + strings.Repeat("x", 5000) + "\r\n",
		"EHLO x\r\nMAIL FROM:<a@x.test>\nRCPT TO:<b@y.test>\r\n",
		"EHLO x\r\nMAIL FROM:<a@x.test> SIZE=99999999999999999999\r\n",
		"EHLO x\r\nAUTH PLAIN !!\r\n",
		"EHLO x\r\nMAIL FROM:<a@x.test>\r\nRCPT TO:<b@y.test>\r\nBDAT 2\r\nabBDAT 1 LAST\r\nc",
		"EHLO x\r\nMAIL FROM:<a@x.test>\r\nRCPT TO:<b@y.test>\r\nBDAT 99999999999\r\n",
		"HELO x\r\nMAIL FROM:<\"a\\\"b\"@[1.2.3.4]>\r\nRCPT TO:<Postmaster>\r\nDATA\r\n.\r\n",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, in string) {
		var out string
		var b *memBackend
		done := make(chan struct{})
		go func() { out, b = run(in); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatalf("the session did not end with its input: %q", in)
		}
		if n := strings.Count(out, "\r\n250 2.6.0 <"); n != len(b.envs) {
			t.Fatalf("%d end-of-data 250s for %d messages taken\n%q", n, len(b.envs), out)
		}
		for _, e := range b.envs {
			if len(e.Rcpts) == 0 {
				t.Fatalf("a message taken with no recipient\n%q", out)
			}
		}
	})
}

// FuzzParsePath: the path parser never panics, and a mailbox it accepts has a local
// part and a domain with no space or control character outside quotes.
func FuzzParsePath(f *testing.F) {
	for _, s := range []string{"FROM:<a@b.test>", "FROM:<>", "TO:<Postmaster>", "TO:<@r.test,@s.test:u@d.test> NOTIFY=NEVER",
		`FROM:<"a b"@c.test>`, "FROM:<a@[127.0.0.1]>", "FROM: <a@b>", "FROM:<a@b", "TO:<a@b.test>x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, args string) {
		for _, kw := range []string{"FROM", "TO"} {
			path, _, err := parsePathArg(args, kw)
			if err != nil || path == "" || strings.EqualFold(path, "postmaster") {
				continue
			}
			mbox, err := parseMailbox(path)
			if err != nil {
				continue
			}
			at := strings.LastIndexByte(mbox, '@')
			if at <= 0 || at == len(mbox)-1 {
				t.Fatalf("accepted %q without local part and domain", mbox)
			}
			if !strings.HasPrefix(mbox, `"`) && strings.ContainsAny(mbox, " \r\n\x00") {
				t.Fatalf("accepted %q with a space or control character", mbox)
			}
		}
	})
}

// genData is DATA content generated as it is read: n octets of 998-octet lines, then
// the terminator, so the client side holds nothing.
type genData struct {
	line []byte
	left int64
	off  int
	tail []byte
}

func newGenData(n int64) *genData {
	return &genData{line: append(bytes.Repeat([]byte("x"), 998), '\r', '\n'), left: n, tail: []byte(".\r\nQUIT\r\n")}
}

func (g *genData) Read(p []byte) (int, error) {
	if g.left <= 0 {
		if len(g.tail) == 0 {
			return 0, io.EOF
		}
		n := copy(p, g.tail)
		g.tail = g.tail[n:]
		return n, nil
	}
	n := 0
	for n < len(p) && g.left > 0 {
		c := copy(p[n:], g.line[g.off:])
		n += c
		g.off = (g.off + c) % len(g.line)
		g.left -= int64(c)
	}
	return n, nil
}

// BenchmarkRefuse100MB sends a 100 MB message to a server with Exchange's 10 MB limit
// and reports the largest heap seen while it is read and refused (SEC-009: the
// reference stays within 64 MiB of idle). peak-heap-MiB is the figure to watch.
func BenchmarkRefuse100MB(b *testing.B) {
	for i := 0; i < b.N; i++ {
		runtime.GC()
		var idle runtime.MemStats
		runtime.ReadMemStats(&idle)
		stop := make(chan struct{})
		peak := make(chan uint64)
		go func() {
			var max uint64
			var m runtime.MemStats
			t := time.NewTicker(5 * time.Millisecond)
			defer t.Stop()
			for {
				select {
				case <-stop:
					peak <- max
					return
				case <-t.C:
					runtime.ReadMemStats(&m)
					if m.HeapInuse > max {
						max = m.HeapInuse
					}
				}
			}
		}()
		in := io.MultiReader(strings.NewReader("EHLO c.test\r\nMAIL FROM:<a@x.test>\r\nRCPT TO:<b@y.test>\r\nDATA\r\n"), newGenData(100<<20))
		srv := NewServer("mx.test", &memBackend{}, WithLimits(Limits{MaxMessageSize: 10 << 20, MaxRecipients: 10, Timeout: time.Minute}))
		c := &scriptConn{in: in}
		srv.serveConn(c)
		close(stop)
		max := <-peak
		if !strings.Contains(c.out.String(), "552 5.3.4") {
			b.Fatalf("the 100 MB message was not refused: %q", c.out.String())
		}
		b.ReportMetric(float64(max-min(max, idle.HeapInuse))/(1<<20), "peak-heap-MiB")
	}
}

// tlsAuthBackend's sessions offer AUTH only inside TLS, as a submission port does.
type tlsAuthBackend struct{ memBackend }

func (b *tlsAuthBackend) NewSession(c *Conn) (Session, error) {
	return tlsAuthSession{memSession{&b.memBackend}, c}, nil
}

type tlsAuthSession struct {
	memSession
	c *Conn
}

func (s tlsAuthSession) AuthMechanisms() []string {
	if s.c.TLS() {
		return []string{"PLAIN"}
	}
	return nil
}
func (tlsAuthSession) Authenticate(string, string, string) error { return nil }
func (tlsAuthSession) ClearAuthRefusal() error {
	return &smtp.SMTPError{Code: 538, EnhancedCode: smtp.EnhancedCode{5, 7, 11}, Message: "Encryption required"}
}

// TestClearAuth: AUTH in the clear gets the session's refusal where it offers AUTH
// inside TLS, and 503 where it never authenticates.
func TestClearAuth(t *testing.T) {
	const in = "EHLO c.test\r\nAUTH PLAIN AGEAYg==\r\nMAIL FROM:<a@x.test>\r\n"
	for _, tt := range []struct {
		name string
		b    Backend
		want string
	}{
		{"AUTH only inside TLS", &tlsAuthBackend{}, "538 5.7.11"},
		{"no AUTH at all", &memBackend{}, "503 5.5.1"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := NewServer("mx.test", tt.b)
			c := &scriptConn{in: strings.NewReader(in)}
			s.serveConn(c)
			got := replyCodes(c.out.String())
			if len(got) != 4 || got[2] != tt.want || got[3] != "250 2.1.0" {
				t.Errorf("replies %q, want AUTH answered %s and the session going on\n%s", got, tt.want, c.out.String())
			}
			if strings.Contains(c.out.String(), "AUTH PLAIN") {
				t.Errorf("AUTH advertised in the clear\n%s", c.out.String())
			}
		})
	}
}

// loginBackend's sessions offer PLAIN and LOGIN and take only u / p.
type loginBackend struct{ memBackend }

func (b *loginBackend) NewSession(*Conn) (Session, error) {
	return loginSession{memSession{&b.memBackend}}, nil
}

type loginSession struct{ memSession }

func (loginSession) AuthMechanisms() []string { return []string{"PLAIN", "LOGIN"} }
func (loginSession) Authenticate(_, user, pass string) error {
	if user == "u" && pass == "p" {
		return nil
	}
	return &smtp.SMTPError{Code: 535, EnhancedCode: smtp.EnhancedCode{5, 7, 8}, Message: "Authentication unsuccessful"}
}

// TestAuthLogin: LOGIN asks for the user name and the password in turn (or takes the
// name as an initial response), and a cancel or a wrong password leaves the session
// unauthenticated and going on.
func TestAuthLogin(t *testing.T) {
	const hello = "EHLO c.test\r\n"
	for _, tt := range []struct {
		name, in string
		replies  []string
	}{
		{"prompted", hello + "AUTH LOGIN\r\ndQ==\r\ncA==\r\nAUTH PLAIN AHUAcA==\r\n", []string{"334", "334", "235 2.7.0", "503 5.5.1"}},
		{"initial response", hello + "AUTH LOGIN dQ==\r\ncA==\r\n", []string{"334", "235 2.7.0"}},
		{"wrong password", hello + "AUTH LOGIN dQ==\r\neA==\r\nAUTH LOGIN dQ==\r\ncA==\r\n", []string{"334", "535 5.7.8", "334", "235 2.7.0"}},
		{"cancelled", hello + "AUTH LOGIN\r\n*\r\nNOOP\r\n", []string{"334", "501 5.0.0", "250 2.0.0"}},
		{"bad base64", hello + "AUTH LOGIN\r\ndQ==\r\n!!\r\n", []string{"334", "334", "501 5.5.2"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := NewServer("mx.test", &loginBackend{})
			c := &scriptConn{in: strings.NewReader(tt.in)}
			s.serveConn(c)
			out := c.out.String()
			got := replyCodes(out)
			if len(got) < 2 || strings.Join(got[2:], "|") != strings.Join(tt.replies, "|") {
				t.Errorf("replies %q, want %q after the greeting and EHLO\n%s", got, tt.replies, out)
			}
			if !strings.Contains(out, "334 VXNlcm5hbWU6") && !strings.Contains(tt.in, "LOGIN dQ") {
				t.Errorf("no user name prompt\n%s", out)
			}
		})
	}
}
