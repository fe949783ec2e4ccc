// Package replies holds the SMTP replies the reference's receiving servers (the Edge
// and Hub receive connectors in smtpd, the Mailbox server, and the protocol loop in
// esmtp for what it decides about a message) give, and the reply lines that settle a
// queued recipient, so one situation has one reply whichever server meets
// it, and suites and code agree. It imports nothing from the reference: a reply that
// depends on a server's state takes what it needs as an argument.
package replies

import (
	"errors"
	"fmt"
	"syscall"

	"github.com/emersion/go-smtp"
)

// Replies every receiving server gives.

// UnknownRecipient: the directory has no recipient with this address (ACCEPT-002).
func UnknownRecipient() *smtp.SMTPError {
	return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "User unknown"}
}

// DirectoryUnavailable is temporary: never "unknown" because the directory is down (CAT-006).
func DirectoryUnavailable() *smtp.SMTPError {
	return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 4, 3}, Message: "Directory unavailable, try again later"}
}

// BadAddress refuses an address that does not parse.
func BadAddress() *smtp.SMTPError {
	return &smtp.SMTPError{Code: 501, EnhancedCode: smtp.EnhancedCode{5, 1, 3}, Message: "Invalid address"}
}

// HopCountExceeded refuses a message with more Received headers than limit (TRACE-004).
func HopCountExceeded(limit int) *smtp.SMTPError {
	return &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 4, 6}, Message: fmt.Sprintf("Hop count exceeded (more than %d Received headers) - possible mail loop", limit)}
}

// NotStored is temporary: the message could not be made durable, so no 250.
func NotStored() *smtp.SMTPError {
	return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "Could not store the message, try again later"}
}

// InsufficientStorage is temporary: the spool or store is full (disk, quota), so the
// client should try again later (SEC-010, RFC 3463 X.3.1).
func InsufficientStorage() *smtp.SMTPError {
	return &smtp.SMTPError{Code: 452, EnhancedCode: smtp.EnhancedCode{4, 3, 1}, Message: "Insufficient system storage, try again later"}
}

// StoreFailed is the reply for a message that could not be made durable: 452 4.3.1
// when the disk or a quota is full, 451 4.3.0 for anything else.
func StoreFailed(err error) *smtp.SMTPError {
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
		return InsufficientStorage()
	}
	return NotStored()
}

// Replies only the receive connectors (smtpd) give.

// RelayDenied refuses RCPT for a domain the server does not accept from a client whose
// connector grants no relay right (RELAY-001).
func RelayDenied() *smtp.SMTPError {
	return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 7, 1}, Message: "Unable to relay"}
}

// NotAuthenticated refuses MAIL from a session whose connector grants it no right to
// submit until it authenticates.
func NotAuthenticated() *smtp.SMTPError {
	return &smtp.SMTPError{Code: 530, EnhancedCode: smtp.EnhancedCode{5, 7, 0}, Message: "Authentication required"}
}

// AuthFailed answers AUTH with credentials that do not authenticate.
func AuthFailed() *smtp.SMTPError {
	return &smtp.SMTPError{Code: 535, EnhancedCode: smtp.EnhancedCode{5, 7, 8}, Message: "Authentication unsuccessful"}
}

// UnrecognizedAuthType answers AUTH with a mechanism the connector does not offer.
func UnrecognizedAuthType() *smtp.SMTPError {
	return &smtp.SMTPError{Code: 504, EnhancedCode: smtp.EnhancedCode{5, 7, 4}, Message: "Unrecognized authentication type"}
}

// NoConnector refuses a connection from an address no receive connector serves.
func NoConnector() *smtp.SMTPError {
	return &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 7, 1}, Message: "No receive connector serves this client"}
}

// MessageTooBig refuses, after end-of-data, a message larger than the connector's
// maximum message size (SMTP-015).
func MessageTooBig() *smtp.SMTPError {
	return &smtp.SMTPError{Code: 552, EnhancedCode: smtp.EnhancedCode{5, 3, 4}, Message: "Message size exceeds fixed maximum message size"}
}

// Queued is the receive connectors' success reply to end-of-data, for the message
// queued as id; go-smtp writes an *SMTPError's code as is.
func Queued(id string) *smtp.SMTPError {
	return &smtp.SMTPError{Code: 250, EnhancedCode: smtp.EnhancedCode{2, 6, 0}, Message: fmt.Sprintf("<%s> Queued mail for delivery", id)}
}

// SenderNullMX refuses a sender whose domain takes no mail (RFC 7505 §4.2).
func SenderNullMX() *smtp.SMTPError {
	return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 7, 27}, Message: "Sender address has null MX"}
}

// Replies only a Mailbox server gives.

// MustStartTLS refuses MAIL in the clear: organisation mail never crosses unencrypted
// (ROUTE-017). 530 5.7.0 is RFC 3207 §4's reply for a command that needs TLS first.
func MustStartTLS() *smtp.SMTPError {
	return &smtp.SMTPError{Code: 530, EnhancedCode: smtp.EnhancedCode{5, 7, 0}, Message: "Must issue a STARTTLS command first"}
}

// NotAMailbox: a group or contact reached the store, which only a Hub that skipped
// expansion or contact routing sends; that will not change by retrying.
func NotAMailbox() *smtp.SMTPError {
	return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "Recipient is not a mailbox"}
}

// WrongServer is temporary on purpose: the mailbox exists, but not on server, the
// Mailbox server answering; the Hub routed it here from a directory view that is out of
// date (a mailbox move, CAT-002). A 4xx keeps the message queued on the Hub, which
// re-categorises after its directory cache expires and then routes to the right server;
// a 5xx would bounce mail that is deliverable. Exchange answers the same case
// transiently (STOREDRV WrongServerException, 4.2.0). X.2.0 is "mailbox status": the
// mailbox exists, something about it prevents delivery here.
func WrongServer(server string) *smtp.SMTPError {
	return &smtp.SMTPError{Code: 450, EnhancedCode: smtp.EnhancedCode{4, 2, 0}, Message: fmt.Sprintf("Mailbox is not on this server (%s), try again later", server)}
}

// Delivered is the Mailbox server's success reply to end-of-data for the message stored
// as id, duplicates included: the recipient holds the message either way. go-smtp
// writes an *SMTPError's code as is.
func Delivered(id string) *smtp.SMTPError {
	return &smtp.SMTPError{Code: 250, EnhancedCode: smtp.EnhancedCode{2, 0, 0}, Message: fmt.Sprintf("<%s> Delivered to mailbox", id)}
}

// ShuttingDown answers commands that arrive at a Mailbox server while it shuts down.
func ShuttingDown() *smtp.SMTPError {
	return &smtp.SMTPError{Code: 421, EnhancedCode: smtp.EnhancedCode{4, 3, 2}, Message: "Service shutting down"}
}

// The replies below settle a queued recipient (a queue outcome) rather than answer a
// client, so they are reply lines.

// Unreachable holds a recipient no send connector matches: it waits in the Unreachable
// queue and expires later, rather than bouncing at once (ROUTE-014).
func Unreachable(err error) string { return "451 4.4.0 Unreachable: " + err.Error() }

// TooLargeForConnectors fails a recipient at once when every send connector for its
// domain is smaller than the message (ROUTE-014).
func TooLargeForConnectors(err error) string { return "550 5.3.4 " + err.Error() }
