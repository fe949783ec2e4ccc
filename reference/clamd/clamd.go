package clamd

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"time"
)

// Verdict is what clamd found in a stream.
type Verdict struct {
	// Infected is true when a signature matched; Signature names it
	// ("eicar.com.UNOFFICIAL").
	Infected  bool
	Signature string
}

// ErrScan is a reply in which clamd says it could not scan the stream ("INSTREAM size
// limit exceeded. ERROR"): the stream was neither found clean nor infected.
var ErrScan = errors.New("clamd: scan failed")

// Client talks to one clamd; it is safe for concurrent use, each call on a connection
// of its own.
type Client struct {
	network, addr string
	chunk         int
	timeout       time.Duration
}

// Option configures New.
type Option func(*Client)

// WithChunkSize sets the INSTREAM chunk size; default 64 KiB. clamd's StreamMaxLength
// bounds the whole stream, not a chunk.
func WithChunkSize(n int) Option { return func(c *Client) { c.chunk = max(n, 1) } }

// WithTimeout bounds each call (dial, send, reply) when ctx has no earlier deadline;
// default 30 s.
func WithTimeout(d time.Duration) Option { return func(c *Client) { c.timeout = d } }

// New is a client of the clamd at addr: "unix:/path/clamd.sock", "tcp:host:port", a
// path starting with "/" or a bare host:port.
func New(addr string, opts ...Option) *Client {
	c := &Client{network: "tcp", addr: addr, chunk: 64 << 10, timeout: 30 * time.Second}
	switch {
	case strings.HasPrefix(addr, "unix:"):
		c.network, c.addr = "unix", strings.TrimPrefix(addr, "unix:")
	case strings.HasPrefix(addr, "tcp:"):
		c.addr = strings.TrimPrefix(addr, "tcp:")
	case strings.HasPrefix(addr, "/"):
		c.network = "unix"
	}
	for _, o := range opts {
		o(c)
	}
	return c
}

// Addr is the daemon's address as New was given it, for messages.
func (c *Client) Addr() string { return c.network + ":" + c.addr }

// Ping asks clamd whether it is up ("zPING", answered "PONG").
func (c *Client) Ping(ctx context.Context) error {
	reply, err := c.call(ctx, func(w io.Writer) error {
		_, err := io.WriteString(w, "zPING\x00")
		return err
	})
	if err != nil {
		return err
	}
	if reply != "PONG" {
		return fmt.Errorf("clamd at %s: PING answered %q", c.Addr(), reply)
	}
	return nil
}

// Scan sends data to clamd with INSTREAM and returns its verdict. An error means
// nothing is known about data: clamd could not be reached, broke off, or answered
// that it could not scan (ErrScan).
func (c *Client) Scan(ctx context.Context, data []byte) (Verdict, error) {
	reply, err := c.call(ctx, func(w io.Writer) error {
		if _, err := io.WriteString(w, "zINSTREAM\x00"); err != nil {
			return err
		}
		var size [4]byte
		for rest := data; len(rest) > 0; {
			n := min(len(rest), c.chunk)
			binary.BigEndian.PutUint32(size[:], uint32(n))
			if _, err := w.Write(size[:]); err != nil {
				return err
			}
			if _, err := w.Write(rest[:n]); err != nil {
				return err
			}
			rest = rest[n:]
		}
		// A zero-length chunk ends the stream.
		_, err := w.Write([]byte{0, 0, 0, 0})
		return err
	})
	if err != nil {
		return Verdict{}, err
	}
	v, err := Parse(reply)
	if err != nil {
		return Verdict{}, fmt.Errorf("clamd at %s: %w", c.Addr(), err)
	}
	return v, nil
}

// call runs one command on a connection of its own and reads the reply, up to its
// NUL.
func (c *Client) call(ctx context.Context, send func(io.Writer) error) (string, error) {
	if _, ok := ctx.Deadline(); !ok && c.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.timeout)
		defer cancel()
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, c.network, c.addr)
	if err != nil {
		return "", fmt.Errorf("clamd at %s: %w", c.Addr(), err)
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	// A cancelled ctx unblocks a read or write in progress.
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	if err := send(conn); err != nil {
		// clamd closes a stream over StreamMaxLength after saying why; that reply is
		// the better error.
		if reply, rerr := readReply(conn); rerr == nil && reply != "" {
			if _, perr := Parse(reply); perr != nil {
				return "", fmt.Errorf("clamd at %s: %w", c.Addr(), perr)
			}
		}
		return "", fmt.Errorf("clamd at %s: sending: %w", c.Addr(), err)
	}
	reply, err := readReply(conn)
	if err != nil {
		return "", fmt.Errorf("clamd at %s: reading the reply: %w", c.Addr(), err)
	}
	return reply, nil
}

// maxReply bounds a reply: a signature name is short, and a daemon that does not
// stop talking is not one.
const maxReply = 4096

func readReply(r io.Reader) (string, error) {
	br := bufio.NewReader(io.LimitReader(r, maxReply+1))
	s, err := br.ReadString(0)
	switch {
	case err == nil:
		s = s[:len(s)-1]
	case len(s) > maxReply:
		return "", fmt.Errorf("reply longer than %d bytes", maxReply)
	case errors.Is(err, io.EOF) && s != "":
		// A reply the daemon ended by closing instead of a NUL is still its reply.
	case errors.Is(err, io.EOF):
		return "", io.ErrUnexpectedEOF
	default:
		return "", err
	}
	return strings.TrimRight(s, "\r\n"), nil
}

// Parse reads one reply to INSTREAM (or SCAN): "stream: OK", "stream: NAME FOUND" or
// "...: MESSAGE ERROR" (ErrScan, with the message), its NUL or newline already
// removed. A reply of any other shape is an error too: a verdict is never guessed.
func Parse(reply string) (Verdict, error) {
	reply = strings.TrimRight(reply, "\x00\r\n")
	if strings.HasSuffix(reply, " ERROR") {
		return Verdict{}, fmt.Errorf("%w: %s", ErrScan, strings.TrimSuffix(reply, " ERROR"))
	}
	// The subject ("stream", or a path) ends at the last ": " before the verdict; a
	// path or signature may hold ": " itself, a verdict word does not.
	i := strings.LastIndex(reply, ": ")
	if i < 0 {
		return Verdict{}, fmt.Errorf("unexpected reply %q", reply)
	}
	rest := reply[i+2:]
	switch {
	case rest == "OK":
		return Verdict{}, nil
	case strings.HasSuffix(rest, " FOUND"):
		name := strings.TrimSuffix(rest, " FOUND")
		if name == "" || strings.ContainsAny(name, " \x00") {
			return Verdict{}, fmt.Errorf("unexpected reply %q", reply)
		}
		return Verdict{Infected: true, Signature: name}, nil
	}
	return Verdict{}, fmt.Errorf("unexpected reply %q", reply)
}
