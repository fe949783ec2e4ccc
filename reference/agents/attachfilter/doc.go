// Package attachfilter is the Attachment Filtering agent of an Edge (FILTER-016): at
// end-of-data it walks the message's MIME tree (multipart bodies, message/rfc822
// parts, base64 and quoted-printable transfer encodings undone) for an attachment
// whose file name matches a blocked pattern ("*.exe") or whose content type is
// blocked, and then refuses the message with 550 5.7.1 (Reject, the default), takes
// it without that attachment and with a notice part naming it (Strip), or takes and
// deletes it (SilentDelete). The walk is Scan; Strip rewrites only the parts on the
// way to a removed attachment, so every other part keeps its bytes.
package attachfilter
