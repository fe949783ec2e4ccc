package smtpd

import (
	"bytes"
	"fmt"
	"net"
	"regexp"
	"strings"
	"sync"

	"github.com/mailflow/mailflow/reference/replies"
)

// go-smtp v0.25.1 answers 502 for commands out of sequence, where RFC 5321 §4.1.4 and
// §3.3 require 503 (SMTP-003, SMTP-004, SMTP-005), and acknowledges RCPT with 2.0.0
// where the enhanced code for a valid recipient is 2.1.5 (RFC 3463, ACCEPT-002).
// go-smtp writes each reply line with its own flushed Write, so the reply lines are
// corrected here, on the way out, into the lines reference/replies holds, rather than
// re-implementing the protocol. After STARTTLS go-smtp wraps the raw connection itself
// and these corrections no longer apply (known limit).
var replyFixes = []struct {
	re   *regexp.Regexp
	repl []byte
}{
	{regexp.MustCompile(`^502 5\.5\.1 Please introduce yourself first\.\r\n`), []byte(replies.SendHelloFirst)},
	{regexp.MustCompile(`^502 5\.5\.1 Missing MAIL FROM command\.\r\n`), []byte(replies.NeedMailBeforeRcpt)},
	{regexp.MustCompile(`^502 5\.5\.1 Missing RCPT TO command\.\r\n`), []byte(replies.NoValidRecipients)},
	{regexp.MustCompile(`^500 5\.5\.2 Syntax errors, XUNK command unrecognized\r\n`), []byte(replies.CommandUnrecognized)},
	{regexp.MustCompile(`^250 2\.0\.0 I'll make sure <[^>]*> gets this\r\n`), []byte(replies.RecipientOK)},
	{regexp.MustCompile(`^250 2\.0\.0 Roger, accepting mail from <[^>]*>\r\n`), []byte(replies.SenderOK)},
}

// fixingConn corrects replies on the way out and, on the way in, turns a MAIL command
// whose path is not written "FROM:<...>" (a space after the colon, or no angle
// brackets: RFC 5321 §4.1.2 allows neither) into one go-smtp itself refuses with 501,
// so replies stay in command order under PIPELINING (SMTP-007). Input is handled a
// line at a time only in command mode; message data (after a 354), BDAT chunks and
// everything after STARTTLS pass through untouched.
type fixingConn struct {
	net.Conn
	ext         *Extension
	mu          sync.Mutex
	answers     [][]byte // the extension's replies, each in place of a NOOP's
	ehlo        bool     // an EHLO reply is due: the extension's keyword goes into it
	pending     []byte   // bytes read from the client, not yet handed to go-smtp
	data        bool     // inside DATA: pass through until CRLF.CRLF
	tail        []byte   // last bytes of data seen, to find a terminator split across reads
	passthrough bool
}

var (
	badMailFrom = regexp.MustCompile(`(?i)^MAIL FROM:(\s|[^<\s])`)
	// RFC 5321 §4.1.1.3 lets RCPT name "<Postmaster>" with no domain; go-smtp's path
	// parser insists on one, so the bare form travels under a sentinel domain that the
	// session maps back (normalizeRcpt).
	barePostmaster = regexp.MustCompile(`(?i)^(RCPT TO:<)(postmaster)(>.*)$`)
	verbRe         = regexp.MustCompile(`^[A-Za-z]+`)
	knownVerbs     = map[string]bool{"HELO": true, "EHLO": true, "LHLO": true, "MAIL": true, "RCPT": true, "DATA": true,
		"RSET": true, "NOOP": true, "QUIT": true, "VRFY": true, "EXPN": true, "HELP": true, "AUTH": true,
		"STARTTLS": true, "BDAT": true, "SEND": true, "SOML": true, "SAML": true, "TURN": true}
)

// postmasterSentinel is the domain a bare <Postmaster> carries inside go-smtp.
const postmasterSentinel = "bare-postmaster.invalid"

// unknownVerb stands in for a command go-smtp cannot parse (a verb that is not four
// letters gets 501 "Bad command" there); RFC 5321 §4.2.4 wants 500 for it.
const unknownVerb = "XUNK"

func (c *fixingConn) Read(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for {
		if c.passthrough || c.data {
			if len(c.pending) == 0 {
				c.mu.Unlock()
				n, err := c.Conn.Read(p)
				c.mu.Lock()
				if n > 0 {
					c.pending = append(c.pending, p[:n]...)
				}
				if len(c.pending) == 0 {
					return n, err
				}
			}
			n := len(c.pending)
			if c.data && !c.passthrough {
				// Hand out data up to and including the terminator, then resume commands.
				probe := append(append([]byte(nil), c.tail...), c.pending...)
				if i := bytes.Index(probe, []byte("\r\n.\r\n")); i >= 0 {
					n = i + 5 - len(c.tail)
					c.data = false
					c.tail = nil
				} else {
					c.tail = append([]byte(nil), probe[max(0, len(probe)-4):]...)
				}
			}
			n = copy(p, c.pending[:n])
			c.pending = c.pending[n:]
			return n, nil
		}
		if i := bytes.IndexByte(c.pending, '\n'); i >= 0 {
			line := c.pending[:i+1]
			upper := bytes.ToUpper(bytes.TrimSpace(line))
			verb := strings.ToUpper(verbRe.FindString(string(line)))
			switch {
			case c.ext != nil && verb == c.ext.Verb:
				line = c.extension(line)
			case len(bytes.TrimSpace(line)) > 0 && !knownVerbs[verb]:
				line = []byte(unknownVerb + "\r\n")
			case badMailFrom.Match(line):
				line = []byte("MAIL FROM:<<\r\n")
			case barePostmaster.Match(bytes.TrimRight(line, "\r\n")):
				line = barePostmaster.ReplaceAll(bytes.TrimRight(line, "\r\n"), []byte("${1}${2}@"+postmasterSentinel+"${3}"))
				line = append(line, '\r', '\n')
			case bytes.Equal(upper, []byte("STARTTLS")), bytes.HasPrefix(upper, []byte("BDAT")):
				c.passthrough = true
			case verb == "EHLO" && c.ext != nil && c.ext.Keyword != "":
				c.ehlo = true
			}
			n := copy(p, line)
			if n < len(line) { // a short buffer: hand out the rest on the next Read
				rest := append([]byte(nil), line[n:]...)
				c.pending = append(rest, c.pending[i+1:]...)
				return n, nil
			}
			c.pending = c.pending[i+1:]
			return n, nil
		}
		buf := make([]byte, 4096)
		c.mu.Unlock()
		n, err := c.Conn.Read(buf)
		c.mu.Lock()
		c.pending = append(c.pending, buf[:n]...)
		if err != nil {
			if len(c.pending) == 0 {
				return 0, err
			}
			n := copy(p, c.pending)
			c.pending = c.pending[n:]
			return n, nil
		}
	}
}

func (c *fixingConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	if bytes.HasPrefix(p, []byte("354")) {
		c.data = true
		c.tail = []byte("\r\n") // DATA content starts at a line start
	}
	out := p
	switch {
	case len(c.answers) > 0 && bytes.HasPrefix(p, noopReply):
		out = c.answers[0]
		c.answers = c.answers[1:]
	case c.ehlo && bytes.HasPrefix(p, []byte("250-")):
		c.ehlo = false
		out = append(append([]byte(nil), p...), "250-"+c.ext.Keyword+"\r\n"...)
	case c.ehlo && bytes.HasPrefix(p, []byte("250 ")):
		c.ehlo = false
		out = append(append([]byte("250-"), p[4:]...), "250 "+c.ext.Keyword+"\r\n"...)
	case c.ehlo:
		c.ehlo = false // EHLO refused: nothing to advertise
	}
	c.mu.Unlock()
	if !bytes.Equal(out, p) {
		if _, err := c.Conn.Write(out); err != nil {
			return 0, err
		}
		return len(p), nil
	}
	for _, f := range replyFixes {
		if f.re.Match(out) {
			out = f.re.ReplaceAll(out, f.repl)
			break
		}
	}
	if bytes.Equal(out, p) {
		return c.Conn.Write(p)
	}
	if _, err := c.Conn.Write(out); err != nil {
		return 0, err
	}
	return len(p), nil
}

// noopReply is how go-smtp answers NOOP, which stands in for an extension's command.
var noopReply = []byte("250 2.0.0 I have successfully done nothing\r\n")

// extension answers the extension's command line: go-smtp gets a NOOP in its place, so
// replies stay in command order under PIPELINING, and the NOOP's reply is swapped for
// the extension's. A client the extension does not serve gets the unknown-verb reply.
func (c *fixingConn) extension(line []byte) []byte {
	args := strings.TrimSpace(string(bytes.TrimSpace(line))[len(c.ext.Verb):])
	code, lines := c.ext.Answer(remoteIP(c.Conn.RemoteAddr()), args)
	if code == 0 {
		return []byte(unknownVerb + "\r\n")
	}
	if len(lines) == 0 {
		lines = []string{"OK"}
	}
	var b bytes.Buffer
	for i, l := range lines {
		sep := "-"
		if i == len(lines)-1 {
			sep = " "
		}
		fmt.Fprintf(&b, "%d%s%s\r\n", code, sep, l)
	}
	c.answers = append(c.answers, b.Bytes())
	return []byte("NOOP\r\n")
}

type fixingListener struct {
	net.Listener
	ext *Extension
}

func (l fixingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &fixingConn{Conn: c, ext: l.ext}, nil
}
