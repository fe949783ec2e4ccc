package imapd_test

import (
	"strings"
	"sync"
	"testing"

	"github.com/emersion/go-imap/v2"

	"github.com/mailflow/mailflow/reference/imapd"
)

// TestServerMovesOutboxToSent: what a client APPENDs to the Outbox is heard of and
// read by the server, and the server's Move files it in Sent Items, \Seen and with its
// other flags, while a client with the Outbox open is told of the EXPUNGE.
func TestServerMovesOutboxToSent(t *testing.T) {
	var mu sync.Mutex
	var added []string
	e := start(t, imapd.WithOnAdd(func(mailbox, folder string) {
		mu.Lock()
		added = append(added, mailbox+"/"+folder)
		mu.Unlock()
	}))
	c := e.login(nil)
	cmd := c.Append("Outbox", int64(len(msg("out-1"))), &imap.AppendOptions{Flags: []imap.Flag{imap.FlagFlagged}})
	if _, err := cmd.Write([]byte(msg("out-1"))); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := cmd.Wait(); err != nil {
		t.Fatal(err)
	}
	if sel := mustSelect(t, c, "Outbox"); sel.NumMessages != 1 {
		t.Fatalf("Outbox holds %d, want 1", sel.NumMessages)
	}
	boxes, err := e.srv.Mailboxes()
	if err != nil || len(boxes) != 1 || boxes[0] != alice {
		t.Fatalf("Mailboxes() = %v, %v; want [%s]", boxes, err, alice)
	}
	ms, err := e.srv.Messages(alice, "Outbox")
	if err != nil || len(ms) != 1 || string(ms[0].Data) != msg("out-1") {
		t.Fatalf("Messages(Outbox) = %v, %v; want the appended message", ms, err)
	}
	if err := e.srv.Move(alice, ms[0].ID, "Outbox", "Sent Items", nil); err != nil {
		t.Fatal(err)
	}
	// The NOOP's poll brings the EXPUNGE the move queued for this session.
	if err := c.Noop().Wait(); err != nil {
		t.Fatal(err)
	}
	if n := c.Mailbox().NumMessages; n != 0 {
		t.Errorf("the open Outbox shows %d after the move, want 0", n)
	}
	mustSelect(t, c, "Sent Items")
	got := fetchAll(t, c, &imap.FetchOptions{Flags: true, BodySection: []*imap.FetchItemBodySection{{}}})
	if len(got) != 1 || string(got[0].FindBodySection(&imap.FetchItemBodySection{})) != msg("out-1") {
		t.Fatalf("Sent Items holds %d messages, want the moved one", len(got))
	}
	if fl := got[0].Flags; len(fl) != 2 || fl[0] != imap.FlagFlagged || fl[1] != imap.FlagSeen {
		t.Errorf("flags in Sent Items %v, want \\Flagged \\Seen", fl)
	}
	if ms, _ := e.srv.Messages(alice, "Outbox"); len(ms) != 0 {
		t.Errorf("Outbox still holds %d", len(ms))
	}
	mu.Lock()
	defer mu.Unlock()
	if strings.Join(added, ",") != alice+"/Outbox,"+alice+"/Sent Items" {
		t.Errorf("heard of %v, want the Outbox's then Sent Items' new message", added)
	}
	if err := e.srv.Move(alice, "no-such-id", "Outbox", "Sent Items", nil); err == nil {
		t.Error("Move of a message the Outbox does not hold succeeded")
	}
}
