// Package categorizer is the Hub's categorizer: it turns the envelope recipients of a
// message into the addresses it is delivered to, by asking the directory.
//
// Each recipient is looked up by any of its proxy addresses, in any letter case, and
// rewritten to its primary SMTP address, the address as received being kept in
// Result.Original for ORCPT (CAT-001). A mailbox carries the server owning its homeMDB
// database (CAT-002); lookups, negative ones included, are cached for a TTL on the
// injected clock, so a moved mailbox is seen once the TTL has passed. Groups are
// expanded recursively; a group reached again (a group containing itself, a cycle, two
// paths to one group) is not expanded again, and every final address appears once per
// Resolve, by the first path that reached it (CAT-003). Contacts, and mail users with a
// target address, resolve to that external address (CAT-004). An unknown address fails
// with 5.1.1, an invalid directory object with 5.3.0 and group nesting beyond the limit
// with 5.4.6 (CAT-005). A directory that cannot answer is never a failed recipient:
// Resolve returns an error that IsTemporary recognises, and the message stays queued
// (CAT-006).
package categorizer
