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
	"regexp"
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

// Replies of the Edge agents (reference/agents).

// ClientBlockListed refuses a recipient from a client a DNS block list provider lists,
// at RCPT (FILTER-002, FILTER-006), in Exchange's words; reason is the provider's TXT
// record or its configured rejection response, when there is one (FILTER-004).
func ClientBlockListed(ip, provider, reason string) *smtp.SMTPError {
	msg := fmt.Sprintf("Service unavailable; Client host [%s] blocked using %s", ip, provider)
	if reason != "" {
		msg += "; " + reason
	}
	return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 7, 1}, Message: msg}
}

// ClientIPBlocked refuses a recipient from a client on the IP Block list, at RCPT
// (FILTER-006).
func ClientIPBlocked(ip string) *smtp.SMTPError {
	return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 7, 1},
		Message: fmt.Sprintf("External client with IP address %s does not have permissions to submit to this server", ip)}
}

// SPFFailed refuses MAIL from a sender whose domain's SPF record does not permit the
// client (FILTER-015, RFC 7372 §3.2 X.7.23).
func SPFFailed(domain, ip string) *smtp.SMTPError {
	return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 7, 23},
		Message: fmt.Sprintf("SPF validation failed: %s does not permit %s to send its mail", domain, ip)}
}

// DefaultRuleRejectText is Exchange's text for a transport rule's rejection
// (RejectMessageReasonText, SmtpRejectMessage).
const DefaultRuleRejectText = "Delivery not authorized, message refused"

// RuleRejected is a transport rule's refusal: an Edge rule's SMTP reject at
// end-of-data, which ends the session with the rule's code and text (FILTER-012), or
// the status of the NDR a Hub rule's reject sends (FILTER-011 (a): 5.7.1, or the
// rule's 5.7.900 to 5.7.999).
func RuleRejected(code int, enhanced [3]int, text string) *smtp.SMTPError {
	if text == "" {
		text = DefaultRuleRejectText
	}
	return &smtp.SMTPError{Code: code, EnhancedCode: smtp.EnhancedCode(enhanced), Message: text}
}

// AttachmentBlocked refuses at end-of-data a message with a blocked attachment
// (FILTER-016: Reject, 5.7.1); text replaces Exchange's default rejection response.
func AttachmentBlocked(text string) *smtp.SMTPError {
	if text == "" {
		text = "Message rejected due to unacceptable attachments"
	}
	return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 7, 1}, Message: text}
}

// AttachmentUnreadable refuses at end-of-data a message whose MIME structure the
// attachment filter cannot walk in full, so that nothing blocked is let through
// unseen (FILTER-016).
func AttachmentUnreadable() *smtp.SMTPError {
	return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 6, 0}, Message: "Message rejected: its MIME structure cannot be read"}
}

// MalwareRejected refuses at end-of-data a message the antivirus agent found
// infected (FILTER-009: Reject, 554 5.7.1 as milters answer); text replaces the
// default.
func MalwareRejected(text string) *smtp.SMTPError {
	if text == "" {
		text = "Message rejected: malware detected"
	}
	return &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 7, 1}, Message: text}
}

// ScannerUnavailable is temporary: the antivirus agent could not have the message
// scanned (clamd down, or failing), so it is neither accepted unscanned nor refused
// for good (FILTER-009).
func ScannerUnavailable() *smtp.SMTPError {
	return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "Antivirus scanner (clamd) unavailable, try again later"}
}

// SenderDenied refuses MAIL from a blocked sender or domain (FILTER-014).
func SenderDenied() *smtp.SMTPError {
	return &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 1, 0}, Message: "Sender Denied"}
}

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

// MailboxFull refuses a recipient whose mailbox the message would take over its quota
// (MBX-009): X.2.2, mailbox full, permanent as Exchange's NDR says it (RFC 3463 calls
// it a persistent transient failure; the Hub does not retry it).
func MailboxFull() *smtp.SMTPError {
	return &smtp.SMTPError{Code: 552, EnhancedCode: smtp.EnhancedCode{5, 2, 2}, Message: "Mailbox full: the recipient's mailbox is over its size limit"}
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

// idRe finds the ID in Queued's and Delivered's text, as a client reads the reply
// ("250 2.6.0 <ID> Queued mail for delivery").
var idRe = regexp.MustCompile(`<([0-9A-Za-z.-]+)> (?:Queued mail for delivery|Delivered to mailbox)`)

// QueuedID is the ID a reference server gave the message in its reply to the data
// (Queued or Delivered), or "" for any other reply: a sender's SEND names the copy the
// next hop took by it.
func QueuedID(reply string) string {
	if m := idRe.FindStringSubmatch(reply); m != nil {
		return m[1]
	}
	return ""
}

// Replies a Mailbox server's client submission port (587) gives.

// EncryptionRequired answers AUTH in the clear on a port that offers its mechanisms
// only inside TLS (RFC 4954 §4, SMTP-021, MBX-004).
func EncryptionRequired() *smtp.SMTPError {
	return &smtp.SMTPError{Code: 538, EnhancedCode: smtp.EnhancedCode{5, 7, 11}, Message: "Encryption required for requested authentication mechanism"}
}

// SendAsDenied refuses an authenticated submitter's envelope or From: sender that is
// not one of their own addresses, in Exchange 2010's words (MBX-005).
func SendAsDenied() *smtp.SMTPError {
	return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 7, 1}, Message: "Client does not have permissions to send as this sender"}
}

// NoHub answers a submission no Hub of the Mailbox server's site took: temporary, so
// the client keeps the message and tries again (MBX-010). X.4.1: no answer from host.
func NoHub(site, last string) *smtp.SMTPError {
	msg := "No Hub of site " + site + " took the message, try again later"
	if last != "" {
		msg += " (" + last + ")"
	}
	return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 4, 1}, Message: msg}
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
