package mailbox

import (
	"fmt"

	"github.com/emersion/go-smtp"
)

// The replies only a Mailbox server gives are built here; those it shares with the
// transport servers come from reference/replies.

// mustStartTLS refuses MAIL in the clear: organisation mail never crosses unencrypted
// (ROUTE-017). 530 5.7.0 is RFC 3207 §4's reply for a command that needs TLS first.
func mustStartTLS() *smtp.SMTPError {
	return &smtp.SMTPError{Code: 530, EnhancedCode: smtp.EnhancedCode{5, 7, 0}, Message: "Must issue a STARTTLS command first"}
}

// notAMailbox: a group or contact reached the store, which only a Hub that skipped
// expansion or contact routing sends; that will not change by retrying.
func notAMailbox() *smtp.SMTPError {
	return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "Recipient is not a mailbox"}
}

// wrongServer is temporary on purpose: the mailbox exists, but the Hub routed it here
// from a directory view that is out of date (a mailbox move, CAT-002). A 4xx keeps the
// message queued on the Hub, which re-categorises after its directory cache expires and
// then routes to the right server; a 5xx would bounce mail that is deliverable. Exchange
// answers the same case transiently (STOREDRV WrongServerException, 4.2.0). X.2.0 is
// "mailbox status": the mailbox exists, something about it prevents delivery here.
func wrongServer(server string) *smtp.SMTPError {
	return &smtp.SMTPError{Code: 450, EnhancedCode: smtp.EnhancedCode{4, 2, 0}, Message: fmt.Sprintf("Mailbox is not on this server (%s), try again later", server)}
}

// delivered is the success reply to end-of-data, duplicates included: the recipient
// holds the message either way. go-smtp writes an *SMTPError's code as is.
func delivered(id string) *smtp.SMTPError {
	return &smtp.SMTPError{Code: 250, EnhancedCode: smtp.EnhancedCode{2, 0, 0}, Message: fmt.Sprintf("<%s> Delivered to mailbox", id)}
}
