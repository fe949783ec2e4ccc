// Package compose writes the message a scenario's messages: entry describes: the
// headers repro sends, then a short text, the scenario's body:, a generated body of
// size: octets, and with attachments: a multipart/mixed message (RFC 2046) built with
// go-message, each attachment base64 with its file name. Generated content is the same
// on every run, so a size that crosses a limit crosses it every time (ROUTE-016's link
// limits, FILTER-016's size limits).
package compose
