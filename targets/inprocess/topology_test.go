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
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	msgs, err := topo.Host("HUB1").WaitForMessages(wctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	if msgs[0].RcptTo[0] != "alice@contoso.test" || !msgs[0].TLS {
		t.Fatalf("hub got %+v; want alice over TLS", msgs[0])
	}
	if len(trace.OfType(topo.Trace().Events(), trace.Receive, "EDGE1")) != 1 {
		t.Fatalf("trace: %+v", topo.Trace().Events())
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
