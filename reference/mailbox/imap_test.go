package mailbox_test

import (
	"errors"
	"testing"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/mailflow/mailflow/fixtures/testca"
)

// IMAP logins are checked by the directory (a bind with the user's password, kept
// hashed there) and open only mailboxes this server holds, by their primary address.
func TestIMAPLoginThroughTheDirectory(t *testing.T) {
	e := start(t, nil)
	c := dial(t, e.srv.Addr())
	if err := send(c, "carol@fabrikam.test", []string{"a.smith@contoso.test"}, "Subject: hi\r\n\r\nhello\r\n"); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, user, password string
		ok                   bool
	}{
		{"right password", "alice@contoso.test", "alice-pw", true},
		{"wrong password", "alice@contoso.test", "bob-pw", false},
		{"mailbox on another server", "bob@contoso.test", "bob-pw", false},
		{"unknown user", "nobody@contoso.test", "x", false},
		{"empty password", "alice@contoso.test", "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ic, err := imapclient.DialStartTLS(e.srv.IMAPAddr(), &imapclient.Options{TLSConfig: testca.Shared().ClientConfig("")})
			if err != nil {
				t.Fatal(err)
			}
			defer ic.Close()
			err = ic.Login(tc.user, tc.password).Wait()
			if !tc.ok {
				var ierr *imap.Error
				if !errors.As(err, &ierr) || ierr.Code != imap.ResponseCodeAuthenticationFailed {
					t.Fatalf("LOGIN: %v, want NO [AUTHENTICATIONFAILED]", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("LOGIN: %v", err)
			}
			sel, err := ic.Select("INBOX", nil).Wait()
			if err != nil || sel.NumMessages != 1 {
				t.Fatalf("SELECT INBOX: %+v %v, want the message sent to her proxy address", sel, err)
			}
		})
	}
}
