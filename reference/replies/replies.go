// Package replies holds the SMTP replies the reference's receiving servers (the Edge
// and Hub connectors in smtpd, the Mailbox server) give for the same situations, so one
// situation has one reply whichever server meets it, and suites and code agree.
package replies

import (
	"fmt"

	"github.com/emersion/go-smtp"
)

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

// The replies below settle a queued recipient (a queue outcome) rather than answer a
// client, so they are reply lines.

// Unreachable holds a recipient no send connector matches: it waits in the Unreachable
// queue and expires later, rather than bouncing at once (ROUTE-014).
func Unreachable(err error) string { return "451 4.4.0 Unreachable: " + err.Error() }

// TooLargeForConnectors fails a recipient at once when every send connector for its
// domain is smaller than the message (ROUTE-014).
func TooLargeForConnectors(err error) string { return "550 5.3.4 " + err.Error() }
