// Package report turns a Ginkgo v2 run plus the clause catalog (package spec) into
// one verdict per clause, and renders it as a table, JSON, JUnit XML and a
// side-by-side matrix of several targets. It implements the Verdicts convention of
// SPEC.md §0 (PASS, FAIL, WARN, INFO, N/A, MISSING) for every clause; it serves
// no single clause itself.
//
// # Conventions the suites follow
//
// Labels. Every spec carries Ginkgo labels naming its clause ID(s) ("RELAY-001"),
// its area ("relay") and "any-mta" when the clause applies to any MTA. Only labels
// of the clause-ID shape (spec.IsClauseID) matter here; container labels count as
// well as the spec's own. A spec may name several clauses and then counts for each.
//
// Not applicable. A spec that does not apply to the target calls
// Skip("N/A: reason"). The prefix NotApplicablePrefix is what tells such a skip
// from a spec that was merely not selected (label filter, focus) or skipped for
// another reason: only the former makes a clause N/A.
//
// Informational. A spec whose clause leaves the behaviour open records what it
// saw with AddReportEntry(EntryVerdict, "INFO: observed ...") and passes.
//
// Vectors. A spec checking a catalog of variants (SEC-004's open-relay vectors)
// records one AddReportEntry(EntryVector, "name: PASS|FAIL detail") per variant;
// the table prints these lines under the clause.
//
// # Verdict rules
//
// For each catalog clause, over the specs of the run labelled with it:
//
//   - no such spec: MISSING ("no spec implements this clause");
//   - any spec failed, panicked, was interrupted, aborted or timed out: FAIL when
//     the clause is MUST, WARN when it is SHOULD or MAY;
//   - no spec passed and at least one was skipped with "N/A:": N/A, the reason
//     being the skip message;
//   - no spec passed otherwise (not selected by the label filter, pending, skipped
//     for another reason): MISSING with that note, since nothing could have failed;
//   - a passed spec recorded an INFO entry: INFO;
//   - otherwise PASS, its time the sum of the specs' run times.
//
// A clause is therefore never PASS without a spec that ran and could have failed.
package report
