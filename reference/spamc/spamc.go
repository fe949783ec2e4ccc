package spamc

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"
)

// Result is spamd's verdict on one message.
type Result struct {
	Spam bool
	// Score is the message's score; Threshold is spamd's required_score, at and above
	// which it calls a message spam.
	Score, Threshold float64
	// Symbols are the names of the rules that hit (GTUBE, MISSING_DATE, ...).
	Symbols []string
}

// Client talks to one spamd.
type Client struct {
	addr    string
	timeout time.Duration
	user    string
}

// Option configures New.
type Option func(*Client)

// WithTimeout bounds each exchange, connect to last byte; default 30 s, as spamc's.
func WithTimeout(d time.Duration) Option { return func(c *Client) { c.timeout = d } }

// WithUser names the user whose preferences spamd applies (the User header); default
// none, spamd's own.
func WithUser(u string) Option { return func(c *Client) { c.user = u } }

// New is a client of the spamd at addr (host:port).
func New(addr string, opts ...Option) *Client {
	c := &Client{addr: addr, timeout: 30 * time.Second}
	for _, o := range opts {
		o(c)
	}
	return c
}

// Addr is the daemon's address.
func (c *Client) Addr() string { return c.addr }

// maxReply bounds what a reply may be: a verdict and a list of rule names.
const maxReply = 64 << 10

// Ping checks that spamd answers.
func (c *Client) Ping(ctx context.Context) error {
	b, err := c.exchange(ctx, "PING", nil)
	if err != nil {
		return err
	}
	code, msg, _, err := statusLine(b)
	if err != nil {
		return err
	}
	if code != 0 || msg != "PONG" {
		return fmt.Errorf("spamd %s: PING answered %d %s", c.addr, code, msg)
	}
	return nil
}

// Check scores msg (SYMBOLS).
func (c *Client) Check(ctx context.Context, msg []byte) (Result, error) {
	b, err := c.exchange(ctx, "SYMBOLS", msg)
	if err != nil {
		return Result{}, err
	}
	r, err := ParseReply(b)
	if err != nil {
		return Result{}, fmt.Errorf("spamd %s: %w", c.addr, err)
	}
	return r, nil
}

// exchange sends one request and reads the whole reply; spamd closes the
// connection after it.
func (c *Client) exchange(ctx context.Context, method string, body []byte) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", c.addr)
	if err != nil {
		return nil, fmt.Errorf("spamd %s: %w", c.addr, err)
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	var req bytes.Buffer
	fmt.Fprintf(&req, "%s SPAMC/1.5\r\n", method)
	if body != nil {
		fmt.Fprintf(&req, "Content-length: %d\r\n", len(body))
	}
	if c.user != "" {
		fmt.Fprintf(&req, "User: %s\r\n", c.user)
	}
	req.WriteString("\r\n")
	req.Write(body)
	if _, err := conn.Write(req.Bytes()); err != nil {
		return nil, fmt.Errorf("spamd %s: %s: %w", c.addr, method, errors.Join(err, ctx.Err()))
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.CloseWrite()
	}
	b, err := io.ReadAll(io.LimitReader(conn, maxReply+1))
	if err != nil {
		return nil, fmt.Errorf("spamd %s: %s: reading the reply: %w", c.addr, method, errors.Join(err, ctx.Err()))
	}
	if len(b) > maxReply {
		return nil, fmt.Errorf("spamd %s: %s: a reply over %d bytes", c.addr, method, maxReply)
	}
	if len(b) == 0 {
		return nil, fmt.Errorf("spamd %s: %s: closed without a reply", c.addr, method)
	}
	return b, nil
}

// statusLine reads "SPAMD/1.1 0 EX_OK" off the front of b, and returns the rest.
func statusLine(b []byte) (code int, msg string, rest []byte, err error) {
	line, rest, ok := bytes.Cut(b, []byte("\r\n"))
	if !ok {
		return 0, "", nil, errors.New("a reply without a status line")
	}
	f := strings.SplitN(string(line), " ", 3)
	if len(f) != 3 || !strings.HasPrefix(f[0], "SPAMD/") {
		return 0, "", nil, fmt.Errorf("not a spamd status line: %q", line)
	}
	code, err = strconv.Atoi(f[1])
	if err != nil || code < 0 {
		return 0, "", nil, fmt.Errorf("not a spamd status line: %q", line)
	}
	return code, f[2], rest, nil
}

// ParseReply reads spamd's reply to SYMBOLS (or CHECK, whose body is empty): a status
// line, header fields up to an empty line, then the rule names, comma-separated.
// A status other than 0 (EX_OK) is an error carrying spamd's text.
func ParseReply(b []byte) (Result, error) {
	code, msg, rest, err := statusLine(b)
	if err != nil {
		return Result{}, err
	}
	if code != 0 {
		return Result{}, fmt.Errorf("spamd refused the request: %d %s", code, msg)
	}
	var r Result
	length, seenSpam := -1, false
	for {
		line, after, ok := bytes.Cut(rest, []byte("\r\n"))
		if !ok {
			return Result{}, errors.New("a reply whose header does not end")
		}
		rest = after
		if len(line) == 0 {
			break
		}
		name, value, ok := strings.Cut(string(line), ":")
		if !ok {
			return Result{}, fmt.Errorf("not a header field: %q", line)
		}
		value = strings.TrimSpace(value)
		switch strings.ToLower(name) {
		case "content-length":
			n, err := strconv.Atoi(value)
			if err != nil || n < 0 {
				return Result{}, fmt.Errorf("bad Content-length %q", value)
			}
			length = n
		case "spam":
			if r, err = spamField(value); err != nil {
				return Result{}, err
			}
			seenSpam = true
		}
	}
	if !seenSpam {
		return Result{}, errors.New("a reply without a Spam field")
	}
	if length >= 0 {
		if len(rest) < length {
			return Result{}, fmt.Errorf("a body of %d bytes where Content-length says %d", len(rest), length)
		}
		rest = rest[:length]
	}
	for _, s := range strings.Split(strings.TrimSpace(string(rest)), ",") {
		if s = strings.TrimSpace(s); s != "" {
			r.Symbols = append(r.Symbols, s)
		}
	}
	return r, nil
}

// spamField reads "True ; 1003.3 / 5.0".
func spamField(v string) (Result, error) {
	verdict, scores, ok := strings.Cut(v, ";")
	score, threshold, ok2 := strings.Cut(scores, "/")
	if !ok || !ok2 {
		return Result{}, fmt.Errorf("bad Spam field %q", v)
	}
	var r Result
	switch strings.ToLower(strings.TrimSpace(verdict)) {
	case "true", "yes":
		r.Spam = true
	case "false", "no":
	default:
		return Result{}, fmt.Errorf("bad Spam field %q", v)
	}
	var err1, err2 error
	r.Score, err1 = strconv.ParseFloat(strings.TrimSpace(score), 64)
	r.Threshold, err2 = strconv.ParseFloat(strings.TrimSpace(threshold), 64)
	if err1 != nil || err2 != nil || !finite(r.Score) || !finite(r.Threshold) {
		return Result{}, fmt.Errorf("bad Spam field %q", v)
	}
	return r, nil
}

func finite(f float64) bool { return f-f == 0 }
