package smtpd

import (
	"fmt"

	"github.com/emersion/go-smtp"
)

// The replies only the receive connectors give are built here; those shared with the
// Mailbox server come from reference/replies.

func relayDenied() *smtp.SMTPError {
	return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 7, 1}, Message: "Unable to relay"}
}

func notAuthenticated() *smtp.SMTPError {
	return &smtp.SMTPError{Code: 530, EnhancedCode: smtp.EnhancedCode{5, 7, 1}, Message: "Client was not authenticated"}
}

func authFailed() *smtp.SMTPError {
	return &smtp.SMTPError{Code: 535, EnhancedCode: smtp.EnhancedCode{5, 7, 8}, Message: "Authentication unsuccessful"}
}

func noConnector() *smtp.SMTPError {
	return &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 7, 1}, Message: "No receive connector serves this client"}
}

func messageTooBig() *smtp.SMTPError {
	return &smtp.SMTPError{Code: 552, EnhancedCode: smtp.EnhancedCode{5, 3, 4}, Message: "Message size exceeds fixed maximum message size"}
}

// queued is the success reply to end-of-data; go-smtp writes an *SMTPError's code as is.
func queued(id string) *smtp.SMTPError {
	return &smtp.SMTPError{Code: 250, EnhancedCode: smtp.EnhancedCode{2, 6, 0}, Message: fmt.Sprintf("<%s> Queued mail for delivery", id)}
}

// senderNullMX refuses a sender whose domain takes no mail (RFC 7505 §4.2).
func senderNullMX() *smtp.SMTPError {
	return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 7, 27}, Message: "Sender address has null MX"}
}
