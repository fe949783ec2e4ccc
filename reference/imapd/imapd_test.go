package imapd_test

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-sasl"

	"github.com/mailflow/mailflow/fixtures/testca"
	"github.com/mailflow/mailflow/reference/imapd"
	"github.com/mailflow/mailflow/reference/store"
)

// users is an Authenticator over a fixed table: user -> password.
type users map[string]string

func (u users) Authenticate(_ context.Context, user, password string) (string, error) {
	if pw, ok := u[user]; ok && pw == password {
		return user, nil
	}
	if user == "down@contoso.test" {
		return "", errors.New("directory unreachable")
	}
	return "", fmt.Errorf("%w: %s", imapd.ErrAuthFailed, user)
}

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

const alice = "alice@contoso.test"

type env struct {
	t     *testing.T
	root  string
	st    *store.Store
	srv   *imapd.Server
	extra []imapd.Option
}

func start(t *testing.T, opts ...imapd.Option) *env {
	t.Helper()
	root := t.TempDir()
	st, err := store.Open(root)
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, root: root, st: st, extra: opts}
	e.restart()
	t.Cleanup(func() { e.srv.Close() })
	return e
}

// restart runs a new server on the same Maildirs, as after a process restart.
func (e *env) restart() {
	e.t.Helper()
	if e.srv != nil {
		if err := e.srv.Close(); err != nil {
			e.t.Fatal(err)
		}
	}
	opts := append([]imapd.Option{imapd.WithTLS(testca.Shared().LazyServerConfig("127.0.0.1")), imapd.WithLogger(quiet)}, e.extra...)
	srv, err := imapd.Start(context.Background(), "127.0.0.1:0", e.root, users{alice: "pw"}, opts...)
	if err != nil {
		e.t.Fatal(err)
	}
	e.srv = srv
}

func (e *env) deliver(msg string) {
	e.t.Helper()
	if _, err := e.st.Deliver(context.Background(), alice, "bob@fabrikam.test", []byte(msg)); err != nil {
		e.t.Fatal(err)
	}
	e.srv.Notify(alice)
}

func (e *env) dial(on *imapclient.UnilateralDataHandler) *imapclient.Client {
	e.t.Helper()
	c, err := imapclient.DialStartTLS(e.srv.Addr(), &imapclient.Options{TLSConfig: testca.Shared().ClientConfig(""), UnilateralDataHandler: on})
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { c.Close() })
	return c
}

func (e *env) login(on *imapclient.UnilateralDataHandler) *imapclient.Client {
	e.t.Helper()
	c := e.dial(on)
	if err := c.Login(alice, "pw").Wait(); err != nil {
		e.t.Fatal(err)
	}
	return c
}

func msg(id string) string {
	return "From: bob@fabrikam.test\r\nTo: alice@contoso.test\r\nMessage-ID: <" + id + ">\r\nSubject: " + id + "\r\n\r\nbody of " + id + "\r\n"
}

func mustSelect(t *testing.T, c *imapclient.Client, name string) *imap.SelectData {
	t.Helper()
	d, err := c.Select(name, nil).Wait()
	if err != nil {
		t.Fatalf("SELECT %s: %v", name, err)
	}
	return d
}

func fetchAll(t *testing.T, c *imapclient.Client, opts *imap.FetchOptions) []*imapclient.FetchMessageBuffer {
	t.Helper()
	ms, err := c.Fetch(imap.SeqSetNum(1, 2, 3, 4, 5, 6, 7, 8, 9), opts).Collect()
	if err != nil {
		t.Fatalf("FETCH: %v", err)
	}
	return ms
}

func TestLoginNeedsTLSAndTheRightPassword(t *testing.T) {
	e := start(t)
	c, err := imapclient.DialInsecure(e.srv.Addr(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Login(alice, "pw").Wait(); err == nil {
		t.Fatal("LOGIN in the clear accepted")
	}
	c2 := e.dial(nil)
	err = c2.Login(alice, "wrong").Wait()
	var ierr *imap.Error
	if !errors.As(err, &ierr) || ierr.Code != imap.ResponseCodeAuthenticationFailed {
		t.Fatalf("wrong password: %v, want NO [AUTHENTICATIONFAILED]", err)
	}
	err = c2.Login("down@contoso.test", "x").Wait()
	if !errors.As(err, &ierr) || ierr.Code != imap.ResponseCodeUnavailable {
		t.Fatalf("directory down: %v, want NO [UNAVAILABLE]", err)
	}
	if err := c2.Login(alice, "pw").Wait(); err != nil {
		t.Fatalf("right password after wrong ones: %v", err)
	}
	c3 := e.dial(nil)
	if err := c3.Authenticate(plain(alice, "pw")); err != nil {
		t.Fatalf("AUTHENTICATE PLAIN: %v", err)
	}
}

func TestFetchFlagsAndUIDsStayAcrossRestart(t *testing.T) {
	e := start(t)
	e.deliver(msg("one@x"))
	e.deliver(msg("two@x"))
	c := e.login(nil)
	sel := mustSelect(t, c, "INBOX")
	if sel.NumMessages != 2 || sel.UIDNext != 3 {
		t.Fatalf("SELECT: %d messages, UIDNEXT %d; want 2, 3", sel.NumMessages, sel.UIDNext)
	}
	section := &imap.FetchItemBodySection{Peek: true}
	ms := fetchAll(t, c, &imap.FetchOptions{UID: true, Flags: true, RFC822Size: true, Envelope: true, BodySection: []*imap.FetchItemBodySection{section}})
	if len(ms) != 2 {
		t.Fatalf("FETCH: %d messages", len(ms))
	}
	stored, _ := e.st.Messages(alice)
	for i, m := range ms {
		if m.UID != imap.UID(i+1) || len(m.Flags) != 0 || m.RFC822Size != int64(len(stored[i].Data)) {
			t.Errorf("message %d: UID %d flags %v size %d", i+1, m.UID, m.Flags, m.RFC822Size)
		}
		if got := string(m.FindBodySection(section)); got != string(stored[i].Data) {
			t.Errorf("message %d BODY.PEEK[]:\n%q\nwant the stored\n%q", i+1, got, stored[i].Data)
		}
		if m.Envelope == nil || m.Envelope.Subject != []string{"one@x", "two@x"}[i] {
			t.Errorf("message %d envelope %+v", i+1, m.Envelope)
		}
	}
	// \Seen set by STORE is the Maildir S flag; the store sees it too.
	if _, err := c.Store(imap.UIDSetNum(2), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Flags: []imap.Flag{imap.FlagSeen, imap.FlagFlagged}, Silent: true}, nil).Collect(); err != nil {
		t.Fatal(err)
	}
	stored, _ = e.st.Messages(alice)
	if stored[0].Flags != "" || stored[1].Flags != "FS" {
		t.Fatalf("Maildir flags %q %q, want \"\" \"FS\"", stored[0].Flags, stored[1].Flags)
	}
	validity := sel.UIDValidity

	e.restart()
	e.deliver(msg("three@x"))
	c = e.login(nil)
	sel = mustSelect(t, c, "INBOX")
	if sel.UIDValidity != validity || sel.NumMessages != 3 || sel.UIDNext != 4 {
		t.Fatalf("after restart: validity %d (was %d), %d messages, UIDNEXT %d", sel.UIDValidity, validity, sel.NumMessages, sel.UIDNext)
	}
	ms = fetchAll(t, c, &imap.FetchOptions{UID: true, Flags: true})
	want := [][]imap.Flag{{}, {imap.FlagFlagged, imap.FlagSeen}, {}}
	for i, m := range ms {
		if m.UID != imap.UID(i+1) || fmt.Sprint(m.Flags) != fmt.Sprint(want[i]) {
			t.Errorf("after restart, message %d: UID %d flags %v, want %d %v", i+1, m.UID, m.Flags, i+1, want[i])
		}
	}
	// FETCH BODY[] (not PEEK) marks the message seen, as RFC 3501 §6.4.5 says.
	body := &imap.FetchItemBodySection{}
	if _, err := c.Fetch(imap.SeqSetNum(1), &imap.FetchOptions{BodySection: []*imap.FetchItemBodySection{body}}).Collect(); err != nil {
		t.Fatal(err)
	}
	stored, _ = e.st.Messages(alice)
	if stored[0].Flags != "S" {
		t.Errorf("after FETCH BODY[]: Maildir flags %q, want S", stored[0].Flags)
	}
}

func TestFoldersSpecialUseAppendMoveExpungeSearch(t *testing.T) {
	e := start(t)
	c := e.login(nil)
	list, err := c.List("", "*", &imap.ListOptions{ReturnSpecialUse: true}).Collect()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, l := range list {
		use := ""
		for _, a := range l.Attrs {
			if a != imap.MailboxAttrHasNoChildren {
				use += string(a)
			}
		}
		got[l.Mailbox] = use
	}
	want := map[string]string{"INBOX": "", "Sent Items": `\Sent`, "Drafts": `\Drafts`, "Deleted Items": `\Trash`, "Junk E-mail": `\Junk`, "Outbox": ""}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("LIST RETURN (SPECIAL-USE):\n%v\nwant\n%v", got, want)
	}

	sent := msg("sent@x")
	cmd := c.Append("Sent Items", int64(len(sent)), &imap.AppendOptions{Flags: []imap.Flag{imap.FlagSeen}})
	io.WriteString(cmd, sent)
	cmd.Close()
	if ad, err := cmd.Wait(); err != nil || ad.UID != 1 {
		t.Fatalf("APPEND: %+v %v, want APPENDUID with UID 1", ad, err)
	}
	if _, err := os.Stat(filepath.Join(e.root, alice, ".Sent Items", "mailflow-uidlist")); err != nil {
		t.Errorf("no UID list in Sent Items: %v", err)
	}
	mustSelect(t, c, "Sent Items")
	ms := fetchAll(t, c, &imap.FetchOptions{Flags: true, BodySection: []*imap.FetchItemBodySection{{Peek: true}}})
	if len(ms) != 1 || fmt.Sprint(ms[0].Flags) != `[\Seen]` {
		t.Fatalf("Sent Items after APPEND: %+v", ms)
	}

	e.deliver(msg("a@x"))
	e.deliver(msg("b@x"))
	e.deliver(msg("c@x"))
	mustSelect(t, c, "INBOX")
	sd, err := c.UIDSearch(&imap.SearchCriteria{Header: []imap.SearchCriteriaHeaderField{{Key: "Subject", Value: "b@x"}}}, nil).Wait()
	if err != nil || fmt.Sprint(sd.AllUIDs()) != "[2]" {
		t.Fatalf("UID SEARCH HEADER Subject b@x: %v %v", sd, err)
	}
	sd, err = c.UIDSearch(&imap.SearchCriteria{Body: []string{"body of c@x"}}, nil).Wait()
	if err != nil || fmt.Sprint(sd.AllUIDs()) != "[3]" {
		t.Fatalf("UID SEARCH BODY: %v %v", sd, err)
	}
	md, err := c.Move(imap.UIDSetNum(2), "Deleted Items").Wait()
	if err != nil || fmt.Sprint(md.SourceUIDs) != "2" || fmt.Sprint(md.DestUIDs) != "1" {
		t.Fatalf("MOVE: %+v %v", md, err)
	}
	if _, err := c.Store(imap.UIDSetNum(1), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Flags: []imap.Flag{imap.FlagDeleted}, Silent: true}, nil).Collect(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Expunge().Collect(); err != nil {
		t.Fatal(err)
	}
	inbox, _ := e.st.Messages(alice)
	if len(inbox) != 1 || !strings.Contains(string(inbox[0].Data), "c@x") {
		t.Fatalf("INBOX on disk after MOVE and EXPUNGE: %d messages", len(inbox))
	}
	ents, _ := os.ReadDir(filepath.Join(e.root, alice, ".Deleted Items", "cur"))
	if len(ents) != 1 {
		t.Fatalf("Deleted Items holds %d files, want the moved message", len(ents))
	}

	ex, err := c.Select("INBOX", &imap.SelectOptions{ReadOnly: true}).Wait()
	if err != nil || ex.NumMessages != 1 {
		t.Fatalf("EXAMINE: %+v %v", ex, err)
	}
	if _, err := c.Store(imap.SeqSetNum(1), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Flags: []imap.Flag{imap.FlagSeen}}, nil).Collect(); err == nil {
		t.Error("STORE in an EXAMINEd folder succeeded")
	}
	if _, err := c.Select("Nowhere", nil).Wait(); err == nil {
		t.Error("SELECT of a folder that does not exist succeeded")
	}
}

// A client in IDLE hears of a delivery without sending anything (MBX-012).
func TestIdleHearsDelivery(t *testing.T) {
	e := start(t)
	exists := make(chan uint32, 16)
	c := e.login(&imapclient.UnilateralDataHandler{Mailbox: func(d *imapclient.UnilateralDataMailbox) {
		if d.NumMessages != nil {
			exists <- *d.NumMessages
		}
	}})
	mustSelect(t, c, "INBOX")
	idle, err := c.Idle()
	if err != nil {
		t.Fatal(err)
	}
	e.deliver(msg("idle@x"))
	select {
	case n := <-exists:
		if n != 1 {
			t.Fatalf("EXISTS %d during IDLE, want 1", n)
		}
	case <-c.Closed():
		t.Fatal("connection closed")
	case <-time.After(5 * time.Second):
		t.Fatal("no EXISTS during IDLE")
	}
	if err := idle.Close(); err != nil {
		t.Fatal(err)
	}
	if err := idle.Wait(); err != nil {
		t.Fatal(err)
	}
}

// A UID list that cannot be read is replaced, with a greater UIDVALIDITY so clients
// drop what they cached, even within the second the old one was made.
func TestUnreadableUIDListGivesNewValidity(t *testing.T) {
	e := start(t)
	e.deliver(msg("one@x"))
	c := e.login(nil)
	first := mustSelect(t, c, "INBOX").UIDValidity
	e.srv.Close()
	list := filepath.Join(e.root, alice, "mailflow-uidlist")
	if err := os.WriteFile(list, []byte("garbage\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	e.srv = nil
	e.restart()
	c = e.login(nil)
	sel := mustSelect(t, c, "INBOX")
	if sel.UIDValidity <= first || sel.NumMessages != 1 {
		t.Fatalf("validity %d (was %d), %d messages", sel.UIDValidity, first, sel.NumMessages)
	}
	data, _ := os.ReadFile(list)
	if !strings.HasPrefix(string(data), "mailflow-uidlist 1 ") {
		t.Fatalf("list not rewritten: %q", data)
	}
}

func plain(user, password string) sasl.Client { return sasl.NewPlainClient("", user, password) }

// plainIR is AUTHENTICATE PLAIN's initial response (RFC 4616).
func plainIR(user, password string) string {
	return base64.StdEncoding.EncodeToString([]byte("\x00" + user + "\x00" + password))
}

// A UID is given only once the list that records it is durable: while fsync fails, a
// new message is not shown, and APPEND is refused and leaves nothing behind.
func TestNoUIDWithoutADurableList(t *testing.T) {
	var failing atomic.Bool
	e := start(t, imapd.WithSync(func(f *os.File) error {
		if failing.Load() {
			return errors.New("disk on fire")
		}
		return f.Sync()
	}))
	e.deliver(msg("one@x"))
	c := e.login(nil)
	failing.Store(true)
	if _, err := c.Select("INBOX", nil).Wait(); err == nil {
		t.Fatal("SELECT succeeded though the UID list could not be made durable")
	}
	m := msg("appended@x")
	cmd := c.Append("Drafts", int64(len(m)), nil)
	io.WriteString(cmd, m)
	cmd.Close()
	if _, err := cmd.Wait(); err == nil {
		t.Fatal("APPEND succeeded though fsync failed")
	}
	failing.Store(false)
	sel := mustSelect(t, c, "INBOX")
	if sel.NumMessages != 1 || sel.UIDNext != 2 {
		t.Fatalf("after fsync works again: %d messages, UIDNEXT %d; want 1, 2", sel.NumMessages, sel.UIDNext)
	}
	if d := mustSelect(t, c, "Drafts"); d.NumMessages != 0 {
		t.Fatalf("Drafts holds %d messages after a failed APPEND", d.NumMessages)
	}
}

// Close right after Start (before the accept loop runs) still frees the address.
func TestCloseAtOnceFreesTheAddress(t *testing.T) {
	for i := 0; i < 20; i++ {
		srv, err := imapd.Start(context.Background(), "127.0.0.1:0", t.TempDir(), users{}, imapd.WithLogger(quiet))
		if err != nil {
			t.Fatal(err)
		}
		addr := srv.Addr()
		if err := srv.Close(); err != nil {
			t.Fatal(err)
		}
		l, err := net.Listen("tcp", addr)
		if err != nil {
			t.Fatalf("after Close, %s is still taken: %v", addr, err)
		}
		l.Close()
	}
}

// Two sessions on one folder each hear of what the other did: flags, expunges, new mail.
func TestSessionsSeeEachOther(t *testing.T) {
	e := start(t)
	e.deliver(msg("one@x"))
	e.deliver(msg("two@x"))
	events := make(chan string, 16)
	c1 := e.login(nil)
	c2 := e.login(&imapclient.UnilateralDataHandler{
		Expunge: func(seq uint32) { events <- fmt.Sprintf("EXPUNGE %d", seq) },
		Mailbox: func(d *imapclient.UnilateralDataMailbox) {
			if d.NumMessages != nil {
				events <- fmt.Sprintf("EXISTS %d", *d.NumMessages)
			}
		},
		Fetch: func(m *imapclient.FetchMessageData) {
			for item := m.Next(); item != nil; item = m.Next() {
				if f, ok := item.(imapclient.FetchItemDataFlags); ok {
					events <- fmt.Sprintf("FETCH %d FLAGS %v", m.SeqNum, f.Flags)
				}
			}
		},
	})
	mustSelect(t, c1, "INBOX")
	mustSelect(t, c2, "INBOX")
	if _, err := c1.Store(imap.SeqSetNum(1), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Flags: []imap.Flag{imap.FlagDeleted}, Silent: true}, nil).Collect(); err != nil {
		t.Fatal(err)
	}
	if _, err := c1.Expunge().Collect(); err != nil {
		t.Fatal(err)
	}
	e.deliver(msg("three@x"))
	if err := c2.Noop().Wait(); err != nil {
		t.Fatal(err)
	}
	// go-imap's client hands a unilateral FETCH to its handler on a goroutine of its
	// own, so it may be heard after the NOOP ends, and in any order with the rest.
	var got []string
	for len(got) < 3 {
		select {
		case ev := <-events:
			got = append(got, ev)
		case <-time.After(5 * time.Second):
			t.Fatalf("second session heard only %q", got)
		}
	}
	want := []string{"EXISTS 2", "EXPUNGE 1", `FETCH 1 FLAGS [\Deleted]`}
	slices.Sort(got)
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("second session heard %q, want %q", got, want)
	}
	ms := fetchAll(t, c2, &imap.FetchOptions{UID: true})
	if len(ms) != 2 || ms[0].UID != 2 || ms[1].UID != 3 {
		t.Fatalf("second session's FETCH 1:*: %+v", ms)
	}
}
