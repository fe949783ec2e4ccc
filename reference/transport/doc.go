// Package transport is the transport server the Edge and Hub roles are assembled from
// (reference/edge, reference/hub): receive connectors (smtpd) in front of a durable
// queue, whose deliverer sends each recipient to its next hop through the outbound
// connection limits, keeps shadow copies of what it relays when shadow redundancy is
// on, and queues the DSNs the queue's outcomes call for. Without a Router of its own it
// routes as an Edge: accepted-domain mail to the Hubs of the subscribed site and
// everything else through the most specific send connector (smart host or MX), failing
// mail whose MX is the server itself. Serves RELAY-001, RELAY-002, RELAY-003,
// RELAY-004, RELAY-005, RELAY-006, RELAY-007, RELAY-008, ACCEPT-001, ACCEPT-002,
// ACCEPT-005, ACCEPT-007, SMART-001, SMART-002, SMART-003, SMART-004, SMART-005,
// SMART-006, ROUTE-015, TRACE-004 (hop limit at its connectors), TRACE-005, and the
// DSNs of DSN-002, DSN-012, QUEUE-006.
package transport
