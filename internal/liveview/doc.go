// Package liveview serves a running world to a browser while a user sends it mail: the
// picture of its sites, every listener, the queues of each transport server, the
// message-tracking log, and what each fake Internet host and each mailbox has received,
// as a Mailpit or smtp4dev user expects to see them. The page is one self-contained
// HTML document (its style and script inline) that refreshes its content from the
// server every second; /state.json is the same state for programs.
package liveview
