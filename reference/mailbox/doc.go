// Package mailbox is a Mailbox server: it takes SMTP from the organisation's Hubs, only
// over STARTTLS (ROUTE-017), only for mailboxes the directory places on this server, and
// stores each message in the mailbox store (reference/store) before answering 250,
// recording a DELIVER tracking event per recipient. Serves MBX-001, MBX-002, CAT-003
// (duplicate suppression), ROUTE-017.
package mailbox
