// Package scenario is the scenario file format: one YAML file describing a whole
// world (the organisation under test, the fake Internet around it and the messages
// `mailflow repro` sends). It parses the file, validates it strictly and fills in the
// defaults, so every other package can trust what it gets.
//
// Validation is strict on purpose (DESIGN "The scenario file"): unknown keys, wrong
// YAML types, dangling names and duplicate addresses are errors carrying
// FILE:LINE:COL and the dotted key, because a silently ignored typo in a topology
// makes a conformance verdict meaningless. Every default lives in defaults.go and is
// printed by Defaults() for `mailflow repro --explain`.
//
// Clauses served (as the configuration they depend on): ACCEPT-001, ACCEPT-002,
// ACCEPT-003, ACCEPT-004, ACCEPT-005, ACCEPT-006, ACCEPT-007, ACCEPT-008 (accepted
// domains, wildcard matching, recipient filtering and block list), RELAY-001,
// RELAY-002, RELAY-003, RELAY-004, RELAY-005, RELAY-006, RELAY-007, RELAY-008 (receive
// connector permissions and remote IP ranges), SMART-001, SMART-002, SMART-003,
// SMART-004, SMART-005, SMART-006 (smart-host syntax and authentication), DNS-001,
// DNS-002, DNS-003, DNS-004, DNS-005, DNS-006, DNS-007, DNS-008, DNS-009, DNS-010,
// DNS-011, DNS-012, DNS-013 (fake DNS records and failures), QUEUE-004 (retry
// interval), TRACE-004 (hop count) and DSN-004 / the postmaster address (server FQDN,
// default accepted domain).
package scenario
