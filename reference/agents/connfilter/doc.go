// Package connfilter is the Connection Filtering agent of an Edge: at connect it
// checks the client's address against the IP Allow list, the IP Block list and each
// DNS block list provider (an A query for the reversed address under the provider's
// zone, FILTER-001, and its TXT reason, FILTER-004), and at RCPT it refuses every
// recipient but the bypassed ones (FILTER-002, FILTER-006), as Exchange does so that
// postmaster stays reachable. A provider's answer counts only when it matches the
// provider's return codes or bitmask (FILTER-005); NXDOMAIN is "not listed"
// (FILTER-003), and a provider that fails or does not answer in time lists nobody
// (FILTER-008).
package connfilter
