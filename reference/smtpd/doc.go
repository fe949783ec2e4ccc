// Package smtpd is a receive connector on go-smtp: it maps Exchange permission groups
// to rights, applies the accepted-domain, recipient-filtering and relay policy at RCPT,
// prepends the Received header and hands the message to a durable queue before it
// answers 250 to DATA. The replies it builds (refusals, and the lines it writes in
// place of go-smtp's own) are in reference/replies. Serves SMTP-001, SMTP-002,
// SMTP-003, SMTP-004, SMTP-005, SMTP-006, SMTP-007, SMTP-008, SMTP-009, SMTP-010,
// SMTP-011, RELAY-001, RELAY-002, RELAY-003, RELAY-004, RELAY-005, RELAY-006,
// RELAY-007, RELAY-008, ACCEPT-001, ACCEPT-002, ACCEPT-003, ACCEPT-005, TRACE-001,
// TRACE-002, TRACE-003, TRACE-004, SEC-004.
package smtpd
