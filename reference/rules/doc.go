// Package rules is the transport rule engine (FILTER-011, FILTER-012): a rule's
// conditions (sender, recipient, recipient domain, words in the subject or body, a
// header's words, an attachment's name, the SCL) are tested against a message, and
// the actions of the rules that match are applied in priority order: reject (with an
// explanation and enhanced code), prepend to the subject, set a header, redirect,
// blind copy, delete. A reject or a delete ends the evaluation. The Edge runs its
// own rules at end-of-data (reference/agents/edgerules); a Hub runs the
// organisation's when it categorizes a message (reference/hub).
package rules
