package smtpout

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/mailflow/mailflow/reference/resolve"
)

// Resolver is the DNS the sender resolves through.
type Resolver interface {
	LookupMX(ctx context.Context, domain string) ([]resolve.MX, error)
	LookupAddrs(ctx context.Context, host string) ([]netip.Addr, error)
}

// Hop is where a group of recipients goes.
type Hop struct {
	// Hosts are smart hosts or org servers: "fqdn", "fqdn:port", "ip", "[host]"; empty
	// means the MX of Domain.
	Hosts  []string
	Domain string
	// RequireTLS refuses to send without STARTTLS (SMART-006, ROUTE-017).
	RequireTLS bool
	Username   string
	Password   string
}

// Result is what happened to one recipient.
type Result struct {
	Rcpt      string
	Delivered bool
	Permanent bool // false with !Delivered means try again later
	Reply     string
	RemoteMTA string
	// DSNPassed says the next hop advertised DSN, so the recipient's DSN parameters
	// went with it and a success notice is now the next hop's to send (RFC 3461 §5.2).
	DSNPassed bool
}

// DSN is a message's RFC 3461 parameters, passed on to a next hop that advertises
// DSN and silently dropped otherwise (RFC 3461 §5.2.2).
type DSN struct {
	Ret   string // "FULL", "HDRS" or ""
	EnvID string // xtext-decoded
	// Rcpts holds NOTIFY and ORCPT by recipient address, as given to Send.
	Rcpts map[string]RcptDSN
}

// RcptDSN is one recipient's NOTIFY list and original recipient.
type RcptDSN struct {
	Notify []string
	ORCPT  string
}

// asciiBytes says whether data is 7-bit.
func asciiBytes(data []byte) bool {
	for _, b := range data {
		if b >= 0x80 {
			return false
		}
	}
	return true
}

func (d *DSN) mailOptions() *smtp.MailOptions {
	if d == nil {
		return nil
	}
	return &smtp.MailOptions{Return: smtp.DSNReturn(d.Ret), EnvelopeID: d.EnvID}
}

func (d *DSN) rcptOptions(rcpt string) *smtp.RcptOptions {
	if d == nil {
		return nil
	}
	r, ok := d.Rcpts[rcpt]
	if !ok {
		return nil
	}
	o := &smtp.RcptOptions{OriginalRecipient: r.ORCPT}
	for _, n := range r.Notify {
		o.Notify = append(o.Notify, smtp.DSNNotify(strings.ToUpper(n)))
	}
	if r.ORCPT != "" {
		o.OriginalRecipientType = smtp.DSNAddressTypeRFC822
		if !isASCII(r.ORCPT) {
			o.OriginalRecipientType = smtp.DSNAddressTypeUTF8
		}
	}
	return o
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// Client sends messages.
type Client struct {
	resolver  Resolver
	helo      string
	port      int
	localAddr netip.Addr
	tlsConfig *tls.Config
	timeout   time.Duration
	log       *slog.Logger
	selfNames map[string]bool
	selfAddrs map[netip.Addr]bool
	// rnd, when set, makes the equal-preference choices (DNS-003) a repeatable
	// sequence; nil draws from the runtime's randomly seeded generator.
	rndMu sync.Mutex
	rnd   *rand.Rand
	// cache keeps sessions with named next hops between messages; noReuse keeps none.
	cache   cache
	noReuse bool
	// gate, when set, is asked before each connection (WithGate).
	gate func(addr string) error
}

// Option configures a Client.
type Option func(*Client)

// WithPort is the port used when a host names none (25 on the Internet; the in-process
// target uses an unprivileged port).
func WithPort(p int) Option { return func(c *Client) { c.port = p } }

// WithLocalAddr makes outgoing connections come from the server's own address.
func WithLocalAddr(a netip.Addr) Option  { return func(c *Client) { c.localAddr = a } }
func WithTLSConfig(t *tls.Config) Option { return func(c *Client) { c.tlsConfig = t } }
func WithTimeout(d time.Duration) Option { return func(c *Client) { c.timeout = d } }
func WithLogger(l *slog.Logger) Option   { return func(c *Client) { c.log = l } }

// WithoutReuse ends every session after its message: no session is kept for the next
// message to the same next hop.
func WithoutReuse() Option { return func(c *Client) { c.noReuse = true } }

// WithGate has every connection asked for first: an error fails it as a connection
// that could not be made, with the error in the reply. A world of servers in one
// process cuts a network path this way (a routing group connector whose link is down,
// ROUTE-020) while every server stays up.
func WithGate(gate func(addr string) error) Option { return func(c *Client) { c.gate = gate } }

// WithSeed draws the random first choice among MXs of equal preference (DNS-003) from a
// generator seeded with seed, so that a run can be repeated choice for choice; 0 keeps
// the runtime's randomly seeded one. Servers that share a seed make the same sequence
// of choices, so a seed is for test runs, not for a fleet.
func WithSeed(seed uint64) Option {
	return func(c *Client) {
		if seed != 0 {
			c.rnd = rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
		}
	}
}

// WithSelf names what the sending server is known by: its host names and the addresses
// it listens on. An MX that is one of them marks where the domain's mail would loop back
// (RFC 5321 §5.1, TRACE-005). The helo name always counts.
func WithSelf(names []string, addrs []netip.Addr) Option {
	return func(c *Client) {
		for _, n := range names {
			c.selfNames[hostKey(n)] = true
		}
		for _, a := range addrs {
			c.selfAddrs[a.Unmap()] = true
		}
	}
}

// Close ends the sessions kept for further messages. Sending after Close still works;
// its sessions are not kept.
func (c *Client) Close() { c.cache.close() }

func (c *Client) shuffle(n int, swap func(i, j int)) {
	if c.rnd == nil {
		rand.Shuffle(n, swap)
		return
	}
	c.rndMu.Lock()
	defer c.rndMu.Unlock()
	c.rnd.Shuffle(n, swap)
}

func hostKey(name string) string { return strings.ToLower(strings.TrimSuffix(name, ".")) }

// New makes a client that says helo in EHLO.
func New(r Resolver, helo string, opts ...Option) *Client {
	c := &Client{resolver: r, helo: helo, port: 25, timeout: 30 * time.Second, log: slog.Default(),
		selfNames: map[string]bool{hostKey(helo): true}, selfAddrs: map[netip.Addr]bool{}}
	for _, o := range opts {
		o(c)
	}
	// A TLS session with a next hop is resumed by the next connection to it (RFC 8446
	// §2.2): its certificate was verified when the session began, and a resumed
	// handshake skips the certificate and its signatures, which a connection per
	// message would otherwise pay every time.
	cfg := &tls.Config{}
	if c.tlsConfig != nil {
		cfg = c.tlsConfig.Clone()
	}
	if cfg.ClientSessionCache == nil {
		cfg.ClientSessionCache = tls.NewLRUClientSessionCache(256)
	}
	c.tlsConfig = cfg
	return c
}

type target struct {
	name string // for Remote-MTA
	addr string // ip:port
}

// targets resolves a hop to addresses in the order they are tried. A bracketed host or
// an IP literal is used as is; an FQDN smart host is resolved "as an MX or an A record"
// (EX-SENDCONN); an empty host list means the domain's MX, or its address as implicit MX.
func (c *Client) targets(ctx context.Context, h Hop) ([]target, error) {
	var out []target
	var lastErr error
	add := func(name string, port int, addrs []netip.Addr) {
		for _, a := range addrs {
			out = append(out, target{name: name, addr: net.JoinHostPort(a.String(), strconv.Itoa(port))})
		}
	}
	if len(h.Hosts) == 0 {
		mxs, err := c.resolver.LookupMX(ctx, h.Domain)
		switch {
		case err == nil && len(mxs) > 0:
			type exchanger struct {
				resolve.MX
				addrs []netip.Addr
				err   error
			}
			var ex []exchanger
			for _, mx := range mxs {
				if mx.Host == "" {
					return nil, fmt.Errorf("%s publishes a null MX: %w", h.Domain, ErrNullMX)
				}
				addrs, err := c.resolver.LookupAddrs(ctx, mx.Host)
				ex = append(ex, exchanger{mx, addrs, err})
			}
			// RFC 5321 §5.1: a relay that finds itself among the MXs discards its own
			// preference and every less preferred one (mxs is sorted by preference).
			for i, e := range ex {
				if c.isSelf(e.Host, e.addrs) {
					ex = ex[:i]
					for len(ex) > 0 && ex[len(ex)-1].Pref == e.Pref {
						ex = ex[:len(ex)-1]
					}
					if len(ex) == 0 {
						return nil, fmt.Errorf("mail for %s loops back to myself (MX %s): %w", h.Domain, e.Host, ErrLoopsBack)
					}
					break
				}
			}
			// RFC 5321 §5.1: among equal preferences the first choice is random, so
			// load spreads over them (DNS-003).
			for i := 0; i < len(ex); {
				j := i + 1
				for j < len(ex) && ex[j].Pref == ex[i].Pref {
					j++
				}
				group := ex[i:j]
				c.shuffle(len(group), func(a, b int) { group[a], group[b] = group[b], group[a] })
				i = j
			}
			for _, e := range ex {
				if e.err != nil {
					lastErr = e.err
					continue
				}
				add(e.Host, c.port, e.addrs)
			}
		case err == nil || errors.Is(err, resolve.ErrNoData):
			addrs, err := c.resolver.LookupAddrs(ctx, h.Domain)
			if err != nil {
				return nil, err
			}
			// The implicit MX (preference 0) is the best there is: no other host to try.
			if c.isSelf(h.Domain, addrs) {
				return nil, fmt.Errorf("mail for %s loops back to myself (implicit MX): %w", h.Domain, ErrLoopsBack)
			}
			add(h.Domain, c.port, addrs)
		default:
			return nil, err
		}
		if len(out) == 0 && lastErr != nil {
			return nil, lastErr
		}
		return out, nil
	}
	for _, hs := range h.Hosts {
		host, port := hs, c.port
		if hp, p, err := net.SplitHostPort(hs); err == nil {
			host = hp
			if n, err := strconv.Atoi(p); err == nil {
				port = n
			}
		}
		bracketed := strings.HasPrefix(host, "[") && strings.HasSuffix(host, "]")
		host = strings.Trim(host, "[]")
		if ip, err := netip.ParseAddr(host); err == nil {
			add(host, port, []netip.Addr{ip})
			continue
		}
		if !bracketed {
			if mxs, err := c.resolver.LookupMX(ctx, host); err == nil && len(mxs) > 0 && mxs[0].Host != "" {
				for _, mx := range mxs {
					if addrs, err := c.resolver.LookupAddrs(ctx, mx.Host); err == nil {
						add(mx.Host, port, addrs)
					} else {
						lastErr = err
					}
				}
				continue
			}
		}
		addrs, err := c.resolver.LookupAddrs(ctx, host)
		if err != nil {
			lastErr = err
			continue
		}
		add(host, port, addrs)
	}
	if len(out) == 0 {
		if lastErr == nil {
			lastErr = errors.New("no address")
		}
		return nil, fmt.Errorf("resolving next hop: %w", lastErr)
	}
	return out, nil
}

// isSelf says whether an exchanger is this server: one of its names, or an address it
// listens on.
func (c *Client) isSelf(host string, addrs []netip.Addr) bool {
	if c.selfNames[hostKey(host)] {
		return true
	}
	for _, a := range addrs {
		if c.selfAddrs[a.Unmap()] {
			return true
		}
	}
	return false
}

var (
	// ErrNullMX marks a domain that accepts no mail (RFC 7505).
	ErrNullMX = errors.New("null MX")
	// ErrLoopsBack marks a domain whose best remaining MX is the sender itself: the
	// mail would come straight back (RFC 5321 §5.1 "returned as undeliverable").
	ErrLoopsBack = errors.New("loops back to myself")
)

// Send delivers data from sender to rcpts over hop. Targets are tried in order until one
// accepts a transaction; a target that refuses the connection or answers 4xx before MAIL
// is skipped within the same attempt (DNS-002, SMART-005).
// d, when not nil, holds the DSN parameters to pass on.
func (c *Client) Send(ctx context.Context, h Hop, from string, rcpts []string, data []byte, d *DSN) []Result {
	ts, err := c.targets(ctx, h)
	if err != nil {
		perm := errors.Is(err, resolve.ErrNXDomain) || errors.Is(err, ErrNullMX) || errors.Is(err, ErrLoopsBack)
		reply := "451 4.4.3 DNS query failed: " + err.Error() // X.4.3: directory (DNS) failure
		switch {
		case errors.Is(err, ErrNullMX):
			reply = "556 5.1.10 Recipient domain does not accept mail (null MX)"
		case errors.Is(err, ErrLoopsBack):
			reply = loopsBack(h.Domain)
		case perm:
			reply = "550 5.4.4 Unable to route: recipient domain does not exist"
		}
		return all(rcpts, Result{Permanent: perm, Reply: reply})
	}
	var last []Result
	for _, t := range ts {
		res, next := c.sendTo(ctx, t, h, from, rcpts, data, d)
		if !next {
			return res
		}
		last = res
	}
	return last
}

// loopsBack is the failure of a recipient whose domain's mail would come back to this
// server: 5.4.6 routing loop (RFC 3463), in Postfix's words.
func loopsBack(domain string) string {
	return "554 5.4.6 mail for " + domain + " loops back to myself"
}

func all(rcpts []string, r Result) []Result {
	out := make([]Result, len(rcpts))
	for i, rc := range rcpts {
		out[i] = r
		out[i].Rcpt = rc
	}
	return out
}

func reply(err error) (string, bool) {
	var se *smtp.SMTPError
	if errors.As(err, &se) {
		enh := ""
		if se.EnhancedCode != smtp.NoEnhancedCode && se.EnhancedCode != (smtp.EnhancedCode{}) {
			enh = fmt.Sprintf("%d.%d.%d ", se.EnhancedCode[0], se.EnhancedCode[1], se.EnhancedCode[2])
		}
		return fmt.Sprintf("%d %s%s", se.Code, enh, se.Message), se.Code >= 500
	}
	return "451 4.4.2 Connection dropped: " + err.Error(), false
}

// sendTo runs one session; next reports that the caller should try the next target
// because this one never got as far as a transaction.
func (c *Client) sendTo(ctx context.Context, t target, h Hop, from string, rcpts []string, data []byte, params *DSN) ([]Result, bool) {
	key, keep := c.sessionKey(t, h)
	var s *session
	if keep {
		s = c.cache.take(key)
	}
	reused := s != nil
	if s == nil {
		var res []Result
		var next bool
		if s, res, next = c.open(ctx, t, h, rcpts); s == nil {
			return res, next
		}
	}
	s.begin(c.timeout)
	results := make([]Result, len(rcpts))
	pending := make([]int, len(rcpts))
	for i := range pending {
		pending[i] = i
	}
	// A next hop that takes only so many recipients per transaction answers the rest
	// 452 (or 552): those go in the next transaction of the same session, until a
	// transaction takes none (RFC 5321 §4.5.3.1.10, QUEUE-008).
	for first := true; len(pending) > 0; first = false {
		if !first {
			if err := s.cl.Reset(); err != nil {
				r, _ := s.reply(err)
				for _, i := range pending {
					results[i] = Result{Rcpt: rcpts[i], Reply: r, RemoteMTA: t.name}
				}
				_ = s.cl.Close()
				return results, false
			}
		}
		more, progressed := c.transaction(s, t, from, rcpts, pending, data, params, results)
		if first && reused && s.broken && s.mailFailed {
			// A kept session the next hop closed while it waited (its idle timeout,
			// a restart): MAIL was never taken, so the message goes over a new one.
			_ = s.cl.Close()
			fresh, res, next := c.open(ctx, t, h, rcpts)
			if fresh == nil {
				return res, next
			}
			s, reused = fresh, false
			s.begin(c.timeout)
			more, progressed = c.transaction(s, t, from, rcpts, pending, data, params, results)
		}
		if !progressed {
			break
		}
		pending = more
	}
	// A session that ends well ends with QUIT, or is kept for the next message, once
	// the results are handed back: the queue records a delivery a round trip sooner,
	// and a crash in that round trip is one duplicate less (the next hop has the
	// message; the spool would not know).
	switch {
	case s.broken:
		_ = s.cl.Close()
	case keep && s.dirty && s.cl.Reset() != nil:
		_ = s.cl.Close()
	case keep:
		defer c.cache.put(key, s)
	default:
		defer func() { go s.quit() }()
	}
	return results, false
}

// sessionKey says which kept sessions a message to t may use; false for a hop whose
// sessions are not kept (an MX of the recipient's domain).
func (c *Client) sessionKey(t target, h Hop) (sessionKey, bool) {
	return sessionKey{addr: t.addr, name: t.name, user: h.Username, tls: h.RequireTLS}, len(h.Hosts) > 0 && !c.noReuse
}

// open connects to t and gets as far as a transaction could start: greeting, EHLO,
// STARTTLS when the hop requires it, AUTH when it has a login. A nil session comes with
// every recipient's result and whether to try the next target.
func (c *Client) open(ctx context.Context, t target, h Hop, rcpts []string) (*session, []Result, bool) {
	d := net.Dialer{Timeout: c.timeout}
	if c.localAddr.IsValid() {
		d.LocalAddr = &net.TCPAddr{IP: c.localAddr.AsSlice()}
	}
	var conn net.Conn
	var err error
	if c.gate != nil {
		err = c.gate(t.addr)
	}
	if err == nil {
		conn, err = d.DialContext(ctx, "tcp", t.addr)
	}
	if err != nil {
		return nil, all(rcpts, Result{Reply: "451 4.4.1 Connection to " + t.name + " failed: " + err.Error(), RemoteMTA: t.name}), true
	}
	_ = conn.SetDeadline(time.Now().Add(c.timeout))
	fail := func(err error, next bool) (*session, []Result, bool) {
		r, perm := reply(err)
		return nil, all(rcpts, Result{Reply: r, Permanent: perm && !next, RemoteMTA: t.name}), next
	}
	var cl *smtp.Client
	if h.RequireTLS {
		// go-smtp v0.25 offers STARTTLS only through NewClientStartTLS, whose first
		// EHLO says "localhost"; the EHLO after the handshake carries our name.
		cfg := &tls.Config{}
		if c.tlsConfig != nil {
			cfg = c.tlsConfig.Clone()
		}
		if cfg.ServerName == "" {
			cfg.ServerName = t.name
		}
		cl, err = smtp.NewClientStartTLS(conn, cfg)
		if err != nil {
			conn.Close()
			var se *smtp.SMTPError
			if errors.As(err, &se) {
				return fail(err, true)
			}
			return nil, all(rcpts, Result{Reply: "451 4.7.5 STARTTLS with " + t.name + " failed: " + err.Error(), RemoteMTA: t.name}), true
		}
	} else {
		cl = smtp.NewClient(conn)
	}
	if err := cl.Hello(c.helo); err != nil {
		_ = cl.Close()
		return fail(err, true)
	}
	if h.Username != "" {
		if err := cl.Auth(sasl.NewPlainClient("", h.Username, h.Password)); err != nil {
			_ = cl.Close()
			r, _ := reply(err)
			return nil, all(rcpts, Result{Reply: r, RemoteMTA: t.name}), true
		}
	}
	return &session{cl: cl, conn: conn}, nil, false
}

// reply is the result text for err, marking the session broken when the connection
// failed or the next hop is closing it (421) rather than answering a command.
func (s *session) reply(err error) (string, bool) {
	var se *smtp.SMTPError
	if !errors.As(err, &se) || se.Code == 421 {
		s.broken = true
	}
	return reply(err)
}

// transaction sends one MAIL, a RCPT for each of rcpts[pending] and, when any is
// accepted, the data, filling in results. It returns the recipients refused only for
// being too many, to go again, and whether any recipient was accepted.
func (c *Client) transaction(s *session, t target, from string, rcpts []string, pending []int, data []byte, d *DSN, results []Result) (again []int, progressed bool) {
	cl := s.cl
	// go-smtp writes the DSN parameters only when the server advertised DSN.
	passed, _ := cl.Extension("DSN")
	passed = passed && d != nil
	opts := d.mailOptions()
	if opts == nil {
		opts = &smtp.MailOptions{}
	}
	if !asciiBytes(data) {
		// RFC 6152 §3: 8-bit data goes only to a next hop that offers 8BITMIME. The
		// reference does not convert MIME to 7 bits, so the recipients fail with 5.6.3
		// (SMTP-017).
		if ok, _ := cl.Extension("8BITMIME"); !ok {
			for _, i := range pending {
				results[i] = Result{Rcpt: rcpts[i], Permanent: true, RemoteMTA: t.name,
					Reply: "554 5.6.3 " + t.name + " does not offer 8BITMIME, and the message holds 8-bit data"}
			}
			return nil, false
		}
		opts.Body = smtp.Body8BitMIME
	}
	// RFC 6531 §3.2: a non-ASCII address goes only to a next hop that offers SMTPUTF8
	// (SMTP-018); the recipients it concerns fail with 5.6.7, the rest go on.
	utf8, _ := cl.Extension("SMTPUTF8")
	pending = slices.DeleteFunc(slices.Clone(pending), func(i int) bool {
		if utf8 || isASCII(rcpts[i]) && isASCII(from) {
			return false
		}
		results[i] = Result{Rcpt: rcpts[i], Permanent: true, RemoteMTA: t.name,
			Reply: "553 5.6.7 " + t.name + " does not offer SMTPUTF8, needed for a non-ASCII address"}
		return true
	})
	if len(pending) == 0 {
		return nil, false
	}
	if !isASCII(from) {
		opts.UTF8 = true
	}
	for _, i := range pending {
		opts.UTF8 = opts.UTF8 || !isASCII(rcpts[i])
	}
	// With PIPELINING (RFC 2920) MAIL, the RCPTs and DATA go in one write and their
	// replies are read afterwards; without it, each waits for the reply before.
	var mailErr, dataErr error
	rcptErr := make([]error, len(pending))
	var w *smtp.DataCommand
	if ok, _ := cl.Extension("PIPELINING"); ok {
		to := make([]string, len(pending))
		ropts := make([]*smtp.RcptOptions, len(pending))
		for k, i := range pending {
			to[k], ropts[k] = rcpts[i], d.rcptOptions(rcpts[i])
		}
		var rep smtp.PipelineReplies
		w, rep = cl.SendPipelined(from, opts, to, ropts)
		mailErr, rcptErr, dataErr = rep.Mail, rep.Rcpt, rep.Data
	} else if mailErr = cl.Mail(from, opts); mailErr == nil {
		for k, i := range pending {
			rcptErr[k] = cl.Rcpt(rcpts[i], d.rcptOptions(rcpts[i]))
		}
	}
	if mailErr != nil {
		s.mailFailed = true
		r, perm := s.reply(mailErr)
		for _, i := range pending {
			results[i] = Result{Rcpt: rcpts[i], Reply: r, Permanent: perm, RemoteMTA: t.name}
		}
		return nil, false
	}
	// Until the reply to the data, the next hop holds a transaction that a kept
	// session must RSET before its next MAIL.
	s.dirty = true
	var accepted []int
	for k, i := range pending {
		results[i] = Result{Rcpt: rcpts[i], RemoteMTA: t.name, DSNPassed: passed}
		err := rcptErr[k]
		if err == nil {
			accepted = append(accepted, i)
			continue
		}
		results[i].Reply, results[i].Permanent = s.reply(err)
		var se *smtp.SMTPError
		if len(accepted) > 0 && errors.As(err, &se) && (se.Code == 452 || se.Code == 552) {
			// Too many recipients for this transaction: temporary, whatever the class.
			results[i].Permanent = false
			again = append(again, i)
		}
	}
	if len(accepted) == 0 {
		return nil, false
	}
	err := dataErr
	if w == nil && err == nil {
		w, err = cl.Data()
	}
	if err == nil {
		if _, err = w.Write(data); err == nil {
			var resp *smtp.DataResponse
			resp, err = w.CloseWithResponse()
			s.dirty = false // the reply to the data ends the transaction, whatever it says
			if err == nil {
				for _, i := range accepted {
					results[i].Delivered = true
					results[i].Reply = "250 " + resp.StatusText
				}
				return again, true
			}
		}
	}
	r, perm := s.reply(err)
	for _, i := range accepted {
		results[i].Reply, results[i].Permanent = r, perm
	}
	// The data failed: the recipients left over wait for the next attempt.
	return nil, false
}
