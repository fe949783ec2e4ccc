package shadow

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/textproto"
	"strings"
	"time"
)

// ErrUnsupported is a server that does not answer XQDISCARD: it keeps no promise to a
// shadow, so nothing relayed to it is shadowed.
var ErrUnsupported = errors.New("next hop does not support shadow redundancy")

// Querier asks a primary at addr ("ip:port") about ids; no ids asks only for its
// incarnation.
type Querier func(ctx context.Context, addr string, ids []string) (Answer, error)

// SMTPQuerier asks over SMTP, from local (when valid), saying helo in EHLO.
func SMTPQuerier(helo string, local netip.Addr, timeout time.Duration) Querier {
	return func(ctx context.Context, addr string, ids []string) (Answer, error) {
		return query(ctx, addr, ids, helo, local, timeout)
	}
}

func query(ctx context.Context, addr string, ids []string, helo string, local netip.Addr, timeout time.Duration) (Answer, error) {
	d := net.Dialer{Timeout: timeout}
	if local.IsValid() && !local.IsUnspecified() {
		d.LocalAddr = &net.TCPAddr{IP: local.AsSlice()}
	}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return Answer{}, fmt.Errorf("%s %s: %w", Verb, addr, err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(timeout))
	tp := textproto.NewConn(conn)
	if _, _, err := tp.ReadResponse(220); err != nil {
		return Answer{}, fmt.Errorf("%s %s: greeting: %w", Verb, addr, err)
	}
	// The answer does not depend on the EHLO (a server may even refuse it, having no
	// connector for this client); it is sent because a client introduces itself.
	if err := tp.PrintfLine("EHLO %s", helo); err != nil {
		return Answer{}, fmt.Errorf("%s %s: %w", Verb, addr, err)
	}
	_, _, _ = tp.ReadResponse(250)
	line := Verb
	if len(ids) > 0 {
		line += " " + strings.Join(ids, " ")
	}
	if err := tp.PrintfLine("%s", line); err != nil {
		return Answer{}, fmt.Errorf("%s %s: %w", Verb, addr, err)
	}
	code, text, err := tp.ReadResponse(250)
	if err != nil {
		if code >= 500 {
			return Answer{}, fmt.Errorf("%s %s: %d %s: %w", Verb, addr, code, text, ErrUnsupported)
		}
		return Answer{}, fmt.Errorf("%s %s: %w", Verb, addr, err)
	}
	_ = tp.PrintfLine("QUIT")
	_, _, _ = tp.ReadResponse(221)
	return parseAnswer(text)
}
