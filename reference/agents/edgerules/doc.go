// Package edgerules is the Edge Rules agent (FILTER-011, FILTER-012): an Edge's own
// transport rules, applied at end-of-data after the other agents (FILTER-018) and
// known to that Edge alone, since Edge rules are never replicated. A rule's reject
// is an SMTP refusal with the rule's code and text that ends the session; a delete
// is a 250 and a DROP event; the other actions change the message or its recipients
// before it is queued.
package edgerules
