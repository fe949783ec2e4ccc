package replies

import (
	"errors"
	"fmt"
	"syscall"
	"testing"

	"github.com/emersion/go-smtp"
)

// TestReplies pins every reply: code, enhanced code and text are what clients and the
// suites see, so a change here is a change of behaviour.
func TestReplies(t *testing.T) {
	for _, tt := range []struct {
		got  *smtp.SMTPError
		want string
	}{
		{UnknownRecipient(), "550 5.1.1 User unknown"},
		{DirectoryUnavailable(), "451 4.4.3 Directory unavailable, try again later"},
		{BadAddress(), "501 5.1.3 Invalid address"},
		{HopCountExceeded(30), "554 5.4.6 Hop count exceeded (more than 30 Received headers) - possible mail loop"},
		{NotStored(), "451 4.3.0 Could not store the message, try again later"},
		{RelayDenied(), "550 5.7.1 Unable to relay"},
		{NotAuthenticated(), "530 5.7.0 Authentication required"},
		{AuthFailed(), "535 5.7.8 Authentication unsuccessful"},
		{UnrecognizedAuthType(), "504 5.7.4 Unrecognized authentication type"},
		{NoConnector(), "554 5.7.1 No receive connector serves this client"},
		{MessageTooBig(), "552 5.3.4 Message size exceeds fixed maximum message size"},
		{Queued("ID1"), "250 2.6.0 <ID1> Queued mail for delivery"},
		{SenderNullMX(), "550 5.7.27 Sender address has null MX"},
		{MustStartTLS(), "530 5.7.0 Must issue a STARTTLS command first"},
		{NotAMailbox(), "550 5.1.1 Recipient is not a mailbox"},
		{WrongServer("mbx1"), "450 4.2.0 Mailbox is not on this server (mbx1), try again later"},
		{Delivered("ID2"), "250 2.0.0 <ID2> Delivered to mailbox"},
		{ShuttingDown(), "421 4.3.2 Service shutting down"},
		{ClientBlockListed("127.9.0.1", "bl.test", "see http://bl.test/"), "550 5.7.1 Service unavailable; Client host [127.9.0.1] blocked using bl.test; see http://bl.test/"},
		{ClientBlockListed("::1", "BL", ""), "550 5.7.1 Service unavailable; Client host [::1] blocked using BL"},
		{ClientIPBlocked("127.9.0.1"), "550 5.7.1 External client with IP address 127.9.0.1 does not have permissions to submit to this server"},
		{SPFFailed("fabrikam.test", "127.9.0.1"), "550 5.7.23 SPF validation failed: fabrikam.test does not permit 127.9.0.1 to send its mail"},
		{SenderDenied(), "554 5.1.0 Sender Denied"},
		{MalwareRejected(""), "554 5.7.1 Message rejected: malware detected"},
		{MalwareRejected("No viruses here"), "554 5.7.1 No viruses here"},
		{ScannerUnavailable(), "451 4.3.0 Antivirus scanner (clamd) unavailable, try again later"},
		{InsufficientStorage(), "452 4.3.1 Insufficient system storage, try again later"},
		{StoreFailed(fmt.Errorf("x: %w", syscall.ENOSPC)), "452 4.3.1 Insufficient system storage, try again later"},
		{StoreFailed(errors.New("x")), "451 4.3.0 Could not store the message, try again later"},
	} {
		e := tt.got.EnhancedCode
		if got := fmt.Sprintf("%d %d.%d.%d %s", tt.got.Code, e[0], e[1], e[2], tt.got.Message); got != tt.want {
			t.Errorf("got %q, want %q", got, tt.want)
		}
	}
	for got, want := range map[string]string{
		Unreachable(errors.New("x")):           "451 4.4.0 Unreachable: x",
		TooLargeForConnectors(errors.New("x")): "550 5.3.4 x",
	} {
		if got != want {
			t.Errorf("got %q, want %q", got, want)
		}
	}
}

// TestQueuedID reads the ID back from the replies as a client receives them, and
// nothing from any other reply.
func TestQueuedID(t *testing.T) {
	line := func(e *smtp.SMTPError) string {
		c := e.EnhancedCode
		return fmt.Sprintf("%d %d.%d.%d %s", e.Code, c[0], c[1], c[2], e.Message)
	}
	for reply, want := range map[string]string{
		line(Queued("18eee13b06c0-c")):             "18eee13b06c0-c",
		line(Delivered("18eee13b06c1")):            "18eee13b06c1",
		"250 2.0.0 Ok: queued as 4XyZ":             "",
		line(UnknownRecipient()):                   "",
		"250 2.6.0 <a b> Queued mail for delivery": "",
	} {
		if got := QueuedID(reply); got != want {
			t.Errorf("QueuedID(%q) = %q, want %q", reply, got, want)
		}
	}
}
