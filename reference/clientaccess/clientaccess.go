// Package clientaccess is a Client Access server's IMAP front end (MBX-011): it takes
// a client's login itself (STARTTLS first, then LOGIN or AUTHENTICATE PLAIN, checked by
// the directory), finds the user's home Mailbox server in the directory (homeMDB ->
// database -> server), logs in there with the same credentials over STARTTLS, answers
// the client's login with that server's reply and from then on passes bytes both ways
// unchanged: the client sees the folders and messages of its own mailbox, in whichever
// site it is. A refused login is NO [AUTHENTICATIONFAILED] (RFC 5530), a login in the
// clear NO [PRIVACYREQUIRED]. The PROXY trace event names the Mailbox server reached.
package clientaccess

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/mailflow/mailflow/clock"
	"github.com/mailflow/mailflow/reference/directory"
	"github.com/mailflow/mailflow/trace"
)

// Directory checks passwords and places users on Mailbox servers; *directory.Client is one.
type Directory interface {
	Authenticate(ctx context.Context, user, password string) error
	Lookup(ctx context.Context, addr string) (*directory.Entry, error)
}

// Config is a Client Access server.
type Config struct {
	Name string // the server's name, in trace events
	Addr string // "ip:port" to listen on
	// Backends are the IMAP addresses ("ip:port") of the Mailbox servers, by name.
	Backends  map[string]string
	Directory Directory
	ServerTLS *tls.Config // offered with STARTTLS; without it no login is taken
	ClientTLS *tls.Config // verifies the Mailbox servers
	Trace     trace.Recorder
	Clock     clock.Clock
	Logger    *slog.Logger
}

// Server is a running Client Access IMAP front end.
type Server struct {
	cfg    Config
	l      net.Listener
	ctx    context.Context
	cancel context.CancelFunc
	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool
	wg     sync.WaitGroup
}

// Start listens and serves until Close.
func Start(ctx context.Context, cfg Config) (*Server, error) {
	if cfg.Directory == nil {
		return nil, errors.New("clientaccess: no directory")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.Real{}
	}
	if cfg.Trace == nil {
		cfg.Trace = trace.NewLog(nil)
	}
	l, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("clientaccess %s: %w", cfg.Name, err)
	}
	s := &Server{cfg: cfg, l: l, conns: map[net.Conn]struct{}{}}
	s.ctx, s.cancel = context.WithCancel(context.WithoutCancel(ctx))
	s.wg.Add(1)
	go s.serve()
	return s, nil
}

// Addr is the listening "ip:port".
func (s *Server) Addr() string { return s.l.Addr().String() }

// Close stops the listener, ends every session and waits for them.
func (s *Server) Close() error {
	s.mu.Lock()
	s.closed = true
	for c := range s.conns {
		_ = c.Close()
	}
	s.mu.Unlock()
	s.cancel()
	err := s.l.Close()
	s.wg.Wait()
	return err
}

func (s *Server) track(c net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.conns[c] = struct{}{}
	return true
}

func (s *Server) untrack(c net.Conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
	_ = c.Close()
}

func (s *Server) serve() {
	defer s.wg.Done()
	for {
		c, err := s.l.Accept()
		if err != nil {
			return
		}
		if !s.track(c) {
			_ = c.Close()
			return
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer s.untrack(c)
			s.session(c)
		}()
	}
}

const capsClear = "IMAP4rev1 STARTTLS LOGINDISABLED"
const capsTLS = "IMAP4rev1 AUTH=PLAIN SASL-IR"

// maxLine bounds a command line before login, and a login literal.
const maxLine = 8192

// session is one client: its commands until a login succeeds, then the splice.
func (s *Server) session(c net.Conn) {
	_ = c.SetDeadline(time.Now().Add(5 * time.Minute))
	r, w := bufio.NewReader(c), bufio.NewWriter(c)
	secure := false
	say := func(format string, args ...any) bool {
		fmt.Fprintf(w, format+"\r\n", args...)
		return w.Flush() == nil
	}
	if !say("* OK [CAPABILITY %s] %s Client Access ready", capsClear, s.cfg.Name) {
		return
	}
	for {
		line, err := readLine(r)
		if err != nil {
			return
		}
		cmd, err := parseCommand(line, r, w)
		if err != nil {
			if !say("%s BAD %s", orStar(cmd.tag), err.Error()) {
				return
			}
			continue
		}
		caps := capsClear
		if secure {
			caps = capsTLS
		}
		switch cmd.name {
		case "CAPABILITY":
			say("* CAPABILITY %s", caps)
			say("%s OK CAPABILITY completed", cmd.tag)
		case "NOOP":
			say("%s OK NOOP completed", cmd.tag)
		case "LOGOUT":
			say("* BYE logging out")
			say("%s OK LOGOUT completed", cmd.tag)
			return
		case "STARTTLS":
			if secure || s.cfg.ServerTLS == nil {
				say("%s BAD STARTTLS not available", cmd.tag)
				continue
			}
			if !say("%s OK Begin TLS negotiation now", cmd.tag) {
				return
			}
			tc := tls.Server(c, s.cfg.ServerTLS)
			if err := tc.HandshakeContext(s.ctx); err != nil {
				return
			}
			c, secure = tc, true
			r, w = bufio.NewReader(c), bufio.NewWriter(c)
		case "LOGIN", "AUTHENTICATE":
			if !secure {
				say("%s NO [PRIVACYREQUIRED] Login only after STARTTLS", cmd.tag)
				continue
			}
			if len(cmd.args) != 2 {
				say("%s BAD %s needs a user name and a password", cmd.tag, cmd.name)
				continue
			}
			backend, br, reply, err := s.login(cmd.args[0], cmd.args[1])
			if err != nil {
				if errors.Is(err, errRefused) {
					say("%s NO [AUTHENTICATIONFAILED] Invalid credentials", cmd.tag)
				} else {
					s.cfg.Logger.Warn("client access login failed", "user", cmd.args[0], "err", err)
					say("%s NO [UNAVAILABLE] The mailbox cannot be reached now", cmd.tag)
				}
				continue
			}
			// The backend's reply, under the client's tag; then both ways as they come.
			if !say("%s %s", cmd.tag, reply) {
				_ = backend.Close()
				return
			}
			s.splice(c, r, backend, br)
			return
		default:
			say("%s BAD Command not valid before login", cmd.tag)
		}
	}
}

func orStar(tag string) string {
	if tag == "" {
		return "*"
	}
	return tag
}

var errRefused = errors.New("clientaccess: login refused")

// login checks the password, finds the home server and logs in there; it returns the
// backend connection and reader past its tagged OK, and that OK's text.
func (s *Server) login(user, pass string) (net.Conn, *bufio.Reader, string, error) {
	ctx, cancel := context.WithTimeout(s.ctx, 10*time.Second)
	defer cancel()
	err := s.cfg.Directory.Authenticate(ctx, user, pass)
	switch {
	case errors.Is(err, directory.ErrInvalidCredentials):
		return nil, nil, "", errRefused
	case err != nil:
		return nil, nil, "", err
	}
	e, err := s.cfg.Directory.Lookup(ctx, user)
	switch {
	case errors.Is(err, directory.ErrNotFound):
		return nil, nil, "", errRefused
	case err != nil:
		return nil, nil, "", err
	case e.Type != directory.TypeMailbox:
		return nil, nil, "", errRefused
	}
	addr := ""
	for n, a := range s.cfg.Backends {
		if strings.EqualFold(n, e.MailboxServer) {
			addr = a
		}
	}
	if addr == "" {
		return nil, nil, "", fmt.Errorf("no IMAP address for Mailbox server %s", e.MailboxServer)
	}
	d := net.Dialer{Timeout: 10 * time.Second}
	raw, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, nil, "", err
	}
	conn, br, reply, err := backendLogin(raw, addr, s.cfg.ClientTLS, user, pass)
	if err != nil {
		_ = raw.Close()
		if errors.Is(err, errRefused) {
			return nil, nil, "", err
		}
		return nil, nil, "", fmt.Errorf("%s at %s: %w", e.MailboxServer, addr, err)
	}
	s.cfg.Trace.Record(trace.Event{
		Time: s.cfg.Clock.Now(), Type: trace.Proxy, Server: s.cfg.Name, Sender: strings.ToLower(e.Mail),
		Source: "IMAP", NextHop: e.MailboxServer, Detail: "IMAP login proxied to " + e.MailboxServer + " at " + addr,
	})
	return conn, br, reply, nil
}

// backendLogin upgrades a connection to a Mailbox server with STARTTLS and logs in with
// the user's credentials, as literals so any password passes as it is.
func backendLogin(raw net.Conn, addr string, cfg *tls.Config, user, pass string) (net.Conn, *bufio.Reader, string, error) {
	_ = raw.SetDeadline(time.Now().Add(30 * time.Second))
	r := bufio.NewReader(raw)
	if l, err := readLine(r); err != nil || !strings.HasPrefix(l, "* OK") {
		return nil, nil, "", fmt.Errorf("greeting %q: %v", l, err)
	}
	if _, err := io.WriteString(raw, "p1 STARTTLS\r\n"); err != nil {
		return nil, nil, "", err
	}
	if _, err := untilTagged(r, "p1"); err != nil {
		return nil, nil, "", fmt.Errorf("STARTTLS: %w", err)
	}
	host, _, _ := net.SplitHostPort(addr)
	tc := cfg.Clone()
	if tc.ServerName == "" {
		tc.ServerName = host
	}
	conn := tls.Client(raw, tc)
	if err := conn.Handshake(); err != nil {
		return nil, nil, "", err
	}
	r = bufio.NewReader(conn)
	ir := base64.StdEncoding.EncodeToString([]byte("\x00" + user + "\x00" + pass))
	if _, err := io.WriteString(conn, "p2 AUTHENTICATE PLAIN "+ir+"\r\n"); err != nil {
		return nil, nil, "", err
	}
	reply, err := untilTagged(r, "p2")
	if err != nil {
		if strings.Contains(err.Error(), "AUTHENTICATIONFAILED") {
			return nil, nil, "", errRefused
		}
		return nil, nil, "", fmt.Errorf("login: %w", err)
	}
	_ = raw.SetDeadline(time.Time{})
	return conn, r, reply, nil
}

// untilTagged reads untagged lines until tag's status, and returns "OK ..." or an error.
func untilTagged(r *bufio.Reader, tag string) (string, error) {
	for {
		l, err := readLine(r)
		if err != nil {
			return "", err
		}
		if rest, ok := strings.CutPrefix(l, tag+" "); ok {
			if strings.HasPrefix(strings.ToUpper(rest), "OK") {
				return rest, nil
			}
			return "", errors.New(rest)
		}
		if strings.HasPrefix(l, "+") {
			return "", fmt.Errorf("unexpected continuation %q", l)
		}
	}
}

// splice passes bytes both ways until either side closes.
func (s *Server) splice(client net.Conn, cr *bufio.Reader, backend net.Conn, br *bufio.Reader) {
	_ = client.SetDeadline(time.Time{})
	s.mu.Lock()
	s.conns[backend] = struct{}{}
	s.mu.Unlock()
	defer s.untrack(backend)
	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(backend, cr); _ = backend.Close(); done <- struct{}{} }()
	go func() { _, _ = io.Copy(client, br); _ = client.Close(); done <- struct{}{} }()
	<-done
	<-done
}

func readLine(r *bufio.Reader) (string, error) {
	var b []byte
	for {
		part, more, err := r.ReadLine()
		if err != nil {
			return "", err
		}
		b = append(b, part...)
		if len(b) > maxLine {
			return "", errors.New("line too long")
		}
		if !more {
			return string(b), nil
		}
	}
}

// command is a client command before login.
type command struct {
	tag, name string
	args      []string // LOGIN: user, password; AUTHENTICATE PLAIN: user, password
}

// parseCommand reads one command: a tag, a name and, for LOGIN, two astrings (atoms,
// quoted strings or literals, whose bytes it reads from r after a continuation), for
// AUTHENTICATE PLAIN the response (initial or after a continuation).
func parseCommand(line string, r *bufio.Reader, w *bufio.Writer) (command, error) {
	var cmd command
	tag, rest, _ := strings.Cut(line, " ")
	if tag == "" || strings.ContainsAny(tag, "(){%*\"\\+") {
		return cmd, errors.New("missing or bad tag")
	}
	cmd.tag = tag
	name, rest, _ := strings.Cut(rest, " ")
	cmd.name = strings.ToUpper(name)
	switch cmd.name {
	case "LOGIN":
		for len(cmd.args) < 2 {
			v, after, err := astring(rest, r, w)
			if err != nil {
				return cmd, err
			}
			cmd.args = append(cmd.args, v)
			rest = strings.TrimPrefix(after, " ")
			if len(cmd.args) < 2 && after == "" {
				return cmd, errors.New("lOGIN needs a user name and a password")
			}
		}
		if rest != "" {
			return cmd, errors.New("too many arguments")
		}
	case "AUTHENTICATE":
		mech, ir, hasIR := strings.Cut(rest, " ")
		if !strings.EqualFold(mech, "PLAIN") {
			return cmd, errors.New("only AUTHENTICATE PLAIN")
		}
		if !hasIR {
			fmt.Fprintf(w, "+ \r\n")
			if err := w.Flush(); err != nil {
				return cmd, err
			}
			l, err := readLine(r)
			if err != nil {
				return cmd, err
			}
			ir = l
		}
		b, err := base64.StdEncoding.DecodeString(ir)
		if err != nil {
			return cmd, errors.New("bad base64")
		}
		parts := strings.Split(string(b), "\x00")
		if len(parts) != 3 || parts[0] != "" && parts[0] != parts[1] {
			return cmd, errors.New("bad PLAIN response")
		}
		cmd.args = []string{parts[1], parts[2]}
	}
	return cmd, nil
}

// astring reads one IMAP astring at the start of s and returns it and what follows.
func astring(s string, r *bufio.Reader, w *bufio.Writer) (string, string, error) {
	switch {
	case s == "":
		return "", "", errors.New("missing argument")
	case s[0] == '"':
		var b strings.Builder
		for i := 1; i < len(s); i++ {
			switch s[i] {
			case '\\':
				if i+1 >= len(s) || s[i+1] != '"' && s[i+1] != '\\' {
					return "", "", errors.New("bad quoted string")
				}
				i++
				b.WriteByte(s[i])
			case '"':
				return b.String(), s[i+1:], nil
			default:
				b.WriteByte(s[i])
			}
		}
		return "", "", errors.New("unterminated quoted string")
	case s[0] == '{':
		end := strings.IndexByte(s, '}')
		if end < 0 || end != len(s)-1 {
			return "", "", errors.New("bad literal")
		}
		spec := strings.TrimSuffix(s[1:end], "+")
		n, err := strconv.Atoi(spec)
		if err != nil || n < 0 || n > maxLine {
			return "", "", errors.New("bad literal size")
		}
		if !strings.HasSuffix(s[1:end], "+") {
			fmt.Fprintf(w, "+ Ready for literal data\r\n")
			if err := w.Flush(); err != nil {
				return "", "", err
			}
		}
		buf := make([]byte, n)
		if _, err := io.ReadFull(r, buf); err != nil {
			return "", "", err
		}
		// The command goes on after the literal, on the line that follows it.
		more, err := readLine(r)
		if err != nil {
			return "", "", err
		}
		return string(buf), more, nil
	default:
		end := strings.IndexByte(s, ' ')
		if end < 0 {
			end = len(s)
		}
		atom := s[:end]
		if strings.ContainsAny(atom, "(){%*\"\\") {
			return "", "", errors.New("bad atom")
		}
		return atom, s[end:], nil
	}
}
