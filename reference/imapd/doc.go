// Package imapd is a Mailbox server's IMAP service: go-imap v2's imapserver over the
// Maildirs the mailbox store (reference/store) delivers into, so a client reads what
// delivery wrote (MBX-001, MBX-002, MBX-003) and is told of new mail while it idles
// (MBX-012). Logins need TLS first (STARTTLS) and are checked by an Authenticator (the
// Mailbox server asks the directory); a refused password is NO [AUTHENTICATIONFAILED].
//
// Each user has the folders an Exchange mailbox has: INBOX (the store's Maildir itself),
// Sent Items (\Sent), Drafts (\Drafts), Deleted Items (\Trash), Junk E-mail (\Junk) and
// Outbox, the others as Maildir++ subfolders (".Sent Items"). Maildir flags are IMAP's
// system flags (S \Seen, R \Answered, F \Flagged, T \Deleted, D \Draft); a message still
// in new/ has none. UIDs are kept in a list per folder (mailflow-uidlist), replaced
// atomically, so they stay the same across sessions and restarts.
//
// The Mailbox server's submission service reads the Outbox (Mailboxes, Messages),
// hears of what clients put there (WithOnAdd) and files what it sent in Sent Items
// (Move), through the same folders, so open sessions are told (MBX-006).
//
// The library is used only here: the rest of the reference sees Start, Notify, the
// Outbox calls and Close.
package imapd
