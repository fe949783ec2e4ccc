package mailbox_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"net/textproto"
	"path/filepath"
	"strings"
	"testing"
	"time"

	mtextproto "github.com/emersion/go-message/textproto"
	"github.com/emersion/go-smtp"

	"github.com/mailflow/mailflow/fixtures/ldapfake"
	"github.com/mailflow/mailflow/fixtures/testca"
	"github.com/mailflow/mailflow/reference/directory"
	"github.com/mailflow/mailflow/reference/mailbox"
	"github.com/mailflow/mailflow/reference/store"
	"github.com/mailflow/mailflow/scenario"
	"github.com/mailflow/mailflow/trace"
)

const org = `org:
  accepted_domains:
    - {domain: contoso.test, type: authoritative, default: true}
  sites:
    - {name: london}
  servers:
    - {name: HUB1, role: hub, site: london}
    - {name: MBX1, role: mailbox, site: london}
    - {name: MBX2, role: mailbox, site: london}
  recipients:
    - {mail: alice@contoso.test, proxies: [a.smith@contoso.test], mailbox: MBX1, password: alice-pw}
    - {mail: bob@contoso.test, mailbox: MBX2, password: bob-pw}
    - {mail: team@contoso.test, type: group, members: [alice@contoso.test, bob@contoso.test]}
    - {mail: partner@contoso.test, type: contact, external: p@fabrikam.test}
`

var quiet = slog.New(slog.DiscardHandler)

type env struct {
	srv   *mailbox.Server
	store *store.Store
	trace *trace.Log
}

// start runs MBX1 on a free loopback port with a real directory and store; edit may
// change the configuration first.
func start(t *testing.T, edit func(*mailbox.Config)) *env {
	t.Helper()
	s, err := scenario.Parse("mailbox.yaml", []byte(org))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	ldap, err := ldapfake.Start(ctx, "127.0.0.1:0", s.Org.Recipients)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ldap.Stop() })
	dir := directory.New("ldap://"+ldap.Addr(), ldap.BaseDN())
	t.Cleanup(func() { _ = dir.Close() })
	st, err := store.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	sv, _ := s.Server("MBX1")
	tlsConf, err := testca.Shared().ServerConfig("127.0.0.1", sv.FQDN)
	if err != nil {
		t.Fatal(err)
	}
	log := trace.NewLog(nil)
	cfg := mailbox.Config{
		Scenario: s, Server: sv, Addr: netip.MustParseAddr("127.0.0.1"),
		Store: st, ServerTLS: tlsConf, Directory: dir, Trace: log, Logger: quiet,
	}
	if edit != nil {
		edit(&cfg)
	}
	srv, err := mailbox.Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	return &env{srv: srv, store: st, trace: log}
}

// dial opens a session and issues STARTTLS, trusting only the test CA.
func dial(t *testing.T, addr string) *smtp.Client {
	t.Helper()
	c, err := smtp.DialStartTLS(addr, testca.Shared().ClientConfig(""))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	if err := c.Hello("hub1.contoso.test"); err != nil {
		t.Fatal(err)
	}
	return c
}

// send runs one transaction; all recipients must be accepted.
func send(c *smtp.Client, from string, rcpts []string, msg string) error {
	if err := c.Mail(from, nil); err != nil {
		return fmt.Errorf("MAIL: %w", err)
	}
	for _, r := range rcpts {
		if err := c.Rcpt(r, nil); err != nil {
			return fmt.Errorf("RCPT %s: %w", r, err)
		}
	}
	w, err := c.Data()
	if err != nil {
		return fmt.Errorf("DATA: %w", err)
	}
	if _, err := w.Write([]byte(msg)); err != nil {
		return err
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("end of data: %w", err)
	}
	return nil
}

// wantReply checks err is the SMTP reply code/enhanced.
func wantReply(t *testing.T, err error, code int, enhanced smtp.EnhancedCode) {
	t.Helper()
	var se *smtp.SMTPError
	if !errors.As(err, &se) {
		t.Fatalf("got %v, want an SMTP reply %d", err, code)
	}
	if se.Code != code || se.EnhancedCode != enhanced {
		t.Errorf("reply %d %v %q, want %d %v", se.Code, se.EnhancedCode, se.Message, code, enhanced)
	}
}

func delivers(l *trace.Log) []trace.Event { return trace.OfType(l.Events(), trace.Deliver, "") }

func TestMailRequiresSTARTTLS(t *testing.T) {
	e := start(t, nil)
	c, err := smtp.Dial(e.srv.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Hello("hub1.contoso.test"); err != nil {
		t.Fatal(err)
	}
	if ok, _ := c.Extension("STARTTLS"); !ok {
		t.Error("STARTTLS not offered")
	}
	wantReply(t, c.Mail("sender@fabrikam.test", nil), 530, smtp.EnhancedCode{5, 7, 0})
	if ms, _ := e.store.Messages("alice@contoso.test"); len(ms) != 0 {
		t.Errorf("stored %d messages", len(ms))
	}
}

// On one connection: refused in the clear, accepted once STARTTLS is done (go-smtp's
// client cannot issue STARTTLS mid-session, so this one speaks the protocol itself).
func TestSTARTTLSThenMail(t *testing.T) {
	e := start(t, nil)
	conn, err := net.Dial("tcp", e.srv.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	tp := textproto.NewConn(conn)
	step := func(cmd string, code int) string {
		t.Helper()
		if cmd != "" {
			if err := tp.PrintfLine("%s", cmd); err != nil {
				t.Fatal(err)
			}
		}
		_, msg, err := tp.ReadResponse(code)
		if err != nil {
			t.Fatalf("%q: %v", cmd, err)
		}
		return msg
	}
	step("", 220)
	step("EHLO hub1.contoso.test", 250)
	if msg := step("MAIL FROM:<sender@fabrikam.test>", 530); msg != "5.7.0 Must issue a STARTTLS command first" {
		t.Errorf("reply %q", msg)
	}
	step("STARTTLS", 220)
	tc := tls.Client(conn, testca.Shared().ClientConfig("127.0.0.1"))
	tp = textproto.NewConn(tc)
	step("EHLO hub1.contoso.test", 250)
	step("MAIL FROM:<sender@fabrikam.test>", 250)
	step("RCPT TO:<alice@contoso.test>", 250)
}

// Without a TLS configuration nothing is accepted at all, rather than mail in the clear.
func TestNoTLSConfigRefusesMail(t *testing.T) {
	e := start(t, func(c *mailbox.Config) { c.ServerTLS = nil })
	c, err := smtp.Dial(e.srv.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if ok, _ := c.Extension("STARTTLS"); ok {
		t.Error("STARTTLS offered without a certificate")
	}
	wantReply(t, c.Mail("sender@fabrikam.test", nil), 530, smtp.EnhancedCode{5, 7, 0})
}

func TestRcpt(t *testing.T) {
	e := start(t, nil)
	c := dial(t, e.srv.Addr())
	tests := []struct {
		rcpt     string
		code     int // 0: accepted
		enhanced smtp.EnhancedCode
	}{
		{"alice@contoso.test", 0, smtp.EnhancedCode{}},
		{"A.Smith@CONTOSO.test", 0, smtp.EnhancedCode{}}, // secondary proxy, any case
		{"bob@contoso.test", 450, smtp.EnhancedCode{4, 2, 0}},
		{"nobody@contoso.test", 550, smtp.EnhancedCode{5, 1, 1}},
		{"team@contoso.test", 550, smtp.EnhancedCode{5, 1, 1}},
		{"partner@contoso.test", 550, smtp.EnhancedCode{5, 1, 1}},
		{"nodomain", 501, smtp.EnhancedCode{5, 1, 3}}, // not Local-part "@" Domain (RFC 5321 §4.1.2)
	}
	for _, tc := range tests {
		t.Run(tc.rcpt, func(t *testing.T) {
			if err := c.Mail("sender@fabrikam.test", nil); err != nil {
				t.Fatal(err)
			}
			defer func() {
				if err := c.Reset(); err != nil {
					t.Fatal(err)
				}
			}()
			err := c.Rcpt(tc.rcpt, nil)
			if tc.code == 0 {
				if err != nil {
					t.Errorf("refused: %v", err)
				}
				return
			}
			wantReply(t, err, tc.code, tc.enhanced)
		})
	}
}

// An unreachable directory defers the recipient; it never makes it unknown. A stub
// stands in for the outage: stopping ldapfake right after starting it races inside gldap
// (Run against Stop), which the race detector reports.
func TestDirectoryUnavailable(t *testing.T) {
	e := start(t, func(c *mailbox.Config) {
		c.Directory = stubDir(func(addr string) (*directory.Entry, error) {
			return nil, fmt.Errorf("lookup %s: %w", addr, &directory.UnavailableError{Err: errors.New("connection refused")})
		})
	})
	c := dial(t, e.srv.Addr())
	if err := c.Mail("sender@fabrikam.test", nil); err != nil {
		t.Fatal(err)
	}
	wantReply(t, c.Rcpt("alice@contoso.test", nil), 451, smtp.EnhancedCode{4, 4, 3})
}

type stubDir func(addr string) (*directory.Entry, error)

func (d stubDir) Lookup(_ context.Context, addr string) (*directory.Entry, error) { return d(addr) }

// The directory may spell the server name in another case than the scenario.
func TestMailboxServerNameIgnoresCase(t *testing.T) {
	e := start(t, func(c *mailbox.Config) {
		c.Directory = stubDir(func(addr string) (*directory.Entry, error) {
			return &directory.Entry{Mail: "Carol@Contoso.test", Type: directory.TypeMailbox, MailboxServer: "mbx1"}, nil
		})
	})
	c := dial(t, e.srv.Addr())
	if err := send(c, "s@fabrikam.test", []string{"carol@contoso.test"}, "Subject: s\r\n\r\nb\r\n"); err != nil {
		t.Fatal(err)
	}
	ms, err := e.store.Messages("carol@contoso.test")
	if err != nil || len(ms) != 1 {
		t.Errorf("carol holds %d messages (%v), want 1", len(ms), err)
	}
}

func TestDelivery(t *testing.T) {
	e := start(t, nil)
	c := dial(t, e.srv.Addr())
	const (
		withID = "Return-Path: <forged@evil.test>\r\nReceived: from edge1.contoso.test\r\nMessage-ID: <m1@fabrikam.test>\r\nSubject: hello\r\n\r\nbody line\r\n.leading dot\r\n.\r\n\r\nlast\r\n"
		// what the message must end with in the store: the forged Return-Path gone,
		// every other byte as sent (dot-stuffing undone by SMTP).
		withIDStored = "Received: from edge1.contoso.test\r\nMessage-ID: <m1@fabrikam.test>\r\nSubject: hello\r\n\r\nbody line\r\n.leading dot\r\n.\r\n\r\nlast\r\n"
		noID         = "Subject: no id\r\n\r\nsame body\r\n"
	)
	tests := []struct {
		name     string
		from     string
		rcpts    []string
		msg      string
		stored   string   // suffix of the newest stored message, "" when nothing new is stored
		held     int      // messages alice holds afterwards
		wantDets []string // Detail of the DELIVER events of this transaction
	}{
		{
			name: "first copy, recipient named twice", from: "sender@fabrikam.test",
			rcpts: []string{"alice@contoso.test", "a.smith@contoso.test"}, msg: withID, stored: withIDStored, held: 1,
			wantDets: []string{"stored in alice@contoso.test", "duplicate suppressed"},
		},
		{
			name: "same message again", from: "sender@fabrikam.test",
			rcpts: []string{"alice@contoso.test"}, msg: withID, held: 1,
			wantDets: []string{"duplicate suppressed"},
		},
		{
			name: "no Message-ID", from: "",
			rcpts: []string{"alice@contoso.test"}, msg: noID, stored: noID, held: 2,
			wantDets: []string{"stored in alice@contoso.test"},
		},
		{
			name: "no Message-ID again is not a duplicate", from: "",
			rcpts: []string{"alice@contoso.test"}, msg: noID, stored: noID, held: 3,
			wantDets: []string{"stored in alice@contoso.test"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := len(delivers(e.trace))
			if err := send(c, tc.from, tc.rcpts, tc.msg); err != nil {
				t.Fatal(err)
			}
			ms, err := e.store.Messages("alice@contoso.test")
			if err != nil {
				t.Fatal(err)
			}
			if len(ms) != tc.held {
				t.Fatalf("alice holds %d messages, want %d", len(ms), tc.held)
			}
			if tc.stored != "" {
				checkStored(t, ms[len(ms)-1].Data, tc.from, tc.stored)
			}
			evs := delivers(e.trace)[before:]
			if len(evs) != len(tc.wantDets) {
				t.Fatalf("%d DELIVER events, want %d: %+v", len(evs), len(tc.wantDets), evs)
			}
			for i, ev := range evs {
				if ev.Detail != tc.wantDets[i] || ev.Server != "MBX1" || ev.Sender != tc.from ||
					len(ev.Recipients) != 1 || ev.Recipients[0] != tc.rcpts[i] || ev.MessageID == "" {
					t.Errorf("event %d = %+v", i, ev)
				}
				wantHeader := ""
				if strings.Contains(tc.msg, "Message-ID") {
					wantHeader = "m1@fabrikam.test"
				}
				if ev.HeaderID != wantHeader {
					t.Errorf("event %d HeaderID %q, want %q", i, ev.HeaderID, wantHeader)
				}
			}
		})
	}
}

// checkStored: one Return-Path, first, equal to MAIL FROM (MBX-002), then this server's
// Received line, then the message as sent (MBX-001).
func checkStored(t *testing.T, data []byte, from, suffix string) {
	t.Helper()
	if want := "Return-Path: <" + from + ">\r\nReceived: from hub1.contoso.test ([127.0.0.1])\r\n\tby "; !bytes.HasPrefix(data, []byte(want)) {
		t.Errorf("stored message starts %q, want %q", data[:min(len(data), 80)], want)
	}
	h, err := mtextproto.ReadHeader(bufio.NewReader(bytes.NewReader(data)))
	if err != nil {
		t.Fatal(err)
	}
	if rp := h.Values("Return-Path"); len(rp) != 1 {
		t.Errorf("Return-Path fields %q, want exactly one", rp)
	}
	if r := h.Values("Received"); len(r) == 0 || !strings.Contains(r[0], "by mbx1.contoso.test") || !strings.Contains(r[0], "with ESMTPS") {
		t.Errorf("first Received %q is not this server's", r)
	}
	if !bytes.HasSuffix(data, []byte(suffix)) {
		t.Errorf("stored %q\ndoes not end with the message as sent %q", data, suffix)
	}
}

type failingStore struct{ *store.Store }

func (failingStore) DeliverAll(context.Context, []string, string, []byte) ([]store.Delivery, error) {
	return nil, errors.New("disk full")
}

func TestStoreFailure(t *testing.T) {
	var real *store.Store
	e := start(t, func(c *mailbox.Config) {
		real = c.Store.(*store.Store)
		c.Store = failingStore{real}
	})
	c := dial(t, e.srv.Addr())
	err := send(c, "sender@fabrikam.test", []string{"alice@contoso.test"}, "Message-ID: <f@x.test>\r\n\r\nb\r\n")
	wantReply(t, err, 451, smtp.EnhancedCode{4, 3, 0})
	if evs := delivers(e.trace); len(evs) != 0 {
		t.Errorf("DELIVER recorded for a failed delivery: %+v", evs)
	}
	if ms, _ := real.Messages("alice@contoso.test"); len(ms) != 0 {
		t.Errorf("stored %d messages", len(ms))
	}
}

func TestHopCount(t *testing.T) {
	e := start(t, nil)
	c := dial(t, e.srv.Addr())
	msg := strings.Repeat("Received: from loop\r\n", scenario.DefaultMaxHopCount+1) + "Subject: s\r\n\r\nb\r\n"
	wantReply(t, send(c, "s@fabrikam.test", []string{"alice@contoso.test"}, msg), 554, smtp.EnhancedCode{5, 4, 6})
}

func TestStoreDir(t *testing.T) {
	dir := t.TempDir()
	e := start(t, func(c *mailbox.Config) { c.Store, c.StoreDir = nil, dir })
	c := dial(t, e.srv.Addr())
	if err := send(c, "s@fabrikam.test", []string{"alice@contoso.test"}, "Subject: s\r\n\r\nb\r\n"); err != nil {
		t.Fatal(err)
	}
	// A second store on the same directory sees the delivery.
	st, err := store.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []mailbox.Store{e.srv.Store(), st} {
		if ms, err := s.Messages("alice@contoso.test"); err != nil || len(ms) != 1 {
			t.Errorf("%d messages (%v), want 1", len(ms), err)
		}
	}
}

func TestStartErrors(t *testing.T) {
	sv := &scenario.Server{Name: "MBX1", Role: scenario.RoleMailbox}
	dir := stubDir(func(string) (*directory.Entry, error) { return nil, directory.ErrNotFound })
	lo := netip.MustParseAddr("127.0.0.1")
	tests := []struct {
		name string
		cfg  mailbox.Config
	}{
		{"no server", mailbox.Config{Addr: lo, Directory: dir, StoreDir: t.TempDir()}},
		{"wrong role", mailbox.Config{Server: &scenario.Server{Name: "HUB1", Role: scenario.RoleHub}, Addr: lo, Directory: dir, StoreDir: t.TempDir()}},
		{"no directory", mailbox.Config{Server: sv, Addr: lo, StoreDir: t.TempDir()}},
		{"no store", mailbox.Config{Server: sv, Addr: lo, Directory: dir}},
		{"no address", mailbox.Config{Server: sv, Directory: dir, StoreDir: t.TempDir()}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if s, err := mailbox.Start(context.Background(), tc.cfg); err == nil {
				s.Close()
				t.Error("Start succeeded")
			}
		})
	}
}

// A Close right after Start must not hang: go-smtp's Close only reaches listeners its
// Serve has already registered.
func TestCloseRightAfterStart(t *testing.T) {
	sv := &scenario.Server{Name: "MBX1", Role: scenario.RoleMailbox}
	dir := stubDir(func(string) (*directory.Entry, error) { return nil, directory.ErrNotFound })
	storeDir := t.TempDir()
	for i := 0; i < 200; i++ {
		s, err := mailbox.Start(context.Background(), mailbox.Config{
			Server: sv, Addr: netip.MustParseAddr("127.0.0.1"), Directory: dir, StoreDir: storeDir, Logger: quiet,
		})
		if err != nil {
			t.Fatal(err)
		}
		closeWithin(t, s, fmt.Sprintf("round %d", i))
	}
}

// Close ends sessions that are still open, mid-transaction.
func TestCloseWithOpenSession(t *testing.T) {
	e := start(t, nil)
	c := dial(t, e.srv.Addr())
	if err := c.Mail("s@fabrikam.test", nil); err != nil {
		t.Fatal(err)
	}
	if err := c.Rcpt("alice@contoso.test", nil); err != nil {
		t.Fatal(err)
	}
	closeWithin(t, e.srv, "open session")
	if err := c.Noop(); err == nil {
		t.Error("session still answers after Close")
	}
}

func closeWithin(t *testing.T, s *mailbox.Server, what string) {
	t.Helper()
	done := make(chan struct{})
	go func() { _ = s.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatalf("%s: Close did not return", what)
	}
}

// TestJunkFolder: a message whose SCL is at or above the junk threshold goes to the
// recipient's Junk E-mail folder, one below it or without an SCL to INBOX, and one
// the content filter quarantined to INBOX whatever its SCL; the DELIVER event names
// the folder.
func TestJunkFolder(t *testing.T) {
	for _, tc := range []struct {
		name, header string
		junk         bool
	}{
		{"no SCL", "", false},
		{"SCL 3", "X-MS-Exchange-Organization-SCL: 3\r\n", false},
		{"SCL 4", "X-MS-Exchange-Organization-SCL: 4\r\n", true},
		{"SCL 9", "x-ms-exchange-organization-scl: 9\r\n", true},
		{"SCL -1", "X-MS-Exchange-Organization-SCL: -1\r\n", false},
		{"not a number", "X-MS-Exchange-Organization-SCL: high\r\n", false},
		{"quarantined", "X-MS-Exchange-Organization-SCL: 9\r\nX-MS-Exchange-Organization-Quarantine: SCL 9; for bob@contoso.test\r\n", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := start(t, nil)
			c := dial(t, e.srv.Addr())
			if err := send(c, "s@fabrikam.test", []string{"alice@contoso.test"}, tc.header+"Subject: offer\r\n\r\nbody\r\n"); err != nil {
				t.Fatal(err)
			}
			inbox, err := e.store.Messages("alice@contoso.test")
			if err != nil {
				t.Fatal(err)
			}
			junk, _ := filepath.Glob(filepath.Join(e.store.Root(), "alice@contoso.test", store.Junk, "new", "*"))
			if got := len(junk) == 1 && len(inbox) == 0; got != tc.junk || len(junk)+len(inbox) != 1 {
				t.Fatalf("INBOX %d, Junk E-mail %d; want the message in Junk E-mail: %v", len(inbox), len(junk), tc.junk)
			}
			ds := delivers(e.trace)
			if len(ds) != 1 || strings.Contains(ds[0].Detail, "Junk E-mail") != tc.junk {
				t.Errorf("DELIVER events %+v; want one naming Junk E-mail: %v", ds, tc.junk)
			}
		})
	}
}
