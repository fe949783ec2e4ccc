package framework

import (
	"bufio"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"net/textproto"
	"regexp"
	"strings"
	"time"

	"github.com/onsi/ginkgo/v2"
	"github.com/onsi/gomega"
)

// Reply is one SMTP reply.
type Reply struct {
	Code     int
	Enhanced string // "5.7.1", empty when the reply carries none
	Text     string // all lines joined with "\n", enhanced code of the first line removed
	Lines    []string
	Err      error // the connection failed instead of replying
}

func (r Reply) String() string {
	if r.Err != nil {
		return "(no reply: " + r.Err.Error() + ")"
	}
	return fmt.Sprintf("%d %s", r.Code, strings.Join(r.Lines, " / "))
}

var enhancedRe = regexp.MustCompile(`^([245])\.(\d{1,3})\.(\d{1,3})(?:\s|$)`)

// Session is a deliberately low-level SMTP client: suites must be able to send what a
// well-behaved client never would, and to show the exact exchange when a spec fails.
type Session struct {
	addr string
	conn net.Conn
	tp   *textproto.Conn
	log  strings.Builder
	// enhanced: the last EHLO reply advertised ENHANCEDSTATUSCODES; unjudged: a
	// clause's enhanced code went unjudged because it did not (said once).
	enhanced, unjudged bool
}

// Dial connects to a server's receive connector ("" for its first) and reads the greeting.
func (w *World) Dial(server, connector string) (*Session, Reply) {
	ginkgo.GinkgoHelper()
	addr, err := w.Endpoint(server, connector)
	gomega.Expect(err).NotTo(gomega.HaveOccurred())
	s, r := DialAddr(addr)
	w.sessions = append(w.sessions, s)
	return s, r
}

// DialAddr connects to addr and reads the greeting.
func DialAddr(addr string) (*Session, Reply) {
	ginkgo.GinkgoHelper()
	conn, err := net.DialTimeout("tcp", addr, 10*time.Second)
	gomega.Expect(err).NotTo(gomega.HaveOccurred(), "connecting to %s", addr)
	s := &Session{addr: addr, conn: conn, tp: textproto.NewConn(conn)}
	fmt.Fprintf(&s.log, "   (connected to %s)\n", addr)
	return s, s.read()
}

func (s *Session) read() Reply { return s.ReadWithin(30 * time.Second) }

// ReadWithin reads one more reply, waiting at most d: for a reply that may never
// come, because the server is still reading what the spec meant as the end of data.
func (s *Session) ReadWithin(d time.Duration) Reply {
	_ = s.conn.SetReadDeadline(time.Now().Add(d))
	code, msg, err := s.tp.ReadResponse(0)
	var pe *textproto.Error
	if err != nil && !errors.As(err, &pe) {
		fmt.Fprintf(&s.log, "S: (%v)\n", err)
		return Reply{Err: err}
	}
	r := newReply(code, msg)
	for _, l := range r.Lines {
		fmt.Fprintf(&s.log, "S: %d %s\n", code, l)
	}
	return r
}

func newReply(code int, msg string) Reply {
	lines := strings.Split(msg, "\n")
	r := Reply{Code: code, Lines: lines, Text: msg}
	if m := enhancedRe.FindStringSubmatch(lines[0]); m != nil {
		r.Enhanced = fmt.Sprintf("%s.%s.%s", m[1], m[2], m[3])
		r.Text = strings.TrimSpace(strings.TrimPrefix(msg, strings.Fields(lines[0])[0]))
	}
	return r
}

// Cmd sends one command line and reads its reply.
func (s *Session) Cmd(format string, args ...any) Reply {
	line := fmt.Sprintf(format, args...)
	fmt.Fprintf(&s.log, "C: %s\n", line)
	_ = s.conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
	if err := s.tp.PrintfLine("%s", line); err != nil {
		return Reply{Err: err}
	}
	r := s.read()
	if verb, _, _ := strings.Cut(line, " "); strings.EqualFold(verb, "EHLO") && r.Code == 250 {
		s.enhanced = r.Advertises("ENHANCEDSTATUSCODES")
	}
	return r
}

// Enhanced says whether the session's last EHLO reply advertised
// ENHANCEDSTATUSCODES: only then must the replies carry enhanced codes (RFC 2034 §3).
func (s *Session) Enhanced() bool { return s.enhanced }

// HaveReply matches a Reply by code and, where the session's last EHLO reply
// advertised ENHANCEDSTATUSCODES, by enhanced code too. Where it did not, only the
// code is judged and the clause says so (INFO), as RFC 2034 asks enhanced codes only
// of a server that offers them.
func (s *Session) HaveReply(code int, enhanced string) gomega.OmegaMatcher {
	if s.enhanced {
		return HaveReply(code, enhanced)
	}
	s.unjudgedEnhanced(enhanced)
	return HaveReply(code)
}

// EnhancedCode matches a Reply's enhanced code where the session's last EHLO reply
// advertised ENHANCEDSTATUSCODES, and anything where it did not (saying so, as
// HaveReply does).
func (s *Session) EnhancedCode(enhanced string) gomega.OmegaMatcher {
	if s.enhanced {
		return gomega.HaveField("Enhanced", enhanced)
	}
	s.unjudgedEnhanced(enhanced)
	return gomega.WithTransform(func(Reply) bool { return true }, gomega.BeTrue())
}

func (s *Session) unjudgedEnhanced(enhanced string) {
	if !s.unjudged {
		s.unjudged = true
		Info("ENHANCEDSTATUSCODES is not advertised, so only the three-digit code was judged where the clause names %s", enhanced)
	}
}

// Raw writes bytes as they are (pipelining, smuggling) without reading.
func (s *Session) Raw(b string) error {
	if len(b) > 1024 {
		// A 10 kB command line or a message over the size limit says nothing more
		// in full than in its start.
		fmt.Fprintf(&s.log, "C: %q... (%d bytes in all)\n", b[:200], len(b))
	} else {
		fmt.Fprintf(&s.log, "C: %q\n", b)
	}
	_, err := io.WriteString(s.conn, b)
	return err
}

// Read reads one more reply (after Raw).
func (s *Session) Read() Reply { return s.read() }

// Data sends DATA, then the message and the terminator; it returns the DATA reply and,
// when that was 354, the end-of-data reply.
func (s *Session) Data(msg string) (Reply, Reply) {
	r := s.Cmd("DATA")
	if r.Code != 354 {
		return r, Reply{}
	}
	w := s.tp.DotWriter()
	_, _ = io.WriteString(w, msg)
	fmt.Fprintf(&s.log, "C: (%d bytes of message)\nC: .\n", len(msg))
	if err := w.Close(); err != nil {
		return r, Reply{Err: err}
	}
	return r, s.read()
}

// StartTLS upgrades the session, trusting the topology's test CA through cfg.
func (s *Session) StartTLS(cfg *tls.Config) Reply {
	r := s.Cmd("STARTTLS")
	if r.Code != 220 {
		return r
	}
	if err := s.Handshake(cfg); err != nil {
		return Reply{Err: err}
	}
	return r
}

// Handshake runs the client side of TLS on the connection, after a 220 to a
// STARTTLS the spec sent itself (pipelined with other commands, say). When it fails
// the session stays on the plain connection, so a spec can see what the server does
// next.
func (s *Session) Handshake(cfg *tls.Config) error {
	if cfg.ServerName == "" {
		cfg = cfg.Clone()
		cfg.ServerName, _, _ = net.SplitHostPort(s.addr)
	}
	_ = s.conn.SetDeadline(time.Now().Add(30 * time.Second))
	defer func() { _ = s.conn.SetDeadline(time.Time{}) }()
	tc := tls.Client(s.conn, cfg)
	if err := tc.Handshake(); err != nil {
		fmt.Fprintf(&s.log, "   (TLS handshake failed: %v)\n", err)
		return err
	}
	fmt.Fprintf(&s.log, "   (TLS established)\n")
	s.enhanced = false // RFC 3207 §4.2: what the EHLO before TLS said is forgotten
	s.conn = tc
	s.tp = textproto.NewConn(tc)
	return nil
}

// ReadAll reads replies until none comes within quiet, for a spec that counts what a
// server answered to one write.
func (s *Session) ReadAll(quiet time.Duration) []Reply {
	var out []Reply
	for {
		r := s.ReadWithin(quiet)
		if r.Err != nil {
			return out
		}
		out = append(out, r)
	}
}

// ParseReplies splits what a server wrote (AwaitClose's text) into replies; a
// trailing partial line is left out.
func ParseReplies(text string) []Reply {
	tp := textproto.NewReader(bufio.NewReader(strings.NewReader(text)))
	var out []Reply
	for {
		code, msg, err := tp.ReadResponse(0)
		var pe *textproto.Error
		if err != nil && !errors.As(err, &pe) {
			return out
		}
		out = append(out, newReply(code, msg))
	}
}

// Closed reports whether the server has closed the connection.
func (s *Session) Closed() bool {
	_ = s.conn.SetReadDeadline(time.Now().Add(2 * time.Second))
	var b [1]byte
	_, err := s.conn.Read(b[:])
	return err != nil && !isTimeout(err)
}

// AwaitClose waits up to d for the server to close the connection, taking whatever
// it says first (a 421, say); it reports whether the connection ended and what was
// said.
func (s *Session) AwaitClose(d time.Duration) (bool, string) {
	_ = s.conn.SetReadDeadline(time.Now().Add(d))
	b, err := io.ReadAll(s.conn)
	fmt.Fprintf(&s.log, "S: %q (then the connection ended: %v)\n", b, err == nil)
	return err == nil || !isTimeout(err), string(b)
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// LocalAddr is the client's end of the connection: the TCP peer address the server sees.
func (s *Session) LocalAddr() netip.Addr {
	ap, _ := netip.ParseAddrPort(s.conn.LocalAddr().String())
	return ap.Addr().Unmap()
}

// Close ends the session without QUIT.
func (s *Session) Close() { _ = s.conn.Close() }

// Transcript is the exchange so far.
func (s *Session) Transcript() string { return s.log.String() }

// Explain is a Gomega description: on failure it prints the clause, what was expected
// and the SMTP exchange as it happened.
func (s *Session) Explain(expected string, args ...any) func() string {
	return func() string {
		return fmt.Sprintf("clause:   %s\nexpected: %s\nexchange:\n%s", currentClauses(), fmt.Sprintf(expected, args...), indent(s.Transcript()))
	}
}

func indent(t string) string {
	return "    " + strings.ReplaceAll(strings.TrimRight(t, "\n"), "\n", "\n    ")
}

// HaveReply matches a Reply by code and, when given, enhanced code.
func HaveReply(code int, enhanced ...string) gomega.OmegaMatcher {
	want := gomega.HaveField("Code", code)
	if len(enhanced) > 0 {
		return gomega.SatisfyAll(want, gomega.HaveField("Enhanced", enhanced[0]))
	}
	return want
}

// HaveClass matches a Reply by the first digit of its code (RFC 5321 §4.2.1: clients
// act on the first digit) and, when given, its enhanced code.
func HaveClass(class int, enhanced ...string) gomega.OmegaMatcher {
	m := gomega.WithTransform(func(r Reply) int { return r.Code / 100 }, gomega.Equal(class))
	if len(enhanced) > 0 {
		return gomega.SatisfyAll(m, gomega.HaveField("Enhanced", enhanced[0]))
	}
	return m
}

// Extension is the EHLO reply's line for keyword, split into its parameters
// ("SIZE 20000", "AUTH PLAIN LOGIN", "AUTH=PLAIN"), and whether there is one.
func (r Reply) Extension(keyword string) ([]string, bool) {
	for _, l := range r.Lines {
		if fs := strings.Fields(strings.ReplaceAll(l, "=", " ")); len(fs) > 0 && strings.EqualFold(fs[0], keyword) {
			return fs[1:], true
		}
	}
	return nil, false
}

// Advertises says whether an EHLO reply lists keyword.
func (r Reply) Advertises(keyword string) bool {
	_, ok := r.Extension(keyword)
	return ok
}
