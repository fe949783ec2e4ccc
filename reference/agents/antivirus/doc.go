// Package antivirus is the Malware Agent of an Edge (FILTER-009, FILTER-010): at
// end-of-data it has the whole message scanned by ClamAV's daemon (reference/clamd,
// INSTREAM), which decodes MIME itself, so an infected attachment in a base64 part is
// found. An infected message is deleted (250, then neither delivered nor bounced:
// Exchange's default), refused with 554 5.7.1 (Reject), or delivered with each
// infected part replaced by a notice naming it (Strip; each leaf part is scanned on
// its own to find which, and a message still infected after that is deleted). No
// notification goes to the envelope sender, who is likely forged, unless the Edge is
// configured to send one (FILTER-010: WithSenderNotification, from the null sender). A
// daemon that cannot be reached or cannot scan gets the client 451 4.3.0 naming
// clamd: a message is never accepted unscanned, nor refused for good because the
// scanner is down.
package antivirus
