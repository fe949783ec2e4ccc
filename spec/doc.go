// Package spec is the product's copy of the clause catalog: every clause of the
// mailflow behaviour specification (SPEC.md) with its ID, area, requirement level,
// applicability, title, verbatim text and sources.
//
// Users' clones do not carry SPEC.md itself, so the conformance report is built
// from this catalog (clauses.yaml, embedded at build time), never from a list kept
// by hand beside the suites. A unit test checks the catalog against SPEC.md when
// the document is present, so the two cannot drift apart silently.
//
// Serves every clause (SMTP-001 … SEC-006) as their single source of metadata;
// in particular the Verdicts convention of SPEC.md §0 relies on Level (FAIL for
// MUST, WARN for SHOULD/MAY) and Applies (N/A for reference clauses on other MTAs).
package spec
