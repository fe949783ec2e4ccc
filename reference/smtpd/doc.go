// Package smtpd is a receive connector on the reference's SMTP loop (reference/esmtp):
// it maps Exchange permission groups to rights, applies the accepted-domain,
// recipient-filtering and relay policy at RCPT, removes X-MS-Exchange-Organization-*
// headers a session may not set, prepends the Received header and hands the message to
// a durable queue before it answers 250 to end-of-data. On an Edge it runs the agents
// of reference/agents at connect, MAIL, RCPT (before the recipient filter) and
// end-of-data. Its refusals are in reference/replies. Serves SMTP-011, SMTP-021,
// RELAY-001, RELAY-002, RELAY-003, RELAY-004, RELAY-005, RELAY-006, RELAY-007,
// RELAY-008, ACCEPT-001, ACCEPT-002, ACCEPT-003, ACCEPT-004, ACCEPT-005, TRACE-001,
// TRACE-002, TRACE-006, TRACE-007, SEC-004, SEC-010 and, with the agents, FILTER-007;
// reference/esmtp serves the protocol's own clauses.
package smtpd
