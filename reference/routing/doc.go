// Package routing decides where a recipient goes next: which send connector of the
// organisation carries a domain (ROUTE-011, ROUTE-012, ROUTE-013, ROUTE-014,
// SMART-001), and, in later stages, the least-cost path across sites. It reads the
// scenario and nothing else.
package routing
