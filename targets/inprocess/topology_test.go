package inprocess

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/mailflow/mailflow/scenarios"
	"github.com/mailflow/mailflow/trace"
)

// TestWorldDeliversAndTearsDown starts the shipped scenario, sends one message through
// the Edge, and checks that Stop leaves none of the world's listeners behind.
func TestWorldDeliversAndTearsDown(t *testing.T) {
	s, err := scenarios.Load("edge-smarthost.yaml")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	topo, err := Start(ctx, s, WithBlock(60))
	if err != nil {
		t.Fatal(err)
	}
	addr, err := topo.Endpoint("EDGE1", "Internet")
	if err != nil {
		t.Fatal(err)
	}
	if err := send(addr, "bob@fabrikam.test", "alice@contoso.test", "Subject: t\r\nMessage-ID: <t@fabrikam.test>\r\n\r\nhi\r\n"); err != nil {
		t.Fatalf("send: %v", err)
	}
	// Edge -> HUB1 -> MBX1: the message ends in alice's mailbox, one DELIVER event.
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(10 * time.Second)
	// The store holds the copy a moment before MBX1 records its DELIVER event.
	for len(topo.Mailbox("alice@contoso.test")) == 0 || len(trace.OfType(topo.Trace().Events(), trace.Deliver, "MBX1")) == 0 {
		select {
		case <-tick.C:
		case <-deadline:
			t.Fatalf("not delivered; trace: %+v", topo.Trace().Events())
		}
	}
	if got := string(topo.Mailbox("alice@contoso.test")[0]); !strings.HasPrefix(got, "Return-Path: <bob@fabrikam.test>") {
		t.Errorf("stored message starts %.60q", got)
	}
	for _, srv := range []string{"EDGE1", "HUB1"} {
		if len(trace.OfType(topo.Trace().Events(), trace.Receive, srv)) != 1 {
			t.Errorf("%s: no RECEIVE; trace: %+v", srv, topo.Trace().Events())
		}
	}
	if len(trace.OfType(topo.Trace().Events(), trace.Deliver, "MBX1")) != 1 {
		t.Errorf("MBX1: no DELIVER; trace: %+v", topo.Trace().Events())
	}
	// alice's mailbox is served over IMAP on MBX1's address, port 143 moved to 2643.
	ep, err := topo.IMAPEndpoint("alice@contoso.test")
	if err != nil {
		t.Fatal(err)
	}
	var mbx, imap string
	for _, l := range topo.Listeners() {
		switch {
		case l.Kind == "mailbox" && l.Name == "MBX1":
			mbx = l.Addr
		case l.Kind == "imap" && l.Name == "MBX1":
			imap = l.Addr
		}
	}
	host, port, _ := net.SplitHostPort(ep)
	if ep != imap || port != "2643" || !strings.HasPrefix(mbx, host+":") {
		t.Errorf("IMAP endpoint %s, listed %q, MBX1 at %s; want MBX1's address, port 2643, listed as imap", ep, imap, mbx)
	}
	// and takes her submissions on port 587 moved to 3087, listed as submission.
	sub, err := topo.SubmissionEndpoint("alice@contoso.test")
	if err != nil {
		t.Fatal(err)
	}
	listed := ""
	for _, l := range topo.Listeners() {
		if l.Kind == "submission" && l.Name == "MBX1" {
			listed = l.Addr
		}
	}
	if sub != listed || sub != net.JoinHostPort(host, "3087") {
		t.Errorf("submission endpoint %s, listed %q; want MBX1's address, port 3087, listed as submission", sub, listed)
	}
	listeners := topo.Listeners()
	if err := topo.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	for _, l := range listeners {
		if l.Kind == "dns" {
			continue // UDP+TCP; checked by its own package
		}
		if c, err := net.DialTimeout("tcp", l.Addr, time.Second); err == nil {
			c.Close()
			t.Errorf("%s %s still listening on %s after Stop", l.Kind, l.Name, l.Addr)
		}
	}
}

func send(addr, from, to, msg string) error {
	c, err := smtp.Dial(addr)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.Hello("client.fabrikam.test"); err != nil {
		return err
	}
	if err := c.Mail(from, nil); err != nil {
		return err
	}
	if err := c.Rcpt(to, nil); err != nil {
		return err
	}
	w, err := c.Data()
	if err != nil {
		return err
	}
	if _, err := strings.NewReader(msg).WriteTo(w); err != nil {
		return err
	}
	if err := w.Close(); err != nil {
		return err
	}
	return c.Quit()
}
