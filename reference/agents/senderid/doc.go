// Package senderid is the Edge's sender authentication agent (Exchange's Sender Id
// Agent), here SPF (RFC 7208) on the MAIL FROM identity, or the HELO name for the null
// sender, evaluated by blitiri.com.ar/go/spf through the Edge's resolver
// (reference/resolve). Set to reject, it refuses a fail with 550 5.7.23 at MAIL;
// otherwise, and for every other result, the message is taken and carries a
// Received-SPF field (RFC 7208 §9.1). A DNS failure is a temperror, never a permanent
// refusal (FILTER-015).
package senderid
