// Package dsn builds RFC 3464 delivery status notifications — multipart/report;
// report-type=delivery-status (RFC 6522) — for the reference MTA, with go-message
// writing the header and MIME structure, and parses DSNs back for the suites. Serves
// DSN-003, DSN-004, DSN-005, DSN-006, DSN-007, DSN-008, DSN-009 (structure, per-message
// and per-recipient fields, status class, Remote-MTA/Diagnostic-Code,
// Will-Retry-Until), DSN-010 (RET=HDRS vs FULL), SMART-004 and QUEUE-002 (the failed
// DSN after a 5xx).
package dsn
