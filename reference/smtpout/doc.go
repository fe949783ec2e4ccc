// Package smtpout is the send side: it turns a next hop (smart hosts, an org server, or
// the MX of a domain) into an ordered list of addresses, opens one SMTP session, does
// STARTTLS and AUTH PLAIN when the hop asks for them, and reports one result per
// recipient. It knows nothing of queues. Serves SMART-001..006, DNS-001/004/005, QUEUE-001.
package smtpout
