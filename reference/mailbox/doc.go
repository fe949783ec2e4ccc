// Package mailbox is a Mailbox server: it takes SMTP from the organisation's Hubs, only
// over STARTTLS (ROUTE-017), only for mailboxes the directory places on this server, and
// stores each message in the mailbox store (reference/store) before answering 250,
// recording a DELIVER tracking event per recipient. It serves the same Maildirs over IMAP
// (reference/imapd) to users the directory authenticates and places on this server, and
// tells the IMAP service of each stored copy so a client in IDLE hears of it at once.
//
// Its client submission port (587, RFC 6409) takes mail from the users it holds: AUTH
// PLAIN only inside TLS (538 5.7.11 in the clear), MAIL only once authenticated (530
// 5.7.0), and only as the user, by envelope and From: (550 5.7.1, MBX-005). It adds
// Date: and Message-ID: where missing and hands the message to a Hub of its own site
// before answering, so the reply is the Hub's and a message no Hub took stays the
// client's (451 4.4.1).
//
// Its submission service is the store-submission path (the reference's stand-in for
// MAPI): a message a client places in its Outbox (IMAP APPEND) is handed, as the
// owner's, to the addresses of its To:, Cc: and Bcc: (Bcc: itself removed) through a
// Hub of the server's own site, then moved to Sent Items, \Seen. One no Hub took stays
// in the Outbox and is tried again after OutboxRetryInterval; every Outbox is looked at
// on start. The trace shows it: RECEIVE (Outbox), SEND to the Hub, the Hub's own events.
//
// A mailbox with a quota (the scenario recipient's quota:, Exchange's
// ProhibitSendReceiveQuota) takes no message that would take it over: 552 5.2.2 at RCPT
// (by MAIL's SIZE=) or at end-of-data, so the Hub fails the recipient and the sender
// gets the NDR (MBX-009).
// Serves MBX-001, MBX-002, MBX-003, MBX-004, MBX-005, MBX-006, MBX-007, MBX-008,
// MBX-009, MBX-010, MBX-012, CAT-003 (duplicate suppression), ROUTE-017.
package mailbox
