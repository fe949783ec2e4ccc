// Package directory is the reference's LDAP client (go-ldap): it finds a recipient by
// any of its proxy addresses, tells "no such recipient" apart from "the directory
// cannot answer" (a temporary failure, CAT-006), and checks SMTP AUTH passwords with a
// simple bind. Serves ACCEPT-002, CAT-001, CAT-006, RELAY-005.
package directory

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/go-ldap/ldap/v3"
)

// ErrNotFound is a definite answer: no recipient has this address.
var ErrNotFound = errors.New("recipient not found in directory")

// ErrInvalidCredentials is a refused AUTH.
var ErrInvalidCredentials = errors.New("invalid credentials")

// UnavailableError means the directory could not be asked.
type UnavailableError struct{ Err error }

func (e *UnavailableError) Error() string { return "directory unavailable: " + e.Err.Error() }
func (e *UnavailableError) Unwrap() error { return e.Err }

// IsUnavailable reports a temporary directory failure.
func IsUnavailable(err error) bool {
	var u *UnavailableError
	return errors.As(err, &u)
}

// Entry is a resolved recipient.
type Entry struct {
	DN            string
	Mail          string // primary SMTP address
	Type          string // mailbox | group | contact
	MailboxServer string
	Members       []string
	External      string
}

// Client talks to one directory server.
type Client struct {
	url     string
	baseDN  string
	timeout time.Duration

	mu   sync.Mutex
	conn *ldap.Conn
}

// Option configures a Client.
type Option func(*Client)

func WithTimeout(d time.Duration) Option { return func(c *Client) { c.timeout = d } }

// New makes a client; it connects on first use and again after a failure.
func New(url, baseDN string, opts ...Option) *Client {
	c := &Client{url: url, baseDN: baseDN, timeout: 2 * time.Second}
	for _, o := range opts {
		o(c)
	}
	return c
}

func (c *Client) dial() (*ldap.Conn, error) {
	conn, err := ldap.DialURL(c.url, ldap.DialWithDialer(&net.Dialer{Timeout: c.timeout}))
	if err != nil {
		return nil, &UnavailableError{err}
	}
	conn.SetTimeout(c.timeout)
	return conn, nil
}

// search runs one search on the shared connection, reconnecting once when it broke.
func (c *Client) search(ctx context.Context, req *ldap.SearchRequest) (*ldap.SearchResult, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for attempt := 0; attempt < 2; attempt++ {
		if ctx.Err() != nil {
			return nil, &UnavailableError{ctx.Err()}
		}
		if c.conn == nil || c.conn.IsClosing() {
			conn, err := c.dial()
			if err != nil {
				return nil, err
			}
			c.conn = conn
		}
		res, err := c.conn.Search(req)
		if err == nil {
			return res, nil
		}
		if ldap.IsErrorWithCode(err, ldap.LDAPResultNoSuchObject) {
			return &ldap.SearchResult{}, nil
		}
		c.conn.Close()
		c.conn = nil
		if attempt == 1 {
			return nil, &UnavailableError{err}
		}
	}
	return nil, &UnavailableError{errors.New("unreachable")}
}

// Lookup finds the recipient owning addr (any proxy address, any letter case).
func (c *Client) Lookup(ctx context.Context, addr string) (*Entry, error) {
	esc := ldap.EscapeFilter(addr)
	res, err := c.search(ctx, ldap.NewSearchRequest(c.baseDN, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, 2, 0, false,
		fmt.Sprintf("(|(proxyAddresses=smtp:%s)(mail=%s))", esc, esc), nil, nil))
	if err != nil {
		return nil, fmt.Errorf("lookup %s: %w", addr, err)
	}
	if len(res.Entries) == 0 {
		return nil, fmt.Errorf("%s: %w", addr, ErrNotFound)
	}
	e := toEntry(res.Entries[0])
	for _, m := range res.Entries[0].GetAttributeValues("member") {
		mr, err := c.search(ctx, ldap.NewSearchRequest(m, ldap.ScopeBaseObject, ldap.NeverDerefAliases, 1, 0, false, "(objectClass=*)", []string{"mail"}, nil))
		if err != nil {
			return nil, fmt.Errorf("lookup %s member %s: %w", addr, m, err)
		}
		for _, me := range mr.Entries {
			e.Members = append(e.Members, me.GetAttributeValue("mail"))
		}
	}
	return e, nil
}

func toEntry(le *ldap.Entry) *Entry {
	e := &Entry{DN: le.DN, Mail: le.GetAttributeValue("mail"), Type: "mailbox"}
	for _, p := range le.GetAttributeValues("proxyAddresses") {
		if strings.HasPrefix(p, "SMTP:") {
			e.Mail = p[5:]
		}
	}
	for _, oc := range le.GetAttributeValues("objectClass") {
		switch strings.ToLower(oc) {
		case "group":
			e.Type = "group"
		case "contact":
			e.Type = "contact"
		}
	}
	e.MailboxServer = le.GetAttributeValue("msExchHomeServerName")
	if t := le.GetAttributeValue("targetAddress"); t != "" {
		e.External = strings.TrimPrefix(strings.TrimPrefix(t, "SMTP:"), "smtp:")
	}
	return e
}

// Authenticate checks user (an address) and password by binding as its entry on a
// connection of its own.
func (c *Client) Authenticate(ctx context.Context, user, password string) error {
	if password == "" {
		return ErrInvalidCredentials
	}
	e, err := c.Lookup(ctx, user)
	if errors.Is(err, ErrNotFound) {
		return ErrInvalidCredentials
	}
	if err != nil {
		return err
	}
	conn, err := c.dial()
	if err != nil {
		return err
	}
	defer conn.Close()
	if err := conn.Bind(e.DN, password); err != nil {
		if ldap.IsErrorWithCode(err, ldap.LDAPResultInvalidCredentials) {
			return ErrInvalidCredentials
		}
		return &UnavailableError{err}
	}
	return nil
}

// Close drops the connection.
func (c *Client) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.conn != nil {
		err := c.conn.Close()
		c.conn = nil
		return err
	}
	return nil
}
