// Package senderfilter is the Sender Filter agent of an Edge (FILTER-014): at MAIL it
// refuses a blocked sender address or domain ("*.domain" for the domain and its
// sub-domains) with 554 5.1.0, or, set to stamp, lets it through and stamps the
// message at end-of-data with the sender filter's verdict and a raised SCL. The null
// sender is blocked only when blank-sender blocking is on. Authenticated and internal
// sessions never reach it (FILTER-007, reference/agents).
package senderfilter
