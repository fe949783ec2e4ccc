// Package transport is the transport server the Edge and Hub roles are assembled from
// (reference/edge, reference/hub): receive connectors (smtpd) in front of a durable
// queue, whose deliverer sends each recipient to its next hop through the outbound
// connection limits, keeps shadow copies of what it relays when shadow redundancy is
// on, and queues the DSNs the queue's outcomes call for. Without a Router of its own
// it routes as an Edge: accepted-domain mail to the Hubs of the subscribed site and
// everything else through the most specific send connector (smart host or MX), failing
// mail whose MX is the server itself. Serves RELAY-*, ACCEPT-001/002/005/007, SMART-*,
// ROUTE-015, TRACE-004 (hop limit at its connectors), TRACE-005, and the DSNs of
// DSN-002, DSN-012, QUEUE-006.
package transport
