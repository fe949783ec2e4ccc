// Package clamd is a client of ClamAV's daemon over its INSTREAM protocol (clamd(8),
// "zINSTREAM"): a message goes to the daemon in length-prefixed chunks and comes back
// as one reply line, "stream: OK" or "stream: NAME FOUND". clamd parses a whole
// message as mail, so an attachment in a base64 MIME part is decoded and scanned
// too. The antivirus agent (reference/agents/antivirus) uses it for FILTER-009 and
// FILTER-010; Parse is the reply's parser.
package clamd
