// Package spamc is a client of SpamAssassin's spamd over its SPAMC protocol
// (spamd(1p), PROTOCOL in the SpamAssassin sources): PING, and SYMBOLS, which sends a
// whole message and reads back the verdict line ("Spam: True ; 1003.3 / 5.0") and the
// names of the rules that hit. The reply parser takes a status line, header fields and
// a body of at most the announced length, and nothing else; the Edge's content filter
// (FILTER-013) scores each message with it.
package spamc
