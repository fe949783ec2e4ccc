// Package rewrite is the Edge's address rewriting agent (FILTER-017). Outbound, on
// mail the organisation sends through the Edge, it rewrites an internal address to its
// external form in MAIL FROM and in the From:, Reply-To:, To: and Cc: fields; inbound,
// for an entry that is bidirectional, it rewrites a recipient given in the external
// form back to the internal one at RCPT, before the recipient filter looks it up.
// Entries are an address ("bob@sales.contoso.test" -> "bob@contoso.test"), a domain
// ("*@sales.contoso.test" or "sales.contoso.test" -> "contoso.test") or a domain and
// its sub-domains ("*.contoso.test", outbound only, as Exchange has it). Other fields,
// and a message signed as multipart/signed, are left as they are: rewriting would
// break the signature.
package rewrite
