// Package resolve is the reference MTA's DNS client: it asks one configured server (the
// harness's fake DNS in tests) for MX, A/AAAA and TXT records over UDP, falling back to TCP on
// truncation, and sorts answers into NXDOMAIN, NODATA and temporary failures the delivery
// code can act on.
//
// It serves DNS-001 (MX by preference), DNS-004 (addresses for implicit MX), DNS-006
// (ErrNXDomain is permanent), DNS-007 and FILTER-008 (SERVFAIL and timeouts are TempError),
// DNS-009 (CNAME at the domain followed), DNS-010 (null MX reported as Host ""), DNS-013
// (addresses in resolver order) and FILTER-001 (ReverseName for DNSBL queries).
// Ordering among equal-preference MX records (DNS-003) is the caller's job.
package resolve
