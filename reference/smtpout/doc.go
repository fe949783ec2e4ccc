// Package smtpout is the send side: it turns a next hop (smart hosts, an org server, or
// the MX of a domain) into an ordered list of addresses, opens one SMTP session, does
// STARTTLS and AUTH PLAIN when the hop asks for them, and reports one result per
// recipient. To a next hop that offers PIPELINING, MAIL, the RCPTs and DATA go in one
// write (RFC 2920), through go-smtp with the patch in third_party/. A domain whose best MX is the sender itself (by name or by one of its
// addresses) fails with 5.4.6 "loops back to myself" instead of being sent round; a
// less preferred own MX only drops itself and what ranks below it (RFC 5321 §5.1). It
// knows nothing of queues. Serves SMART-001, SMART-002, SMART-003, SMART-004,
// SMART-005, SMART-006, DNS-001, DNS-004, DNS-005, QUEUE-001, TRACE-005.
package smtpout
