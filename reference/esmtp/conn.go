package esmtp

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/emersion/go-message/textproto"
	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/mailflow/mailflow/reference/replies"
)

// Conn is one client connection and the session's state: the only copy of it, kept
// the same before and after STARTTLS.
type Conn struct {
	srv    *Server
	raw    net.Conn
	nc     net.Conn // raw, or the TLS connection over it
	r      *bufio.Reader
	w      *bufio.Writer
	remote netip.Addr
	sess   Session
	limits Limits

	refused  bool // the greeting was a refusal: 503 until QUIT
	helo     string
	esmtp    bool
	tls      bool
	authUser string
	env      *Envelope // the open transaction, nil outside one
	bdat     *bdatState
	errors   int
	midLine  bool // the last command line read ended at a bare LF
}

// bdatState is a BDAT transfer under way (RFC 3030).
type bdatState struct {
	data     []byte
	size     int64
	tooBig   bool
	cr       bool
	bareCRLF bool
}

// Context ends when the server closes: what a session waits on should end with it.
func (c *Conn) Context() context.Context { return c.srv.ctx }

// RemoteAddr is the client's address.
func (c *Conn) RemoteAddr() netip.Addr { return c.remote }

// Hostname is the name the client gave in EHLO or HELO.
func (c *Conn) Hostname() string { return c.helo }

// TLS says whether the session is encrypted.
func (c *Conn) TLS() bool { return c.tls }

// AuthUser is the user the session authenticated as, "" when it did not.
func (c *Conn) AuthUser() string { return c.authUser }

// Received is the RFC 5321 §4.4 trace line a server prepends to the message it takes
// as id at now (TRACE-001, TRACE-002, TRACE-003): the EHLO name as From-domain, then
// the TCP-info, which is what the connection says (the peer's address literal; no
// reverse lookup is made), never the EHLO name again. "with" is SMTP after HELO,
// ESMTP after EHLO, plus S for TLS and A for AUTH (RFC 3848).
func (c *Conn) Received(id string, now time.Time, rcpts []string) string {
	with := "SMTP"
	if c.esmtp {
		with = "ESMTP"
		if c.tls {
			with += "S"
		}
		if c.authUser != "" {
			with += "A"
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "Received: from %s ([%s])\r\n\tby %s (mailflow) with %s id %s", c.helo, c.remote, c.srv.hostname, with, id)
	if len(rcpts) == 1 {
		fmt.Fprintf(&b, "\r\n\tfor <%s>", rcpts[0])
	}
	fmt.Fprintf(&b, "; %s\r\n", now.Format("Mon, 02 Jan 2006 15:04:05 -0700"))
	return b.String()
}

// deadlineConn gives every read the session's inactivity timeout.
type deadlineConn struct {
	net.Conn
	timeout *time.Duration
}

func (d deadlineConn) Read(p []byte) (int, error) {
	_ = d.Conn.SetReadDeadline(time.Now().Add(*d.timeout))
	return d.Conn.Read(p)
}

func (d deadlineConn) Write(p []byte) (int, error) {
	_ = d.Conn.SetWriteDeadline(time.Now().Add(time.Minute))
	return d.Conn.Write(p)
}

func (s *Server) serveConn(nc net.Conn) {
	c := &Conn{srv: s, raw: nc, remote: remoteIP(nc.RemoteAddr()), limits: s.limits}
	c.setStream(deadlineConn{nc, &c.limits.Timeout})
	defer func() {
		_ = c.w.Flush()
		_ = c.nc.Close()
	}()
	sess, err := s.backend.NewSession(c)
	if err != nil {
		c.refused = true
		c.replyErr(err, 554)
	} else {
		c.sess = sess
		if ls, ok := sess.(LimitedSession); ok {
			l := ls.Limits()
			if l.MaxMessageSize > 0 {
				c.limits.MaxMessageSize = l.MaxMessageSize
			}
			if l.MaxRecipients > 0 {
				c.limits.MaxRecipients = l.MaxRecipients
			}
			if l.Timeout > 0 {
				c.limits.Timeout = l.Timeout
			}
		}
		c.reply(220, "", s.hostname+" ESMTP mailflow")
	}
	for {
		if c.r.Buffered() == 0 {
			if err := c.w.Flush(); err != nil {
				return
			}
		}
		line, problem, crlf, err := readCommandLine(c.r, s.maxLine)
		if err != nil {
			c.readFailed(err)
			return
		}
		if c.midLine {
			// The rest of a line refused at its bare LF: answered already, unless it
			// ends at another bare LF (a client that sends bare LFs throughout).
			c.midLine = !crlf
			if crlf {
				continue
			}
		} else if !crlf {
			c.midLine = true
		}
		if problem != lineOK {
			if !c.syntaxError(problem) {
				return
			}
			continue
		}
		if !c.command(parseCommand(string(line))) {
			return
		}
	}
}

func (c *Conn) setStream(nc net.Conn) {
	c.nc = nc
	c.r = bufio.NewReaderSize(nc, 64<<10)
	c.w = bufio.NewWriter(nc)
}

// readFailed ends a session whose client went quiet (421, RFC 5321 §4.5.3.2) or away.
func (c *Conn) readFailed(err error) {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		c.reply(421, "4.4.2", c.srv.hostname+" Timeout, closing connection")
	}
}

// syntaxError answers a command line unfit to execute (SEC-006, SEC-009); false when
// the session is over.
func (c *Conn) syntaxError(p lineProblem) bool {
	switch p {
	case lineTooLong:
		return c.fail(500, "5.5.2", "Line too long")
	case lineBareLF:
		return c.fail(500, "5.5.2", "Bare LF in command line; lines end with CRLF")
	case lineBareCR:
		return c.fail(500, "5.5.2", "Bare CR in command line")
	default:
		return c.fail(500, "5.5.2", "NUL in command line")
	}
}

// fail writes a 5yz for a client error and counts it: past the server's limit the
// session ends with 421 4.7.0 (SEC-009). False when the session is over.
func (c *Conn) fail(code int, enh, text string) bool {
	c.reply(code, enh, text)
	c.errors++
	if c.errors >= c.srv.maxErrors {
		c.reply(421, "4.7.0", c.srv.hostname+" Too many errors, closing connection")
		return false
	}
	return true
}

// failErr is fail for a reply the policy gave.
func (c *Conn) failErr(err error) bool {
	c.replyErr(err, 451)
	if se, ok := asSMTPError(err); ok && se.Code >= 500 {
		c.errors++
		if c.errors >= c.srv.maxErrors {
			c.reply(421, "4.7.0", c.srv.hostname+" Too many errors, closing connection")
			return false
		}
	}
	return true
}

func asSMTPError(err error) (*smtp.SMTPError, bool) {
	var se *smtp.SMTPError
	ok := errors.As(err, &se)
	return se, ok
}

// replyErr writes err as a reply: an *smtp.SMTPError as it is, anything else as a
// temporary failure with code def's class.
func (c *Conn) replyErr(err error, def int) {
	if se, ok := asSMTPError(err); ok {
		enh := fmt.Sprintf("%d.0.0", se.Code/100)
		if se.EnhancedCode != smtp.NoEnhancedCode && se.EnhancedCode != (smtp.EnhancedCode{}) {
			enh = fmt.Sprintf("%d.%d.%d", se.EnhancedCode[0], se.EnhancedCode[1], se.EnhancedCode[2])
		}
		c.reply(se.Code, enh, strings.Split(se.Message, "\n")...)
		return
	}
	c.srv.log.Warn("session error", "remote", c.remote.String(), "err", err)
	if def == 554 {
		c.reply(554, "5.3.0", "Service not available")
		return
	}
	c.reply(451, "4.3.0", "Local error, try again later")
}

// reply writes one reply. enh is its enhanced code, "" for none: every reply after
// the greeting and the EHLO/HELO reply carries one (RFC 2034 §3, SMTP-010).
func (c *Conn) reply(code int, enh string, lines ...string) {
	if len(lines) == 0 {
		lines = []string{""}
	}
	for i, l := range lines {
		sep := " "
		if i < len(lines)-1 {
			sep = "-"
		}
		switch {
		case enh != "" && l != "":
			fmt.Fprintf(c.w, "%d%s%s %s\r\n", code, sep, enh, l)
		case enh != "":
			fmt.Fprintf(c.w, "%d%s%s\r\n", code, sep, enh)
		default:
			fmt.Fprintf(c.w, "%d%s%s\r\n", code, sep, l)
		}
	}
}

// resetTransaction ends the open transaction, if any.
func (c *Conn) resetTransaction() {
	c.env = nil
	c.bdat = nil
}

// command executes one command; false when the session is over.
func (c *Conn) command(cmd command) bool {
	if c.refused && cmd.verb != "QUIT" {
		return c.fail(503, "5.5.1", "Bad sequence of commands: service refused, only QUIT is accepted")
	}
	if e := c.srv.ext; e != nil && cmd.verb == strings.ToUpper(e.Verb) {
		if code, lines := e.Answer(c.remote, strings.TrimSpace(cmd.args)); code != 0 {
			if len(lines) == 0 {
				lines = []string{"OK"}
			}
			for i, l := range lines {
				sep := "-"
				if i == len(lines)-1 {
					sep = " "
				}
				fmt.Fprintf(c.w, "%d%s%s\r\n", code, sep, l)
			}
			return true
		}
		return c.fail(500, "5.5.1", "Command unrecognized")
	}
	switch cmd.verb {
	case "EHLO", "HELO":
		return c.hello(cmd)
	case "MAIL":
		return c.mail(cmd.args)
	case "RCPT":
		return c.rcpt(cmd.args)
	case "DATA":
		return c.data(cmd.args)
	case "BDAT":
		return c.bdatCmd(cmd.args)
	case "RSET":
		if cmd.args != "" {
			return c.fail(501, "5.5.4", "Syntax: RSET")
		}
		c.resetTransaction()
		c.reply(250, "2.0.0", "OK")
	case "NOOP":
		c.reply(250, "2.0.0", "OK")
	case "QUIT":
		c.reply(221, "2.0.0", c.srv.hostname+" closing connection")
		return false
	case "VRFY":
		c.reply(252, "2.5.0", "Cannot VRFY user, but will accept message and attempt delivery")
	case "HELP":
		c.reply(214, "2.0.0", "See RFC 5321")
	case "STARTTLS":
		return c.startTLS(cmd.args)
	case "AUTH":
		return c.auth(cmd.args)
	case "EXPN", "TURN", "ETRN", "ATRN", "SEND", "SOML", "SAML":
		return c.fail(502, "5.5.1", "Command not implemented")
	default:
		return c.fail(500, "5.5.1", "Command unrecognized")
	}
	return true
}

func (c *Conn) hello(cmd command) bool {
	name, _, _ := strings.Cut(strings.TrimSpace(cmd.args), " ")
	if name == "" || !printable(name) {
		return c.fail(501, "5.5.4", "Syntax: "+cmd.verb+" hostname")
	}
	c.resetTransaction()
	c.helo, c.esmtp = name, cmd.verb == "EHLO"
	if !c.esmtp {
		c.reply(250, "", c.srv.hostname+" Hello "+name+" ["+c.remote.String()+"]")
		return true
	}
	lines := []string{c.srv.hostname + " Hello " + name + " [" + c.remote.String() + "]",
		"PIPELINING", "8BITMIME", "ENHANCEDSTATUSCODES", "CHUNKING", "SMTPUTF8"}
	if c.limits.MaxMessageSize > 0 {
		lines = append(lines, "SIZE "+strconv.FormatInt(c.limits.MaxMessageSize, 10))
	} else {
		lines = append(lines, "SIZE")
	}
	if c.srv.dsn {
		lines = append(lines, "DSN")
	}
	if c.srv.tls != nil && !c.tls {
		lines = append(lines, "STARTTLS")
	}
	if mechs := c.authMechanisms(); len(mechs) > 0 {
		lines = append(lines, "AUTH "+strings.Join(mechs, " "))
	}
	if e := c.srv.ext; e != nil && e.Keyword != "" {
		lines = append(lines, e.Keyword)
	}
	c.reply(250, "", lines...)
	return true
}

func ascii(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] <= 32 || s[i] >= 127 {
			return false
		}
	}
	return true
}

func (c *Conn) authMechanisms() []string {
	if a, ok := c.sess.(AuthSession); ok {
		return a.AuthMechanisms()
	}
	return nil
}

func (c *Conn) mail(args string) bool {
	switch {
	case c.helo == "":
		return c.fail(503, "5.5.1", "Send hello first")
	case c.env != nil:
		// A nested MAIL would leave two sets of recipients in play (SEC-007).
		return c.fail(503, "5.5.1", "Sender already specified")
	}
	path, rest, err := parsePathArg(args, "FROM")
	if err != nil {
		return c.fail(501, "5.5.2", "Syntax: MAIL FROM:<address>")
	}
	from := ""
	if path != "" {
		if from, err = parseMailbox(path); err != nil {
			return c.fail(501, "5.1.7", "Bad sender address syntax")
		}
	}
	params, ok := c.params(rest)
	if !ok {
		return c.errors < c.srv.maxErrors
	}
	var p MailParams
	for k, v := range params {
		switch k {
		case "SIZE":
			n, err := strconv.ParseUint(v, 10, 63)
			if err != nil && !errors.Is(err, strconv.ErrRange) || v == "" || strings.TrimLeft(v, "0123456789") != "" {
				return c.fail(501, "5.5.4", "Syntax: SIZE=<octets>")
			}
			// A size too large to count is larger than any limit (RFC 1870 §6).
			if errors.Is(err, strconv.ErrRange) || c.limits.MaxMessageSize > 0 && int64(n) > c.limits.MaxMessageSize {
				return c.fail(552, "5.3.4", "Message size exceeds fixed maximum message size")
			}
			p.Size = int64(n)
		case "BODY":
			if u := strings.ToUpper(v); u == "7BIT" || u == "8BITMIME" {
				p.Body = u
				continue
			}
			return c.fail(501, "5.5.4", "Syntax: BODY=7BIT or BODY=8BITMIME")
		case "RET":
			if u := strings.ToUpper(v); c.srv.dsn && (u == "FULL" || u == "HDRS") {
				p.Ret = u
				continue
			}
			if !c.srv.dsn {
				return c.fail(555, "5.5.4", "Unsupported parameter RET")
			}
			return c.fail(501, "5.5.4", "Syntax: RET=FULL or RET=HDRS")
		case "ENVID":
			if !c.srv.dsn {
				return c.fail(555, "5.5.4", "Unsupported parameter ENVID")
			}
			if len(v) > 100 || !validXtext(v) {
				return c.fail(501, "5.5.4", "Syntax: ENVID=<xtext>")
			}
			p.EnvID = decodeXtext(v)
		case "SMTPUTF8":
			if v != "" {
				return c.fail(501, "5.5.4", "Syntax: SMTPUTF8 takes no value")
			}
			p.UTF8 = true
		case "AUTH":
			// RFC 4954 §5: the identity a relaying client vouches for; the reference
			// trusts no such claim, so it is checked for syntax and not kept.
			if v != "<>" && !validXtext(v) {
				return c.fail(501, "5.5.4", "Syntax: AUTH=<xtext>")
			}
		default:
			return c.fail(555, "5.5.4", "Unsupported parameter "+k)
		}
	}
	if !p.UTF8 && !ascii(from) {
		// RFC 6531 §3.5: a non-ASCII address needs the transaction to say SMTPUTF8.
		return c.fail(553, "5.6.7", "Non-ASCII address needs SMTPUTF8")
	}
	if err := c.sess.Mail(from, p); err != nil {
		return c.failErr(err)
	}
	c.env = &Envelope{From: from, Mail: p}
	c.reply(250, "2.1.0", "Sender OK")
	return true
}

func (c *Conn) rcpt(args string) bool {
	switch {
	case c.helo == "":
		return c.fail(503, "5.5.1", "Send hello first")
	case c.env == nil:
		return c.fail(503, "5.5.1", "Bad sequence of commands: need MAIL before RCPT")
	case c.bdat != nil:
		return c.fail(503, "5.5.1", "Bad sequence of commands: RCPT during BDAT")
	}
	path, rest, err := parsePathArg(args, "TO")
	if err != nil {
		return c.fail(501, "5.5.2", "Syntax: RCPT TO:<address>")
	}
	to := path
	if !strings.EqualFold(path, "postmaster") { // RFC 5321 §4.1.1.3 (SMTP-011)
		if to, err = parseMailbox(path); err != nil {
			return c.fail(501, "5.1.3", "Bad recipient address syntax")
		}
	}
	params, ok := c.params(rest)
	if !ok {
		return c.errors < c.srv.maxErrors
	}
	var p RcptParams
	for k, v := range params {
		switch {
		case k == "NOTIFY" && c.srv.dsn:
			notify, ok := parseNotify(v)
			if !ok {
				return c.fail(501, "5.5.4", "Syntax: NOTIFY=NEVER or NOTIFY=SUCCESS,FAILURE,DELAY")
			}
			p.Notify = notify
		case k == "ORCPT" && c.srv.dsn:
			typ, addr, ok := strings.Cut(v, ";")
			if !ok || typ == "" || !validXtext(addr) || len(v) > 500 {
				return c.fail(501, "5.5.4", "Syntax: ORCPT=addr-type;xtext")
			}
			p.ORCPTType, p.ORCPT = typ, decodeXtext(addr)
		default:
			return c.fail(555, "5.5.4", "Unsupported parameter "+k)
		}
	}
	if !c.env.Mail.UTF8 && !ascii(to) {
		return c.fail(553, "5.6.7", "Non-ASCII address needs SMTPUTF8")
	}
	if len(c.env.Rcpts) >= c.limits.MaxRecipients {
		c.reply(452, "4.5.3", "Too many recipients")
		return true
	}
	kept, err := c.sess.Rcpt(to, p)
	if err != nil {
		return c.failErr(err)
	}
	if c.srv.dsn && p.ORCPT == "" && kept != to && strings.EqualFold(kept, to) {
		// The session keeps the address in its own letter case (a domain lower-cased
		// for routing). ORCPT keeps it as the client wrote it, for the DSN: a server may
		// add ORCPT, holding exactly the address of the RCPT (RFC 3461 §4.2).
		p.ORCPT, p.ORCPTType = to, "rfc822"
	}
	c.env.Rcpts = append(c.env.Rcpts, Recipient{Addr: kept, RcptParams: p})
	c.reply(250, "2.1.5", "Recipient OK")
	return true
}

// params parses MAIL's or RCPT's parameters; false (after the reply) when they do not
// parse or come in a session that did not say EHLO.
func (c *Conn) params(s string) (map[string]string, bool) {
	params, err := parseParams(s)
	switch {
	case err != nil:
		c.fail(501, "5.5.4", "Syntax error in parameters")
		return nil, false
	case len(params) > 0 && !c.esmtp:
		c.fail(555, "5.5.4", "Parameters need EHLO")
		return nil, false
	}
	return params, true
}

func parseNotify(v string) ([]string, bool) {
	parts := strings.Split(strings.ToUpper(v), ",")
	seen := map[string]bool{}
	for _, p := range parts {
		switch p {
		case "NEVER":
			if len(parts) != 1 {
				return nil, false
			}
		case "SUCCESS", "FAILURE", "DELAY":
			if seen[p] {
				return nil, false
			}
		default:
			return nil, false
		}
		seen[p] = true
	}
	return parts, true
}

// ready is why the transaction cannot take data yet ("" when it can): MAIL and at
// least one accepted RCPT come first (SMTP-005, SEC-007).
func (c *Conn) ready() string {
	switch {
	case c.env == nil:
		return "Bad sequence of commands: need MAIL before data"
	case len(c.env.Rcpts) == 0:
		return "Bad sequence of commands: no valid recipients"
	}
	return ""
}

func (c *Conn) data(args string) bool {
	if args != "" {
		return c.fail(501, "5.5.4", "Syntax: DATA")
	}
	if c.bdat != nil {
		return c.fail(503, "5.5.1", "Bad sequence of commands: DATA during BDAT")
	}
	if why := c.ready(); why != "" {
		return c.fail(503, "5.5.1", why)
	}
	c.reply(354, "", "Start mail input; end with <CRLF>.<CRLF>")
	if err := c.w.Flush(); err != nil {
		return false
	}
	data, res, err := readData(c.r, c.limits.MaxMessageSize)
	if err != nil {
		// The client never finished: nothing of it is kept (SMTP-022, SEC-005).
		c.resetTransaction()
		c.readFailed(err)
		return false
	}
	return c.finish(data, res.tooBig, res.bareLF || res.bareCR)
}

// bdatCmd takes one BDAT chunk (RFC 3030). A chunk is read in full whatever the reply,
// or the client's octets would be read as commands.
func (c *Conn) bdatCmd(args string) bool {
	fields := strings.Fields(args)
	if len(fields) == 0 || len(fields) > 2 || len(fields) == 2 && !strings.EqualFold(fields[1], "LAST") ||
		strings.TrimLeft(fields[0], "0123456789") != "" {
		// Without a size the server cannot find the next command: it must close.
		c.reply(421, "4.5.4", c.srv.hostname+" BDAT syntax error, closing connection")
		return false
	}
	n, err := strconv.ParseInt(fields[0], 10, 64)
	if err != nil {
		c.reply(421, "4.5.4", c.srv.hostname+" BDAT size out of range, closing connection")
		return false
	}
	last := len(fields) == 2
	why := c.ready()
	st := c.bdat
	if st == nil {
		st = &bdatState{}
	}
	limit := c.limits.MaxMessageSize
	keep := why == "" && !st.tooBig && (limit <= 0 || st.size+n <= limit)
	var chunk []byte
	if keep {
		chunk = make([]byte, n)
		_, err = io.ReadFull(c.r, chunk)
	} else {
		_, err = io.CopyN(io.Discard, c.r, n)
	}
	if err != nil {
		c.resetTransaction()
		c.readFailed(err)
		return false
	}
	if why != "" {
		return c.fail(503, "5.5.1", why)
	}
	st.size += n
	if !keep {
		st.tooBig = true
	}
	for _, b := range chunk {
		if b == '\n' && !st.cr || st.cr && b != '\n' {
			st.bareCRLF = true
		}
		st.cr = b == '\r'
	}
	st.data = append(st.data, chunk...)
	c.bdat = st
	if !last {
		c.reply(250, "2.0.0", fmt.Sprintf("%d octets received", n))
		return true
	}
	return c.finish(st.data, st.tooBig, st.bareCRLF || st.cr)
}

// finish answers end-of-data and ends the transaction whatever the answer: a 250
// means the message was taken for exactly the recipients this transaction accepted.
func (c *Conn) finish(data []byte, tooBig, bareCRLF bool) bool {
	env := c.env
	c.resetTransaction()
	switch {
	case tooBig:
		return c.failErr(replies.MessageTooBig())
	case bareCRLF:
		// RFC 5321 §2.3.8: CR and LF occur only together, as the line end. A next hop
		// could end such data elsewhere (SEC-001, SEC-002), so it is refused whole.
		return c.fail(554, "5.6.0", "Message refused: bare CR or LF in the message data")
	}
	if c.srv.maxHops > 0 {
		hdr, _ := textproto.ReadHeader(bufio.NewReader(strings.NewReader(string(data))))
		if n := len(hdr.Values("Received")); n > c.srv.maxHops {
			return c.failErr(replies.HopCountExceeded(c.srv.maxHops))
		}
	}
	err := c.sess.Data(env, data)
	var ender interface{ EndsSession() bool }
	if errors.As(err, &ender) && ender.EndsSession() {
		// A policy that ends the session with its refusal (an Edge transport rule's
		// SMTP reject, FILTER-012): the reply, then the close.
		c.resetTransaction()
		c.replyErr(err, 451)
		return false
	}
	if err == nil {
		c.reply(250, "2.0.0", "OK")
		return true
	}
	if se, ok := asSMTPError(err); ok && se.Code/100 == 2 {
		c.replyErr(se, 250)
		return true
	}
	return c.failErr(err)
}

func (c *Conn) startTLS(args string) bool {
	switch {
	case c.tls:
		return c.fail(503, "5.5.1", "TLS already active")
	case c.srv.tls == nil:
		return c.fail(502, "5.5.1", "STARTTLS not offered")
	case args != "":
		return c.fail(501, "5.5.4", "Syntax: STARTTLS")
	}
	c.reply(220, "2.0.0", "Ready to start TLS")
	if err := c.w.Flush(); err != nil {
		return false
	}
	// Whatever the client sent after STARTTLS in the clear is not part of the TLS
	// session: it is thrown away, never executed inside it (SEC-003, CVE-2011-0411).
	_, _ = c.r.Discard(c.r.Buffered())
	tc := tls.Server(c.raw, c.srv.tls)
	ctx, cancel := context.WithTimeout(context.Background(), c.limits.Timeout)
	defer cancel()
	if err := tc.HandshakeContext(ctx); err != nil {
		// The session cannot go on in the clear after a failed handshake (SEC-008).
		c.srv.log.Info("TLS handshake failed", "remote", c.remote.String(), "err", err)
		_ = c.raw.Close()
		return false
	}
	c.setStream(deadlineConn{tc, &c.limits.Timeout})
	// RFC 3207 §4.2: the client must say EHLO again, and nothing from before counts.
	c.tls = true
	c.helo, c.esmtp, c.authUser = "", false, ""
	c.resetTransaction()
	return true
}

// authResponse sends a 334 challenge and reads the client's base64 response. ok is
// false when there is none to use; then goOn says whether the session goes on, the
// refusal (a cancel, bad base64) already written.
func (c *Conn) authResponse(challenge string) (resp []byte, ok, goOn bool) {
	c.reply(334, "", challenge)
	if err := c.w.Flush(); err != nil {
		return nil, false, false
	}
	line, problem, crlf, err := readCommandLine(c.r, c.srv.maxLine)
	if err != nil {
		c.readFailed(err)
		return nil, false, false
	}
	if !crlf {
		c.midLine = true
	}
	if problem != lineOK {
		return nil, false, c.syntaxError(problem)
	}
	if string(line) == "*" {
		return nil, false, c.fail(501, "5.0.0", "Authentication cancelled")
	}
	b, err := base64.StdEncoding.DecodeString(string(line))
	if err != nil {
		return nil, false, c.fail(501, "5.5.2", "Cannot decode the response")
	}
	return b, true, true
}

func (c *Conn) auth(args string) bool {
	mechs := c.authMechanisms()
	switch {
	case c.helo == "":
		return c.fail(503, "5.5.1", "Send hello first")
	case c.authUser != "":
		return c.fail(503, "5.5.1", "Already authenticated")
	case c.env != nil:
		return c.fail(503, "5.5.1", "AUTH not permitted during a mail transaction")
	case len(mechs) == 0:
		if a, ok := c.sess.(ClearAuthSession); ok && !c.tls {
			return c.failErr(a.ClearAuthRefusal())
		}
		return c.fail(503, "5.5.1", "Authentication not enabled")
	}
	mech, ir, hasIR := strings.Cut(strings.TrimSpace(args), " ")
	mech = strings.ToUpper(mech)
	offered := false
	for _, m := range mechs {
		offered = offered || strings.EqualFold(m, mech)
	}
	if !offered || mech != sasl.Plain && mech != sasl.Login {
		return c.fail(504, "5.5.4", "Unrecognized authentication type")
	}
	a := c.sess.(AuthSession)
	var user string
	if mech == sasl.Login {
		// LOGIN (draft-murchison-sasl-login): the user name, then the password, each
		// asked for with its base64 prompt; an initial response is the user name.
		var name, pass []byte
		var ok, goOn bool
		if hasIR && ir != "=" {
			b, err := base64.StdEncoding.DecodeString(ir)
			if err != nil {
				return c.fail(501, "5.5.2", "Cannot decode the response")
			}
			name = b
		} else if name, ok, goOn = c.authResponse("VXNlcm5hbWU6"); !ok {
			return goOn
		}
		if pass, ok, goOn = c.authResponse("UGFzc3dvcmQ6"); !ok {
			return goOn
		}
		if err := a.Authenticate("", string(name), string(pass)); err != nil {
			return c.failErr(err)
		}
		user = string(name)
	} else {
		var resp []byte
		switch {
		case hasIR && ir == "=":
		case hasIR:
			b, err := base64.StdEncoding.DecodeString(ir)
			if err != nil {
				return c.fail(501, "5.5.2", "Cannot decode the response")
			}
			resp = b
		default:
			var ok, goOn bool
			if resp, ok, goOn = c.authResponse(""); !ok {
				return goOn
			}
		}
		var authErr error
		srv := sasl.NewPlainServer(func(identity, username, password string) error {
			user = username
			authErr = a.Authenticate(identity, username, password)
			return authErr
		})
		if _, _, err := srv.Next(resp); err != nil {
			if authErr != nil {
				return c.failErr(authErr)
			}
			return c.fail(501, "5.5.2", "Malformed PLAIN response")
		}
	}
	c.authUser = user
	c.reply(235, "2.7.0", "Authentication successful")
	return true
}
