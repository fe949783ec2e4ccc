package directory

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/mailflow/mailflow/fixtures/ldapfake"
	"github.com/mailflow/mailflow/scenario"
)

func TestLookupAuthenticateAndOutage(t *testing.T) {
	ctx := context.Background()
	srv, err := ldapfake.Start(ctx, "127.206.0.1:0", []scenario.Recipient{
		{Mail: "alice@contoso.test", Proxies: []string{"a.smith@contoso.test"}, Mailbox: "MBX1", Password: "pw"},
		{Mail: "bob@contoso.test", Mailbox: "MBX2"},
		{Mail: "team@contoso.test", Type: scenario.RecipientGroup, Members: []string{"alice@contoso.test", "bob@contoso.test"}},
		{Mail: "partner@contoso.test", Type: scenario.RecipientContact, External: "p@fabrikam.test"},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	c := New("ldap://"+srv.Addr(), srv.BaseDN(), WithTimeout(500*time.Millisecond))
	defer c.Close()

	tests := []struct {
		addr, mail, typ, server, external string
		members                           int
	}{
		{"alice@contoso.test", "alice@contoso.test", "mailbox", "MBX1", "", 0},
		{"A.Smith@CONTOSO.test", "alice@contoso.test", "mailbox", "MBX1", "", 0},
		{"team@contoso.test", "team@contoso.test", "group", "", "", 2},
		{"partner@contoso.test", "partner@contoso.test", "contact", "", "p@fabrikam.test", 0},
	}
	for _, tc := range tests {
		e, err := c.Lookup(ctx, tc.addr)
		if err != nil {
			t.Fatalf("%s: %v", tc.addr, err)
		}
		if e.Mail != tc.mail || e.Type != tc.typ || e.MailboxServer != tc.server || e.External != tc.external || len(e.Members) != tc.members {
			t.Errorf("%s: got %+v", tc.addr, e)
		}
	}
	if _, err := c.Lookup(ctx, "nobody@contoso.test"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown: %v, want ErrNotFound", err)
	}
	if err := c.Authenticate(ctx, "alice@contoso.test", "pw"); err != nil {
		t.Fatalf("good password: %v", err)
	}
	if err := c.Authenticate(ctx, "alice@contoso.test", "bad"); !errors.Is(err, ErrInvalidCredentials) {
		t.Fatalf("bad password: %v", err)
	}
	srv.SetHomeServer("alice@contoso.test", "MBX9")
	if e, _ := c.Lookup(ctx, "alice@contoso.test"); e == nil || e.MailboxServer != "MBX9" {
		t.Fatalf("after move: %+v", e)
	}

	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	_, err = c.Lookup(ctx, "alice@contoso.test")
	if !IsUnavailable(err) || errors.Is(err, ErrNotFound) {
		t.Fatalf("during outage: %v, want unavailable", err)
	}
	if err := srv.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Lookup(ctx, "alice@contoso.test"); err != nil {
		t.Fatalf("after restart: %v", err)
	}
}
