// Package edge assembles an Edge Transport server: receive connectors (smtpd) in front of
// a durable queue whose deliverer routes accepted-domain mail to the Hubs of the
// subscribed site and everything else through the most specific send connector
// (smart host or MX), failing mail whose MX is the Edge itself. Serves RELAY-*,
// ACCEPT-001/002/005/007, SMART-*, ROUTE-015, TRACE-004 (hop limit at its connectors),
// TRACE-005.
package edge
