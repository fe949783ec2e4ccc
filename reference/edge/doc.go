// Package edge is the Edge Transport role, assembled from the transport server
// (reference/transport): the scenario's receive connectors for the Internet, the
// implicit EdgeSync connector for the organisation's Hubs, and the Edge's own routing,
// accepted-domain mail to the Hubs of the subscribed site and everything else through
// the most specific send connector (smart host or MX). Serves RELAY-001, RELAY-002,
// RELAY-003, RELAY-004, RELAY-005, RELAY-006, RELAY-007, RELAY-008, ACCEPT-001,
// ACCEPT-002, ACCEPT-005, ACCEPT-007, SMART-001, SMART-002, SMART-003, SMART-004,
// SMART-005, SMART-006, ROUTE-015, TRACE-004 (hop limit at its connectors), TRACE-005.
package edge
