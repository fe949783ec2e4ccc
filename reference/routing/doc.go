// Package routing decides where a recipient goes next: which send connector of the
// organisation carries a domain (ROUTE-011, ROUTE-012, ROUTE-013, ROUTE-014,
// SMART-001), and the least-cost path across sites (ROUTE-001 to ROUTE-004) or
// Exchange 2003 routing groups and their connectors (ROUTE-019, ROUTE-020, ROUTE-022),
// one search for both. It reads the scenario and nothing else.
package routing
