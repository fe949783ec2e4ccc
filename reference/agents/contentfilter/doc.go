// Package contentfilter is the Content Filter agent of an Edge (FILTER-013): at
// end-of-data it has SpamAssassin's spamd score the message (reference/spamc), maps
// the score to a spam confidence level (SCL, 0-9) and acts on the thresholds
// highest first: delete (250 to the client, a DROP, no DSN), reject (550 5.7.1),
// quarantine (the message goes to the quarantine mailbox alone), or else delivery
// with X-MS-Exchange-Organization-SCL, which the Mailbox server reads. It is an
// anti-spam agent: authenticated and internal sessions bypass it (FILTER-007). A
// spamd that does not answer gets the client 451 4.3.0, never a message taken
// unscored.
package contentfilter
