// Package edge is the Edge Transport role, assembled from the transport server
// (reference/transport): the scenario's receive connectors for the Internet, the
// implicit EdgeSync connector for the organisation's Hubs, and the Edge's own routing,
// accepted-domain mail to the Hubs of the subscribed site and everything else through
// the most specific send connector (smart host or MX). Serves RELAY-*,
// ACCEPT-001/002/005/007, SMART-*, ROUTE-015, TRACE-004 (hop limit at its connectors),
// TRACE-005.
package edge
