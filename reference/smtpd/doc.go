// Package smtpd is a receive connector on go-smtp: it maps Exchange permission groups to
// rights, applies the accepted-domain, recipient-filtering and relay policy at RCPT,
// prepends the Received header and hands the message to a durable queue before it
// answers 250 to DATA. The replies it builds (refusals, and the lines it writes in place
// of go-smtp's own) are in reference/replies.
// Serves SMTP-001..011, RELAY-001..008, ACCEPT-001/002/003/005, TRACE-001..004, SEC-004.
package smtpd
