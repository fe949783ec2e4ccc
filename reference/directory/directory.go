package directory

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/go-ldap/ldap/v3"
)

// ErrNotFound is a definite answer: no recipient has this address.
var ErrNotFound = errors.New("directory: no recipient with this address")

// ErrInvalidCredentials is a refused password.
var ErrInvalidCredentials = errors.New("directory: invalid credentials")

// UnavailableError means the directory could not be reached or searched. It is temporary:
// callers defer (4xx, queue) rather than treat the address as unknown (CAT-006).
type UnavailableError struct{ Err error }

func (e *UnavailableError) Error() string { return "directory unavailable: " + e.Err.Error() }
func (e *UnavailableError) Unwrap() error { return e.Err }

// IsUnavailable reports whether err is, or wraps, an *UnavailableError.
func IsUnavailable(err error) bool {
	var u *UnavailableError
	return errors.As(err, &u)
}

// Types of Entry.
const (
	TypeMailbox = "mailbox"
	TypeGroup   = "group"
	TypeContact = "contact"
)

// Entry is a resolved recipient.
type Entry struct {
	DN string
	// Mail is the primary SMTP address (the "SMTP:" proxy), whatever address was looked up.
	Mail string
	// Type is TypeMailbox, TypeGroup or TypeContact.
	Type string
	// MailboxServer is the server owning the mailbox's database; empty for non-mailboxes.
	MailboxServer string
	// Members are the primary addresses of a group's direct members; nested groups
	// appear as their own address, for the caller to expand.
	Members []string
	// External is the target address of a contact (or of a mail user).
	External string
	// ForwardTo is the primary address of the recipient a mailbox's mail is redirected
	// to (altRecipient); empty when it does not forward.
	ForwardTo string
}

// Client talks to one directory server. It is safe for concurrent use: requests go
// over a few connections side by side (PoolSize), each made when first needed and
// again after a failure, as Exchange's transport keeps several to its domain
// controllers; a session waiting on another's lookup would put every RCPT of a busy
// server in one line.
type Client struct {
	url     string
	baseDN  string
	timeout time.Duration
	bindDN  string
	bindPW  string

	sem  chan struct{} // one slot per request under way; a channel so waiting honours the context
	idle chan *pooled  // connections not in use
	mu   sync.Mutex    // guards gen
	gen  int           // bumped by Close: older connections are not reused
}

// PoolSize is how many requests a Client has under way at once, each on its own
// connection.
const PoolSize = 4

// queueWaits is how many timeouts a request waits at most for a connection of the pool.
const queueWaits = 5

type pooled struct {
	conn *ldap.Conn
	gen  int
}

// Option configures a Client.
type Option func(*Client)

// WithTimeout bounds each directory operation: connecting plus one request (default 2s).
func WithTimeout(d time.Duration) Option { return func(c *Client) { c.timeout = d } }

// WithBind makes the client bind as dn with password on each new connection instead of
// searching anonymously.
func WithBind(dn, password string) Option {
	return func(c *Client) { c.bindDN, c.bindPW = dn, password }
}

// New makes a client for the server at url ("ldap://host:port") searching under baseDN.
// It does not connect until first used.
func New(url, baseDN string, opts ...Option) *Client {
	c := &Client{url: url, baseDN: baseDN, timeout: 2 * time.Second, sem: make(chan struct{}, PoolSize), idle: make(chan *pooled, PoolSize)}
	for _, o := range opts {
		o(c)
	}
	return c
}

// Close drops the connections (those in use once their request ends); a later call
// connects again.
func (c *Client) Close() error {
	c.mu.Lock()
	c.gen++
	c.mu.Unlock()
	var errs []error
	for {
		select {
		case p := <-c.idle:
			errs = append(errs, p.conn.Close())
		default:
			return errors.Join(errs...)
		}
	}
}

// take is an idle connection of this generation, or nil.
func (c *Client) take() *pooled {
	c.mu.Lock()
	gen := c.gen
	c.mu.Unlock()
	for {
		select {
		case p := <-c.idle:
			if p.gen == gen && !p.conn.IsClosing() {
				return p
			}
			_ = p.conn.Close()
		default:
			return &pooled{gen: gen}
		}
	}
}

// put returns a connection for the next request, unless Close came since it was made.
func (c *Client) put(p *pooled) {
	c.mu.Lock()
	stale := p.gen != c.gen
	c.mu.Unlock()
	if stale {
		_ = p.conn.Close()
		return
	}
	select {
	case c.idle <- p:
	default:
		_ = p.conn.Close()
	}
}

var entryAttrs = []string{"mail", "proxyAddresses", "objectClass", "homeMDB", "msExchHomeServerName", "member", "targetAddress", "altRecipient"}

// Lookup finds the recipient owning addr: any of its proxy addresses, in any letter case.
// AD lists the primary address among the proxies as "SMTP:", and LDAP matching of
// proxyAddresses is case-insensitive, so one filter finds primary and secondary alike.
func (c *Client) Lookup(ctx context.Context, addr string) (*Entry, error) {
	le, err := c.findOne(ctx, "(proxyAddresses=smtp:"+ldap.EscapeFilter(addr)+")", entryAttrs)
	if err != nil {
		return nil, fmt.Errorf("lookup %s: %w", addr, err)
	}
	e := toEntry(le)
	if db := le.GetAttributeValue("homeMDB"); db != "" {
		// The database's owner is the authority (CAT-002); msExchHomeServerName is a
		// cached copy AD keeps on the user, used when the database cannot be read.
		d, err := c.read(ctx, db, []string{"msExchOwningServer"})
		if err != nil {
			return nil, fmt.Errorf("lookup %s: database %s: %w", addr, db, err)
		}
		if d != nil && d.GetAttributeValue("msExchOwningServer") != "" {
			e.MailboxServer = d.GetAttributeValue("msExchOwningServer")
		}
	}
	if alt := le.GetAttributeValue("altRecipient"); alt != "" {
		ae, err := c.read(ctx, alt, []string{"mail", "proxyAddresses"})
		if err != nil {
			return nil, fmt.Errorf("lookup %s: altRecipient %s: %w", addr, alt, err)
		}
		// A forwarding target gone from the directory forwards nowhere.
		e.ForwardTo = primary(ae)
	}
	for _, m := range le.GetAttributeValues("member") {
		me, err := c.read(ctx, m, []string{"mail", "proxyAddresses"})
		if err != nil {
			return nil, fmt.Errorf("lookup %s: member %s: %w", addr, m, err)
		}
		// A member gone from the directory, or one without mail, receives nothing.
		if mail := primary(me); mail != "" {
			e.Members = append(e.Members, mail)
		}
	}
	return e, nil
}

// Exists reports whether any recipient object has addr among its addresses (ErrNotFound
// when none has): what recipient filtering needs, in one search, where Lookup also reads
// the mailbox database, forwarding target and group members.
func (c *Client) Exists(ctx context.Context, addr string) error {
	if _, err := c.findOne(ctx, "(proxyAddresses=smtp:"+ldap.EscapeFilter(addr)+")", []string{"objectClass"}); err != nil {
		return fmt.Errorf("lookup %s: %w", addr, err)
	}
	return nil
}

// Authenticate checks user's password by binding as the user's entry, found by its
// primary address, on a connection of its own so the shared one keeps its identity.
func (c *Client) Authenticate(ctx context.Context, user, password string) error {
	// An empty password would be an unauthenticated bind, which some servers accept
	// (RFC 4513 §5.1.2): never let it pass as a login.
	if password == "" {
		return fmt.Errorf("authenticate %s: %w", user, ErrInvalidCredentials)
	}
	le, err := c.findOne(ctx, "(mail="+ldap.EscapeFilter(user)+")", []string{"mail"})
	if errors.Is(err, ErrNotFound) {
		return fmt.Errorf("authenticate %s: %w", user, ErrInvalidCredentials)
	}
	if err != nil {
		return fmt.Errorf("authenticate %s: %w", user, err)
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	conn, err := c.dial(ctx)
	if err != nil {
		return fmt.Errorf("authenticate %s: %w", user, err)
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { _ = conn.Close() })
	err = conn.Bind(le.DN, password)
	if !stop() {
		return fmt.Errorf("authenticate %s: %w", user, &UnavailableError{ctx.Err()})
	}
	switch {
	case err == nil:
		return nil
	case ldap.IsErrorWithCode(err, ldap.LDAPResultInvalidCredentials):
		return fmt.Errorf("authenticate %s: %w", user, ErrInvalidCredentials)
	default:
		return fmt.Errorf("authenticate %s: %w", user, &UnavailableError{err})
	}
}

// findOne searches the subtree for filter. Several matches would be a directory fault
// (one address, two owners); the first is used, as there is nothing better to do.
func (c *Client) findOne(ctx context.Context, filter string, attrs []string) (*ldap.Entry, error) {
	req := ldap.NewSearchRequest(c.baseDN, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, 0, 0, false, filter, attrs, nil)
	res, err := c.search(ctx, req)
	if err != nil {
		// A base DN that does not exist is a broken configuration, not an unknown
		// recipient: bouncing every message for it would be wrong (CAT-006).
		return nil, unavailable(err)
	}
	if len(res.Entries) == 0 {
		return nil, ErrNotFound
	}
	return res.Entries[0], nil
}

// read fetches one object by DN; nil (no error) when it does not exist.
func (c *Client) read(ctx context.Context, dn string, attrs []string) (*ldap.Entry, error) {
	req := ldap.NewSearchRequest(dn, ldap.ScopeBaseObject, ldap.NeverDerefAliases, 0, 0, false, "(objectClass=*)", attrs, nil)
	res, err := c.search(ctx, req)
	if ldap.IsErrorWithCode(err, ldap.LDAPResultNoSuchObject) {
		return nil, nil
	}
	if err != nil {
		return nil, unavailable(err)
	}
	if len(res.Entries) == 0 {
		return nil, nil
	}
	return res.Entries[0], nil
}

func unavailable(err error) error {
	if IsUnavailable(err) {
		return err
	}
	return &UnavailableError{err}
}

// search runs one request on the shared connection within the timeout. A connection
// that broke since its last use (the directory restarted) is replaced and the request
// retried once; a fresh connection that fails is an outage.
func (c *Client) search(ctx context.Context, req *ldap.SearchRequest) (*ldap.SearchResult, error) {
	// The timeout is the directory's to answer in, not the wait for a connection: a
	// burst of lookups queues for the pool, and counting the queue against each request
	// would turn a busy directory into timed-out ones, which then reconnect all at
	// once. The wait has a bound of its own, for a directory that answers nothing.
	wait, cancelWait := context.WithTimeout(ctx, c.timeout*queueWaits)
	select {
	case c.sem <- struct{}{}:
		cancelWait()
	case <-wait.Done():
		cancelWait()
		return nil, &UnavailableError{fmt.Errorf("no directory connection free for %s: %w", c.timeout*queueWaits, wait.Err())}
	}
	defer func() { <-c.sem }()
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()

	p := c.take()
	for {
		fresh := false
		if p.conn == nil {
			conn, err := c.dial(ctx)
			if err != nil {
				return nil, err
			}
			p.conn, fresh = conn, true
		}
		conn := p.conn
		// go-ldap requests take no context: closing the connection is what cuts one short.
		stop := context.AfterFunc(ctx, func() { _ = conn.Close() })
		res, err := conn.Search(req)
		if !stop() {
			return nil, &UnavailableError{ctx.Err()}
		}
		if err == nil || !isConnError(err) {
			c.put(p)
			return res, err // the server's own answer, success or not
		}
		_ = conn.Close()
		p.conn = nil
		if fresh {
			return nil, &UnavailableError{err}
		}
	}
}

// isConnError tells a broken connection from the server's answer: go-ldap reports the
// former with its own result codes (200 and up), the latter with the server's.
func isConnError(err error) bool {
	var le *ldap.Error
	return !errors.As(err, &le) || le.ResultCode == ldap.ErrorNetwork
}

// dial connects (and binds, WithBind) within ctx.
func (c *Client) dial(ctx context.Context) (*ldap.Conn, error) {
	u, err := url.Parse(c.url)
	if err != nil {
		return nil, &UnavailableError{fmt.Errorf("url %q: %w", c.url, err)}
	}
	var conn *ldap.Conn
	if u.Scheme == "ldap" {
		host := u.Host
		if u.Port() == "" {
			host = net.JoinHostPort(u.Hostname(), "389")
		}
		nc, err := (&net.Dialer{Timeout: c.timeout}).DialContext(ctx, "tcp", host)
		if err != nil {
			return nil, &UnavailableError{err}
		}
		conn = ldap.NewConn(nc, false)
		conn.Start()
	} else {
		conn, err = ldap.DialURL(c.url, ldap.DialWithDialer(&net.Dialer{Timeout: c.timeout}))
		if err != nil {
			return nil, &UnavailableError{err}
		}
	}
	conn.SetTimeout(c.timeout)
	if c.bindDN != "" {
		stop := context.AfterFunc(ctx, func() { _ = conn.Close() })
		err := conn.Bind(c.bindDN, c.bindPW)
		if !stop() {
			return nil, &UnavailableError{ctx.Err()}
		}
		if err != nil {
			_ = conn.Close()
			return nil, &UnavailableError{fmt.Errorf("bind as %s: %w", c.bindDN, err)}
		}
	}
	return conn, nil
}

func toEntry(le *ldap.Entry) *Entry {
	e := &Entry{DN: le.DN, Mail: primary(le), Type: TypeMailbox}
	for _, oc := range le.GetAttributeValues("objectClass") {
		switch strings.ToLower(oc) {
		case "group":
			e.Type = TypeGroup
		case "contact":
			e.Type = TypeContact
		}
	}
	if e.Type == TypeMailbox {
		e.MailboxServer = le.GetAttributeValue("msExchHomeServerName")
	}
	if t := le.GetAttributeValue("targetAddress"); t != "" {
		if i := strings.IndexByte(t, ':'); i >= 0 && strings.EqualFold(t[:i], "smtp") {
			t = t[i+1:]
		}
		e.External = t
	}
	return e
}

// primary is the "SMTP:" proxy (upper-case prefix marks the primary), else mail.
func primary(le *ldap.Entry) string {
	if le == nil {
		return ""
	}
	for _, p := range le.GetAttributeValues("proxyAddresses") {
		if strings.HasPrefix(p, "SMTP:") {
			return p[len("SMTP:"):]
		}
	}
	return le.GetAttributeValue("mail")
}
